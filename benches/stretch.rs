//! Speed without pitch change (issue 16 §1): our WSOLA (src/dsp/stretch.rs) beside libsonic
//! (the stretch espeak-ng and Android use; loaded with dlopen, so nothing links it) on the
//! same espeak-ng speech, fed as an engine does, 10 ms at a time.
//!
//!   cargo bench --bench stretch -- SPEECH.wav      (int16 mono WAV, e.g. espeak-ng --stdout)
//!
//! Rows (TSV): candidate, speed, ns per output frame (median of 7 runs), added latency (the
//! most content the stretch held back, ms), output duration over the ideal (input/speed),
//! pitch change (median pitch of voiced 40 ms frames, out against in, %), and a 440 Hz tone's
//! SINAD (median over 100 ms windows of the stretched tone, dB).
//!
//! Why these quality figures: the promise is speed without pitch change and without join
//! artefacts. The pitch change says whether the voice's pitch survived (it should be ~0%);
//! a steady tone is the one input whose ideal stretched output is known exactly (the same
//! tone), so its SINAD says how much the joins add; the duration ratio says whether the
//! speed asked for is the speed heard.

use std::ffi::{c_int, c_void};
use std::time::Instant;

use audioplay::internals::quality::measure;
use audioplay::internals::stretch::Stretch;

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
type SetF = unsafe extern "C" fn(*mut c_void, f32);
type Write = unsafe extern "C" fn(*mut c_void, *const f32, c_int) -> c_int;
type Read = unsafe extern "C" fn(*mut c_void, *mut f32, c_int) -> c_int;
type Flush = unsafe extern "C" fn(*mut c_void) -> c_int;

struct Sonic {
    h: *mut c_void,
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
    fn new(rate: u32, speed: f32) -> Option<Sonic> {
        let name = std::ffi::CString::new("libsonic.so.0").unwrap();
        // SAFETY: dlopen of a system library by name.
        let lib = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
        if lib.is_null() {
            return None;
        }
        let create: Create = sym(lib, "sonicCreateStream");
        let set: SetF = sym(lib, "sonicSetSpeed");
        // SAFETY: libsonic's documented API.
        let h = unsafe { create(rate as c_int, 1) };
        unsafe { set(h, speed) };
        Some(Sonic {
            h,
            write: sym(lib, "sonicWriteFloatToStream"),
            read: sym(lib, "sonicReadFloatFromStream"),
            flush: sym(lib, "sonicFlushStream"),
            speed: speed as f64,
            pushed: 0,
            buf: vec![0.0; 8192],
        })
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
        _ => Sonic::new(rate, speed).map(|s| Box::new(s) as Box<dyn Cand>),
    }
}

/// Median pitch (Hz) of the voiced 40 ms frames of `x` (autocorrelation, 70-400 Hz).
fn median_f0(x: &[f32], rate: u32) -> f64 {
    let w = rate as usize * 40 / 1000;
    let (lo, hi) = (rate as usize / 400, rate as usize / 70);
    let mut f0s = Vec::new();
    for f in x.chunks_exact(w).filter(|f| f.len() > hi) {
        let e: f32 = f.iter().map(|v| v * v).sum();
        if e / (w as f32) < 1e-3 {
            continue;
        }
        let r =
            |lag: usize| -> f32 { f[..w - lag].iter().zip(&f[lag..]).map(|(a, b)| a * b).sum() };
        let (mut best, mut lag) = (0.0, 0);
        for l in lo..=hi {
            let v = r(l);
            if v > best {
                best = v;
                lag = l;
            }
        }
        if best > 0.5 * e && lag > 0 {
            f0s.push(rate as f64 / lag as f64);
        }
    }
    f0s.sort_by(f64::total_cmp);
    f0s.get(f0s.len() / 2).copied().unwrap_or(0.0)
}

fn tone_sinad(name: &str, rate: u32, speed: f32) -> f64 {
    let x: Vec<f32> = (0..rate as usize * 2)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin()) as f32)
        .collect();
    let mut c = make(name, rate, speed).unwrap();
    let (out, _, _) = run(c.as_mut(), &x, rate);
    let w = rate as usize / 10;
    let mut s: Vec<f64> = out[w..out.len() - w]
        .chunks_exact(w)
        .map(|b| measure(b, rate, 440.0, 0.5).sinad_db)
        .collect();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
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
    println!(
        "# {path}: {} s at {rate} Hz, median F0 {f0_in:.1} Hz",
        x.len() as f64 / rate as f64
    );
    println!("candidate\tspeed\tns/out frame\tadded latency ms\tduration/ideal\tF0 change %\ttone SINAD dB");
    for speed in [1.5f32, 2.5] {
        for name in ["ours", "libsonic"] {
            if make(name, rate, speed).is_none() {
                println!("{name}\t{speed}\t(libsonic.so.0 not found)");
                continue;
            }
            let mut per = Vec::new();
            let (mut out, mut held) = (Vec::new(), 0.0);
            for _ in 0..7 {
                let mut c = make(name, rate, speed).unwrap();
                let (o, ns, h) = run(c.as_mut(), &x, rate);
                per.push(ns as f64 / o.len() as f64);
                (out, held) = (o, h);
            }
            per.sort_by(f64::total_cmp);
            let ideal = x.len() as f64 / speed as f64;
            let f0 = median_f0(&out, rate);
            println!(
                "{name}\t{speed}\t{:.1}\t{:.1}\t{:.4}\t{:+.1}\t{:.1}",
                per[per.len() / 2],
                held * 1000.0 / rate as f64,
                out.len() as f64 / ideal,
                (f0 / f0_in - 1.0) * 100.0,
                tone_sinad(name, rate, speed),
            );
        }
    }
}
