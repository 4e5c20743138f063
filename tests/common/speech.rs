//! Speech heard against a synthesizer's own rendering of it (`espeak-ng -w`): a WAV reader,
//! the extent of the speech, and the block-by-block cross-correlation that tells a gap or a
//! loss from a clean playback, for tests/pcaudio_shim.rs and tests/speechd_plugin.rs.

use std::path::Path;

use super::analysis::locate;

/// Mono samples of a 16-bit PCM WAV file (its first channel), and its rate.
pub fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    let (mut i, mut rate, mut channels) = (12, 0u32, 1usize);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let x = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
                .collect();
            return (x, rate);
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// First and last sample above 1% of full scale (the extent of the speech).
pub fn extent(x: &[f32]) -> Option<(usize, usize)> {
    let first = x.iter().position(|v| v.abs() > 0.01)?;
    let last = x.len() - 1 - x.iter().rev().position(|v| v.abs() > 0.01)?;
    Some((first, last))
}

/// `heard` against `want` (both at `rate`) in 100 ms blocks of the reference's speech, each
/// located near where the previous one was (a gap or a repeat moves the rest): the
/// correlations, in order, and how far the last block sits from where the first one put it
/// (samples; > 0: audio was delayed by gaps of silence, < 0: lost).
///
/// Both are compared below 4 kHz: the path resamples (22050 -> 48000 in the library, back to
/// 22050 at the server's monitor), which leaves a fractional-sample delay that an integer lag
/// cannot match, and at a fricative's 5-10 kHz half a sample alone is a correlation of
/// 0.4-0.7: a clean pcaudio-shim run read 4 of 44 blocks below 0.9 that way (0 of 41
/// low-passed). A gap, a loss or a repeat shows below 4 kHz as plainly as above it.
pub fn blockwise(want: &[f32], heard: &[f32], w0: usize, h0: usize, rate: u32) -> (Vec<f64>, i64) {
    let (want, heard) = (&lowpass(want, rate)[..], &lowpass(heard, rate)[..]);
    let b = rate as usize / 10;
    let mut lag = h0 as i64 - w0 as i64;
    let first_lag = lag;
    let mut rs = Vec::new();
    let mut s = w0;
    while s + b <= want.len() {
        let blk = &want[s..s + b];
        let rms = (blk.iter().map(|v| v * v).sum::<f32>() / b as f32).sqrt();
        if rms >= 0.02 {
            let guess = (s as i64 + lag).max(0) as usize;
            let (at, r) = locate(blk, heard, guess, rate as usize * 3 / 100);
            rs.push(r);
            if r >= 0.8 {
                lag = at as i64 - s as i64;
            }
        }
        s += b;
    }
    (rs, lag - first_lag)
}

/// `x` through a 4 kHz low-pass (a 101-tap Hann-windowed sinc), delayed by nothing: each
/// output sample is centred on its input sample, so lags stay what they were.
pub fn lowpass(x: &[f32], rate: u32) -> Vec<f32> {
    use std::f64::consts::PI;
    const HALF: i64 = 50;
    let fc = 4000.0 / rate as f64;
    let mut taps: Vec<f64> = (-HALF..=HALF)
        .map(|k| {
            let t = k as f64;
            let sinc = if k == 0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            sinc * (0.5 + 0.5 * (PI * t / (HALF + 1) as f64).cos())
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    (0..x.len() as i64)
        .map(|i| {
            let mut acc = 0.0f64;
            for (j, t) in taps.iter().enumerate() {
                let at = i + j as i64 - HALF;
                if at >= 0 && (at as usize) < x.len() {
                    acc += t * x[at as usize] as f64;
                }
            }
            acc as f32
        })
        .collect()
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn secs(n: usize, rate: u32) -> f64 {
    n as f64 / rate as f64
}

/// Whether a trace's lines with `tag` report starvation (underruns, late callbacks or
/// server underflows above 0, as `key=count` fields).
pub fn starved_in(trace: &str, tag: &str) -> bool {
    trace
        .lines()
        .filter(|l| l.contains(tag))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|t| t.split_once('='))
        .filter(|(k, _)| ["underruns", "late_callbacks", "server_underflows"].contains(k))
        .any(|(_, v)| v.parse::<u64>().is_ok_and(|n| n > 0))
}
