//! Issue 12 on a private PulseAudio server: connections to the server do not outlive the
//! players and device lists that opened them; server round trips stay bounded while the
//! server is frozen (SIGSTOP).
//!
//! The workloads run in a child process that has the server's environment from birth (tests
//! never change their own environment: see tests/common/mod.rs); the child counts its own
//! threads and file descriptors.

mod common;

use std::process::{Output, Stdio};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use audioplay::ffi::config::{ap_config_init, ApConfig};
use audioplay::ffi::devices::{ap_list_devices, ApDeviceInfo};
use audioplay::ffi::handle::ApPlayer;
use audioplay::ffi::player::{ap_create, ap_destroy};
use audioplay::ffi::status::ApStatus::{self, AP_OK};
use common::pulse::{PulseServer, S48};
use common::serial;

/// Runs the ignored test `name` of this binary in a child process with the server's
/// environment; returns its output once it exits.
fn run_child(server: &PulseServer, name: &str, envs: &[(&str, String)]) -> Output {
    let mut c = server.command(std::env::current_exe().unwrap());
    c.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn check_child(out: &Output, marker: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(marker),
        "child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn default_config() -> ApConfig {
    // SAFETY: ApConfig is plain data; ap_config_init overwrites every field.
    let mut c: ApConfig = unsafe { std::mem::zeroed() };
    assert_eq!(ap_config_init(&mut c), AP_OK);
    c
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Open descriptors (the directory handle reading /proc/self/fd is one of them, every time).
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Clients connected to the server, as `pactl` (itself one of them) sees it.
fn server_clients() -> usize {
    let o = std::process::Command::new("pactl")
        .args(["list", "short", "clients"])
        .output()
        .expect("pactl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().count()
}

fn create_destroy() {
    let cfg = default_config();
    let mut p: *mut ApPlayer = null_mut();
    assert_eq!(ap_create(&cfg, &mut p), AP_OK);
    assert_eq!(ap_destroy(p), AP_OK);
}

fn list_devices() -> ApStatus {
    // SAFETY: ApDeviceInfo is plain data; the library fills what it reports.
    let mut out: [ApDeviceInfo; 8] = unsafe { std::mem::zeroed() };
    let mut n = 0usize;
    ap_list_devices(out.as_mut_ptr(), out.len(), &mut n)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    threads: usize,
    fds: usize,
    clients: usize,
}

fn counts() -> Counts {
    Counts {
        threads: threads(),
        fds: fds(),
        clients: server_clients(),
    }
}

/// Waits up to `limit` for the counts to come back to `want` (threads exit and the server
/// notices closed sockets asynchronously); returns the last counts seen.
fn settle(want: Counts, limit: Duration) -> (Counts, Duration) {
    let t0 = Instant::now();
    loop {
        let c = counts();
        if c == want || t0.elapsed() > limit {
            return (c, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const CYCLES: usize = 1000;

/// Acceptance (issue 12, item 1): 1,000 create/destroy cycles of a real PulseAudio player and
/// 1,000 device lists leave the process's threads and descriptors and the server's client
/// list exactly as they were after the first cycle.
#[test]
fn players_and_device_lists_leave_no_connection_behind() {
    let _g = serial();
    let server = PulseServer::start(&[S48]);
    let out = run_child(&server, "lifecycle_child", &[]);
    check_child(&out, "LIFECYCLE OK");
}

#[test]
#[ignore = "run by players_and_device_lists_leave_no_connection_behind in a child process"]
fn lifecycle_child() {
    create_destroy();
    assert_eq!(list_devices(), AP_OK);
    std::thread::sleep(Duration::from_millis(200));
    let base = counts();
    let rss0 = rss_kib();
    println!("baseline after the first cycle: {base:?}, RSS {rss0} KiB");

    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..CYCLES {
        let t = Instant::now();
        create_destroy();
        slowest = slowest.max(t.elapsed());
    }
    let players = t0.elapsed();
    let after_players = counts();
    println!(
        "{CYCLES} create/destroy: {:.2} ms per cycle (slowest {:.1} ms); right after: {after_players:?}, RSS {} KiB",
        players.as_secs_f64() * 1e3 / CYCLES as f64,
        slowest.as_secs_f64() * 1e3,
        rss_kib()
    );

    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..CYCLES {
        let t = Instant::now();
        assert_eq!(list_devices(), AP_OK);
        slowest = slowest.max(t.elapsed());
    }
    let lists = t0.elapsed();
    println!(
        "{CYCLES} ap_list_devices: {:.2} ms per call (slowest {:.1} ms); right after: threads {}, fds {}",
        lists.as_secs_f64() * 1e3 / CYCLES as f64,
        slowest.as_secs_f64() * 1e3,
        threads(),
        fds()
    );

    let (end, waited) = settle(base, Duration::from_secs(3));
    let rss1 = rss_kib();
    println!(
        "after {waited:.2?} of settling: {end:?} (baseline {base:?}); RSS {rss0} -> {rss1} KiB"
    );
    assert_eq!(end, base, "threads, descriptors or server clients leaked");
    println!("LIFECYCLE OK");
}
