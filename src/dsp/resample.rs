//! Linear resampling (SPEC S1, S2, U1).
//!
//! The streaming resampler keeps its phase as an exact integer fraction (`acc / out_rate`), so
//! its output never drifts and does not depend on how input and output are cut into blocks:
//! rendering in 1-frame or 4096-frame callbacks gives the same samples.

use crate::data::config::{ResampleQuality, MAX_CHANNELS};
use crate::dsp::phase::{advance_phase, gcd};
use crate::dsp::polyphase::PolyphaseResampler;

/// Stateful linear interpolator between `in_rate` and `out_rate` for interleaved frames.
///
/// Output frame `j` is taken at input position `j * in_rate / out_rate`, interpolated between
/// the frame at the integer part (`prev`) and the next one.
#[derive(Clone, Debug)]
pub struct LinearResampler {
    in_rate: u64,
    out_rate: u64,
    /// `in_rate = step_int * out_rate + step_frac`: the phase advances without dividing.
    step_int: u64,
    step_frac: u64,
    inv_out: f32,
    channels: usize,
    /// Phase numerator: the fractional input position is `acc / out_rate`.
    acc: u64,
    /// The input frame at the integer part of the position.
    prev: [f32; MAX_CHANNELS],
    /// Input frames to step over before the next output: the last one stepped onto becomes
    /// `prev`. Stepping is lazy, so a frame counts as consumed only once an output needs it.
    pending: u64,
    /// Frames in and out since the last reset, so the end of a stream can be made exactly
    /// `round(len * ratio)` long (S1).
    consumed: u64,
    produced: u64,
    /// One period of the phase pattern, precomputed (see `Period`); None = per-frame path.
    period: Option<Box<Period>>,
}

/// The phase pattern repeats every `out_rate` outputs (rates reduced by their gcd). Output
/// `r` of a period starting at phase 0 reads input frames `off[r]` and `off[r] + 1` with weight
/// `frac[r]`: with these tables the steady-state loop has no dependency from one frame to the
/// next (no phase accumulator), so it runs several times faster. Values are bit-identical to
/// the per-frame path.
#[derive(Clone, Debug)]
pub struct Period {
    /// `floor(r * in / out)` for r in 0..out + reach: any start phase (r < out) is followed
    /// by `reach` outputs (a whole number of periods, at least 1024 frames when short).
    off: Vec<u32>,
    /// `((r * in) mod out) / out` for the same r, computed exactly as the per-frame path.
    frac: Vec<f32>,
    /// Phase numerator of output r (r in 0..out), and the inverse map.
    acc_of: Vec<u32>,
    r_of_acc: Vec<u32>,
    /// Any 8 consecutive outputs read within 8 consecutive input frames (upsampling, or
    /// nearly): the vector kernel can take them from one load.
    window8: bool,
}

/// `out[q] = x[i] + (x[i + 1] - x[i]) * fr[q]` with `i = ia0 + span[q] - base`, for mono
/// frames, eight outputs per step: one unaligned load of 8 input frames, two in-register
/// permutes, and the same arithmetic as the scalar loop (no FMA: results are bit-identical
/// to it, so block size never changes the output, U1). Returns how many outputs it wrote
/// (a multiple of 8); the caller does the rest.
///
/// # Safety
/// The CPU must have AVX2. Every `span[q + k] - span[q]` for k < 8 must be at most 6
/// (`Period::window8`); input reads are bounds-checked here.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lerp8_mono_avx2(
    x: &[f32],
    ia0: usize,
    base: u32,
    span: &[u32],
    fr: &[f32],
    out: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let n = span.len().min(fr.len()).min(out.len());
    let one = _mm256_set1_epi32(1);
    let mut q = 0;
    while q + 8 <= n {
        let i = ia0 + (span[q] - base) as usize;
        if i + 8 > x.len() {
            break;
        }
        // SAFETY: x[i..i + 8], span/fr[q..q + 8] and out[q..q + 8] are in bounds (checked
        // above); unaligned loads and stores are allowed for all of them.
        unsafe {
            let win = _mm256_loadu_ps(x.as_ptr().add(i));
            let offs = _mm256_loadu_si256(span.as_ptr().add(q).cast());
            let rel = _mm256_sub_epi32(offs, _mm256_set1_epi32(span[q] as i32));
            let a = _mm256_permutevar8x32_ps(win, rel);
            let b = _mm256_permutevar8x32_ps(win, _mm256_add_epi32(rel, one));
            let w = _mm256_loadu_ps(fr.as_ptr().add(q));
            let y = _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), w));
            _mm256_storeu_ps(out.as_mut_ptr().add(q), y);
        }
        q += 8;
    }
    q
}

/// Largest period tabulated (4 tables of this many entries, at most ~100 KiB).
const MAX_PERIOD: u64 = 4096;

impl LinearResampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Self {
        // A zero rate is refused where devices and configs are checked; clamped here too so
        // no caller can make the phase arithmetic divide by zero.
        let (in_rate, out_rate) = (in_rate.max(1), out_rate.max(1));
        let g = gcd(in_rate as u64, out_rate as u64).max(1);
        let (in_rate, out_rate) = (in_rate as u64 / g, out_rate as u64 / g);
        LinearResampler {
            in_rate,
            out_rate,
            step_int: in_rate / out_rate,
            step_frac: in_rate % out_rate,
            inv_out: 1.0 / out_rate as f32,
            channels: channels.clamp(1, MAX_CHANNELS),
            acc: 0,
            prev: [0.0; MAX_CHANNELS],
            pending: 1,
            consumed: 0,
            produced: 0,
            period: None,
        }
    }

    /// As `new`, with the period tables (allocates: not for the audio thread).
    pub fn with_tables(in_rate: u32, out_rate: u32, channels: usize) -> Self {
        crate::dsp::simd::detect();
        let mut r = Self::new(in_rate, out_rate, channels);
        let (m, l) = (r.in_rate, r.out_rate);
        if l <= MAX_PERIOD && m != l {
            // Short periods (24000 -> 48000 has 2) are repeated so one pass covers a whole
            // callback; `span` below is then up to `reach` outputs long.
            let reach = l * MAX_PERIOD.div_ceil(l).min(1024u64.div_ceil(l).max(1));
            let off = (0..l + reach).map(|q| (q * m / l) as u32).collect();
            let frac = (0..l + reach)
                .map(|q| ((q * m) % l) as f32 * r.inv_out)
                .collect();
            let acc_of: Vec<u32> = (0..l).map(|q| ((q * m) % l) as u32).collect();
            let mut r_of_acc = vec![0u32; l as usize];
            for (q, &a) in acc_of.iter().enumerate() {
                r_of_acc[a as usize] = q as u32;
            }
            let off: Vec<u32> = off;
            let window8 = off.windows(8).all(|w| w[7] - w[0] <= 6);
            r.period = Some(Box::new(Period {
                off,
                frac,
                acc_of,
                r_of_acc,
                window8,
            }));
        }
        r
    }

    /// Forget the stream position (after a flush): the next input frame starts a new signal.
    pub fn reset(&mut self) {
        self.acc = 0;
        self.pending = 1;
        self.consumed = 0;
        self.produced = 0;
    }

    /// Output frames still owed for the input consumed so far, if the stream ends here:
    /// `round(consumed * out / in) - produced` (S1: the end is rounded, never truncated).
    pub fn tail_len(&self) -> usize {
        let want = (2 * self.consumed * self.out_rate + self.in_rate) / (2 * self.in_rate);
        want.saturating_sub(self.produced) as usize
    }

    /// Ends the stream: emits the owed tail (holding the last frame, at most about one input
    /// frame's worth) and resets, so the next signal starts at phase zero. Returns frames
    /// written; call again if `output` was too small (the reset waits for the whole tail).
    pub fn finish(&mut self, output: &mut [f32]) -> usize {
        let ch = self.channels;
        let n = self.tail_len().min(output.len() / ch);
        for o in output[..n * ch].chunks_exact_mut(ch) {
            o.copy_from_slice(&self.prev[..ch]);
        }
        self.produced += n as u64;
        if self.tail_len() == 0 {
            self.reset();
        }
        n
    }

    /// Upper bound of input frames consumed while producing `out_frames` outputs.
    pub fn max_input_for(&self, out_frames: usize) -> usize {
        ((out_frames as u64 * self.in_rate).div_ceil(self.out_rate) + self.pending + 2) as usize
    }

    /// Resamples as much as possible. `input` and `output` are interleaved with `channels`
    /// channels. Returns `(input frames consumed, output frames produced)`; consumed frames
    /// are owned by the resampler from then on (the last one is kept as `prev`).
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: `avx2()` is true only after detection found AVX2 and FMA on this CPU.
            return unsafe { self.process_avx2(input, output) };
        }
        self.process_any(input, output)
    }

    /// `process` compiled for AVX2+FMA (see `simd`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn process_avx2(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        self.process_any(input, output)
    }

    #[inline(always)]
    fn process_any(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        // Constant channel counts let the compiler unroll the per-frame channel loop.
        match self.channels {
            1 => self.run::<1>(input, output),
            2 => self.run::<2>(input, output),
            _ => self.run::<0>(input, output),
        }
    }

    /// `CH` = the channel count, or 0 for "read it from self".
    #[inline(always)]
    fn run<const CH: usize>(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        let ch = if CH == 0 { self.channels } else { CH };
        let m = input.len() / ch;
        let n = output.len() / ch;
        if self.step_int == 1 && self.step_frac == 0 {
            // Equal rates (producer-side resampling already ran): a copy. Every output is an
            // input frame, so `pending` is always 1 and `acc` 0 here.
            let k = m.min(n);
            output[..k * ch].copy_from_slice(&input[..k * ch]);
            if k > 0 {
                self.prev[..ch].copy_from_slice(&input[(k - 1) * ch..k * ch]);
            }
            self.produced += k as u64;
            self.consumed += k as u64;
            return (k, k);
        }
        let (step_int, step_frac) = (self.step_int, self.step_frac);
        let mut k = 0usize;
        let mut j = 0usize;
        while j < n {
            if let Some(t) = self.period.as_deref() {
                if self.pending > 0 || k > 0 {
                    // The next output reads input[ia0] (its `prev`) and input[ia0 + 1].
                    let ia0 = k + self.pending as usize - 1;
                    if ia0 + 1 < m {
                        let l = self.out_rate as usize;
                        let r0 = t.r_of_acc[self.acc as usize] as usize;
                        let base = t.off[r0];
                        let lim = base + (m - 2 - ia0) as u32;
                        let reach = t.off.len() - l;
                        let span = &t.off[r0..r0 + (n - j).min(reach)];
                        let cnt = span.partition_point(|&o| o <= lim);
                        let span = &span[..cnt];
                        let fr = &t.frac[r0..r0 + cnt];
                        let out = &mut output[j * ch..(j + cnt) * ch];
                        // Every read below is at frame ia0 + (span[q] - base) + {0, 1}: at most
                        // m - 1 because span is sorted and cut at `lim`. Checked, not asserted
                        // (no panics on the audio thread, C2): a failed check takes the
                        // per-frame path instead.
                        let cnt = if cnt > 0 && ia0 + ((span[cnt - 1] - base) as usize) + 1 < m {
                            cnt
                        } else {
                            0
                        };
                        // Mono upsampling, the TTS case: 8 outputs at a time.
                        #[cfg(target_arch = "x86_64")]
                        let first = if CH == 1 && t.window8 && crate::dsp::simd::avx2() {
                            // SAFETY: AVX2 is present (checked); the bounds the kernel
                            // relies on are checked inside it.
                            unsafe { lerp8_mono_avx2(input, ia0, base, span, fr, out) }
                        } else {
                            0
                        };
                        #[cfg(not(target_arch = "x86_64"))]
                        let first = 0;
                        for (q, o) in out[..cnt * ch].chunks_exact_mut(ch).enumerate().skip(first) {
                            let ia = (ia0 + (span[q] - base) as usize) * ch;
                            let w = fr[q];
                            for (c, y) in o.iter_mut().enumerate() {
                                // SAFETY: frame ia / ch + 1 <= m - 1 (checked above), so both
                                // samples lie inside `input`, which holds m * ch of them.
                                let (a, b) = unsafe {
                                    (
                                        *input.get_unchecked(ia + c),
                                        *input.get_unchecked(ia + ch + c),
                                    )
                                };
                                *y = a + (b - a) * w;
                            }
                        }
                        if cnt > 0 {
                            let r_last = r0 + cnt - 1;
                            let ia_last = ia0 + (t.off[r_last] - base) as usize;
                            self.prev[..ch]
                                .copy_from_slice(&input[ia_last * ch..(ia_last + 1) * ch]);
                            k = ia_last + 1;
                            self.pending = (t.off[r_last + 1] - t.off[r_last]) as u64;
                            self.acc = t.acc_of[(r_last + 1) % l] as u64;
                            j += cnt;
                            continue;
                        }
                    }
                }
            }
            if self.pending > 0 {
                let avail = (m - k) as u64;
                if avail < self.pending {
                    // Step over what there is; the rest of the step waits for more input.
                    self.pending -= avail;
                    k = m;
                    break;
                }
                k += self.pending as usize - 1;
                self.prev[..ch].copy_from_slice(&input[k * ch..(k + 1) * ch]);
                k += 1;
                self.pending = 0;
            }
            let out = &mut output[j * ch..(j + 1) * ch];
            if self.acc == 0 {
                // On an input frame exactly: the next frame is not needed.
                out.copy_from_slice(&self.prev[..ch]);
            } else {
                if k >= m {
                    break;
                }
                let frac = self.acc as f32 * self.inv_out;
                let next = &input[k * ch..(k + 1) * ch];
                for c in 0..ch {
                    let p = self.prev[c];
                    out[c] = p + (next[c] - p) * frac;
                }
            }
            j += 1;
            self.pending = step_int + advance_phase(&mut self.acc, step_frac, self.out_rate);
        }
        self.produced += j as u64;
        self.consumed += k as u64;
        (k, j)
    }
}

/// The callback's resampler: linear (SPEC S1 minimum, fastest) or the polyphase sinc
/// (`ResampleQuality::High`, transparent for int16 speech). Same contract for both; all memory
/// is allocated in `new`.
#[derive(Clone, Debug)]
/// A resampler's heap allocation, moved out so that another thread frees it.
pub enum Heap {
    Scratch(Vec<f32>),
    /// The linear resampler's period tables.
    Tables(Box<Period>),
}

pub enum Resampler {
    Linear(LinearResampler),
    High(PolyphaseResampler),
}

impl Resampler {
    pub fn new(quality: ResampleQuality, in_rate: u32, out_rate: u32, channels: usize) -> Self {
        // Equal rates need no filter at any quality: the linear one is then an exact copy.
        let quality = if in_rate == out_rate {
            ResampleQuality::Linear
        } else {
            quality
        };
        match quality {
            ResampleQuality::Linear => {
                Resampler::Linear(LinearResampler::with_tables(in_rate, out_rate, channels))
            }
            ResampleQuality::High => {
                Resampler::High(PolyphaseResampler::new(in_rate, out_rate, channels))
            }
        }
    }

    /// Equal rates: output is the input, copied.
    pub fn is_identity(&self) -> bool {
        matches!(self, Resampler::Linear(r) if r.step_int == 1 && r.step_frac == 0)
    }

    /// Moves out every heap allocation this resampler owns, as garbage for the service
    /// thread, leaving a husk that frees nothing when dropped (the audio thread's way out).
    pub fn take_heap(&mut self) -> [Option<Heap>; 2] {
        match self {
            Resampler::Linear(r) => [r.period.take().map(Heap::Tables), None],
            Resampler::High(r) => r.take_buffers().map(|b| Some(Heap::Scratch(b))),
        }
    }

    pub fn reset(&mut self) {
        match self {
            Resampler::Linear(r) => r.reset(),
            Resampler::High(r) => r.reset(),
        }
    }

    pub fn tail_len(&self) -> usize {
        match self {
            Resampler::Linear(r) => r.tail_len(),
            Resampler::High(r) => r.tail_len(),
        }
    }

    pub fn finish(&mut self, output: &mut [f32]) -> usize {
        match self {
            Resampler::Linear(r) => r.finish(output),
            Resampler::High(r) => r.finish(output),
        }
    }

    pub fn max_input_for(&self, out_frames: usize) -> usize {
        match self {
            Resampler::Linear(r) => r.max_input_for(out_frames),
            Resampler::High(r) => r.max_input_for(out_frames),
        }
    }

    #[inline]
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        match self {
            Resampler::Linear(r) => r.process(input, output),
            Resampler::High(r) => r.process(input, output),
        }
    }
}

/// Whole-buffer linear resampling of mono float32 (S1, S2): the output is exactly
/// `round(len * ratio)` long, never truncated, so repeated use does not drift.
pub fn resample_linear(input: &[f32], ratio: f64) -> Vec<f32> {
    if input.is_empty() || !ratio.is_finite() || ratio <= 0.0 {
        return Vec::new();
    }
    let out_len = (input.len() as f64 * ratio).round();
    if out_len <= 0.0 {
        return Vec::new();
    }
    let out_len = out_len as usize;
    let last = input.len() - 1;
    (0..out_len)
        .map(|j| {
            let pos = j as f64 / ratio;
            let i = (pos.floor() as usize).min(last);
            let frac = (pos - i as f64) as f32;
            let a = input[i];
            let b = input[(i + 1).min(last)];
            a + (b - a) * frac.min(1.0)
        })
        .collect()
}

/// S2: int16 input is brought to float32 first (D3).
pub fn resample_linear_s16(input: &[i16], ratio: f64) -> Vec<f32> {
    let f: Vec<f32> = input
        .iter()
        .map(|&x| crate::dsp::convert::s16_to_f32(x))
        .collect();
    resample_linear(&f, ratio)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Feeds `input` through `process` in output blocks of `block` frames until nothing moves
    /// (shared by both resamplers' tests).
    pub(crate) fn run_blocks_with(
        input: &[f32],
        ch: usize,
        block: usize,
        mut process: impl FnMut(&[f32], &mut [f32]) -> (usize, usize),
    ) -> Vec<f32> {
        let mut out = Vec::new();
        let mut buf = vec![0.0f32; block * ch];
        let mut pos = 0;
        loop {
            let (c, p) = process(&input[pos * ch..], &mut buf);
            pos += c;
            out.extend_from_slice(&buf[..p * ch]);
            if p == 0 && c == 0 {
                break;
            }
        }
        out
    }

    fn run_blocks(input: &[f32], ch: usize, r: &mut LinearResampler, block: usize) -> Vec<f32> {
        run_blocks_with(input, ch, block, |i, o| r.process(i, o))
    }

    #[test]
    fn identity_is_exact_passthrough() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut r = LinearResampler::new(48000, 48000, 1);
        assert_eq!(run_blocks(&x, 1, &mut r, 37), x);
    }

    #[test]
    fn block_size_does_not_change_output_u1() {
        crate::dsp::simd::detect();
        let x: Vec<f32> = (0..22050).map(|i| (i as f32 * 0.0627).sin()).collect();
        for (a, b) in [
            (22050, 48000),
            (48000, 16000),
            (44100, 48000),
            (24000, 44100),
            (16000, 44100),
            (24000, 48000),
        ] {
            let reference = run_blocks(&x, 1, &mut LinearResampler::new(a, b, 1), 100_000);
            for block in [1, 7, 480, 4096] {
                let got = run_blocks(&x, 1, &mut LinearResampler::new(a, b, 1), block);
                assert_eq!(got, reference, "{a}->{b} block {block}");
                // The period tables give the same samples as the per-frame path.
                let got = run_blocks(&x, 1, &mut LinearResampler::with_tables(a, b, 1), block);
                assert_eq!(got, reference, "{a}->{b} block {block}, tables");
            }
            let xs: Vec<f32> = x.iter().flat_map(|&v| [v, -0.5 * v]).collect();
            let slow = run_blocks(&xs, 2, &mut LinearResampler::new(a, b, 2), 333);
            let fast = run_blocks(&xs, 2, &mut LinearResampler::with_tables(a, b, 2), 333);
            assert_eq!(slow, fast, "{a}->{b} stereo");
        }
    }

    #[test]
    fn finished_stream_is_round_len_times_ratio_s1() {
        for (a, b, len) in [
            (22050u32, 48000u32, 22050usize),
            (48000, 16000, 4801),
            (24000, 44100, 999),
            (16000, 16000, 10),
        ] {
            let x = vec![0.25f32; len];
            let mut r = LinearResampler::new(a, b, 1);
            let mut out = run_blocks(&x, 1, &mut r, 480);
            let mut tail = [0.0f32; 8];
            let t = r.finish(&mut tail);
            out.extend_from_slice(&tail[..t]);
            let want = (len as f64 * b as f64 / a as f64).round() as usize;
            // Exact when upsampling; downsampling may already have emitted the sample at
            // position len-1 before the end was known: at most one frame over.
            let over = out.len() as i64 - want as i64;
            assert!(
                (0..=1).contains(&over),
                "{a}->{b} len {len}: {} vs {want}",
                out.len()
            );
            if b >= a {
                assert_eq!(over, 0, "{a}->{b} len {len}");
            }
            assert!(out.iter().all(|&v| v == 0.25));
        }
    }

    #[test]
    fn whole_buffer_length_is_rounded_s1_s2() {
        assert!(resample_linear(&[], 2.0).is_empty());
        assert!(resample_linear(&[0.5], 0.1).is_empty());
        assert_eq!(resample_linear(&[0.0; 10], 1.55).len(), 16);
        assert_eq!(resample_linear(&[0.0; 100], 48000.0 / 22050.0).len(), 218);
        assert_eq!(resample_linear_s16(&[16384, -16384], 1.0), vec![0.5, -0.5]);
    }
}
