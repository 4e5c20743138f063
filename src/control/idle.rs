//! Idle suspend: the device stream is paused (corked) after the keep-awake window
//! (`keep_awake_ms`, or `idle_suspend_ms`) with nothing queued or playing, and resumed when
//! the writing side asks, with the optional wake pre-roll of silence. Runs on the service thread; the
//! stream is taken out of the slot for the pause/play call so no I/O happens under the slot
//! lock (L2).

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use cpal::traits::StreamTrait;

use crate::control::shared::{Ask, Shared, StreamPhase};
use crate::data::config::LogLevel;
use crate::thread_role::debug_assert_role;

#[derive(Default)]
pub struct Idle {
    since: Option<Instant>,
    /// When a resume was asked for (render-core ns), until its first audio is heard.
    waking_from: Option<u64>,
}

/// Pauses or plays the installed stream with the slot lock released around the call.
fn with_stream(shared: &Shared, play: bool) -> bool {
    let Some(stream) = shared.service.lock_slot().stream.take() else {
        return false;
    };
    let ok = if play {
        stream.play().is_ok()
    } else {
        stream.pause().is_ok()
    };
    let mut slot = shared.service.lock_slot();
    if slot.stream.is_none() {
        slot.stream = Some(stream);
    }
    ok
}

impl Idle {
    pub fn tick(&mut self, shared: &Shared) {
        debug_assert_role!(Service);
        if shared.requests.take(Ask::Resume) && shared.service.phase.get() == StreamPhase::Suspended
        {
            let asked = shared.core.now_ns();
            shared.core.await_first_audio();
            shared.core.request_wake_silence(shared.cfg.wake_preroll_ms);
            with_stream(shared, true);
            shared.service.phase.resume();
            self.waking_from = Some(asked);
            self.since = None;
            shared.log(LogLevel::Debug, "resumed the device stream");
        }
        if let Some(from) = self.waking_from {
            if let Some(first) = shared.core.first_audio_ns() {
                shared
                    .stats
                    .last_wake_us
                    .store(first.saturating_sub(from) / 1000, Relaxed);
                self.waking_from = None;
            }
        }
        let limit = shared.cfg.suspend_after_ms();
        if limit == 0 || shared.service.phase.get() != StreamPhase::Running {
            return;
        }
        let c = &shared.counters;
        let now_ns = shared.core.now_ns();
        let idle = shared.core.position() >= c.ring_frames_written.load(Acquire)
            && shared.core.unheard_ns(now_ns) == 0;
        if !idle {
            self.since = None;
            return;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_millis(limit as u64) && with_stream(shared, false) {
            shared.service.phase.suspend();
            shared.log(LogLevel::Debug, "idle: paused the device stream");
            // A write may have raced the pause: honour it on the next tick.
            if shared.counters.ring_frames_written.load(Acquire) > shared.core.position() {
                shared.requests.ask(Ask::Resume);
            }
        }
    }

    /// How soon the service thread should look again.
    pub fn next_wait(&self, shared: &Shared) -> Option<Duration> {
        if self.waking_from.is_some() {
            return Some(Duration::from_millis(2));
        }
        let limit = shared.cfg.suspend_after_ms() as u64;
        match self.since {
            Some(t) if limit > 0 && shared.service.phase.get() == StreamPhase::Running => Some(
                Duration::from_millis(limit)
                    .saturating_sub(t.elapsed())
                    .max(Duration::from_millis(5)),
            ),
            _ => None,
        }
    }
}
