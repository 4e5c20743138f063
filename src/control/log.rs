//! Deferred, rate-limited logging (SPEC C4, M2). Lines are formatted and delivered on the
//! service thread or a caller's thread, never on the audio thread.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::data::config::{LogLevel, LogSink};

pub struct Logger {
    sink: Option<LogSink>,
    min: LogLevel,
    last: HashMap<&'static str, Instant>,
}

impl Logger {
    pub fn new(sink: Option<LogSink>, min: LogLevel) -> Self {
        Logger {
            sink,
            min,
            last: HashMap::new(),
        }
    }

    pub fn log(&self, level: LogLevel, msg: &str) {
        if level <= self.min {
            if let Some(s) = &self.sink {
                s(level, msg);
            }
        }
    }

    /// Logs at most once per `every` for the given key; returns whether it logged.
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
                self.log(level, msg);
                true
            }
        }
    }
}
