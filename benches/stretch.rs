//! Speed without pitch change (issue 16 §1): our WSOLA (src/dsp/stretch.rs) beside libsonic
//! (the stretch espeak-ng and Android use; loaded with dlopen, so nothing links it) on the
//! same espeak-ng speech, fed as an engine does, 10 ms at a time.
//!
//!   cargo bench --bench stretch -- SPEECH.wav      (int16 mono WAV, e.g. espeak-ng --stdout)
//!
//! Candidates: `ours`, and libsonic at both of its quality settings: `libsonic-q0` (its
//! default, "virtually as good as 1, but very much faster" says sonic.h: the pitch-period
//! search runs on a ~4 kHz decimation, then is refined at full rate around the coarse pick)
//! and `libsonic-q1` (the search at full rate). All candidates and speeds run interleaved, 7 rounds, so a burst of load on the
//! machine hits all of them rather than one.
//!
//! Output (TSV, for benches/report.py; scripts/bench.sh perf keeps it in
//! docs/perf-data/stretch.tsv): `meta<TAB>key<TAB>value` lines (the input, the estimator's
//! self-checks, each candidate's content lag and each tone's SINAD), then one row per
//! candidate and speed: candidate, speed, ns per output frame (median of the 7 rounds),
//! content held back (the most input the stretch had taken but not yet output, ms of
//! content), added latency heard (that content at the output's pace, held / speed, ms),
//! output duration over the ideal (input / speed), pitch change (%, `pitch_change`: per
//! voiced 40 ms window of the output, its pitch over the input's where its audio came from,
//! median), and tone SINAD (dB, the median over five tones of each tone's median over
//! 100 ms windows of its stretched output).
//!
//! Why these quality figures: the promise is speed without pitch change and without join
//! artefacts. The pitch change says whether the voice's pitch survived (it should be ~0%);
//! a steady tone is the one input whose ideal stretched output is known exactly (the same
//! tone), so its SINAD says how much the joins add; the duration ratio says whether the
//! speed asked for is the speed heard.
//!
//! Why these tones (113, 151, 187, 241, 293 Hz): libsonic looks for a pitch period between
//! 65 and 400 Hz (SONIC_MIN_PITCH, SONIC_MAX_PITCH in sonic.h) and cuts whole periods; a
//! tone above that range (an earlier version of this bench used 440 Hz) has no period it
//! can find, so the SINAD measured its search range, not its joins. These are inside every
//! candidate's range and are a voice's pitch (our search radius covers any period above
//! 62 Hz). None shares a factor with the sample rate, so no tone repeats exactly within a
//! second and no candidate's joins can line up exactly by accident: 200 Hz, tried first,
//! repeats every 441 frames at 22050 Hz, exactly our 20 ms step, and read 153.8 dB for ours
//! against 27.7-44.9 for libsonic, a coincidence of numbers, not a quality. One tone is not
//! enough either: libsonic at quality 0 reads 38 dB at 187 Hz and 11-21 dB at 293 Hz, so the
//! median of five is the figure and each tone's value is in the `meta` lines.
//!
//! The pitch figure is checked before it is used (`f0_self_check`), or the bench stops:
//! each tone must read within 0.2% of its frequency, and the speech with its pitch moved by
//! a known +5% and -4.76%, with blocks left out (pitch unmoved, content running behind as a
//! stretch's does), and both, must read within 0.2 points of the truth.

use std::ffi::{c_int, c_void};
use std::time::Instant;

use audioplay::internals::quality::measure;
use audioplay::internals::stretch::Stretch;

const CANDS: [&str; 3] = ["ours", "libsonic-q0", "libsonic-q1"];
const SPEEDS: [f32; 2] = [1.5, 2.5];
const ROUNDS: usize = 7;
/// Tones inside libsonic's pitch range, none sharing a factor with 22050, 44100, 48000 or
/// 16000 Hz (why: the bench's doc comment).
const TONES_HZ: [f64; 5] = [113.0, 151.0, 187.0, 241.0, 293.0];

trait Cand {
    /// Takes 10 ms of input, returns output appended to `out`; `end` flushes.
    fn run(&mut self, x: &[f32], out: &mut Vec<f32>, end: bool);
    /// Content frames held back now (pushed, not yet in the output).
    fn held(&self, out_frames: usize) -> f64;
}

struct Ours {
    s: Stretch,
    pushed: u64,
    anchors: Vec<(usize, u64)>,
    covered: u64,
}

impl Cand for Ours {
    fn run(&mut self, x: &[f32], out: &mut Vec<f32>, end: bool) {
        self.anchors.clear();
        self.s.push(x);
        self.pushed += x.len() as u64;
        if end {
            self.s.finish(out, &mut self.anchors);
        } else {
            self.s.process(out, &mut self.anchors);
        }
        if let Some(&(_, c)) = self.anchors.last() {
            self.covered = c;
        }
    }
    fn held(&self, _: usize) -> f64 {
        (self.pushed - self.covered) as f64
    }
}

type Create = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Destroy = unsafe extern "C" fn(*mut c_void);
type SetF = unsafe extern "C" fn(*mut c_void, f32);
type SetI = unsafe extern "C" fn(*mut c_void, c_int);
type Write = unsafe extern "C" fn(*mut c_void, *const f32, c_int) -> c_int;
type Read = unsafe extern "C" fn(*mut c_void, *mut f32, c_int) -> c_int;
type Flush = unsafe extern "C" fn(*mut c_void) -> c_int;

struct Sonic {
    lib: *mut c_void,
    h: *mut c_void,
    destroy: Destroy,
    write: Write,
    read: Read,
    flush: Flush,
    speed: f64,
    pushed: u64,
    buf: Vec<f32>,
}

fn sym<T>(lib: *mut c_void, name: &str) -> T {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: dlsym on a live handle; the caller names the symbol's real C type.
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    assert!(!p.is_null(), "libsonic has no {name}");
    // SAFETY: p is that function (T is a fn pointer type of the same size).
    unsafe { std::mem::transmute_copy(&p) }
}

impl Sonic {
    fn new(rate: u32, speed: f32, quality: c_int) -> Option<Sonic> {
        let name = std::ffi::CString::new("libsonic.so.0").unwrap();
        // SAFETY: dlopen of a system library by name; each Sonic holds its own reference,
        // released in Drop.
        let lib = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
        if lib.is_null() {
            return None;
        }
        let create: Create = sym(lib, "sonicCreateStream");
        let set_speed: SetF = sym(lib, "sonicSetSpeed");
        let set_quality: SetI = sym(lib, "sonicSetQuality");
        // SAFETY: libsonic's documented API (sonic.h) on the stream just created.
        let h = unsafe { create(rate as c_int, 1) };
        assert!(!h.is_null(), "sonicCreateStream failed");
        unsafe {
            set_speed(h, speed);
            set_quality(h, quality);
        }
        Some(Sonic {
            lib,
            h,
            destroy: sym(lib, "sonicDestroyStream"),
            write: sym(lib, "sonicWriteFloatToStream"),
            read: sym(lib, "sonicReadFloatFromStream"),
            flush: sym(lib, "sonicFlushStream"),
            speed: speed as f64,
            pushed: 0,
            buf: vec![0.0; 8192],
        })
    }
}

impl Drop for Sonic {
    fn drop(&mut self) {
        // SAFETY: the stream was created by this library handle and is destroyed once; the
        // handle's reference is dropped after it (the library stays loaded while others hold
        // one).
        unsafe {
            (self.destroy)(self.h);
            libc::dlclose(self.lib);
        }
    }
}

impl Cand for Sonic {
    fn run(&mut self, x: &[f32], out: &mut Vec<f32>, end: bool) {
        // SAFETY: the stream is live; buffers are valid for the lengths given.
        unsafe {
            (self.write)(self.h, x.as_ptr(), x.len() as c_int);
            if end {
                (self.flush)(self.h);
            }
            loop {
                let n = (self.read)(self.h, self.buf.as_mut_ptr(), self.buf.len() as c_int);
                if n <= 0 {
                    break;
                }
                out.extend_from_slice(&self.buf[..n as usize]);
            }
        }
        self.pushed += x.len() as u64;
    }
    fn held(&self, out_frames: usize) -> f64 {
        // libsonic reports no positions: the content its output covers is taken to be the
        // output at the speed asked for.
        self.pushed as f64 - out_frames as f64 * self.speed
    }
}

/// Runs `x` through a candidate in 10 ms writes. Returns (output, ns spent, max held).
fn run(c: &mut dyn Cand, x: &[f32], rate: u32) -> (Vec<f32>, u128, f64) {
    let step = rate as usize / 100;
    let mut out = Vec::with_capacity(x.len() * 2 + 65536);
    let mut held: f64 = 0.0;
    let mut ns = 0;
    let n = x.len().div_ceil(step);
    for (i, b) in x.chunks(step).enumerate() {
        let t = Instant::now();
        c.run(b, &mut out, i + 1 == n);
        ns += t.elapsed().as_nanos();
        if i + 1 < n {
            held = held.max(c.held(out.len()));
        }
    }
    (out, ns, held)
}

fn make(name: &str, rate: u32, speed: f32) -> Option<Box<dyn Cand>> {
    match name {
        "ours" => Some(Box::new(Ours {
            s: Stretch::new(rate, 1, speed),
            pushed: 0,
            anchors: Vec::new(),
            covered: 0,
        })),
        "libsonic-q0" => Sonic::new(rate, speed, 0).map(|s| Box::new(s) as Box<dyn Cand>),
        "libsonic-q1" => Sonic::new(rate, speed, 1).map(|s| Box::new(s) as Box<dyn Cand>),
        _ => unreachable!("unknown candidate {name}"),
    }
}

/// The analysis window: 40 ms, a voice's four periods at 100 Hz.
fn win(rate: u32) -> usize {
    rate as usize * 40 / 1000
}

/// The pitch (Hz) of one window, or None if unvoiced: the lag in 70-400 Hz with the largest
/// autocorrelation (the biased sum, which favours the shorter of a period and its
/// multiples), refined by a parabola through the normalised correlation at it and its
/// neighbours, so the figure is not quantised to whole frames of lag (about 0.5% at 100 Hz
/// and 22050 Hz); voiced = loud enough and that peak above half the window's energy.
fn f0_of(f: &[f32], rate: u32) -> Option<f64> {
    let w = f.len();
    let (lo, hi) = (rate as usize / 400, rate as usize / 70);
    let e: f32 = f.iter().map(|v| v * v).sum();
    if e / (w as f32) < 1e-3 {
        return None;
    }
    let r = |lag: usize| -> f32 { f[..w - lag].iter().zip(&f[lag..]).map(|(a, b)| a * b).sum() };
    let (mut best, mut lag) = (0.0, 0);
    for l in lo..=hi {
        let v = r(l);
        if v > best {
            best = v;
            lag = l;
        }
    }
    if best <= 0.5 * e || lag <= lo || lag >= hi {
        return None;
    }
    // The biased sum tapers with the lag, which pulls its peak short of the period (0.4%
    // high at 200 Hz); the refinement uses the normalised correlation, whose peak is the
    // period itself.
    let ncc = |lag: usize| -> f64 {
        let (a, b) = (&f[..w - lag], &f[lag..]);
        let ea: f32 = a.iter().map(|v| v * v).sum();
        let eb: f32 = b.iter().map(|v| v * v).sum();
        r(lag) as f64 / ((ea as f64 * eb as f64).sqrt() + 1e-30)
    };
    let (a, b, c) = (ncc(lag - 1), ncc(lag), ncc(lag + 1));
    let den = a - 2.0 * b + c;
    let d = if den < 0.0 { 0.5 * (a - c) / den } else { 0.0 };
    Some(rate as f64 / (lag as f64 + d))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median pitch (Hz) of the voiced windows of `x`, hop 10 ms.
fn median_f0(x: &[f32], rate: u32) -> f64 {
    let w = win(rate);
    median(
        x.windows(w)
            .step_by(w / 4)
            .filter_map(|f| f0_of(f, rate))
            .collect(),
    )
}

/// Loudness envelope: RMS of 1 ms frames, smoothed over 5 ms.
fn envelope(x: &[f32], rate: u32) -> Vec<f64> {
    let f = (rate as usize / 1000).max(1);
    let rms: Vec<f64> = x
        .chunks(f)
        .map(|c| (c.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    (0..rms.len())
        .map(|i| {
            rms[i.saturating_sub(2)..(i + 3).min(rms.len())]
                .iter()
                .sum::<f64>()
                / 5.0
        })
        .collect()
}

/// How far (input frames) the content of `out` sits from the nominal place (output time x
/// speed): the shift, within ±40 envelope frames (~40 ms), that best lines up the output's
/// loudness envelope with the input's.
fn content_lag(x: &[f32], out: &[f32], rate: u32, speed: f64) -> f64 {
    let (ein, eout) = (envelope(x, rate), envelope(out, rate));
    let frame = (rate as usize / 1000).max(1) as f64;
    let at = |t: f64| -> Option<f64> {
        let (i, fr) = (t.floor(), t - t.floor());
        if i < 0.0 || i as usize + 1 >= ein.len() {
            return None;
        }
        let i = i as usize;
        Some(ein[i] + (ein[i + 1] - ein[i]) * fr)
    };
    let corr = |lag: f64| -> f64 {
        let (mut ab, mut bb) = (0.0, 1e-30);
        for (j, a) in eout.iter().enumerate() {
            if let Some(b) = at(j as f64 * speed + (speed - 1.0) * 0.5 + lag) {
                ab += a * b;
                bb += b * b;
            }
        }
        ab / bb.sqrt()
    };
    let lags: Vec<f64> = (-80..=80).map(|i| i as f64 * 0.5).collect();
    let c: Vec<f64> = lags.iter().map(|&l| corr(l)).collect();
    let k = (0..c.len()).max_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap();
    if k == 0 || k + 1 == c.len() {
        return lags[k] * frame;
    }
    let den = c[k - 1] - 2.0 * c[k] + c[k + 1];
    let d = if den < 0.0 {
        0.25 * (c[k - 1] - c[k + 1]) / den
    } else {
        0.0
    };
    (lags[k] + d) * frame
}

/// Pitch change (%) of `out`, `x` played at `speed`: per voiced 40 ms window of the output
/// (hop 10 ms), its pitch over the input's pitch where that window's audio came from; the
/// median.
///
/// Where it came from: the nominal place (output time x speed) moved by the candidate's
/// lag (`content_lag`, one figure per candidate and speed, from the loudness envelopes).
/// The nominal place alone is not good enough: within each 20 ms step our output runs
/// through content at speed 1, then jumps, so its content sits behind the nominal place
/// (10.5 ms at 1.5x, 26.8 ms at 2.5x, measured; libsonic's runs 1-14 ms ahead), and
/// speech's pitch moves enough in that time that the figure read +0.4% and +0.6% for ours
/// that way. Finding each window's place by
/// waveform correlation is not good enough either: the search prefers places whose pitch
/// matches the window's, so a true +5% shift read +4.2% (`f0_self_check`). The envelope
/// does not care about pitch.
fn pitch_change(x: &[f32], out: &[f32], rate: u32, speed: f64) -> (f64, f64) {
    let w = win(rate);
    let hop = w / 4;
    let lag = content_lag(x, out, rate, speed);
    let lag_ms = lag * 1000.0 / rate as f64;
    let last = x.len().saturating_sub(w) as f64;
    let ratios = (0..out.len().saturating_sub(w) / hop)
        .filter_map(|j| {
            let f = f0_of(&out[j * hop..j * hop + w], rate)?;
            let s = ((j * hop) as f64 * speed + (speed - 1.0) * w as f64 / 2.0 + lag).round();
            if s < 0.0 || s > last {
                return None;
            }
            let s = s as usize;
            Some(f / f0_of(&x[s..s + w], rate)?)
        })
        .collect();
    ((median(ratios) - 1.0) * 100.0, lag_ms)
}

/// `x` read `ratio` times as fast (linear interpolation): every frequency, the pitch
/// included, scaled by exactly `ratio`.
fn resampled(x: &[f32], ratio: f64) -> Vec<f32> {
    let n = ((x.len() - 1) as f64 / ratio) as usize;
    (0..n)
        .map(|i| {
            let p = i as f64 * ratio;
            let (k, t) = (p as usize, (p - p.floor()) as f32);
            x[k] + (x[(k + 1).min(x.len() - 1)] - x[k]) * t
        })
        .collect()
}

/// `x` with every third 20 ms block left out: 1.5x with the pitch untouched, joins at
/// arbitrary phase, content running behind the nominal place as a stretch's does.
fn blocks_dropped(x: &[f32], rate: u32) -> Vec<f32> {
    let b = rate as usize / 50;
    x.chunks(b)
        .enumerate()
        .filter(|(i, _)| i % 3 != 2)
        .flat_map(|(_, c)| c.iter().copied())
        .collect()
}

/// Checks the pitch-change figure on inputs whose answer is known: the speech read 5% faster
/// and 5% slower (pitch moved by exactly that; content at the nominal place), with every
/// third 20 ms block left out (pitch unmoved; content behind the nominal place, as a
/// stretch's), and both. Returns (name, expected %, read %, content lag ms), and stops the
/// bench if any reads more than 0.2 points off.
fn f0_self_check(x: &[f32], rate: u32) -> Vec<(String, f64, f64, f64)> {
    let mut v: Vec<(String, f64, f64, f64)> = [1.05, 1.0 / 1.05]
        .iter()
        .map(|&ratio| {
            let want = (ratio - 1.0) * 100.0;
            let (got, lag) = pitch_change(x, &resampled(x, ratio), rate, ratio);
            (format!("shift_{want:+.2}"), want, got, lag)
        })
        .collect();
    let (got, lag) = pitch_change(x, &blocks_dropped(x, rate), rate, 1.5);
    v.push(("blocks_dropped_1.5x".into(), 0.0, got, lag));
    // Both at once: the lag found while the pitch is moved.
    let both = blocks_dropped(&resampled(x, 1.05), rate);
    let (got, lag) = pitch_change(x, &both, rate, 1.5 * 1.05);
    v.push(("blocks_dropped_shift_+5.00".into(), 5.0, got, lag));
    for (name, want, got, _) in &v {
        assert!(
            (got - want).abs() <= 0.2,
            "pitch estimator: {name}, {want:+.2}%, reads {got:+.2}%"
        );
    }
    v
}

fn tone(rate: u32, hz: f64) -> Vec<f32> {
    (0..rate as usize * 2)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as f32)
        .collect()
}

/// SINAD (dB) of a stretched 2 s tone: the median over its 100 ms windows (the first and
/// last left out), each fitted at the tone's own frequency.
fn tone_sinad(name: &str, rate: u32, speed: f32, hz: f64) -> f64 {
    let mut c = make(name, rate, speed).unwrap();
    let (out, _, _) = run(c.as_mut(), &tone(rate, hz), rate);
    let w = rate as usize / 10;
    median(
        out[w..out.len() - w]
            .chunks_exact(w)
            .map(|b| measure(b, rate, hz, 0.5).sinad_db)
            .collect(),
    )
}

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| a.ends_with(".wav")) else {
        eprintln!("usage: cargo bench --bench stretch -- SPEECH.wav");
        return;
    };
    let (rate, pcm) = audioplay::internals::wav::read_s16_mono(std::path::Path::new(&path))
        .expect("an int16 mono WAV");
    let x: Vec<f32> = pcm.iter().map(|&v| v as f32 / 32768.0).collect();
    let f0_in = median_f0(&x, rate);
    println!("meta\tseconds\t{:.2}", x.len() as f64 / rate as f64);
    println!("meta\trate\t{rate}");
    println!("meta\tf0_hz\t{f0_in:.1}");
    for hz in TONES_HZ {
        let f0 = median_f0(&tone(rate, hz), rate);
        println!("meta\tcheck_tone_{hz}_hz_reads\t{f0:.2}");
        assert!(
            (f0 / hz - 1.0).abs() < 0.002,
            "pitch estimator: a {hz} Hz tone reads {f0}"
        );
    }
    for (name, _, got, lag) in f0_self_check(&x, rate) {
        println!("meta\tcheck_f0_{name}_reads\t{got:+.2}");
        println!("meta\tcheck_f0_{name}_content_lag_ms\t{lag:+.1}");
    }

    let cands: Vec<&str> = CANDS
        .into_iter()
        .filter(|n| {
            let ok = make(n, rate, 1.5).is_some();
            if !ok {
                println!("meta\tmissing\t{n} (libsonic.so.0 not found)");
            }
            ok
        })
        .collect();
    let runs: Vec<(&str, f32)> = SPEEDS
        .iter()
        .flat_map(|&s| cands.iter().map(move |&n| (n, s)))
        .collect();
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    let mut last: Vec<(Vec<f32>, f64)> = vec![(Vec::new(), 0.0); runs.len()];
    for _ in 0..ROUNDS {
        for (i, &(name, speed)) in runs.iter().enumerate() {
            let mut c = make(name, rate, speed).unwrap();
            let (o, ns, h) = run(c.as_mut(), &x, rate);
            per[i].push(ns as f64 / o.len() as f64);
            last[i] = (o, h);
        }
    }
    for (i, &(name, speed)) in runs.iter().enumerate() {
        per[i].sort_by(f64::total_cmp);
        let (out, held) = &last[i];
        let ideal = x.len() as f64 / speed as f64;
        let held_ms = held * 1000.0 / rate as f64;
        let tones: Vec<f64> = TONES_HZ
            .iter()
            .map(|&hz| tone_sinad(name, rate, speed, hz))
            .collect();
        let list: Vec<String> = tones.iter().map(|v| format!("{v:.1}")).collect();
        println!("meta\ttone_sinad_db_{name}_{speed}x\t{}", list.join(" "));
        let (pitch, lag) = pitch_change(&x, out, rate, speed as f64);
        println!("meta\tcontent_lag_ms_{name}_{speed}x\t{lag:+.1}");
        println!(
            "{name}\t{speed}\t{:.1}\t{:.1}\t{:.1}\t{:.4}\t{:+.1}\t{:.1}",
            per[i][per[i].len() / 2],
            held_ms,
            held_ms / speed as f64,
            out.len() as f64 / ideal,
            pitch,
            median(tones),
        );
    }
}
