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
    fn advance(&mut self) {
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
}
