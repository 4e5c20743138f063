//! Click-free gain: a volume ramp and a fade (pause, barge-in), applied per frame on the
//! audio thread. Linear ramps over a set number of device frames: no step is ever larger
//! than the signal's own.

#[derive(Clone, Copy, Debug)]
pub struct Ramp {
    pub value: f32,
    target: f32,
    step: f32,
    /// Steps left; counted, so a ramp lands on its target exactly.
    left: u32,
}

impl Ramp {
    pub const fn new(value: f32) -> Self {
        Ramp {
            value,
            target: value,
            step: 0.0,
            left: 0,
        }
    }

    /// Heads for `target`, arriving after `frames` frames (0 = at once).
    pub fn to(&mut self, target: f32, frames: u32) {
        self.target = target;
        if frames == 0 || self.value == target {
            self.value = target;
            self.left = 0;
        } else {
            self.step = (target - self.value) / frames as f32;
            self.left = frames;
        }
    }

    /// The largest value the ramp takes before it settles.
    pub fn top(&self) -> f32 {
        self.value.max(self.target)
    }

    pub fn settled(&self) -> bool {
        self.left == 0
    }

    /// Frames until the ramp lands (0 when settled).
    pub fn frames_left(&self) -> usize {
        self.left as usize
    }

    /// Heading for silence (a pause or flush fade in progress).
    pub fn fading_out(&self) -> bool {
        self.left > 0 && self.target == 0.0
    }

    #[inline]
    pub fn advance(&mut self) {
        if self.left > 0 {
            self.left -= 1;
            self.value = if self.left == 0 {
                self.target
            } else {
                self.value + self.step
            };
        }
    }
}

/// Both ramps settled at 1: `apply` would change nothing.
pub fn is_unity(volume: &Ramp, fade: &Ramp) -> bool {
    volume.settled() && fade.settled() && volume.value == 1.0 && fade.value == 1.0
}

/// Multiplies interleaved frames by `volume * fade`, advancing both ramps one step per
/// frame. Skips the work when both sit at 1.
pub fn apply(frames: &mut [f32], channels: usize, volume: &mut Ramp, fade: &mut Ramp) {
    if is_unity(volume, fade) {
        return;
    }
    for f in frames.chunks_exact_mut(channels) {
        let g = volume.value * fade.value;
        for s in f.iter_mut() {
            *s *= g;
        }
        volume.advance();
        fade.advance();
    }
}

/// Per-utterance gain and pan (issue 16), per output channel: `left` on channel 0, `right`
/// on channel 1 of a stereo (or wider) device, `centre` on a mono device and on channels 2
/// and up (pan is ignored there). Equal-power pan normalised so that the centre is unity:
/// left = g·√2·cos θ, right = g·√2·sin θ, θ = (pan + 1)·π/4, so left² + right² = 2g² at
/// every pan and gain 1 at the centre is an exact bypass (hard left is +3 dB on the left,
/// which the limiter keeps from clipping).
#[derive(Clone, Copy, Debug)]
pub struct ChannelGain {
    pub left: Ramp,
    pub right: Ramp,
    pub centre: Ramp,
}

/// The channel gains for `gain` at `pan` (-1 left .. 1 right): (left, right).
pub fn pan_gains(gain: f32, pan: f32) -> (f32, f32) {
    if pan == 0.0 {
        return (gain, gain); // exact: the bypass stays bit-exact
    }
    let theta = (pan.clamp(-1.0, 1.0) + 1.0) * std::f32::consts::FRAC_PI_4;
    let g = gain * std::f32::consts::SQRT_2;
    let (l, r) = (g * theta.cos(), g * theta.sin());
    // cos(π/2) is not exactly 0 in f32: a hard pan silences the other side.
    match pan {
        p if p >= 1.0 => (0.0, r),
        p if p <= -1.0 => (l, 0.0),
        _ => (l, r),
    }
}

impl ChannelGain {
    pub const fn new() -> Self {
        ChannelGain {
            left: Ramp::new(1.0),
            right: Ramp::new(1.0),
            centre: Ramp::new(1.0),
        }
    }

    /// Heads for `gain` at `pan`, arriving after `frames` frames.
    pub fn to(&mut self, gain: f32, pan: f32, frames: u32) {
        let (l, r) = pan_gains(gain, pan);
        self.left.to(l, frames);
        self.right.to(r, frames);
        self.centre.to(gain, frames);
    }

    /// Settled at gain 1, pan centre: `apply` would change nothing.
    pub fn is_unity(&self) -> bool {
        [self.left, self.right, self.centre]
            .iter()
            .all(|r| r.settled() && r.value == 1.0)
    }

    /// The largest gain any of `channels` gets before the ramps settle.
    pub fn peak(&self, channels: usize) -> f32 {
        let top = Ramp::top;
        if channels < 2 {
            top(&self.centre)
        } else {
            let lr = top(&self.left).max(top(&self.right));
            if channels > 2 {
                lr.max(top(&self.centre))
            } else {
                lr
            }
        }
    }

    /// Multiplies interleaved frames channel by channel, advancing the ramps one step per
    /// frame. Skips the work at unity.
    pub fn apply(&mut self, frames: &mut [f32], channels: usize) {
        if self.is_unity() {
            return;
        }
        if self.left.settled() && self.right.settled() && self.centre.settled() {
            // Constant gains: a plain multiply per channel (vectorised), no ramp steps.
            let (l, r, c) = (self.left.value, self.right.value, self.centre.value);
            match channels {
                1 => frames.iter_mut().for_each(|s| *s *= c),
                2 => frames.chunks_exact_mut(2).for_each(|f| {
                    f[0] *= l;
                    f[1] *= r;
                }),
                _ => frames.chunks_exact_mut(channels).for_each(|f| {
                    f[0] *= l;
                    f[1] *= r;
                    f[2..].iter_mut().for_each(|s| *s *= c);
                }),
            }
            return;
        }
        for f in frames.chunks_exact_mut(channels) {
            if channels == 1 {
                f[0] *= self.centre.value;
            } else {
                f[0] *= self.left.value;
                f[1] *= self.right.value;
                for s in &mut f[2..] {
                    *s *= self.centre.value;
                }
            }
            self.left.advance();
            self.right.advance();
            self.centre.advance();
        }
    }
}

impl Default for ChannelGain {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the limiter starts bending: -1 dBFS.
pub const LIMIT_THRESHOLD: f32 = 0.891_250_9;

/// A soft limiter without lookahead, for after a gain above 1: samples at or below
/// `LIMIT_THRESHOLD` pass bit-exact; above it the curve T + (1-T)·u/(1+u), u = (|x|-T)/(1-T),
/// joins with slope 1 and approaches full scale without reaching it (x = 4 gives 0.9963),
/// so there is no hard clip and no flat top. Per sample, only when engaged.
pub fn soft_limit(samples: &mut [f32]) {
    const T: f32 = LIMIT_THRESHOLD;
    const K: f32 = 1.0 - LIMIT_THRESHOLD;
    for s in samples.iter_mut() {
        let a = s.abs();
        if a > T {
            let u = (a - T) / K;
            *s = (T + K * (u / (1.0 + u))).copysign(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_arrive_exactly_and_move_in_equal_steps() {
        let mut v = Ramp::new(1.0);
        let mut f = Ramp::new(1.0);
        f.to(0.0, 4);
        assert_eq!(f.frames_left(), 4);
        let mut x = vec![1.0f32; 6];
        apply(&mut x, 1, &mut v, &mut f);
        assert_eq!(x, vec![1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
        assert!(f.settled());
        v.to(0.5, 0);
        assert_eq!(v.value, 0.5);
    }

    #[test]
    fn pan_is_equal_power_and_unity_at_the_centre() {
        assert_eq!(pan_gains(1.0, 0.0), (1.0, 1.0));
        for k in -10..=10 {
            let (l, r) = pan_gains(0.5, k as f32 / 10.0);
            assert!((l * l + r * r - 0.5).abs() < 1e-6, "pan {k}: {l} {r}");
        }
        assert_eq!(pan_gains(1.0, 1.0).0, 0.0);
        assert_eq!(pan_gains(1.0, -1.0).1, 0.0);
    }

    #[test]
    fn the_limiter_passes_below_threshold_and_never_reaches_full_scale() {
        let mut x = [0.5f32, -0.8, LIMIT_THRESHOLD, 1.0, -2.0, 4.0, 100.0];
        soft_limit(&mut x);
        assert_eq!(&x[..3], &[0.5, -0.8, LIMIT_THRESHOLD]);
        assert!(x[3..].iter().all(|v| v.abs() < 1.0), "{x:?}");
        assert!(x[3] < x[5] && x[5] < x[6] && x[4] < 0.0, "monotonic: {x:?}");
    }
}
