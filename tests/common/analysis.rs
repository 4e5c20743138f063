//! What was heard: pitch, duration, gaps and clicks of a recorded tone.

#[derive(Debug, Clone, Copy)]
pub struct ToneStats {
    /// Seconds from the first to the last sample above the threshold.
    pub duration: f64,
    /// Start of the sound in the recording, seconds.
    pub onset: f64,
    /// Frequency from interpolated rising zero crossings, Hz: the median over 250 ms windows.
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
    // it, while a wrong rate anywhere shifts every window.
    let window = rate as f64 / 4.0;
    let mut per_window = Vec::new();
    let mut start = 0;
    while start < crossings.len() {
        let end = crossings[start..]
            .iter()
            .position(|&c| c - crossings[start] >= window)
            .map(|i| start + i);
        let Some(end) = end else { break };
        per_window.push((end - start) as f64 * rate as f64 / (crossings[end] - crossings[start]));
        start = end;
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

/// The largest step a sine of this frequency and amplitude takes between two samples.
pub fn sine_max_step(freq: f64, amplitude: f64, rate: u32) -> f64 {
    2.0 * amplitude * (std::f64::consts::PI * freq / rate as f64).sin()
}
