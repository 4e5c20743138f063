//! speech-dispatcher without code changes (issue 15): bindings/speechd builds
//! spd_audioplay.so, a speech-dispatcher audio output plugin over audioplay, and Debian's
//! unmodified speech-dispatcher with its espeak-ng module loads it (`AudioOutputMethod
//! "audioplay"`, found through SPEECHD_PLUGIN_DIR) on a private PulseAudio server with a
//! private configuration, socket and log directory (no systemd, nothing installed). What
//! `spd-say` makes heard is compared with `espeak-ng -w` of the same text; `spd-say -S`
//! must stop it with a fade; a default-sink switch mid-sentence must lose nothing.
//!
//! The plugin is built here with cc against this build's libaudioplay (the cdylib next to the
//! test binary), so `cargo test --test speechd_plugin` works alone. Needs speech-dispatcher,
//! speech-dispatcher-espeak-ng and libspeechd-dev (scripts/deps.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::analysis::locate;
use common::pulse::{mono_ms, PulseServer, S44, S48};
use common::speech::{blockwise, extent, median, read_wav, secs, starved_in};
use common::{rerun_if_starved, serial, Starvable};

const TEXT: &str = "The quick brown fox jumps over the lazy dog. \
                    Pack my box with five dozen liquor jugs.";
/// espeak-ng's own rate for its default voice.
const RATE: u32 = 22050;
const FADE_MS: f64 = 10.0;

/// The plugin's build directory (SPEECHD_PLUGIN_DIR), built once per test run.
fn plugin_dir() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("speechd-{}", std::process::id()));
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
            Command::new("bash")
                .arg(format!("{root}/bindings/speechd/build.sh"))
                .arg(&dir)
                .arg(&libdir),
            "building the plugin (libspeechd-dev)",
        );
        dir
    })
}

fn run_ok(c: &mut Command, what: &str) -> Output {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A private speech-dispatcher on `server`: its own configuration directory (audioplay as
/// the only audio method, espeak-ng the module, at espeak-ng's own default rate and volume so
/// that `espeak-ng -w` is the reference), socket, pid file and logs.
struct Speechd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    trace: PathBuf,
}

impl Speechd {
    fn start(server: &PulseServer, tag: &str) -> Speechd {
        let dir = server.dir.join(format!("speechd-{tag}"));
        let conf = dir.join("conf");
        std::fs::create_dir_all(conf.join("modules")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        // Debian's module configuration, with espeak-ng's own default rate (175 words a
        // minute; speech-dispatcher's default is 170).
        let module = std::fs::read_to_string("/etc/speech-dispatcher/modules/espeak-ng.conf")
            .expect("speech-dispatcher-espeak-ng's configuration");
        let module: String = module
            .lines()
            .map(|l| {
                if l.starts_with("EspeakNormalRate") {
                    "EspeakNormalRate 175".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(conf.join("modules/espeak-ng.conf"), module + "\n").unwrap();
        // DefaultVolume 0 is espeak-ng's amplitude 100, its default (Debian's 100 doubles it).
        std::fs::write(
            conf.join("speechd.conf"),
            "LogLevel 3\nAudioOutputMethod \"audioplay\"\nDefaultVolume 0\n\
             DefaultModule espeak-ng\nAddModule \"espeak-ng\" \"sd_espeak-ng\" \"espeak-ng.conf\"\n",
        )
        .unwrap();
        let socket = dir.join("speechd.sock");
        let trace = dir.join("trace");
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = server
            .command("speech-dispatcher")
            .args(["--run-single", "--timeout", "0", "-c", "unix_socket", "-S"])
            .arg(&socket)
            .arg("-C")
            .arg(&conf)
            .arg("-L")
            .arg(dir.join("log"))
            .arg("-P")
            .arg(dir.join("pid"))
            .env("SPEECHD_PLUGIN_DIR", plugin_dir())
            .env("AUDIOPLAY_SPD_TRACE", &trace)
            .env("AUDIOPLAY_SPD_FADE_MS", format!("{FADE_MS}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("speech-dispatcher");
        let t0 = Instant::now();
        while !socket.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "speech-dispatcher did not create its socket: {}",
                std::fs::read_to_string(dir.join("log/speech-dispatcher.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Speechd {
            child,
            dir,
            socket,
            trace,
        }
    }

    /// spd-say, talking to this speech-dispatcher.
    fn say(&self, server: &PulseServer) -> Command {
        let mut c = server.command("spd-say");
        c.env(
            "SPEECHD_ADDRESS",
            format!("unix_socket:{}", self.socket.display()),
        );
        c
    }

    fn trace(&self) -> String {
        std::fs::read_to_string(&self.trace).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/speech-dispatcher.log")).unwrap_or_default()
    }
}

impl Drop for Speechd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What espeak-ng -w writes for `text`: the reference.
fn reference(text: &str) -> Vec<f32> {
    let path = plugin_dir().join(format!("ref-{}.wav", text.len()));
    run_ok(
        Command::new("espeak-ng").arg("-w").arg(&path).arg(text),
        "espeak-ng -w",
    );
    let (x, rate) = read_wav(&path);
    assert_eq!(rate, RATE, "espeak-ng's rate");
    x
}

#[test]
fn spd_say_is_heard_whole_as_espeak_ng_w_writes_it() {
    let _g = serial();
    let want = reference(TEXT);
    rerun_if_starved("spd-say through the plugin", || say_once(&want));
}

fn say_once(want: &[f32]) -> Starvable<()> {
    let server = PulseServer::start(&[S48]);
    let spd = Speechd::start(&server, "say");
    // Recorded at espeak-ng's rate (the server resamples the monitor), to compare as is.
    let rec = server.record("s48", RATE);
    let o = run_ok(spd.say(&server).arg("-w").arg(TEXT), "spd-say -w");
    let heard = rec.stop();
    let tr = spd.trace();
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        tr.contains(" open ") && tr.contains(" end "),
        "speech-dispatcher did not play through the plugin:\n{tr}\n{}",
        spd.log()
    );
    let starved = starved_in(&tr, " end ");
    let (w0, w1) = extent(want).expect("espeak-ng -w wrote silence");
    let (h0, h1) = extent(&heard).expect("nothing was heard");
    let (lw, lh) = (secs(w1 - w0, RATE), secs(h1 - h0, RATE));
    let (_, whole) = locate(&want[w0..=w1], &heard, h0, RATE as usize / 50);
    let (rs, slip) = blockwise(want, &heard, w0, h0, RATE);
    let low = rs.iter().filter(|&&r| r < 0.9).count();
    eprintln!(
        "espeak-ng -w: {lw:.3} s of speech; heard through speech-dispatcher and the plugin: \
         {lh:.3} s; correlation: whole {whole:.4}, 100 ms blocks median {:.4}, {low} of {} \
         below 0.9; the end moved {:+.1} ms against the start\n{tr}",
        median(&rs),
        rs.len(),
        slip as f64 * 1e3 / RATE as f64
    );
    if (lh - lw).abs() > 0.1 {
        return Err((
            format!("heard {lh:.3} s, espeak-ng -w {lw:.3} s\n{tr}"),
            starved,
        ));
    }
    if median(&rs) < 0.95 || low * 10 > rs.len() {
        return Err((
            format!("what was heard is not what espeak-ng -w wrote: {rs:.3?}\n{tr}"),
            starved,
        ));
    }
    Ok(())
}
