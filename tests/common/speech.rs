//! Speech heard against a synthesizer's own rendering of it (`espeak-ng -w`): a WAV reader,
//! the extent of the speech, and the block-by-block cross-correlation that tells a gap or a
//! loss from a clean playback, for tests/pcaudio_shim.rs and tests/speechd_plugin.rs.

use std::path::Path;

use super::analysis::locate;

/// Mono samples of a 16-bit PCM WAV file (its first channel), and its rate.
pub fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    let (mut i, mut rate, mut channels) = (12, 0u32, 1usize);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let x = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
                .collect();
            return (x, rate);
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// First and last sample above 1% of full scale (the extent of the speech).
pub fn extent(x: &[f32]) -> Option<(usize, usize)> {
    let first = x.iter().position(|v| v.abs() > 0.01)?;
    let last = x.len() - 1 - x.iter().rev().position(|v| v.abs() > 0.01)?;
    Some((first, last))
}

/// `heard` against `want` (both at `rate`) in 100 ms blocks of the reference's speech, each
/// located near where the previous one was (a gap or a repeat moves the rest): the
/// correlations, in order, and how far the last block sits from where the first one put it
/// (samples; > 0: audio was delayed by gaps of silence, < 0: lost).
///
/// Both are compared below 4 kHz: the path resamples (22050 -> 48000 in the library, back to
/// 22050 at the server's monitor), which leaves a fractional-sample delay that an integer lag
/// cannot match, and at a fricative's 5-10 kHz half a sample alone is a correlation of
/// 0.4-0.7: a clean pcaudio-shim run read 4 of 44 blocks below 0.9 that way (0 of 41
/// low-passed). A gap, a loss or a repeat shows below 4 kHz as plainly as above it.
pub fn blockwise(want: &[f32], heard: &[f32], w0: usize, h0: usize, rate: u32) -> (Vec<f64>, i64) {
    let (want, heard) = (&lowpass(want, rate)[..], &lowpass(heard, rate)[..]);
    let b = rate as usize / 10;
    let mut lag = h0 as i64 - w0 as i64;
    let first_lag = lag;
    let mut rs = Vec::new();
    let mut s = w0;
    while s + b <= want.len() {
        let blk = &want[s..s + b];
        let rms = (blk.iter().map(|v| v * v).sum::<f32>() / b as f32).sqrt();
        if rms >= 0.02 {
            let guess = (s as i64 + lag).max(0) as usize;
            let (at, r) = locate(blk, heard, guess, rate as usize * 3 / 100);
            rs.push(r);
            if r >= 0.8 {
                lag = at as i64 - s as i64;
            }
        }
        s += b;
    }
    (rs, lag - first_lag)
}

/// `x` through a 4 kHz low-pass (a 101-tap Hann-windowed sinc), delayed by nothing: each
/// output sample is centred on its input sample, so lags stay what they were.
pub fn lowpass(x: &[f32], rate: u32) -> Vec<f32> {
    use std::f64::consts::PI;
    const HALF: i64 = 50;
    let fc = 4000.0 / rate as f64;
    let mut taps: Vec<f64> = (-HALF..=HALF)
        .map(|k| {
            let t = k as f64;
            let sinc = if k == 0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            sinc * (0.5 + 0.5 * (PI * t / (HALF + 1) as f64).cos())
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    (0..x.len() as i64)
        .map(|i| {
            let mut acc = 0.0f64;
            for (j, t) in taps.iter().enumerate() {
                let at = i + j as i64 - HALF;
                if at >= 0 && (at as usize) < x.len() {
                    acc += t * x[at as usize] as f64;
                }
            }
            acc as f32
        })
        .collect()
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn secs(n: usize, rate: u32) -> f64 {
    n as f64 / rate as f64
}

/// Whether a trace's lines with `tag` report starvation (underruns, late callbacks or
/// server underflows above 0, as `key=count` fields).
pub fn starved_in(trace: &str, tag: &str) -> bool {
    trace
        .lines()
        .filter(|l| l.contains(tag))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|t| t.split_once('='))
        .filter(|(k, _)| ["underruns", "late_callbacks", "server_underflows"].contains(k))
        .any(|(_, v)| v.parse::<u64>().is_ok_and(|n| n > 0))
}

/// Issue 15's bound on a stop: `after_ms` of content heard past the frame being heard at the
/// stop (`what`: "stop", "flush") is the fade and at most 5 ms more. That takes the fade
/// written into what the server holds (`rewritten`, the player's `flushes_rewritten`); a
/// rewrite that came too late (the pulse thread not scheduled within 5 ms) fades behind what
/// the server held instead, 20-40 ms later: bad luck of a loaded machine, like a starved run.
pub fn within_fade_plus_5(
    after_ms: f64,
    fade_ms: f64,
    rewritten: f64,
    starved: bool,
    what: &str,
) -> Result<(), (String, bool)> {
    if after_ms > fade_ms + 5.0 {
        return Err((
            format!(
                "{after_ms:.1} ms of speech heard after the {what} (fade {fade_ms} ms + 5; \
                 flushes rewritten: {rewritten})"
            ),
            starved || rewritten == 0.0,
        ));
    }
    Ok(())
}

/// Where a stop's last sound sits in the reference: `heard` (48 kHz) against `want` (at
/// `rate`), anchored on the 100 ms heard just before the fade (which ends at `h1`, the last
/// sample above 1%), found by cross-correlation below 4 kHz near where counting from the
/// first sounds (`w0`, `h0`) puts it. Counting alone assumes the speech played without a gap
/// up to the stop; a server underflow on the way (silence played, nothing lost) shifted it by
/// the gap: a run on an idle VM read 27.6 ms of speech past the stop's frame, 17 of them a
/// gap, with the fade 10 ms.
pub struct StopTimeline {
    /// A heard index and the reference frame (at the reference's rate) heard there.
    pub anchor_heard: usize,
    pub anchor_content: f64,
    /// The anchor block's correlation (1.0 = the same samples), and how far the anchor moved
    /// the counted timeline (reference frames; > 0: the heard speech was delayed by gaps).
    pub r: f64,
    pub shift: f64,
    rate: u32,
}

impl StopTimeline {
    pub fn new(want: &[f32], heard: &[f32], w0: usize, h0: usize, h1: usize, rate: u32) -> Self {
        let ratio = rate as f64 / 48000.0;
        let counted = |i: usize| w0 as f64 + (i as f64 - h0 as f64) * ratio;
        // The block ends 12 ms before the last sound: ahead of a 10 ms fade.
        let end = h1.saturating_sub(576).max(h0);
        let start = end.saturating_sub(4800).max(h0);
        let fallback = StopTimeline {
            anchor_heard: h0,
            anchor_content: w0 as f64,
            r: 0.0,
            shift: 0.0,
            rate,
        };
        if end - start < 2400 {
            return fallback;
        }
        // Both at 48 kHz (the reference by linear interpolation: espeak-ng's output holds
        // nothing above 11 kHz, and the comparison is below 4 kHz) and low-passed.
        let want48: Vec<f32> = (0..(want.len() as f64 / ratio) as usize)
            .map(|j| {
                let x = j as f64 * ratio;
                let k = x as usize;
                let f = (x - k as f64) as f32;
                let b = want.get(k + 1).copied().unwrap_or(0.0);
                want[k] * (1.0 - f) + b * f
            })
            .collect();
        let (want48, heard) = (lowpass(&want48, 48000), lowpass(&heard[..end], 48000));
        let guess = (counted(start) / ratio).max(0.0) as usize;
        // Gaps delay what follows them; a loss would advance it: look 300 ms either way.
        let (at, r) = locate(&heard[start..end], &want48, guess, 14400);
        if r < 0.8 {
            return StopTimeline { r, ..fallback };
        }
        let anchor_content = at as f64 * ratio;
        StopTimeline {
            anchor_heard: start,
            anchor_content,
            r,
            shift: counted(start) - anchor_content,
            rate,
        }
    }

    /// The reference frame heard at heard index `i` (past the anchor, no gap between).
    pub fn content(&self, i: usize) -> f64 {
        self.anchor_content + (i as f64 - self.anchor_heard as f64) * self.rate as f64 / 48000.0
    }

    /// The heard index of reference frame `frame`.
    pub fn heard(&self, frame: f64) -> usize {
        let i =
            self.anchor_heard as f64 + (frame - self.anchor_content) * 48000.0 / self.rate as f64;
        i.max(0.0) as usize
    }
}

/// How long a stop's fade took as heard, in ms: the gain of `heard` (48 kHz) against the
/// reference `want` (on `tl`'s timeline) over the same 4 ms, every 1 ms from 20 ms before the
/// reference frame `heard_frame` where the reference is not near silence, from the last
/// window at full gain (0.9) to the first gone (0.1). A cut reads under 1 ms; a 10 ms fade
/// about 8. Gains, not levels: speech has loud and quiet moments of its own, and a level
/// compared with the level 10 ms earlier read a fade as a cut where the speech grew louder
/// under it (a CI run: 0.047 at the end against 0.035). None where the speech is near silence
/// at the stop (the ramp is not seen) or it never went.
pub fn fade_ramp_ms(
    want: &[f32],
    heard: &[f32],
    tl: &StopTimeline,
    heard_frame: f64,
) -> Option<f64> {
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let win = (0.004 * tl.rate as f64) as usize;
    let at_stop = tl.heard(heard_frame);
    let envelope: Vec<(usize, f64)> = (at_stop.saturating_sub(960).max(tl.anchor_heard)..)
        .step_by(48)
        .take_while(|&i| i + 192 <= heard.len() && tl.content(i) as usize + win <= want.len())
        .take(200)
        .filter_map(|i| {
            let c = tl.content(i) as usize;
            let r = rms(&want[c..c + win]);
            (r >= 0.02).then(|| (i, (rms(&heard[i..i + 192]) / r) as f64))
        })
        .collect();
    let gone = envelope.iter().position(|&(_, g)| g <= 0.1)?;
    let full = envelope[..gone].iter().rposition(|&(_, g)| g >= 0.9)?;
    // Every 1 ms between them seen (no quiet stretch hiding the shape of the fall).
    let seen = envelope[full..=gone]
        .windows(2)
        .all(|w| w[1].0 - w[0].0 <= 48);
    seen.then(|| (envelope[gone].0 - envelope[full].0) as f64 / 48.0)
}

/// What a default-sink switch mid-speech did to it, from the part heard on the first sink
/// (`a`) and the part heard on the second (`b`), against the reference `want` (all at `rate`).
pub struct AcrossSwitch {
    /// Both parts' figures, to print.
    pub report: String,
    /// A part that is not the reference where it was placed (blocks out of place), which a
    /// starved stream's gaps can also cause.
    pub misplaced: Option<String>,
    /// Speech lost: the start, the end, or speech between the parts. Starving plays silence
    /// and drops nothing, so this is the library's, whatever the machine did.
    pub lost: Option<String>,
    /// Of the reference, ms heard on neither sink (between the parts), and ms heard on both.
    pub between_ms: f64,
    pub replayed_ms: f64,
}

pub fn across_switch(want: &[f32], a: &[f32], b: &[f32], rate: u32) -> AcrossSwitch {
    let r = rate as usize;
    let (w0, w1) = extent(want).expect("the reference is silence");
    let (Some((a0, a1)), Some((b0, b1))) = (extent(a), extent(b)) else {
        return AcrossSwitch {
            report: String::new(),
            misplaced: None,
            lost: Some(format!(
                "nothing heard {} the switch",
                if extent(a).is_none() {
                    "before"
                } else {
                    "after"
                }
            )),
            between_ms: f64::NAN,
            replayed_ms: f64::NAN,
        };
    };
    // Where each part sits in the reference: the first part from the first sound, the second
    // near where the first stopped (a few words' silence either way); block by block, as a
    // starved stream's gap delays the rest without losing it (a single-lag correlation of a
    // whole part read 0.70 for it).
    let part_a = &a[a0..=a1];
    let (oa, _) = locate(part_a, want, w0, r / 50);
    let covered = (oa + part_a.len()).min(want.len());
    let (rs_a, slip_a) = blockwise(&want[..covered], part_a, oa, 0, rate);
    let ra = median(&rs_a);
    let end_a = (oa as i64 + part_a.len() as i64 - slip_a).max(0) as usize;
    let head_b = &b[b0..(b0 + r / 5).min(b1)];
    let (ob, rb_head) = locate(head_b, want, end_a, r / 2);
    let part_b = &b[b0..=b1];
    // The second part block by block too (the new stream may start with a gap of its own).
    let (rs_b, slip_b) = blockwise(want, part_b, ob, 0, rate);
    let rb = median(&rs_b);
    let end_b = (ob as i64 + part_b.len() as i64 - slip_b).max(0) as usize;
    // Whatever of the reference lies between the two parts was never heard: it must be
    // silence (a pause between words), not speech.
    let between = if ob > end_a {
        &want[end_a..ob]
    } else {
        &[][..]
    };
    let lost_loud = between.iter().filter(|v| v.abs() > 0.01).count();
    let report = format!(
        "before the switch: reference {:.3}..{:.3} s (r {ra:.3}); after: {:.3}..{:.3} s \
         (r {rb:.3}, head {rb_head:.3}); between them {:.1} ms of the reference, {} samples \
         of it sound; replayed {:.1} ms",
        secs(oa, rate),
        secs(end_a, rate),
        secs(ob, rate),
        secs(end_b, rate),
        secs(between.len(), rate) * 1e3,
        lost_loud,
        secs(end_a.saturating_sub(ob), rate) * 1e3
    );
    let misplaced = (ra < 0.9 || rb < 0.9)
        .then(|| format!("parts not the reference: {ra:.3} {rb:.3}\n{rs_a:.3?}\n{rs_b:.3?}"));
    let lost = if oa > w0 + r / 200 {
        Some(format!(
            "the start was lost: first heard at {:.3} s of the reference",
            secs(oa, rate)
        ))
    } else if end_b + r / 200 < w1 {
        Some(format!(
            "the end was lost: heard to {:.3} s of {:.3} s",
            secs(end_b, rate),
            secs(w1, rate)
        ))
    } else if lost_loud > r / 200 {
        Some(format!(
            "{:.1} ms of speech lost at the switch",
            secs(lost_loud, rate) * 1e3
        ))
    } else {
        None
    };
    AcrossSwitch {
        report,
        misplaced,
        lost,
        between_ms: secs(between.len(), rate) * 1e3,
        replayed_ms: secs(end_a.saturating_sub(ob), rate) * 1e3,
    }
}

/// Runs `c`, panicking with its output (and `what`) unless it succeeds.
pub fn run_ok(c: &mut std::process::Command, what: &str) -> std::process::Output {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Builds a shim with `bindings/<binding>/build.sh` against this build's libaudioplay (the
/// cdylib next to the test binary, so `cargo test --test X` works alone) into a directory of
/// this test process's own, which it returns.
pub fn build_shim(binding: &str, what: &str) -> std::path::PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{binding}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The test binary lives in target/<profile>/deps; the cdylib one level up.
    let exe = std::env::current_exe().unwrap();
    let libdir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        libdir.join("libaudioplay.so").exists(),
        "{} not built",
        libdir.join("libaudioplay.so").display()
    );
    let root = env!("CARGO_MANIFEST_DIR");
    run_ok(
        std::process::Command::new("bash")
            .arg(format!("{root}/bindings/{binding}/build.sh"))
            .arg(&dir)
            .arg(&libdir),
        what,
    );
    dir
}

/// What `espeak-ng -w` writes for `text` (into `dir`): the reference, checked to be at
/// `rate`.
pub fn espeak_reference(dir: &Path, text: &str, rate: u32) -> Vec<f32> {
    let path = dir.join(format!("ref-{}.wav", text.len()));
    run_ok(
        std::process::Command::new("espeak-ng")
            .arg("-w")
            .arg(&path)
            .arg(text),
        "espeak-ng -w",
    );
    let (x, got) = read_wav(&path);
    assert_eq!(got, rate, "espeak-ng's rate");
    x
}
