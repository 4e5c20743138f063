//! Bare ALSA (issue 14: embedded boards, minimal systems): no sound server, the library on
//! cpal's ALSA host, playing on a device that behaves like hardware. The device is
//! tests/alsa/pcm_aptest.c, an ALSA ioplug plugin this test builds: clocked in real time,
//! one open at a time (every other open or query answers EBUSY while it is held, as a `hw`
//! PCM does), unpluggable (DIR/gone), and recording what it played on one timeline.
//!
//! applay runs as a child with a private HOME (its ~/.asoundrc defines the devices and the
//! default), an empty private XDG_RUNTIME_DIR and no PULSE_SERVER: no PulseAudio server is
//! reachable, so the library takes the ALSA host. The machine has no sound card.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::accounting::assert_all_played;
use common::analysis::{chirp, chirp_offset, locate, sound_runs, tone_stats};
use common::{json_num, json_str, serial};

const RATE: u32 = 48000;

/// The plugin, built once per test run.
fn plugin() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("aptest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let so = dir.join("libasound_module_pcm_aptest.so");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alsa/pcm_aptest.c");
        let o = Command::new("cc")
            .args(["-shared", "-fPIC", "-DPIC", "-O2", "-Wall", "-o"])
            .arg(&so)
            .arg(src)
            .arg("-lasound")
            .output()
            .expect("cc");
        assert!(
            o.status.success(),
            "building {src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        so
    })
}

/// A private ALSA world: test devices, a default, and the environment that reaches them.
struct Rig {
    dir: PathBuf,
}

/// What `pcm.!default` is in the rig's config.
enum Default<'a> {
    /// A plain alias: `pcm.!default "NAME"` (not in ALSA's name hints).
    Alias(&'a str),
}

impl Rig {
    /// Devices `names` (48 kHz stereo), each in its own DIR, and the default.
    fn new(names: &[&str], default: Default) -> Rig {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "audioplay-alsa-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["home", "run"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let mut conf = format!(
            "pcm_type.aptest {{ lib \"{}\" }}\n",
            plugin().display()
        );
        for n in names {
            let d = dir.join(n);
            std::fs::create_dir_all(&d).unwrap();
            conf += &format!(
                "pcm.{n} {{ type aptest dir \"{}\" rate {RATE} channels 2 \
                 hint {{ show on description \"test device {n}\" }} }}\n",
                d.display()
            );
        }
        match default {
            Default::Alias(n) => conf += &format!("pcm.!default \"{n}\"\n"),
        }
        std::fs::write(dir.join("home/.asoundrc"), conf).unwrap();
        Rig { dir }
    }

    /// A command with only the rig's environment: no sound server reachable.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        c
    }

    fn applay(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_applay"))
    }

    fn unplug(&self, dev: &str) {
        std::fs::write(self.dir.join(dev).join("gone"), b"").unwrap();
    }

    fn replug(&self, dev: &str) {
        std::fs::remove_file(self.dir.join(dev).join("gone")).unwrap();
    }

    /// What `dev` played, left channel (the library puts mono content on both).
    fn heard(&self, dev: &str) -> Vec<f32> {
        let b = std::fs::read(self.dir.join(dev).join("out.raw")).unwrap_or_default();
        b.chunks_exact(4)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
            .collect()
    }

    /// The device's log: open, open-busy, open-gone, start, xrun, disconnected, close.
    fn events(&self, dev: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(dev).join("events"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, e)| e.to_string()))
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Checks a tone of `secs` at 440 Hz was heard whole on `dev`, in time and without a gap.
fn assert_tone(heard: &[f32], secs: f64, log: &str) {
    let s = tone_stats(heard, RATE).unwrap_or_else(|| panic!("nothing was heard\n{log}"));
    eprintln!("heard: {s:?}");
    assert!((s.freq - 440.0).abs() <= 1.0, "pitch {:.2} Hz\n{log}", s.freq);
    assert!(
        (s.duration - secs).abs() <= secs * 0.02,
        "duration {:.4} s\n{log}",
        s.duration
    );
    assert!(
        s.longest_gap < 0.002,
        "dropout of {:.1} ms\n{log}",
        s.longest_gap * 1e3
    );
}

/// A default that is a plain alias is not in ALSA's name hints: it used to be "output device
/// 'default' not found". It plays, in real time, on the exclusive clocked device behind it.
#[test]
fn a_plain_alias_default_plays() {
    let _g = serial();
    let rig = Rig::new(&["card"], Default::Alias("card"));
    let t0 = Instant::now();
    let o = rig
        .applay()
        .args(["--tone", "440", "--seconds", "2", "--json", "--quiet"])
        .output()
        .unwrap();
    let took = t0.elapsed().as_secs_f64();
    let (out, err) = text(&o);
    assert!(o.status.success(), "applay failed: {err}\n{out}");
    // Neither the library nor ALSA wrote to stderr.
    assert_eq!(err, "", "stderr");
    let m = out.lines().last().unwrap_or_default();
    assert_eq!(json_str(m, "device"), "default", "{m}");
    assert_eq!(json_num(m, "stream_rate") as u32, RATE, "{m}");
    assert_eq!(json_num(m, "recreates"), 1.0, "{m}");
    assert_eq!(json_num(m, "underruns"), 0.0, "{m}");
    assert_all_played(m);
    // Clocked: playing took the tone's length (ALSA's `null` "plays" 10 s in 0.56 s).
    assert!(took >= 2.0, "2 s played in {took:.2} s");
    assert_tone(&rig.heard("card"), 2.0, m);
}
