//! What was heard: pitch, duration, gaps and clicks of a recorded tone; where a recorded chirp
//! sits in what was written (a noise, by cross-correlation).

#[derive(Debug, Clone, Copy)]
pub struct ToneStats {
    /// Seconds from the first to the last sample above the threshold.
    pub duration: f64,
    /// Start of the sound in the recording, seconds.
    pub onset: f64,
    /// Frequency from interpolated rising zero crossings, Hz: the median over 250 ms windows of
    /// whole cycles (no window spans a gap or a splice).
    pub freq: f64,
    /// Longest run of near-silence inside the sound, seconds (a dropout).
    pub longest_gap: f64,
    /// Largest sample-to-sample step inside the sound (a click), in full-scale units.
    pub max_step: f64,
    pub peak: f64,
}

pub fn tone_stats(x: &[f32], rate: u32) -> Option<ToneStats> {
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    if peak < 0.01 {
        return None;
    }
    let thr = (peak * 0.2) as f32;
    let first = x.iter().position(|v| v.abs() > thr)?;
    let last = x.len() - 1 - x.iter().rev().position(|v| v.abs() > thr)?;
    let seg = &x[first..=last];
    let mut crossings = Vec::new();
    for i in 1..seg.len() {
        let (a, b) = (seg[i - 1], seg[i]);
        if a < 0.0 && b >= 0.0 {
            crossings.push((i - 1) as f64 + (a / (a - b)) as f64);
        }
    }
    // Median of the frequencies of 250 ms windows: one splice (a device switch) cannot pull
    // it, while a wrong rate anywhere shifts every window. Windows never span a broken cycle:
    // a starved stream's server inserts silence (often 1-2 ms, less than a period), and a
    // window holding a few such gaps reads low although the rate is right. A clean sine's
    // periods differ by far less than the 20% that marks a cycle as broken.
    let mut periods: Vec<f64> = crossings.windows(2).map(|w| w[1] - w[0]).collect();
    periods.sort_by(f64::total_cmp);
    let period = periods.get(periods.len() / 2).copied().unwrap_or(0.0);
    let whole = |a: f64, b: f64| (b - a) > 0.8 * period && (b - a) < 1.2 * period;
    let window = rate as f64 / 4.0;
    let mut per_window = Vec::new();
    let mut start = 0;
    // A window also ends at a broken cycle; one of at least 10 whole cycles still reads to a
    // small fraction of a hertz (interpolated crossings are exact to far below a sample).
    let mut push = |start: usize, end: usize| {
        if end - start >= 10 {
            per_window
                .push((end - start) as f64 * rate as f64 / (crossings[end] - crossings[start]));
        }
    };
    for i in 1..crossings.len() {
        if !whole(crossings[i - 1], crossings[i]) {
            push(start, i - 1);
            start = i;
        } else if crossings[i] - crossings[start] >= window {
            push(start, i);
            start = i;
        }
    }
    per_window.sort_by(f64::total_cmp);
    let freq = per_window.get(per_window.len() / 2).copied().unwrap_or(0.0);
    // A dropout: a run where the signal stays well below its envelope for longer than a
    // sine ever does (a 440 Hz sine spends ~0.1 ms near zero per crossing).
    let quiet = (peak * 0.05) as f32;
    let (mut run, mut longest) = (0usize, 0usize);
    for v in seg {
        if v.abs() < quiet {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let max_step = seg
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max) as f64;
    Some(ToneStats {
        duration: (last - first + 1) as f64 / rate as f64,
        onset: first as f64 / rate as f64,
        freq,
        longest_gap: longest as f64 / rate as f64,
        max_step,
        peak,
    })
}

/// `frames` samples of a sine at `rate`, starting at phase 0.
pub fn sine(freq: f64, rate: u32, frames: usize, amp: f32) -> Vec<f32> {
    (0..frames)
        .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32)
        .collect()
}

/// The largest step a sine of this frequency and amplitude takes between two samples.
pub fn sine_max_step(freq: f64, amplitude: f64, rate: u32) -> f64 {
    2.0 * amplitude * (std::f64::consts::PI * freq / rate as f64).sin()
}

/// A linear chirp from `f0` to `f1` Hz over `secs` at amplitude 0.5: every moment of it is
/// different, so where a recording of it jumps (audio lost or played twice) shows.
pub fn chirp(f0: f64, f1: f64, secs: f64, rate: u32) -> Vec<f32> {
    let n = (secs * rate as f64).round() as usize;
    let k = (f1 - f0) / secs;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (0.5 * (2.0 * std::f64::consts::PI * (f0 * t + 0.5 * k * t * t)).sin()) as f32
        })
        .collect()
}

/// Runs of sound in a recording: (first sample, end sample) of each stretch whose 10 ms
/// blocks have an RMS over 0.05 (a 0.5 tone has 0.35; silence and dither well under).
pub fn sound_runs(x: &[f32], rate: u32) -> Vec<(usize, usize)> {
    let b = rate as usize / 100;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in x.chunks(b).enumerate() {
        let rms = (block.iter().map(|v| v * v).sum::<f32>() / block.len() as f32).sqrt();
        if rms > 0.05 {
            let (s, e) = (i * b, i * b + block.len());
            match runs.last_mut() {
                Some(r) if r.1 == s => r.1 = e,
                _ => runs.push((s, e)),
            }
        }
    }
    runs
}

/// Where `block` sits in `content`: the offset in `guess - radius ..= guess + radius` with
/// the highest normalised correlation, and that correlation (1.0 = the same samples).
pub fn locate(block: &[f32], content: &[f32], guess: usize, radius: usize) -> (usize, f64) {
    let n = block.len();
    let eb: f64 = block.iter().map(|&v| v as f64 * v as f64).sum();
    let lo = guess.saturating_sub(radius);
    let hi = (guess + radius).min(content.len().saturating_sub(n));
    let mut best = (lo, -1.0);
    for off in lo..=hi {
        let c = &content[off..off + n];
        let (mut dot, mut ec) = (0.0f64, 0.0f64);
        for (&a, &b) in block.iter().zip(c) {
            dot += a as f64 * b as f64;
            ec += b as f64 * b as f64;
        }
        let r = dot / (eb * ec).sqrt().max(1e-12);
        if r > best.1 {
            best = (off, r);
        }
    }
    best
}

/// The content offset a chirp block was taken from, to within a few ms: its frequency from
/// zero crossings gives the time, `locate` the exact sample.
pub fn chirp_offset(block: &[f32], content: &[f32], f0: f64, f1: f64, rate: u32) -> (usize, f64) {
    let crossings = block
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let freq = crossings as f64 * rate as f64 / (2.0 * block.len() as f64);
    let secs = content.len() as f64 / rate as f64;
    let t = ((freq - f0) / (f1 - f0) * secs).clamp(0.0, secs);
    // The estimate is the block's middle; allow its frequency error (one crossing).
    let mid = (t * rate as f64) as usize;
    let guess = mid.saturating_sub(block.len() / 2);
    let err = rate as f64 / (2.0 * block.len() as f64) / (f1 - f0) * secs * rate as f64;
    locate(block, content, guess, err as usize + rate as usize / 50)
}

/// Band-limited noise (white, through the 4 kHz low-pass of `speech::lowpass`), peak 0.5:
/// unlike a tone or a slow chirp, a 20 ms block of it matches exactly one place, to the
/// sample, even after two resamplers (a chirp's neighbouring periods correlate within 0.1%).
pub fn noise(secs: f64, rate: u32) -> Vec<f32> {
    let n = (secs * rate as f64).round() as usize;
    let mut x = 0x2545f4914f6cdd1du64;
    let white: Vec<f32> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let y = super::speech::lowpass(&white, rate);
    let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    y.iter().map(|v| v * 0.5 / peak).collect()
}

/// Which part of `content` a recording of it played, found by cross-correlation: where the
/// recording's sound starts and ends in the content, every jump in it (audio lost or played
/// twice, across a silence or not), its longest silence, and sound that is not the content.
#[derive(Debug, Clone)]
pub struct Heard {
    /// Content offset of the recording's first sound sample (samples).
    pub start: i64,
    /// Content offset just past its last sound sample.
    pub end: i64,
    /// The lowest correlation of a located block.
    pub worst_r: f64,
    /// (recording offset, content samples skipped: > 0 lost, < 0 played twice) per jump.
    pub jumps: Vec<(usize, i64)>,
    /// The longest silence (1 ms blocks under 1% RMS) between sounds, seconds.
    pub longest_silence: f64,
    /// (recording offset, samples) of each stretch of sound that matched no place in the
    /// content (correlation < 0.9).
    pub unmatched: Vec<(usize, usize)>,
    /// (recording offset, content offset, samples) of each stretch of sound located.
    pub stretches: Vec<(usize, i64, usize)>,
}

/// `Heard` for `rec` against `content` (both at `rate`, `content` from `noise`). The
/// recording's sound is cut at its silences (1 ms blocks under 1% RMS: the noise never is)
/// into stretches; each stretch is located in 20 ms blocks (a shorter one as one block), the
/// first block of the first stretch within `radius` of `hint` in the content, every later
/// block where the previous one's lag puts it (within 2 samples: a path through two
/// resamplers shifts by a fraction of one), or, if it is not there, afresh within 300 ms of
/// it. A stretch then starts and ends in the content at its ends' lags: the content between
/// one stretch's end and the next one's start is lost (or, negative, played twice); inside a
/// stretch, a lag change is. `None`: no sound.
pub fn heard_in(
    rec: &[f32],
    content: &[f32],
    rate: u32,
    hint: usize,
    radius: usize,
) -> Option<Heard> {
    let q = rate as usize / 1000;
    let b = rate as usize / 50;
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    // Stretches of sound: (first sample, end sample).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (k, blk) in rec.chunks(q).enumerate() {
        if rms(blk) >= 0.01 {
            let (s, e) = (k * q, k * q + blk.len());
            match runs.last_mut() {
                Some(r) if r.1 == s => r.1 = e,
                _ => runs.push((s, e)),
            }
        }
    }
    // A stretch's ends to the sample: its first and last sample above 1% of full scale.
    for r in runs.iter_mut() {
        let seg = &rec[r.0..r.1];
        let first = seg.iter().position(|v| v.abs() > 0.01).unwrap_or(0);
        let last = seg
            .iter()
            .rposition(|v| v.abs() > 0.01)
            .unwrap_or(seg.len() - 1);
        *r = (r.0 + first, r.0 + last + 1);
    }
    let mut lag: Option<i64> = None;
    let mut guess = hint;
    let (mut worst_r, mut jumps, mut unmatched) = (1.0f64, Vec::new(), Vec::new());
    let mut stretches = Vec::new();
    let (mut start, mut end, mut longest, mut last_end) =
        (None::<i64>, None::<i64>, 0usize, None::<usize>);
    for (rs, re) in runs {
        // A stretch shorter than a block is one block (under 5 ms it is too short to
        // place reliably).
        let bl = (re - rs).min(b);
        if bl < 5 * q {
            unmatched.push((rs, re - rs));
            continue;
        }
        let mut starts: Vec<usize> = (rs..=re - bl).step_by(bl).collect();
        if *starts.last().unwrap() != re - bl {
            starts.push(re - bl);
        }
        let mut run_lag: Option<(i64, i64)> = None; // (first, latest)
        for at in starts {
            let block = &rec[at..at + bl];
            let (off, r) = match (run_lag, lag) {
                (Some((_, l)), _) => {
                    let g = (at as i64 + l).max(0) as usize;
                    let near = locate(block, content, g, 2);
                    if near.1 >= 0.9 {
                        near
                    } else {
                        locate(block, content, g, rate as usize * 3 / 10)
                    }
                }
                (None, Some(l)) => locate(
                    block,
                    content,
                    (at as i64 + l).max(0) as usize,
                    rate as usize * 3 / 10,
                ),
                (None, None) => locate(block, content, guess, radius),
            };
            if r < 0.9 {
                unmatched.push((at, bl));
                continue;
            }
            worst_r = worst_r.min(r);
            let l = off as i64 - at as i64;
            match run_lag {
                None => {
                    // Across the silence before it (or from the previous stretch).
                    if let Some(e) = end {
                        let skipped = rs as i64 + l - e;
                        if skipped.abs() > 2 {
                            jumps.push((rs, skipped));
                        }
                    }
                    run_lag = Some((l, l));
                    if start.is_none() {
                        start = Some(rs as i64 + l);
                    }
                }
                Some((f, p)) => {
                    if (l - p).abs() > 2 {
                        jumps.push((at, l - p));
                    }
                    run_lag = Some((f, l));
                }
            }
            lag = Some(l);
        }
        if let Some((f, l)) = run_lag {
            stretches.push((rs, rs as i64 + f, re - rs));
            if let Some(le) = last_end {
                longest = longest.max(rs - le);
            }
            last_end = Some(re);
            end = Some(re as i64 + l);
            guess = (re as i64 + l).max(0) as usize;
        }
    }
    Some(Heard {
        start: start?,
        end: end?,
        worst_r,
        jumps,
        longest_silence: longest as f64 / rate as f64,
        unmatched,
        stretches,
    })
}
