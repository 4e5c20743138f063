//! Issue 12, item 3, on a private PulseAudio server: when the server has to play silence of
//! its own because the stream's data did not come in time (its UNDERFLOW notification),
//! `ApMetrics.server_underflows` counts it, and it is not a stream error.
//!
//! The player runs in a child process with the server's environment (tests/common/mod.rs).
//! A starved client is made the blunt way: the whole child is stopped (SIGSTOP) for 400 ms
//! while it plays, as a machine under load would deschedule its audio thread.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audioplay::ffi::config::{ap_config_init, ApConfig};
use audioplay::ffi::handle::ApPlayer;
use audioplay::ffi::metrics::{ap_metrics, ApMetrics};
use audioplay::ffi::player::{ap_create, ap_destroy, ap_write};
use audioplay::ffi::status::ApStatus::AP_OK;
use common::pulse::{PulseServer, S48};
use common::{json_num, serial};

/// Plays in a child; with `stop`, stops the child for that long once it plays. Returns the
/// child's metrics line.
fn play_in_child(server: &PulseServer, stop: Option<Duration>) -> String {
    let mut child = server
        .command(std::env::current_exe().unwrap())
        .args([
            "underflow_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AUDIOPLAY_UNDERFLOW_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        text.push_str(&line);
        let playing = line.contains("PLAYING");
        line.clear();
        if playing {
            if let Some(d) = stop {
                // SAFETY: kill(2) on our own child.
                unsafe {
                    assert_eq!(libc::kill(child.id() as i32, libc::SIGSTOP), 0);
                    std::thread::sleep(d);
                    assert_eq!(libc::kill(child.id() as i32, libc::SIGCONT), 0);
                }
            }
            break;
        }
    }
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("{text}");
    assert!(
        status.success() && text.contains("UNDERFLOW CHILD OK"),
        "child failed ({status}):\n{text}\n{err}"
    );
    text.lines()
        .find(|l| l.contains("\"server_underflows\""))
        .expect("no metrics line")
        .to_string()
}

#[test]
fn a_starved_stream_counts_server_underflows_and_a_clean_run_none() {
    let _g = serial();
    let server = PulseServer::start(&[S48]);

    let clean = play_in_child(&server, None);
    assert_eq!(json_num(&clean, "server_underflows"), 0.0, "{clean}");
    assert_eq!(json_num(&clean, "stream_errors"), 0.0, "{clean}");

    let starved = play_in_child(&server, Some(Duration::from_millis(400)));
    assert!(
        json_num(&starved, "server_underflows") >= 1.0,
        "the server's underflow was not counted: {starved}"
    );
    // An underflow is a glitch to count, not a stream failure: no error, no recreate.
    assert_eq!(json_num(&starved, "stream_errors"), 0.0, "{starved}");
    assert_eq!(json_num(&starved, "recreates"), 1.0, "{starved}");
}

/// The player's log, for the test output (on the player's threads).
unsafe extern "C" fn log(
    _: *mut std::os::raw::c_void,
    level: audioplay::ffi::config::ApLogLevel,
    msg: *const std::os::raw::c_char,
) {
    // SAFETY: the library passes a NUL-terminated message valid for the call.
    let msg = unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy();
    println!("log {level}: {msg}");
}

struct Handle(*mut ApPlayer);
// SAFETY: the C ABI's calls are thread-safe; the handle outlives the writer (joined first).
unsafe impl Send for Handle {}

fn metrics(p: *mut ApPlayer) -> ApMetrics {
    let mut m = ApMetrics {
        struct_size: std::mem::size_of::<ApMetrics>() as u32,
        ..ApMetrics::default()
    };
    assert_eq!(ap_metrics(p, &mut m), AP_OK);
    m
}

#[test]
#[ignore = "run by a_starved_stream_counts_server_underflows_and_a_clean_run_none"]
fn underflow_child() {
    assert!(std::env::var("AUDIOPLAY_UNDERFLOW_CHILD").is_ok());
    // SAFETY: ApConfig is plain data; ap_config_init overwrites every field.
    let mut cfg: ApConfig = unsafe { std::mem::zeroed() };
    assert_eq!(ap_config_init(&mut cfg), AP_OK);
    cfg.write_timeout_ms = 100;
    // A server-side buffer (2 x 50 ms) that rides out a busy machine's scheduling noise, which
    // can underflow a default 20 ms stream for real (seen 1 in 5 clean runs at load 2.7 on 2
    // cores); the starved run's 400 ms stop empties it whatever the load.
    cfg.target_latency_ms = 100;
    cfg.log_fn = Some(log);
    let mut p: *mut ApPlayer = null_mut();
    let created = Instant::now();
    assert_eq!(ap_create(&cfg, &mut p), AP_OK);
    let watch = {
        let h = Handle(p);
        std::thread::spawn(move || {
            let h = h;
            let mut seen = 0;
            while created.elapsed() < Duration::from_secs(3) {
                let m = metrics(h.0);
                if m.server_underflows != seen {
                    seen = m.server_underflows;
                    println!(
                        "server underflow {seen} counted {:.0?} after ap_create ({} frames played)",
                        created.elapsed(),
                        m.frames_played
                    );
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (h, stop) = (Handle(p), stop.clone());
        std::thread::spawn(move || {
            let h = h;
            // 10 ms of a quiet 441 Hz tone at the default 22050 Hz, s16 mono.
            let chunk: Vec<i16> = (0..221)
                .map(|i| ((i as f32 * std::f32::consts::TAU / 50.0).sin() * 3000.0) as i16)
                .collect();
            while !stop.load(SeqCst) {
                let mut n = 0usize;
                let _ = ap_write(h.0, chunk.as_ptr().cast(), chunk.len(), &mut n);
            }
        })
    };
    let t0 = Instant::now();
    while metrics(p).frames_played < 22050 / 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "not playing");
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("PLAYING");
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, SeqCst);
    writer.join().unwrap();
    watch.join().unwrap();
    // The stream's timing poll (every 100 ms) passes the count on.
    std::thread::sleep(Duration::from_millis(300));
    let m = metrics(p);
    println!(
        "{{\"server_underflows\":{},\"underruns\":{},\"late_callbacks\":{},\"stream_errors\":{},\"recreates\":{},\"frames_played\":{}}}",
        m.server_underflows, m.underruns, m.late_callbacks, m.stream_errors, m.recreates, m.frames_played
    );
    assert_eq!(ap_destroy(p), AP_OK);
    println!("UNDERFLOW CHILD OK");
}
