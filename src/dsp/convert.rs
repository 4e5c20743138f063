//! Sample conversion and channel mapping (SPEC D2-D4). Everything here runs on the audio
//! thread: no allocation, no panics on any input length (slices are zipped, never indexed
//! past their end).

use cpal::{FromSample, SampleFormat, I24, U24};

use crate::dsp::gain::Ramp;
use crate::dsp::simd::multiversion;

const I16_SCALE: f32 = 32768.0;
/// Largest float that maps to i16::MAX under D3: `1 - 1/32768`.
const I16_MAX_F: f32 = 1.0 - 1.0 / 32768.0;

/// D3: int16 -> float32 is `x / 32768`.
#[inline(always)]
pub fn s16_to_f32(x: i16) -> f32 {
    x as f32 / I16_SCALE
}

/// D3: clip to `[-1, 1 - 1/32768]`, then multiply by 32768. NaN becomes 0 so it can never
/// reach a device.
#[inline(always)]
pub fn f32_to_s16(x: f32) -> i16 {
    let x = if x.is_nan() { 0.0 } else { x };
    (x.clamp(-1.0, I16_MAX_F) * I16_SCALE) as i16
}

/// Makes a float sample safe for any device: NaN -> 0, +-Inf and overs clip to +-1.
#[inline(always)]
pub fn sanitize(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

multiversion! {
    /// Decodes native-endian input bytes into float32 samples (D2, D3). Returns samples
    /// written.
    pub fn decode_into(input_is_s16: bool, bytes: &[u8], out: &mut [f32]) -> usize {
        if input_is_s16 {
            let n = out.len().min(bytes.len() / 2);
            for (o, b) in out[..n].iter_mut().zip(bytes.chunks_exact(2)) {
                *o = s16_to_f32(i16::from_ne_bytes([b[0], b[1]]));
            }
            n
        } else {
            let n = out.len().min(bytes.len() / 4);
            for (o, b) in out[..n].iter_mut().zip(bytes.chunks_exact(4)) {
                *o = sanitize(f32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
            n
        }
    }
}

/// Native-endian float32 samples seen in place (no copy); None unless `bytes` is aligned
/// for f32 and a whole number of samples (the ring's slices are, in practice).
pub fn f32_view(bytes: &[u8]) -> Option<&[f32]> {
    // SAFETY: every bit pattern is a valid f32, and `align_to` only puts correctly aligned
    // whole elements in the middle part.
    let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}

/// Whether `map_channels` writes every output sample (so `out` need not be zeroed first).
pub fn map_covers_all(in_ch: usize, out_ch: usize) -> bool {
    in_ch == out_ch || (in_ch == 1 && out_ch == 2) || out_ch == 1
}

multiversion! {
    /// D4 channel policy, applied to interleaved frames, converting each sample with `conv`.
    /// `out` must already hold silence unless `map_covers_all`: channels the policy leaves
    /// silent are not touched.
    /// - mono -> 2+: the mono channel goes to the first two outputs;
    /// - 2+ -> mono: `0.5 * (L + R)`;
    /// - otherwise: the first `min(N, M)` channels are copied.
    fn map_with<T: Copy, F: Fn(f32) -> T>(
        input: &[f32],
        in_ch: usize,
        out: &mut [T],
        out_ch: usize,
        conv: F,
    ) {
        if in_ch == 0 || out_ch == 0 {
            return;
        }
        let frames = (input.len() / in_ch).min(out.len() / out_ch);
        let (input, out) = (&input[..frames * in_ch], &mut out[..frames * out_ch]);
        if in_ch == out_ch {
            for (o, &x) in out.iter_mut().zip(input) {
                *o = conv(x);
            }
        } else if in_ch == 1 && out_ch == 2 {
            // The common TTS case, with a constant stride so it vectorises.
            for (o, &x) in out.chunks_exact_mut(2).zip(input) {
                let v = conv(x);
                o[0] = v;
                o[1] = v;
            }
        } else if in_ch == 1 {
            for (o, &x) in out.chunks_exact_mut(out_ch).zip(input) {
                let v = conv(x);
                o[0] = v;
                o[1] = v;
            }
        } else if out_ch == 1 {
            for (o, i) in out.iter_mut().zip(input.chunks_exact(in_ch)) {
                *o = conv(0.5 * (i[0] + i[1]));
            }
        } else {
            let n = in_ch.min(out_ch);
            for (o, i) in out.chunks_exact_mut(out_ch).zip(input.chunks_exact(in_ch)) {
                for (o, &x) in o[..n].iter_mut().zip(&i[..n]) {
                    *o = conv(x);
                }
            }
        }
    }
}

/// D4 into float32 scratch (see `map_with`).
pub fn map_channels(input: &[f32], in_ch: usize, out: &mut [f32], out_ch: usize) {
    map_with(input, in_ch, out, out_ch, |x| x);
}

/// The fast path for the common device formats (float32, int16): D4 and the conversion in one
/// pass straight into the device buffer at sample `offset`. Only when the map writes every
/// output sample (the rest of the buffer is silenced after rendering, not before). Returns
/// false, touching nothing, otherwise.
pub fn map_into_device(
    src: &[f32],
    in_ch: usize,
    data: &mut cpal::Data,
    offset: usize,
    out_ch: usize,
) -> bool {
    if in_ch == 0 || !map_covers_all(in_ch, out_ch) {
        return false;
    }
    match data.sample_format() {
        SampleFormat::F32 => match data.as_slice_mut::<f32>().and_then(|d| d.get_mut(offset..)) {
            Some(dst) => map_with(src, in_ch, dst, out_ch, sanitize),
            None => return false,
        },
        SampleFormat::I16 => match data.as_slice_mut::<i16>().and_then(|d| d.get_mut(offset..)) {
            Some(dst) => map_with(src, in_ch, dst, out_ch, f32_to_s16),
            None => return false,
        },
        _ => return false,
    }
    true
}

/// The last step of the callback (D2): float32 samples into the device's format, starting at
/// sample `offset` of the device buffer. Returns false for formats no speech device uses
/// (DSD); the caller counts that as a shape mismatch and the buffer stays silent.
pub fn write_device(src: &[f32], data: &mut cpal::Data, offset: usize) -> bool {
    fn put<T: cpal::SizedSample + FromSample<f32>>(
        src: &[f32],
        data: &mut cpal::Data,
        offset: usize,
    ) -> bool {
        let Some(dst) = data.as_slice_mut::<T>() else {
            return false;
        };
        let Some(dst) = dst.get_mut(offset..) else {
            return false;
        };
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = T::from_sample(sanitize(s));
        }
        true
    }
    match data.sample_format() {
        SampleFormat::F32 => put::<f32>(src, data, offset),
        SampleFormat::I16 => {
            // D3's exact clipping rule, not cpal's generic conversion.
            let Some(dst) = data.as_slice_mut::<i16>().and_then(|d| d.get_mut(offset..)) else {
                return false;
            };
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f32_to_s16(s);
            }
            true
        }
        SampleFormat::I8 => put::<i8>(src, data, offset),
        SampleFormat::I24 => put::<I24>(src, data, offset),
        SampleFormat::I32 => put::<i32>(src, data, offset),
        SampleFormat::I64 => put::<i64>(src, data, offset),
        SampleFormat::U8 => put::<u8>(src, data, offset),
        SampleFormat::U16 => put::<u16>(src, data, offset),
        SampleFormat::U24 => put::<U24>(src, data, offset),
        SampleFormat::U32 => put::<u32>(src, data, offset),
        SampleFormat::U64 => put::<u64>(src, data, offset),
        SampleFormat::F64 => put::<f64>(src, data, offset),
        _ => false,
    }
}

/// Multiplies the device buffer's frames from sample `from` on by `fade`, one ramp step per
/// frame, in the device's own format (a rewrite of what was already written, issue 14 §6),
/// until the ramp settles. Returns the frames it stepped (the rest is untouched). At unity
/// gain a sample stays bit-exact.
pub fn fade_device(data: &mut cpal::Data, from: usize, channels: usize, fade: &mut Ramp) -> usize {
    fn run<T: cpal::SizedSample + FromSample<f32> + cpal::Sample>(
        data: &mut cpal::Data,
        from: usize,
        ch: usize,
        fade: &mut Ramp,
        get: impl Fn(T) -> f32,
        put: impl Fn(f32) -> T,
    ) -> usize {
        let Some(d) = data.as_slice_mut::<T>().and_then(|d| d.get_mut(from..)) else {
            return 0;
        };
        let mut n = 0;
        for frame in d.chunks_exact_mut(ch.max(1)) {
            if fade.settled() {
                break;
            }
            let g = fade.value;
            for x in frame.iter_mut() {
                *x = put(get(*x) * g);
            }
            fade.advance();
            n += 1;
        }
        n
    }
    fn generic<T>(data: &mut cpal::Data, from: usize, ch: usize, fade: &mut Ramp) -> usize
    where
        T: cpal::SizedSample + FromSample<f32> + cpal::Sample,
        f32: FromSample<T>,
    {
        run::<T>(
            data,
            from,
            ch,
            fade,
            <f32 as FromSample<T>>::from_sample_,
            |x| T::from_sample(sanitize(x)),
        )
    }
    match data.sample_format() {
        SampleFormat::F32 => generic::<f32>(data, from, channels, fade),
        // D3's exact rules both ways.
        SampleFormat::I16 => run::<i16>(data, from, channels, fade, s16_to_f32, f32_to_s16),
        SampleFormat::I8 => generic::<i8>(data, from, channels, fade),
        SampleFormat::I24 => generic::<I24>(data, from, channels, fade),
        SampleFormat::I32 => generic::<i32>(data, from, channels, fade),
        SampleFormat::U8 => generic::<u8>(data, from, channels, fade),
        SampleFormat::U16 => generic::<u16>(data, from, channels, fade),
        SampleFormat::U24 => generic::<U24>(data, from, channels, fade),
        SampleFormat::U32 => generic::<u32>(data, from, channels, fade),
        SampleFormat::F64 => generic::<f64>(data, from, channels, fade),
        _ => 0,
    }
}

/// D1: from sample `from` on, the device buffer holds silence, whatever its format (unsigned
/// formats are silent at mid-scale, not zero).
pub fn fill_silence(data: &mut cpal::Data, from: usize) {
    fn fill<T: cpal::SizedSample>(data: &mut cpal::Data, from: usize) {
        if let Some(d) = data.as_slice_mut::<T>().and_then(|d| d.get_mut(from..)) {
            d.fill(T::EQUILIBRIUM);
        }
    }
    match data.sample_format() {
        SampleFormat::U8 => fill::<u8>(data, from),
        SampleFormat::U16 => fill::<u16>(data, from),
        SampleFormat::U24 => fill::<U24>(data, from),
        SampleFormat::U32 => fill::<u32>(data, from),
        SampleFormat::U64 => fill::<u64>(data, from),
        f => {
            let b = data.bytes_mut();
            let start = (from * f.sample_size()).min(b.len());
            b[start..].fill(0)
        }
    }
}

/// Whether the render path can write this device format.
pub fn device_format_supported(f: SampleFormat) -> bool {
    !f.is_dsd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d3_round_trip_is_lossless_for_every_int16() {
        for v in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_s16(s16_to_f32(v)), v, "value {v}");
        }
    }

    #[test]
    fn d3_clips_and_sanitises() {
        assert_eq!(f32_to_s16(1.0), i16::MAX);
        assert_eq!(f32_to_s16(5.0), i16::MAX);
        assert_eq!(f32_to_s16(-1.0), i16::MIN);
        assert_eq!(f32_to_s16(-7.0), i16::MIN);
        assert_eq!(f32_to_s16(f32::NAN), 0);
        assert_eq!(f32_to_s16(f32::INFINITY), i16::MAX);
    }

    #[test]
    fn d4_policies() {
        let mono = [0.1, 0.2];
        let mut st = [9.0f32; 4];
        st.fill(0.0);
        map_channels(&mono, 1, &mut st, 2);
        assert_eq!(st, [0.1, 0.1, 0.2, 0.2]);

        let stereo = [0.2, 0.4, -0.2, 0.6];
        let mut m = [0.0f32; 2];
        map_channels(&stereo, 2, &mut m, 1);
        assert!((m[0] - 0.3).abs() < 1e-7 && (m[1] - 0.2).abs() < 1e-7);

        let six: Vec<f32> = (0..6).map(|c| c as f32 / 10.0).collect();
        let mut two = [0.0f32; 2];
        map_channels(&six, 6, &mut two, 2);
        assert_eq!(two, [0.0, 0.1]);

        let mut six_out = [0.0f32; 6];
        map_channels(&[0.5, -0.5], 2, &mut six_out, 6);
        assert_eq!(six_out, [0.5, -0.5, 0.0, 0.0, 0.0, 0.0]);

        let mut four = [0.0f32; 4];
        map_channels(&[0.3], 1, &mut four, 4);
        assert_eq!(four, [0.3, 0.3, 0.0, 0.0]);
    }
}
