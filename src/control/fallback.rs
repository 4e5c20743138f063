//! SPEC S3: resampling stays in the callback only while the callback's resample time stays
//! low. The service thread watches the p95 of the resample-time histogram over each window
//! of callbacks; when it crosses `resample_p95_limit_us`, resampling moves to the writing
//! thread (U2) for the rest of the player's life, logged once (M2). The switch travels in
//! band like a voice change: audio already queued plays as it is.

use std::sync::atomic::Ordering::Relaxed;

use crate::control::shared::Shared;
use crate::data::config::{LogLevel, ResampleMode};
use crate::thread_role::debug_assert_role;

/// Callbacks per decision: about 1 s of 10 ms callbacks.
const WINDOW: u64 = 100;

#[derive(Default)]
pub struct Fallback {
    /// Resample-time bucket counts at the start of the window.
    last: Vec<u64>,
    done: bool,
}

impl Fallback {
    pub fn tick(&mut self, shared: &Shared) {
        debug_assert_role!(Service);
        if self.done || shared.cfg.resample_mode != ResampleMode::Callback {
            return;
        }
        let now = shared.counters.resample_time.counts();
        if self.last.len() != now.len() {
            self.last = now;
            return;
        }
        let window: Vec<u64> = now.iter().zip(&self.last).map(|(a, b)| a - b).collect();
        let n: u64 = window.iter().sum();
        if n < WINDOW {
            return;
        }
        self.last = now;
        let p95_ns = crate::data::counters::percentile_of(&window, 0.95);
        let limit_ns = shared.cfg.resample_p95_limit_us as u64 * 1000;
        if p95_ns <= limit_ns {
            return;
        }
        self.done = true;
        shared.service.producer_fallback.store(true, Relaxed);
        shared.enable_producer_resampling();
        shared.log(
            LogLevel::Warn,
            &format!(
                "resample fallback: callback resample p95 {:.1} us over {} callbacks exceeds {} us; resampling moves to the writing thread (SPEC S3, U2)",
                p95_ns as f64 / 1000.0,
                n,
                shared.cfg.resample_p95_limit_us
            ),
        );
    }
}
