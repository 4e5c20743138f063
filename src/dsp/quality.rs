//! Measuring resampler quality (issue 5): a test sine in, SINAD and gain out. Used by the
//! quality test (tests/resample_quality.rs) and the benchmarks, so both measure alike.

/// `secs` of a sine at `freq` Hz, sampled at `rate`, peak `amp` of full scale, as int16 (D3
/// scaling, rounded).
pub fn sine_s16(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    (0..n)
        .map(|i| ((w * i as f64).sin() * amp * 32768.0).round() as i16)
        .collect()
}

/// What a sine came out as.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Signal to noise-and-distortion, dB: the best-fitting sine at `freq` against
    /// everything else (images, aliasing, interpolation error, quantisation, DC).
    pub sinad_db: f64,
    /// Amplitude of the fitted sine over `amp`, dB.
    pub gain_db: f64,
    /// Phase of the fitted sine against the ideal `sin(w n)`, in output frames: the
    /// resampler's delay (a time shift of the content).
    pub delay_frames: f64,
}

/// Fits `a sin(wn) + b cos(wn)` at `freq` to `y` (sampled at `rate`) by least squares.
pub fn measure(y: &[f32], rate: u32, freq: f64, amp: f64) -> Measured {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let v = v as f64;
        ss += s * s;
        cc += c * c;
        sc += s * c;
        ys += v * s;
        yc += v * c;
    }
    let det = ss * cc - sc * sc;
    let a = (ys * cc - yc * sc) / det;
    let b = (yc * ss - ys * sc) / det;
    let (mut sig, mut noise) = (0.0f64, 0.0f64);
    for (i, &v) in y.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let fit = a * s + b * c;
        sig += fit * fit;
        noise += (v as f64 - fit).powi(2);
    }
    let amplitude = (a * a + b * b).sqrt();
    // a sin + b cos = A sin(wn + phi); a delay of d frames is phi = -w d.
    let phi = b.atan2(a);
    Measured {
        sinad_db: 10.0 * (sig / noise.max(1e-300)).log10(),
        gain_db: 20.0 * (amplitude / amp).log10(),
        delay_frames: -phi / w,
    }
}
