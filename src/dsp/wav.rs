//! Just enough RIFF/WAVE parsing for PCM from TTS engines (`espeak-ng --stdout` writes a
//! header whose sizes are placeholders, so the data runs to end of input).

use std::io::Read;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavFormat {
    pub channels: u16,
    pub rate: u32,
    /// 16 = s16, 32 = f32 (format tag 3).
    pub bits: u16,
    pub float: bool,
}

fn read_exact_vec(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v)?;
    Ok(v)
}

/// Parses a WAV header whose first 12 bytes (`RIFF....WAVE`) were already read, leaving the
/// reader at the first data byte.
pub fn read_header_after_riff(r: &mut impl Read) -> Result<WavFormat, String> {
    let mut fmt: Option<WavFormat> = None;
    loop {
        let h = read_exact_vec(r, 8).map_err(|e| format!("truncated WAV header: {e}"))?;
        let id = &h[0..4];
        let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if id == b"fmt " {
            let b =
                read_exact_vec(r, size.min(1 << 16)).map_err(|e| format!("bad fmt chunk: {e}"))?;
            if b.len() < 16 {
                return Err("fmt chunk too short".into());
            }
            let mut tag = u16::from_le_bytes([b[0], b[1]]);
            let channels = u16::from_le_bytes([b[2], b[3]]);
            let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let bits = u16::from_le_bytes([b[14], b[15]]);
            if tag == 0xFFFE && b.len() >= 26 {
                tag = u16::from_le_bytes([b[24], b[25]]); // WAVE_FORMAT_EXTENSIBLE subformat
            }
            let float = match (tag, bits) {
                (1, 16) => false,
                (3, 32) => true,
                _ => return Err(format!("unsupported WAV encoding (tag {tag}, {bits} bits): need 16-bit PCM or 32-bit float")),
            };
            if size % 2 == 1 {
                let _ = read_exact_vec(r, 1);
            }
            fmt = Some(WavFormat {
                channels,
                rate,
                bits,
                float,
            });
        } else if id == b"data" {
            return fmt.ok_or_else(|| "data chunk before fmt chunk".to_string());
        } else {
            let skip = size + (size & 1);
            std::io::copy(&mut r.take(skip as u64), &mut std::io::sink())
                .map_err(|e| format!("truncated WAV chunk: {e}"))?;
        }
    }
}

/// Reads a whole int16 mono WAV file (benchmarks and tools).
pub fn read_s16_mono(path: &std::path::Path) -> Result<(u32, Vec<i16>), String> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| e.to_string())?);
    let mut riff = [0u8; 12];
    f.read_exact(&mut riff).map_err(|e| e.to_string())?;
    let fmt = read_header_after_riff(&mut f)?;
    if fmt.float || fmt.channels != 1 {
        return Err("need an int16 mono WAV".into());
    }
    let mut data = Vec::new();
    f.read_to_end(&mut data).map_err(|e| e.to_string())?;
    let x = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok((fmt.rate, x))
}

/// Writes a 16-bit PCM WAV file.
pub fn write_s16(
    path: &std::path::Path,
    rate: u32,
    channels: u16,
    samples: &[i16],
) -> std::io::Result<()> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out)
}
