//! High-quality resampling (issue 5 `resample_quality = high`): a Kaiser-windowed sinc
//! evaluated as a polyphase filter bank.
//!
//! Why this and not a crate: rubato's FFT resampler needs ~17 ms of lookahead and its sinc
//! resampler costs ~80 ns per frame here; the target is transparency (>= 96 dB SINAD for
//! int16 speech) under 4 ns per frame and 10 ms of latency. A 40-tap polyphase bank gives
//! over 100 dB of image rejection with a transition band of 0.415-0.585 of the lower rate,
//! and 20 input frames (under 1 ms at 22.05 kHz) of lookahead.
//!
//! Like [`crate::dsp::resample::LinearResampler`] the phase is an exact integer fraction, so the
//! output does not drift and does not depend on how input and output are cut into blocks
//! (U1), and a finished stream is `round(len * ratio)` frames long (S1). All memory is
//! allocated in `new`; `process`, `finish` and `reset` never allocate (C2).

use crate::data::config::MAX_CHANNELS;
use crate::dsp::phase::{advance_phase, gcd};

/// Taps per output sample when upsampling; downsampling widens the filter by the ratio.
const TAPS: usize = 40;
/// Stopband attenuation the window is designed for, dB.
const STOPBAND_DB: f64 = 105.0;
/// Passband and stopband edges as fractions of the lower of the two rates.
const PASS_EDGE: f64 = 0.415;
const STOP_EDGE: f64 = 0.585;
/// Exact phase tables up to this many phases; beyond (odd rate pairs) the table is sampled
/// at `INTERP_PHASES` points and adjacent phases are interpolated.
const MAX_EXACT_PHASES: u64 = 1024;
const INTERP_PHASES: u64 = 512;
/// Input frames buffered per channel beyond the filter length.
const BLOCK: usize = 4096;

#[derive(Clone, Debug)]
pub struct PolyphaseResampler {
    in_rate: u64,
    out_rate: u64,
    /// `in_rate = step_int * out_rate + step_frac`.
    step_int: usize,
    step_frac: u64,
    channels: usize,
    /// Taps per phase (a multiple of 8 for the vector loop).
    taps: usize,
    /// `phases + 1` rows of `taps` coefficients; row `p` is the filter at fractional
    /// position `p / phases`.
    table: Vec<f32>,
    /// `in_rate` (exact: phase index = acc) or `INTERP_PHASES` (interpolated).
    phases: u64,
    exact: bool,
    /// Per channel, `cap` input frames: `[c * cap .. (c + 1) * cap)`.
    window: Vec<f32>,
    cap: usize,
    /// Frames held in each channel's window, and where the next output's taps start.
    filled: usize,
    start: usize,
    /// Phase numerator: the next output sits `acc / out_rate` input frames after `start`'s
    /// centre tap.
    acc: u64,
    consumed: u64,
    produced: u64,
    /// Zero frames appended by `finish` to flush the lookahead.
    padded: usize,
    dot: Dot,
}

/// Zeroth-order modified Bessel function of the first kind (Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

impl PolyphaseResampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Self {
        // A zero rate is refused where devices and configs are checked; clamped here too so
        // no caller can make the phase arithmetic divide by zero.
        let (in_rate, out_rate) = (in_rate.max(1), out_rate.max(1));
        let g = gcd(in_rate as u64, out_rate as u64).max(1);
        let (m, l) = (in_rate as u64 / g, out_rate as u64 / g);
        // Cutoff in cycles per input frame; downsampling moves it to the output's Nyquist
        // and needs proportionally more taps for the same transition band.
        let scale = (l as f64 / m as f64).min(1.0);
        let taps = ((TAPS as f64 / scale).ceil() as usize).div_ceil(8) * 8;
        let exact = l <= MAX_EXACT_PHASES;
        let phases = if exact { l } else { INTERP_PHASES };
        let fc = 0.5 * (PASS_EDGE + STOP_EDGE) * scale;
        let beta = 0.1102 * (STOPBAND_DB - 8.7);
        let half = taps as f64 / 2.0;
        let i0b = bessel_i0(beta);
        let mut table = vec![0.0f32; (phases as usize + 1) * taps];
        for (p, row) in table.chunks_exact_mut(taps).enumerate() {
            let frac = p as f64 / phases as f64;
            // Tap k multiplies input frame `centre - (taps/2 - 1) + k`; its distance from the
            // output position (centre + frac) is `k - (taps/2 - 1) - frac`.
            let mut acc = vec![0.0f64; taps];
            for (k, a) in acc.iter_mut().enumerate() {
                let x = k as f64 - (half - 1.0) - frac;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (2.0 * std::f64::consts::PI * fc * x).sin()
                        / (std::f64::consts::PI * x)
                        / (2.0 * fc)
                };
                let r = x / half;
                let w = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(beta * (1.0 - r * r).sqrt()) / i0b
                };
                *a = sinc * w;
            }
            // Unity gain at DC for every phase: no ripple from the phase tables themselves.
            let sum: f64 = acc.iter().sum();
            for (c, a) in row.iter_mut().zip(&acc) {
                *c = (a / sum) as f32;
            }
        }
        let channels = channels.clamp(1, MAX_CHANNELS);
        let cap = taps + BLOCK;
        let mut r = PolyphaseResampler {
            in_rate: m,
            out_rate: l,
            step_int: (m / l) as usize,
            step_frac: m % l,
            channels,
            taps,
            table,
            phases,
            exact,
            window: crate::dsp::prefault::zeroed(channels * cap),
            cap,
            filled: 0,
            start: 0,
            acc: 0,
            consumed: 0,
            produced: 0,
            padded: 0,
            dot: Dot::detect(),
        };
        r.reset();
        r
    }

    /// Moves out the heap buffers (to be freed off the audio thread); unusable afterwards.
    pub fn take_buffers(&mut self) -> [Vec<f32>; 2] {
        [
            std::mem::take(&mut self.table),
            std::mem::take(&mut self.window),
        ]
    }

    /// Forget the stream (after a flush): the next input frame starts a new signal.
    pub fn reset(&mut self) {
        // The first output is centred on the first input frame: `taps/2 - 1` zero frames of
        // history go before it.
        self.filled = self.taps / 2 - 1;
        for c in 0..self.channels {
            self.window[c * self.cap..c * self.cap + self.filled].fill(0.0);
        }
        self.start = 0;
        self.acc = 0;
        self.consumed = 0;
        self.produced = 0;
        self.padded = 0;
    }

    pub fn tail_len(&self) -> usize {
        let want = (2 * self.consumed * self.out_rate + self.in_rate) / (2 * self.in_rate);
        want.saturating_sub(self.produced) as usize
    }

    /// Input frames the window still needs before `out_frames` more outputs can be made.
    pub fn max_input_for(&self, out_frames: usize) -> usize {
        let last = (self.acc + out_frames.max(1) as u64 * self.in_rate) / self.out_rate;
        (self.start + last as usize + self.taps).saturating_sub(self.filled) + 1
    }

    /// Moves the unread part of the window to its front.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let keep = self.filled - self.start;
        for c in 0..self.channels {
            let base = c * self.cap;
            self.window
                .copy_within(base + self.start..base + self.filled, base);
        }
        self.filled = keep;
        self.start = 0;
    }

    /// Appends up to `frames` interleaved input frames (or zeros when `input` is None).
    fn append(&mut self, input: Option<&[f32]>, frames: usize) -> usize {
        if self.filled + frames > self.cap {
            self.compact();
        }
        let n = frames.min(self.cap - self.filled);
        let ch = self.channels;
        for c in 0..ch {
            let dst = &mut self.window[c * self.cap + self.filled..c * self.cap + self.filled + n];
            match input {
                Some(x) if ch == 1 => dst.copy_from_slice(&x[..n]),
                Some(x) => {
                    for (d, s) in dst.iter_mut().zip(x[c..].iter().step_by(ch)) {
                        *d = *s;
                    }
                }
                None => dst.fill(0.0),
            }
        }
        self.filled += n;
        n
    }

    /// Makes outputs while the window holds every tap they need.
    fn emit(&mut self, output: &mut [f32], j: usize, n: usize) -> usize {
        match self.dot {
            // SAFETY: `Avx2` is only chosen after detecting AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Dot::Avx2 => unsafe { self.emit_avx2(output, j, n) },
            Dot::Portable => self.emit_with::<false>(output, j, n),
        }
    }

    /// The loop compiled for AVX2 + FMA, so the dot product inlines into it.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn emit_avx2(&mut self, output: &mut [f32], j: usize, n: usize) -> usize {
        self.emit_with::<true>(output, j, n)
    }

    #[inline(always)]
    fn emit_with<const AVX: bool>(&mut self, output: &mut [f32], mut j: usize, n: usize) -> usize {
        let (ch, taps, cap) = (self.channels, self.taps, self.cap);
        let (mut start, mut acc) = (self.start, self.acc);
        let (step_int, step_frac, out_rate) = (self.step_int, self.step_frac, self.out_rate);
        let dot = |x: &[f32], h: &[f32]| -> f32 {
            #[cfg(target_arch = "x86_64")]
            if AVX {
                // SAFETY: AVX is true only inside `emit_avx2`, reached after detection.
                return unsafe { dot_avx2(x, h) };
            }
            dot_portable(x, h)
        };
        if ch == 1 && self.exact {
            // The common case (mono TTS, a rate pair with an exact phase table): one row, one
            // dot product per output, slices hoisted out of the loop.
            let w = &self.window[..self.filled];
            let table = &self.table[..];
            while j < n && start + taps <= w.len() {
                let row = acc as usize * taps;
                output[j] = dot(&w[start..start + taps], &table[row..row + taps]);
                j += 1;
                start += step_int + advance_phase(&mut acc, step_frac, out_rate) as usize;
            }
        }
        while j < n && start + taps <= self.filled {
            let (row, frac) = if self.exact {
                (acc as usize, 0.0)
            } else {
                let p = acc * self.phases;
                (
                    (p / out_rate) as usize,
                    (p % out_rate) as f32 / out_rate as f32,
                )
            };
            let h0 = &self.table[row * taps..(row + 1) * taps];
            for c in 0..ch {
                let x = &self.window[c * cap + start..c * cap + start + taps];
                let mut y = dot(x, h0);
                if frac != 0.0 {
                    let h1 = &self.table[(row + 1) * taps..(row + 2) * taps];
                    y += (dot(x, h1) - y) * frac;
                }
                output[j * ch + c] = y;
            }
            j += 1;
            start += step_int + advance_phase(&mut acc, step_frac, out_rate) as usize;
        }
        self.start = start;
        self.acc = acc;
        j
    }

    /// Resamples as much as possible; same contract as `LinearResampler::process`:
    /// `(input frames consumed, output frames produced)`. Consumed frames are held in the
    /// window until the outputs that need them are made.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> (usize, usize) {
        let ch = self.channels;
        let m = input.len() / ch;
        let n = output.len() / ch;
        let (mut k, mut j) = (0usize, 0usize);
        loop {
            j = self.emit(output, j, n);
            if j >= n || k >= m {
                break;
            }
            let want = self.max_input_for(n - j).min(m - k);
            let got = self.append(Some(&input[k * ch..]), want);
            if got == 0 {
                break;
            }
            k += got;
        }
        self.consumed += k as u64;
        self.produced += j as u64;
        (k, j)
    }

    /// Ends the stream: flushes the lookahead with zeros and emits the owed tail, then
    /// resets. Returns frames written; call again if `output` was too small.
    pub fn finish(&mut self, output: &mut [f32]) -> usize {
        let ch = self.channels;
        let n = self.tail_len().min(output.len() / ch);
        let mut j = 0;
        loop {
            j = self.emit(output, j, n);
            if j >= n || self.padded >= self.taps {
                break;
            }
            let want = self.max_input_for(n - j).min(self.taps - self.padded);
            self.padded += self.append(None, want);
        }
        self.produced += j as u64;
        if self.tail_len() == 0 {
            self.reset();
        }
        j
    }
}

/// `sum(x[i] * h[i])` over lengths that are multiples of 8, with eight independent partial
/// sums so the compiler vectorises it (SSE2 on any x86-64).
#[inline]
fn dot_portable(x: &[f32], h: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (xs, hs) in x.chunks_exact(8).zip(h.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += xs[i] * hs[i];
        }
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// The same with 8-lane fused multiply-adds.
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked once in `PolyphaseResampler::new`), and
/// `x.len() == h.len()`, a multiple of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2(x: &[f32], h: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = x.len().min(h.len()) / 8 * 8;
    let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load reads 8 floats at `i < n <= len` of both slices (unaligned loads).
    unsafe {
        while i + 16 <= n {
            a0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(x.as_ptr().add(i)),
                _mm256_loadu_ps(h.as_ptr().add(i)),
                a0,
            );
            a1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(x.as_ptr().add(i + 8)),
                _mm256_loadu_ps(h.as_ptr().add(i + 8)),
                a1,
            );
            i += 16;
        }
        if i < n {
            a0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(x.as_ptr().add(i)),
                _mm256_loadu_ps(h.as_ptr().add(i)),
                a0,
            );
        }
    }
    let a = _mm256_add_ps(a0, a1);
    let lo = _mm256_castps256_ps128(a);
    let hi = _mm256_extractf128_ps(a, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Chosen once per resampler; both give the same result up to float rounding.
#[derive(Clone, Copy, Debug)]
enum Dot {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Dot {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Dot::Avx2;
        }
        Dot::Portable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::resample::tests::run_blocks_with;

    /// Runs `x` through in blocks, then the tail (`finish`).
    fn run_blocks(x: &[f32], ch: usize, r: &mut PolyphaseResampler, block: usize) -> Vec<f32> {
        let mut out = run_blocks_with(x, ch, block, |i, o| r.process(i, o));
        let mut buf = vec![0.0f32; block * ch];
        loop {
            let p = r.finish(&mut buf);
            out.extend_from_slice(&buf[..p * ch]);
            if p == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn block_size_does_not_change_output_u1() {
        let x: Vec<f32> = (0..9000).map(|i| (i as f32 * 0.0627).sin() * 0.5).collect();
        for (a, b) in [
            (22050, 48000),
            (48000, 16000),
            (44100, 48000),
            (24000, 44101),
        ] {
            let reference = run_blocks(&x, 1, &mut PolyphaseResampler::new(a, b, 1), 100_000);
            for block in [1, 7, 480, 4096] {
                let got = run_blocks(&x, 1, &mut PolyphaseResampler::new(a, b, 1), block);
                assert_eq!(got, reference, "{a}->{b} block {block}");
            }
        }
    }

    #[test]
    fn finished_stream_is_round_len_times_ratio_s1() {
        for (a, b, len) in [
            (22050u32, 48000u32, 22050usize),
            (48000, 16000, 4801),
            (24000, 44100, 999),
        ] {
            let x = vec![0.25f32; len];
            let out = run_blocks(&x, 1, &mut PolyphaseResampler::new(a, b, 1), 480);
            let want = (len as f64 * b as f64 / a as f64).round() as usize;
            assert!(
                out.len().abs_diff(want) <= 1,
                "{a}->{b}: {} vs {want}",
                out.len()
            );
            // DC passes at unity gain once the filter has settled.
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            assert!(mid.iter().all(|v| (v - 0.25).abs() < 1e-5), "{a}->{b}");
        }
    }

    #[test]
    fn stereo_channels_stay_apart_and_aligned() {
        let n = 4000;
        let x: Vec<f32> = (0..n)
            .flat_map(|i| {
                let s = (i as f32 * 0.05).sin() * 0.5;
                [s, -s]
            })
            .collect();
        let out = run_blocks(&x, 2, &mut PolyphaseResampler::new(22050, 48000, 2), 333);
        for f in out.chunks_exact(2) {
            assert!((f[0] + f[1]).abs() < 1e-6);
        }
    }
}
