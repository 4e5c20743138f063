//! Shared test support: the virtual device as tests drive it, the frame-accounting check, a
//! private headless PulseAudio server, recording what a sink played, and analysing it. Tests
//! never change their own environment (cpal reads it when a host is created, and the test
//! process is multi-threaded): whatever talks to the server runs as a child process with the
//! server's environment.

// Every test binary compiles all of this and uses a part.
#![allow(dead_code)]

pub mod accounting;
pub mod analysis;
pub mod pulse;
pub mod speech;
pub mod virtual_host;

use std::sync::{Mutex, MutexGuard};

/// Runs a binary's tests one at a time. Real-audio tests share two cores: one at a time keeps
/// a busy machine from turning into underruns the library did not cause. C ABI tests: a freed
/// handle's address may be reused for another test's new handle (a stale-handle check would
/// pass for the wrong reason), some capture fd 2, and their time bounds want a quiet process.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `"key":number` from the flat JSON object `applay --json` prints.
pub fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let i = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    let rest = &json[i..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end]
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("{key} not a number in {json}"))
}

pub fn json_str(json: &str, key: &str) -> String {
    let pat = format!("\"{key}\":\"");
    let i = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[i..].split('"').next().unwrap().to_string()
}

/// What one run of a real-audio check found wrong, and whether the player reported that the
/// machine starved it meanwhile (a server underflow, a late callback, an underrun).
pub type Starvable<T> = Result<T, (String, bool)>;

/// Runs `once` up to three times, for the checks of what was heard that a loaded machine can
/// break without the library being at fault: a gap or a click can also be the server playing
/// silence because a period came late, which the player counts. A failing run that was
/// starved is run again; a failure in a run with no starvation reported panics at once.
/// `Some` holds the first passing run's value; `None` means every run failed and each was
/// starved: what was heard cannot tell on the library (said on stderr), and the caller's
/// remaining checks are skipped. Loaded CI runs on this machine kind gave 3-15 server
/// underflows per 3 s tone even on code known good.
pub fn rerun_if_starved<T>(what: &str, mut once: impl FnMut() -> Starvable<T>) -> Option<T> {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match once() {
            Ok(v) => return Some(v),
            Err((why, false)) => panic!("{what}: {why}"),
            Err((why, true)) if attempt < ATTEMPTS => {
                eprintln!(
                    "{what}, attempt {attempt}: {why}\nthe player reports it was starved: again"
                );
            }
            Err((why, true)) => {
                eprintln!(
                    "{what}: inconclusive: all {ATTEMPTS} runs starved by the machine; last: {why}"
                );
            }
        }
    }
    None
}
