//! The player's service thread: turns counter changes into rate-limited log lines (C4, M2).
//! Device watching and recreates join it in the device-change work.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::config::LogLevel;
use crate::player::Shared;

const TICK: Duration = Duration::from_millis(100);
const EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Seen {
    underruns: u64,
    stream_errors: u64,
    shape_mismatches: u64,
    resample_errors: u64,
    callback_errors: u64,
}

pub fn run(shared: Arc<Shared>) {
    let mut seen = Seen::default();
    loop {
        shared.wake.wait(TICK);
        report(&shared, &mut seen);
        if shared.closing.load(Relaxed) {
            break;
        }
    }
}

fn report(shared: &Shared, seen: &mut Seen) {
    let c = &*shared.counters;
    let mut log = shared.logger.lock().unwrap_or_else(|e| e.into_inner());
    let mut check = |now: u64, last: &mut u64, key: &'static str, level: LogLevel, what: &str| {
        if now > *last {
            let msg = format!("{} {what} (total {now})", now - *last);
            // Only advance what was reported, so a suppressed line is summed into the next.
            if log.limited(key, EVERY, level, &msg) {
                *last = now;
            }
        }
    };
    check(
        c.underruns.load(Relaxed),
        &mut seen.underruns,
        "underrun",
        LogLevel::Warn,
        "underrun(s): the ring ran dry while speech was playing",
    );
    check(
        c.stream_errors.load(Relaxed),
        &mut seen.stream_errors,
        "device",
        LogLevel::Warn,
        "device stream error(s)",
    );
    check(
        c.shape_mismatches.load(Relaxed),
        &mut seen.shape_mismatches,
        "shape",
        LogLevel::Error,
        "callback(s) with a buffer shape the stream was not opened with",
    );
    check(
        c.resample_errors.load(Relaxed),
        &mut seen.resample_errors,
        "resample",
        LogLevel::Error,
        "resample error(s)",
    );
    check(
        c.callback_errors.load(Relaxed),
        &mut seen.callback_errors,
        "callback",
        LogLevel::Error,
        "callback error(s)",
    );
}
