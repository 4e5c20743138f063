//! Deferred, rate-limited logging (SPEC C4, M2). Owns the log sink, the per-key limits and
//! the budget every line draws from. Lines are formatted and delivered on the service thread
//! or a caller's thread, never on the audio thread.
//!
//! Two limits: `limited` keys a message kind to at most one line per period, and every line,
//! keyed or not, draws from one budget (`BURST` lines, refilled at `PER_SECOND`), so no
//! message, however it is logged, can flood the application's log. Lines over the budget are
//! counted and the next line that fits says how many were dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::data::config::{LogLevel, LogSink};

/// Lines that may be logged back to back.
const BURST: u32 = 50;
/// Lines per second the budget refills by.
const PER_SECOND: u32 = 10;

pub struct Logger {
    sink: Option<LogSink>,
    min: LogLevel,
    last: HashMap<&'static str, Instant>,
    /// Lines that may be logged now (at most `BURST`); one comes back every 1/PER_SECOND s.
    budget: u32,
    refilled: Instant,
    dropped: u64,
}

impl Logger {
    pub fn new(sink: Option<LogSink>, min: LogLevel) -> Self {
        Logger {
            sink,
            min,
            last: HashMap::new(),
            budget: BURST,
            refilled: Instant::now(),
            dropped: 0,
        }
    }

    /// Logs `msg` unless the budget is spent: then it is counted, reported with the next line
    /// that fits, and this returns false.
    pub fn log(&mut self, level: LogLevel, msg: &str) -> bool {
        if level > self.min {
            return true;
        }
        let Some(sink) = &self.sink else { return true };
        let now = Instant::now();
        let step = Duration::from_millis(1000 / PER_SECOND as u64);
        let refill = (now.duration_since(self.refilled).as_millis() / step.as_millis()) as u32;
        self.budget = self.budget.saturating_add(refill).min(BURST);
        self.refilled = if self.budget == BURST {
            now
        } else {
            self.refilled + step * refill
        };
        if self.budget == 0 {
            self.dropped += 1;
            return false;
        }
        self.budget -= 1;
        if self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            sink(
                LogLevel::Warn,
                &format!("{n} log line(s) dropped: more than {PER_SECOND} a second"),
            );
        }
        sink(level, msg);
        true
    }

    /// Logs at most once per `every` for the given key; returns whether it logged (false also
    /// when the shared budget dropped the line).
    pub fn limited(
        &mut self,
        key: &'static str,
        every: Duration,
        level: LogLevel,
        msg: &str,
    ) -> bool {
        let now = Instant::now();
        match self.last.get(key) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                self.last.insert(key, now);
                self.log(level, msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn capture() -> (Logger, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let sink: LogSink = Arc::new(move |_, m: &str| l.lock().unwrap().push(m.to_string()));
        (Logger::new(Some(sink), LogLevel::Debug), lines)
    }

    #[test]
    fn every_message_draws_from_one_budget() {
        let (mut log, lines) = capture();
        let start = Instant::now();
        for i in 0..100_000 {
            log.log(LogLevel::Error, &format!("line {i}"));
        }
        let secs = start.elapsed().as_secs_f64();
        let got = lines.lock().unwrap().len() as f64;
        // The burst, plus what refilled while the loop ran (plus one report line per refill).
        let most = BURST as f64 + 2.0 * (secs * PER_SECOND as f64).ceil();
        assert!(got <= most, "{got} lines in {secs:.3} s, at most {most}");
        assert!(got >= BURST as f64, "{got} lines");
        // Once the budget refills, the next line says how many were dropped.
        std::thread::sleep(Duration::from_millis(1000 / PER_SECOND as u64 + 10));
        assert!(log.log(LogLevel::Info, "after"));
        let l = lines.lock().unwrap();
        let n = l.len();
        assert_eq!(l[n - 1], "after");
        assert!(
            l[n - 2].ends_with(&format!(
                "log line(s) dropped: more than {PER_SECOND} a second"
            )),
            "{:?}",
            l[n - 2]
        );
    }

    #[test]
    fn keyed_limit_and_budget_report_whether_they_logged() {
        let (mut log, lines) = capture();
        let every = Duration::from_secs(60);
        assert!(log.limited("k", every, LogLevel::Warn, "first"));
        assert!(!log.limited("k", every, LogLevel::Warn, "second"));
        for _ in 0..BURST {
            log.log(LogLevel::Warn, "x");
        }
        assert!(!log.limited("other", every, LogLevel::Warn, "over budget"));
        assert_eq!(lines.lock().unwrap()[0], "first");
        assert_eq!(lines.lock().unwrap().len(), BURST as usize);
    }
}
