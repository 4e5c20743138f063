//! Click-free gain: a volume ramp and a fade (pause, barge-in), applied per frame on the
//! audio thread. Linear ramps over a set number of device frames: no step is ever larger
//! than the signal's own.

#[derive(Clone, Copy, Debug)]
pub struct Ramp {
    pub value: f32,
    target: f32,
    step: f32,
}

impl Ramp {
    pub const fn new(value: f32) -> Self {
        Ramp {
            value,
            target: value,
            step: 0.0,
        }
    }

    /// Heads for `target`, arriving after `frames` frames (0 = at once).
    pub fn to(&mut self, target: f32, frames: u32) {
        self.target = target;
        if frames == 0 {
            self.value = target;
            self.step = 0.0;
        } else {
            self.step = (target - self.value) / frames as f32;
        }
    }

    pub fn settled(&self) -> bool {
        self.value == self.target
    }

    #[inline]
    fn advance(&mut self) {
        if self.value != self.target {
            let next = self.value + self.step;
            let passed = (self.step > 0.0 && next >= self.target)
                || (self.step < 0.0 && next <= self.target)
                || self.step == 0.0;
            self.value = if passed { self.target } else { next };
        }
    }
}

/// Multiplies interleaved frames by `volume * fade`, advancing both ramps one step per
/// frame. Skips the work when both sit at 1.
pub fn apply(frames: &mut [f32], channels: usize, volume: &mut Ramp, fade: &mut Ramp) {
    if volume.settled() && fade.settled() && volume.value == 1.0 && fade.value == 1.0 {
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
        let mut x = vec![1.0f32; 6];
        apply(&mut x, 1, &mut v, &mut f);
        assert_eq!(x, vec![1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
        assert!(f.settled());
        v.to(0.5, 0);
        assert_eq!(v.value, 0.5);
    }
}
