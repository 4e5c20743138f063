//! Speed without pitch change (issue 16 §1): WSOLA (waveform-similarity overlap-add), the
//! family libsonic (espeak-ng, Android) belongs to, written here so that no user needs a
//! new system library; libsonic is only the benchmark's reference.
//!
//! Output is made in steps of `seg` frames. Each step starts with an `ovl`-frame crossfade
//! from the natural continuation of the previous step's audio (the input frames right after
//! those it copied) into the input segment, searched within ±`seek` frames of the nominal
//! input position, that looks most like that continuation (normalised cross-correlation,
//! on a decimated mono mix first, then refined at full rate). So every join is between two
//! waveforms in phase: no click, and a periodic signal keeps its period (its pitch).
//!
//! Positions: the nominal input position advances by `seg * speed` per step, so content
//! time maps onto output time at exactly 1/speed; `anchors` reports (output frame, content
//! frame) after every step for the writer's `Sync` points and markers. `finish` copies the
//! rest of the input straight, so the output ends exactly where the input does and audio
//! written after it (stretched or not) continues without a join.
//!
//! Runs on the writing thread only (it allocates as its input grows).

use std::collections::VecDeque;

/// Lowest and highest speed accepted.
pub const MIN_SPEED: f32 = 0.5;
pub const MAX_SPEED: f32 = 4.0;

/// Milliseconds: output step, crossfade, search radius. A step of 20 ms with a 10 ms
/// crossfade covers a pitch period down to 100 Hz in one join; the ±8 ms search finds a
/// matching phase for any voice above 62 Hz.
const SEG_MS: f64 = 20.0;
const OVL_MS: f64 = 10.0;
const SEEK_MS: f64 = 8.0;

pub struct Stretch {
    ch: usize,
    speed: f64,
    seg: usize,
    ovl: usize,
    seek: usize,
    /// Decimation of the coarse search (about 8 kHz).
    dec: usize,
    /// Input, interleaved, from absolute frame `base`.
    inp: Vec<f32>,
    base: u64,
    /// Absolute input frames pushed.
    fed: u64,
    /// Nominal input position of the next step (absolute frames).
    nom: f64,
    /// Absolute input frame right after the last one copied to the output.
    cont: u64,
    /// Absolute input frame at which the stretch began (content frames are counted from it).
    start: u64,
    /// Speed changes not reached yet: (absolute input frame, speed).
    changes: VecDeque<(u64, f64)>,
    /// The crossfade weights (raised cosine, rising).
    fade: Vec<f32>,
    mono_a: Vec<f32>,
    mono_b: Vec<f32>,
}

impl Stretch {
    pub fn new(rate: u32, channels: usize, speed: f32) -> Self {
        let ms = |v: f64| ((v * rate as f64 / 1000.0).round() as usize).max(4);
        let ovl = ms(OVL_MS);
        let fade = (0..ovl)
            .map(|i| {
                let x = (i as f64 + 0.5) / ovl as f64;
                (0.5 - 0.5 * (std::f64::consts::PI * x).cos()) as f32
            })
            .collect();
        Stretch {
            ch: channels.max(1),
            speed: speed as f64,
            seg: ms(SEG_MS),
            ovl,
            seek: ms(SEEK_MS),
            dec: (rate as usize / 8000).max(1),
            inp: Vec::new(),
            base: 0,
            fed: 0,
            nom: 0.0,
            cont: 0,
            start: 0,
            changes: VecDeque::new(),
            fade,
            mono_a: Vec::new(),
            mono_b: Vec::new(),
        }
    }

    pub fn channels(&self) -> usize {
        self.ch
    }

    /// From the next frame pushed on, `speed` applies.
    pub fn set_speed(&mut self, speed: f32) {
        self.changes.push_back((self.fed, speed as f64));
    }

    /// Adds interleaved input frames.
    pub fn push(&mut self, x: &[f32]) {
        self.inp.extend_from_slice(x);
        self.fed += (x.len() / self.ch) as u64;
    }

    /// Appends the `ovl`-frame crossfade from the input at frame `from` (fading out) to the
    /// input at frame `to` (fading in): the join between two segments.
    fn crossfade(&self, from: u64, to: u64, out: &mut Vec<f32>) {
        let (c, kk, ch) = (self.frame(from), self.frame(to), self.ch);
        for i in 0..self.ovl {
            let w = self.fade[i];
            for j in 0..ch {
                let a = self.inp[c + i * ch + j];
                let b = self.inp[kk + i * ch + j];
                out.push(a + (b - a) * w);
            }
        }
    }

    fn frame(&self, abs: u64) -> usize {
        (abs - self.base) as usize * self.ch
    }

    /// Makes every step the input allows: output (interleaved) appended to `out`, and after
    /// each step (output frames so far in `out`, content frames consumed since the stretch
    /// began) appended to `anchors`.
    pub fn process(&mut self, out: &mut Vec<f32>, anchors: &mut Vec<(usize, u64)>) {
        self.steps(out, anchors, false);
    }

    /// `ending`: the input ends at `fed`, so the search is cut short there instead of
    /// waiting for more.
    fn steps(&mut self, out: &mut Vec<f32>, anchors: &mut Vec<(usize, u64)>, ending: bool) {
        loop {
            while let Some(&(at, s)) = self.changes.front() {
                if at as f64 > self.nom {
                    break;
                }
                self.speed = s;
                self.changes.pop_front();
            }
            let mut seg = self.seg;
            let mut hop = seg as f64 * self.speed;
            if let Some(&(at, _)) = self.changes.front() {
                let to = at as f64 - self.nom;
                if to < hop {
                    // This step ends on the change's content frame: the new speed starts
                    // exactly there, not up to a step later.
                    seg = ((to / self.speed).round() as usize).max(self.ovl);
                    hop = to;
                }
            }
            // The step needs its candidates' whole segments and the continuation's crossfade.
            // Ending, a step leaves at least a crossfade's worth for the last segment.
            let need = (seg + if ending { self.ovl } else { 0 }) as u64;
            let mut hi = self.nom as u64 + self.seek as u64;
            // Every step leaves content worth a crossfade for `finish`'s last segment.
            let left = self.fed as f64 - self.nom - hop - self.ovl as f64 * self.speed;
            if left < 0.0 {
                break;
            }
            if hi + need > self.fed {
                if !ending || self.fed < need {
                    break;
                }
                hi = self.fed - need;
            }
            if self.cont + self.ovl as u64 > self.fed || hi < self.base {
                break;
            }
            let lo = (self.nom as u64).saturating_sub(self.seek as u64);
            let k = self.best(lo, hi);
            self.crossfade(self.cont, k, out);
            let (kk, ch) = (self.frame(k), self.ch);
            out.extend_from_slice(&self.inp[kk + self.ovl * ch..kk + seg * ch]);
            self.cont = k + seg as u64;
            self.nom += hop;
            anchors.push((out.len() / ch, self.nom as u64 - self.start));
            self.trim();
        }
    }

    /// The input frame in `lo..=hi` whose next `ovl` frames look most like the continuation.
    fn best(&mut self, lo: u64, hi: u64) -> u64 {
        let lo = lo.max(self.base).min(hi);
        if self.cont >= lo && self.cont <= hi {
            // The continuation itself is a candidate (speed 1, a step's start): no join at all.
            return self.cont;
        }
        // Coarse: decimated mono mix.
        let d = self.dec;
        let n = self.ovl / d;
        self.mono_a.clear();
        for i in 0..n {
            self.mono_a.push(self.mono(self.cont + (i * d) as u64));
        }
        let span = (hi - lo) as usize + self.ovl;
        self.mono_b.clear();
        for i in 0..span / d {
            self.mono_b.push(self.mono(lo + (i * d) as u64));
        }
        let mut best = (f32::MIN, lo);
        for s in 0..=((hi - lo) as usize / d) {
            let score = ncc(&self.mono_a, &self.mono_b[s..s + n]);
            if score > best.0 {
                best = (score, lo + (s * d) as u64);
            }
        }
        if d == 1 {
            return best.1;
        }
        // Refine at full rate around the coarse pick.
        self.mono_a.clear();
        for i in 0..self.ovl {
            self.mono_a.push(self.mono(self.cont + i as u64));
        }
        let c = best.1;
        let (rlo, rhi) = (c.saturating_sub(d as u64).max(lo), (c + d as u64).min(hi));
        self.mono_b.clear();
        for i in 0..(rhi - rlo) as usize + self.ovl {
            self.mono_b.push(self.mono(rlo + i as u64));
        }
        let mut fine = (f32::MIN, c);
        for s in 0..=(rhi - rlo) as usize {
            let score = ncc(&self.mono_a, &self.mono_b[s..s + self.ovl]);
            if score > fine.0 {
                fine = (score, rlo + s as u64);
            }
        }
        fine.1
    }

    fn mono(&self, abs: u64) -> f32 {
        let i = self.frame(abs);
        self.inp[i..i + self.ch].iter().sum()
    }

    /// Drops input no later step can reach.
    fn trim(&mut self) {
        let keep = (self.nom as u64)
            .saturating_sub(self.seek as u64)
            .min(self.cont);
        if keep > self.base + 4 * self.seg as u64 {
            let n = self.frame(keep);
            self.inp.drain(..n);
            self.base = keep;
        }
    }

    /// Ends the stream: steps go on with the search cut at the input's end, and what is
    /// left after them (under one step) is copied straight, so the output ends on the input's last frame. Anchors as in
    /// `process`; the last one is every content frame pushed. The stretch then starts over
    /// at the next frame pushed.
    pub fn finish(&mut self, out: &mut Vec<f32>, anchors: &mut Vec<(usize, u64)>) {
        self.steps(out, anchors, true);
        // The last segment ends on the last input frame, its length what the content left
        // is worth at this speed (within a quarter of the search radius, to meet the phase).
        let rest = (self.fed as f64 - self.nom).max(0.0);
        let target = self
            .fed
            .saturating_sub((rest / self.speed).round() as u64)
            .min(self.fed.saturating_sub(self.ovl as u64))
            .max(self.base);
        let ovl = self.ovl as u64;
        let rad = self.seek as u64 / 4;
        let mut from = self.cont;
        if target != self.cont && self.cont + ovl <= self.fed && target + ovl <= self.fed {
            let hi = (target + rad).min(self.fed - ovl);
            let k = self.best(target.saturating_sub(rad), hi);
            if k != self.cont {
                self.crossfade(self.cont, k, out);
                from = k + ovl;
            }
        }
        if from < self.fed {
            let c = self.frame(from);
            out.extend_from_slice(&self.inp[c..]);
        }
        if self.fed > self.start {
            anchors.push((out.len() / self.ch, self.fed - self.start));
        }
        self.restart();
    }

    /// Drops everything held (a flush); speed changes already pushed apply at once.
    pub fn reset(&mut self) {
        while let Some((_, s)) = self.changes.pop_front() {
            self.speed = s;
        }
        self.restart();
    }

    fn restart(&mut self) {
        while let Some((_, s)) = self.changes.pop_front() {
            self.speed = s;
        }
        self.inp.clear();
        self.base = self.fed;
        self.nom = self.fed as f64;
        self.cont = self.fed;
        self.start = self.fed;
    }
}

/// Normalised cross-correlation of `b` against the fixed `a` (the `a` norm is constant).
fn ncc(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut bb) = (0.0f32, 1e-9f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        bb += y * y;
    }
    ab / bb.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin()) as f32)
            .collect()
    }

    fn run(speed: f32, x: &[f32], chunk: usize) -> (Vec<f32>, Vec<(usize, u64)>) {
        let mut s = Stretch::new(48000, 1, speed);
        let (mut out, mut a) = (Vec::new(), Vec::new());
        for c in x.chunks(chunk) {
            s.push(c);
            s.process(&mut out, &mut a);
        }
        s.finish(&mut out, &mut a);
        (out, a)
    }

    fn max_step(x: &[f32]) -> f32 {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn speed_1_is_the_input_itself() {
        let x = tone(440.0, 48000, 48000);
        let (out, a) = run(1.0, &x, 1234);
        assert_eq!(out, x);
        assert_eq!(a.last(), Some(&(48000, 48000)));
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_shortens_by_the_speed_without_steps() {
        let x = tone(440.0, 48000, 96000);
        for speed in [0.5f32, 1.5, 2.5, 4.0] {
            let (out, a) = run(speed, &x, 1000);
            let want = 96000.0 / speed as f64;
            let got = out.len() as f64;
            assert!((got / want - 1.0).abs() < 0.01, "{speed}: {got} vs {want}");
            // Every anchor is on the 1/speed line (within the search radius).
            for &(o, c) in &a[..a.len() - 1] {
                assert!(
                    (o as f64 - c as f64 / speed as f64).abs() < 500.0,
                    "{speed}: {o} {c}"
                );
            }
            let limit = max_step(&x) * 1.02;
            assert!(max_step(&out) <= limit, "{speed}: step {}", max_step(&out));
            // Pitch: upward zero crossings per second.
            let ups: Vec<f64> = (1..out.len())
                .filter(|&i| out[i - 1] < 0.0 && out[i] >= 0.0)
                .map(|i| (i - 1) as f64 + (out[i - 1] / (out[i - 1] - out[i])) as f64)
                .collect();
            let f = (ups.len() - 1) as f64 * 48000.0 / (ups[ups.len() - 1] - ups[0]);
            assert!((f - 440.0).abs() < 1.0, "{speed}: {f} Hz");
        }
    }

    #[test]
    fn a_speed_change_applies_where_it_was_pushed() {
        let x = tone(440.0, 48000, 96000);
        let mut s = Stretch::new(48000, 1, 1.0);
        let (mut out, mut a) = (Vec::new(), Vec::new());
        s.push(&x[..48000]);
        s.set_speed(2.0);
        s.push(&x[48000..]);
        s.process(&mut out, &mut a);
        s.finish(&mut out, &mut a);
        let want = 48000.0 + 24000.0;
        assert!((out.len() as f64 - want).abs() < 1000.0, "{}", out.len());
        assert_eq!(&out[..40000], &x[..40000]);
        assert!(max_step(&out) <= max_step(&x) * 1.02);
    }
}
