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
const F0: f64 = 200.0;
const F1: f64 = 2000.0;
/// The device period with `--latency 50` (two periods of buffer).
const PERIOD_S: f64 = 0.025;

/// The plugin, built once per test run.
fn plugin() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("aptest-{}", std::process::id()));
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
        let mut conf = format!("pcm_type.aptest {{ lib \"{}\" }}\n", plugin().display());
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

/// Plays a 2 s 440 Hz tone with applay (`extra` options) and returns its output and the
/// time it took. A run in which the device ran dry (an xrun: it plays silence, which the
/// recording keeps; `server_underflows` counts them) is a loaded machine's doing, not the
/// library's: it is run again, up to three times.
fn tone_run(rig: &Rig, devices: &[&str], extra: &[&str]) -> (Output, f64) {
    for attempt in 1..=3 {
        for d in devices {
            for f in ["out.raw", "origin", "events"] {
                let _ = std::fs::remove_file(rig.dir.join(d).join(f));
            }
        }
        let t0 = Instant::now();
        let o = rig
            .applay()
            .args(["--tone", "440", "--seconds", "2", "--json", "--quiet"])
            .args(["--latency", "50"])
            .args(extra)
            .output()
            .unwrap();
        let took = t0.elapsed().as_secs_f64();
        let (out, _) = text(&o);
        let m = out.lines().last().unwrap_or_default();
        let starved = o.status.success() && json_num(m, "server_underflows") > 0.0;
        if !starved || attempt == 3 {
            return (o, took);
        }
        eprintln!("attempt {attempt}: the device ran dry, again: {m}");
    }
    unreachable!()
}

/// Checks a tone of `secs` at 440 Hz was heard whole on `dev`, in time and without a gap.
fn assert_tone(heard: &[f32], secs: f64, log: &str) {
    let s = tone_stats(heard, RATE).unwrap_or_else(|| panic!("nothing was heard\n{log}"));
    eprintln!("heard: {s:?}");
    assert!(
        (s.freq - 440.0).abs() <= 1.0,
        "pitch {:.2} Hz\n{log}",
        s.freq
    );
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
    let (o, took) = tone_run(&rig, &["card"], &[]);
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

/// Writes a chirp of `secs` as the WAV applay plays (48 kHz mono s16: the device's rate, so
/// what is heard is the same samples); the s16 content as floats.
fn chirp_wav(dir: &Path, secs: f64) -> (PathBuf, Vec<f32>) {
    let s16: Vec<i16> = chirp(F0, F1, secs, RATE)
        .iter()
        .map(|&v| audioplay::internals::convert::f32_to_s16(v))
        .collect();
    let path = dir.join(format!("chirp-{secs}.wav"));
    audioplay::internals::wav::write_s16(&path, RATE, 1, &s16).unwrap();
    (path, s16.iter().map(|&v| v as f32 / 32768.0).collect())
}

/// Stretches of a recording that play the content without a jump: (content start, content
/// length) in samples. Blocks that match no single place in the content (they straddle a
/// jump or a gap) end a stretch (the method of tests/pulse_faults.rs). The device records
/// exactly the samples it was given, so each stretch is then extended sample by sample as
/// far as the recording equals the content: its ends are exact, not to a block.
fn segments(rec: &[f32], content: &[f32]) -> Vec<(usize, usize)> {
    const BLOCK: usize = 960; // 20 ms
    const STEP: usize = 2400; // one located block per 50 ms
                              // (recording start, content start, last block's recording and content offsets)
    type Seg = (usize, usize, usize, usize);
    let mut found: Vec<Seg> = Vec::new();
    for (start, end) in sound_runs(rec, RATE) {
        let mut seg: Option<Seg> = None;
        let mut at = start;
        while at + BLOCK <= end {
            let block = &rec[at..at + BLOCK];
            let near = seg.map(|(_, _, ra, ca)| locate(block, content, ca + (at - ra), 96));
            let (off, r) = match near {
                Some(n) if n.1 > 0.98 => n,
                _ => chirp_offset(block, content, F0, F1, RATE),
            };
            if r < 0.98 {
                found.extend(seg.take());
                at += BLOCK / 4;
                continue;
            }
            let follows = seg.is_some_and(|(_, _, ra, ca)| {
                let (dr, dc) = ((at - ra) as i64, off as i64 - ca as i64);
                dc == dr
            });
            match seg.as_mut() {
                Some(s) if follows => (s.2, s.3) = (at, off),
                _ => {
                    found.extend(seg.take());
                    seg = Some((at, off, at, off));
                }
            }
            at = if at + BLOCK == end {
                end
            } else {
                (at + STEP).min(end - BLOCK)
            };
        }
        found.extend(seg);
    }
    let same = |r: usize, c: usize| (rec[r] - content[c]).abs() <= 1.5 / 32768.0;
    found
        .into_iter()
        // A block straddling the end of the sound can correlate well a sample or two off:
        // a stretch is the content only where its samples are the content's.
        .filter(|&(rs, cs, ra, _)| {
            let n = ra + BLOCK - rs;
            (0..n).filter(|&k| same(rs + k, cs + k)).count() * 10 >= n * 9
        })
        .map(|(rs, cs, ra, ca)| {
            let back = (1..=rs.min(cs))
                .take_while(|&k| same(rs - k, cs - k))
                .count();
            let (re, ce) = (ra + BLOCK, ca + BLOCK);
            let fwd = (0..(rec.len() - re).min(content.len() - ce))
                .take_while(|&k| same(re + k, ce + k))
                .count();
            (cs - back, ce + fwd - (cs - back))
        })
        .collect()
}

/// What was heard of `content` over several recordings, seconds: (covered, lost, repeated). Loss counts from the
/// first content heard to 50 ms before the end (applay exits when its drain says the end
/// was heard; the last period can be cut).
fn coverage(recs: &[&[f32]], content: &[f32]) -> (f64, f64, f64, Vec<(usize, usize)>) {
    let mut spans: Vec<(usize, usize)> = recs
        .iter()
        .flat_map(|r| segments(r, content))
        .map(|(c, n)| (c, c + n))
        .collect();
    let total: usize = spans.iter().map(|(a, b)| b - a).sum();
    spans.sort();
    let (mut union, mut reach) = (0, 0);
    for &(a, b) in &spans {
        if b > reach {
            union += b - a.max(reach);
            reach = b;
        }
    }
    let first = spans.first().map_or(0, |s| s.0);
    let end = content.len() - RATE as usize / 20;
    let (mut interior, mut reach) = (0, first);
    for &(a, b) in &spans {
        let (a, b) = (a.max(reach), b.min(end));
        if b > a {
            interior += b - a;
            reach = b;
        }
    }
    let s = |n: usize| n as f64 / RATE as f64;
    let lost = end.saturating_sub(first).saturating_sub(interior);
    (s(union), s(lost), s(total - union), spans)
}

/// Waits until `dev` has played `secs` (its recording has grown that long).
fn wait_played(rig: &Rig, dev: &str, secs: f64, limit: Duration) {
    let t0 = Instant::now();
    while (rig.heard(dev).len() as f64) < secs * RATE as f64 {
        assert!(
            t0.elapsed() < limit,
            "{dev} did not play {secs} s within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for applay (30 s at most) and checks it succeeded, printed nothing on stderr and
/// played every frame; returns its JSON metrics line.
fn finish_played(player: Child) -> String {
    let o = finish(player, Duration::from_secs(30));
    let (out, err) = text(&o);
    assert!(o.status.success(), "applay failed: {err}\n{out}");
    assert_eq!(err, "", "stderr");
    let m = out.lines().last().unwrap_or_default().to_string();
    assert_all_played(&m);
    m
}

fn finish(c: Child, limit: Duration) -> Output {
    let pid = c.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid; it has not been reaped (wait is pending).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let o = rx.recv().unwrap().unwrap();
            let (out, err) = text(&o);
            panic!("applay did not exit within {limit:?}: {out}\n{err}");
        }
    }
}

fn play(rig: &Rig, wav: &Path, extra: &[&str]) -> Child {
    rig.applay()
        // 50 ms of device buffer: the unplug is the subject here, not how tight a loaded
        // 2-core machine can schedule.
        .args(["--quiet", "--json", "--latency", "50"])
        .args(extra)
        .arg(wav)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exclusive device the player holds is unplugged mid-speech and plugged back half a
/// second later: the player waits (its writes do not fail), plays again on it once it is
/// back, and what the device had taken but not played when it went is played again, so
/// nothing is lost. Before, every query failed with EBUSY while it played, the watcher never
/// knew a good device, and the player never recovered (applay stuck until killed).
#[test]
fn unplug_and_replug_of_the_held_device_resumes_with_nothing_lost() {
    let _g = serial();
    let rig = Rig::new(&["card"], Default::Alias("card"));
    let (wav, content) = chirp_wav(&rig.dir, 4.0);
    let player = play(&rig, &wav, &[]);
    wait_played(&rig, "card", 1.5, Duration::from_secs(10));
    rig.unplug("card");
    std::thread::sleep(Duration::from_millis(500));
    rig.replug("card");
    let metrics = finish_played(player);
    let m = metrics.as_str();
    let events = rig.events("card");
    assert!(events.iter().any(|e| e == "disconnected"), "{events:?}");
    assert_eq!(json_num(m, "outages"), 1.0, "{m}");
    let heard = rig.heard("card");
    let (covered, lost, repeated, spans) = coverage(&[&heard], &content);
    eprintln!("covered {covered:.3} s, lost {lost:.3} s, repeated {repeated:.3} s: {spans:?}\n{m}");
    // Sample-exact: nothing of the content is missing.
    assert!(lost <= 0.001, "{lost:.3} s lost: {spans:?}\n{m}");
    // What is replayed starts at the last callback before the unplug, the last moment the
    // device is known to have played: at most one period (25 ms) is heard twice.
    assert!(
        repeated <= PERIOD_S + 0.002,
        "{repeated:.3} s repeated: {spans:?}\n{m}"
    );
    // Heard before the unplug and after the replug, with the device's silence between.
    assert!(spans.len() >= 2, "{spans:?}");
    let runs = sound_runs(&heard, RATE);
    let gap = runs.windows(2).map(|w| w[1].0 - w[0].1).max().unwrap_or(0) as f64 / RATE as f64;
    assert!(
        gap >= 0.5,
        "the silence while unplugged: {gap:.3} s\n{runs:?}"
    );
}

/// A player pinned to an exclusive device stays on it: the device answering busy to the
/// watcher's queries is the player holding it. Before, the pinned device looked gone, the
/// player moved to the default (another device) and back to the pinned one once it was
/// free, over and over (29 recreates in 2 s, the speech on both devices).
#[test]
fn a_pinned_exclusive_device_does_not_flap() {
    let _g = serial();
    let rig = Rig::new(&["pinned", "other"], Default::Alias("other"));
    let (o, _) = tone_run(&rig, &["pinned", "other"], &["--device", "pinned"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "applay failed: {err}\n{out}");
    assert_eq!(err, "", "stderr");
    let m = out.lines().last().unwrap_or_default();
    assert_eq!(json_num(m, "recreates"), 1.0, "{m}");
    assert_eq!(json_str(m, "device"), "pinned", "{m}");
    assert_all_played(m);
    assert_tone(&rig.heard("pinned"), 2.0, m);
    assert!(rig.heard("other").is_empty(), "the other device played");
    assert!(
        !rig.events("other").iter().any(|e| e == "start"),
        "{:?}",
        rig.events("other")
    );
}

/// The audio thread on ALSA (cpal's `cpal_alsa_out`, not the PulseAudio client's
/// `audioplay-audio`) gets the configured priority: read from /proc while it plays. Root
/// here, so the request is granted.
#[test]
fn the_alsa_audio_thread_gets_the_configured_priority() {
    let _g = serial();
    let rig = Rig::new(&["card"], Default::Alias("card"));
    for (prio, want) in [(10, Some(10)), (0, None)] {
        let c = rig
            .applay()
            .args(["-v", "--tone", "440", "--seconds", "1.5", "--rt-priority"])
            .arg(prio.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = c.id();
        wait_played(&rig, "card", 0.7, Duration::from_secs(10));
        // (name, policy, rt priority) of each thread: /proc/PID/task/TID/stat fields 2, 41, 40.
        let threads: Vec<(String, u32, u32)> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .map(|stat| {
                let (name, rest) = stat.split_once(" (").unwrap().1.rsplit_once(") ").unwrap();
                let f: Vec<&str> = rest.split(' ').collect();
                // rest starts at field 3 (state): field n is f[n - 3].
                (
                    name.to_string(),
                    f[41 - 3].parse().unwrap(),
                    f[40 - 3].parse().unwrap(),
                )
            })
            .collect();
        let o = finish(c, Duration::from_secs(20));
        let (_, err) = text(&o);
        assert!(o.status.success(), "{err}");
        let audio: Vec<_> = threads.iter().filter(|t| t.0 == "cpal_alsa_out").collect();
        assert_eq!(audio.len(), 1, "{threads:?}");
        let (_, policy, rt) = audio[0];
        match want {
            Some(p) => {
                assert_eq!(
                    (*policy, *rt),
                    (libc::SCHED_FIFO as u32, p),
                    "{threads:?}\n{err}"
                );
                assert!(err.contains("at SCHED_FIFO priority 10"), "{err}");
            }
            None => assert_eq!(*policy, libc::SCHED_OTHER as u32, "{threads:?}\n{err}"),
        }
        assert!(!err.contains("could not raise"), "{err}");
        for f in ["out.raw", "origin"] {
            std::fs::remove_file(rig.dir.join("card").join(f)).unwrap();
        }
    }
}

/// A pinned device that is unplugged: the player moves to the default (another exclusive
/// device) at once, and back to the pinned one once it is plugged in again; across the two
/// devices nothing of the speech is lost.
#[test]
fn a_pinned_device_unplugged_moves_to_the_default_and_back() {
    let _g = serial();
    let rig = Rig::new(&["pinned", "other"], Default::Alias("other"));
    let (wav, content) = chirp_wav(&rig.dir, 4.0);
    let player = play(&rig, &wav, &["--device", "pinned"]);
    wait_played(&rig, "pinned", 1.0, Duration::from_secs(10));
    rig.unplug("pinned");
    wait_played(&rig, "other", 0.5, Duration::from_secs(5));
    rig.replug("pinned");
    let metrics = finish_played(player);
    let m = metrics.as_str();
    assert_eq!(
        json_str(m, "device"),
        "pinned",
        "back on the pinned device: {m}"
    );
    let (pinned, other) = (rig.heard("pinned"), rig.heard("other"));
    let (covered, lost, repeated, spans) = coverage(&[&pinned, &other], &content);
    eprintln!("covered {covered:.3} s, lost {lost:.3} s, repeated {repeated:.3} s: {spans:?}\n{m}");
    // Played on the pinned device before and after, on the other one between.
    assert!(segments(&pinned, &content).len() >= 2, "{spans:?}");
    assert!(!segments(&other, &content).is_empty(), "{spans:?}");
    assert!(lost <= 0.001, "{lost:.3} s lost: {spans:?}\n{m}");
    // The unplug replays at most a period; the move back replays what the other device held
    // unplayed, as the library estimated it.
    assert!(
        repeated <= 2.0 * PERIOD_S,
        "{repeated:.3} s repeated: {spans:?}\n{m}"
    );
}
