//! The player's service thread: watches the output device and recreates the stream when it
//! changes (V1, V2, P1, debounce: decided by `watcher`, acted on here), and turns counter
//! changes into rate-limited log lines (C4, M2). Everything the audio callback may not do
//! happens here.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::device;
use crate::control::recreate;
use crate::control::shared::{Ask, Shared, StreamPhase};
use crate::control::watcher::{self, Action, Limits, Observation, Signals, WatcherState};
use crate::data::config::LogLevel;
use crate::data::events::{Event, EventKind};
use crate::data::state::Reason;

const EVERY: Duration = Duration::from_secs(5);
/// A route-change gap is measured only if the new device sounds within this long.
const GAP_WINDOW_NS: u64 = 3_000_000_000;

#[derive(Default)]
struct Seen {
    underruns: u64,
    stream_errors: u64,
    shape_mismatches: u64,
    resample_errors: u64,
    callback_errors: u64,
}

struct Watcher {
    /// What the decisions remember: last good device, cooldown, debounce, P1 window.
    state: WatcherState,
    limits: Limits,
    /// Route-change clock: when the old stream stopped (render-core ns).
    gap_from: Option<u64>,
    /// Output lost and found, and the sound-server connection rebuilt.
    outage: crate::control::outage::Outage,
}

pub fn run(shared: Arc<Shared>) {
    let mut seen = Seen::default();
    let mut w = Watcher {
        state: WatcherState::default(),
        limits: Limits::from_config(&shared.cfg),
        gap_from: None,
        outage: crate::control::outage::Outage::new(),
    };
    let poll = Duration::from_millis(shared.cfg.device_poll_ms as u64);
    let mut idle = crate::control::idle::Idle::default();
    let mut fallback = crate::control::fallback::Fallback::default();
    let mut priority = crate::control::priority::Priority::default();
    shared.core.calibrate_clock();
    watch_server(&shared);
    loop {
        let wait = match &w.state.pending {
            Some(p) => w
                .limits
                .debounce
                .saturating_sub(p.since.elapsed())
                .max(Duration::from_millis(5)),
            None if w.gap_from.is_some() => Duration::from_millis(10),
            // Suspended (idle past the keep-awake window): a write wakes this thread at once,
            // so the device is only looked at for what the next write finds, rarely, and not
            // at all between a server's change events.
            None if shared.service.phase.get() == StreamPhase::Suspended => {
                if shared.service.server_events.load(Relaxed) {
                    poll.max(SUSPENDED_POLL_WATCHED)
                } else {
                    poll.max(SUSPENDED_POLL)
                }
            }
            None => poll,
        };
        let wait = idle.next_wait(&shared).map_or(wait, |w| wait.min(w));
        // The callback clock's first calibration needs a second reading soon after the first.
        let wait = if shared.core.clock_calibrated() {
            wait
        } else {
            wait.min(Duration::from_millis(5))
        };
        shared.requests.wait(wait);
        if shared.closing.load(Relaxed) {
            report(&shared, &mut seen);
            break;
        }
        shared.core.calibrate_clock();
        idle.tick(&shared);
        fallback.tick(&shared);
        priority.tick(&shared);
        w.watch(&shared);
        w.outage.tick(&shared);
        w.measure_gap(&shared);
        report(&shared, &mut seen);
    }
}

impl Watcher {
    fn watch(&mut self, shared: &Arc<Shared>) {
        // A dead sound-server connection is rebuilt first: every query on it fails.
        if let Some(info) = self.outage.reconnect(shared) {
            watch_server(shared);
            self.state.reconnected(info.clone());
            self.switch(shared, Reason::ServerRestarted, info.id);
            return;
        }
        let now = Instant::now();
        let reported_lost = shared.requests.take(Ask::StreamLost);
        let lost = reported_lost && !still_running(shared);
        let requested = shared.requests.take(Ask::Device);
        let signals = Signals {
            verify: shared.requests.take(Ask::Verify) || reported_lost,
            lost,
            requested,
        };
        if !watcher::should_query(&self.state, signals, now) {
            return;
        }
        // The only I/O of detection; done with no lock held (L2).
        let held = device::held_device(&shared.service.state.load());
        let target = device::query_target_holding(
            &shared.service.host(),
            shared.service.pinned().as_deref(),
            held.as_ref(),
        );
        let stream = shared.service.state.load_full();
        let decision = watcher::decide(
            Observation {
                signals,
                target,
                answered: Instant::now(),
                stream: &stream,
                moved_to: shared.service.moved_to(),
                pinned: shared.service.pinned().is_some(),
            },
            &mut self.state,
            &self.limits,
            now,
        );
        if let Some(e) = decision.query_failed {
            shared.stats.device_query_failures.fetch_add(1, Relaxed);
            shared.log_limited(
                "device-query",
                EVERY,
                LogLevel::Warn,
                &format!("device query failed: {e}; using the last known device"),
            );
        }
        match decision.action {
            Action::NoKnownDevice
            | Action::Unchanged
            | Action::DebounceStarted
            | Action::Debouncing => {}
            Action::Refused { reason, recent } => {
                shared.stats.recreates_refused.fetch_add(1, Relaxed);
                shared.log_limited("recreate-limit", EVERY, LogLevel::Warn, &format!(
                    "recreate ({}) held back: {recent} recreates in the last minute (max_recreate_per_minute)",
                    reason.as_str()
                ));
            }
            Action::Recreate { reason, target } => self.switch(shared, reason, target),
            Action::Followed { device } => self.followed(shared, &device),
        }
    }

    /// Recreates the stream on `id` and reports it (route-change clock, event).
    fn switch(&mut self, shared: &Arc<Shared>, reason: Reason, id: String) {
        if let Ok(r) = recreate::recreate(shared, reason, Some(id)) {
            if let Some(t) = r.stopped_ns {
                shared.core.await_first_audio();
                self.gap_from = Some(t);
            }
            shared.events.delivery.deliver(Event {
                kind: EventKind::DeviceChanged,
                id: shared.service.state.load().generation,
                frame: shared.core.position(),
                heard_ns: shared.core.now_ns(),
            });
        }
    }

    /// The server moved the stream to the new default itself, at the format it plays at:
    /// it plays on there (no recreate, no gap); its description and the application follow.
    fn followed(&mut self, shared: &Arc<Shared>, device: &device::DeviceInfo) {
        shared.service.lock_slot().moved(
            &device.id,
            &device.name,
            device.rate,
            &shared.service.state,
        );
        shared.stats.server_moves.fetch_add(1, Relaxed);
        shared.log(
            LogLevel::Info,
            &format!(
                "the server moved the stream to '{}' ({} Hz, {} ch): kept, no recreate",
                device.id, device.rate, device.channels
            ),
        );
        shared.events.delivery.deliver(Event {
            kind: EventKind::DeviceChanged,
            id: shared.service.state.load().generation,
            frame: shared.core.position(),
            heard_ns: shared.core.now_ns(),
        });
    }

    /// Route-change gap (M2): from the old stream's stop to the new device's first sound.
    fn measure_gap(&mut self, shared: &Shared) {
        let Some(from) = self.gap_from else { return };
        if let Some(first) = shared.core.first_audio_ns() {
            let gap_us = first.saturating_sub(from) / 1000;
            shared.stats.last_gap_us.store(gap_us, Relaxed);
            shared.log(
                LogLevel::Info,
                &format!("route change gap {:.1} ms", gap_us as f64 / 1000.0),
            );
            self.gap_from = None;
        } else if shared.core.now_ns().saturating_sub(from) > GAP_WINDOW_NS {
            self.gap_from = None; // nothing was playing: there was no gap to hear
        }
    }
}

/// A stream error (a failed latency poll under load, say) is not proof the stream died:
/// it is lost only if its callbacks stopped. Waits about three periods to see.
fn still_running(shared: &Shared) -> bool {
    if shared.service.phase.get() == StreamPhase::Suspended {
        return false;
    }
    let before = shared.counters.callbacks.load(Relaxed);
    std::thread::sleep(Duration::from_millis(
        shared.cfg.target_latency_ms.max(10) as u64 * 3 / 2,
    ));
    let running = shared.counters.callbacks.load(Relaxed) > before;
    if running {
        shared.log_limited(
            "stream-error",
            EVERY,
            LogLevel::Warn,
            "the stream reported an error but its callbacks keep running: not recreating it",
        );
    }
    running
}

/// Takes what the callback queued: frees retired scratch here (never on the audio thread)
/// and delivers the events that have been heard. Returns how long until the next one is.
pub fn deliver(shared: &Shared) -> Option<Duration> {
    // Read first: every event of a command at or before `pos` is in the queue by now.
    let pos = shared.core.position();
    {
        let mut q = shared
            .events
            .from_callback
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while let Ok(e) = q.0.pop() {
            let unheard = shared.events.delivery.push_pending(e);
            shared.counters.markers_flushed.fetch_add(unheard, Relaxed);
        }
        while let Ok(buf) = q.1.pop() {
            drop(buf);
        }
    }
    let now = shared.core.now_ns();
    let next = shared
        .events
        .delivery
        .deliver_due(now)
        .map(|t| Duration::from_nanos(t.saturating_sub(now)));
    // The callback cannot wake this thread, so while audio is in flight it is polled: often
    // while an event is coming (a flush finishing, the callbacks nearing a queued marker or
    // utterance boundary), rarely otherwise (only an underrun can come then). Waking 200
    // times a second regardless was 0.2% of a core.
    let busy = shared.core.position() < shared.counters.ring_frames_written.load(Relaxed)
        || shared.core.unheard_ns(now) > 0
        || shared.core.flush_pending();
    let poll = busy.then(|| {
        if shared.core.flush_pending() {
            return POLL_SOON;
        }
        let rate = u64::from(shared.core.ring_rate().max(1));
        shared
            .events
            .delivery
            .next_expected(pos)
            .map_or(POLL_QUIET, |at| {
                Duration::from_nanos((at - pos).saturating_mul(1_000_000_000) / rate)
            })
            .clamp(POLL_SOON, POLL_QUIET)
    });
    match (next, poll) {
        (Some(n), Some(p)) => Some(n.min(p).max(Duration::from_millis(1))),
        (Some(n), None) => Some(n.max(Duration::from_millis(1))),
        (None, p) => p,
    }
}

/// The event thread's polling while an event is coming, and while audio plays with none due
/// (underrun events: delivered at most this late).
const POLL_SOON: Duration = Duration::from_millis(5);
const POLL_QUIET: Duration = Duration::from_millis(50);
/// How often a suspended player looks at the output device: the server tells of changes
/// where it can (each poll is a round trip, 4-6 wakeups across the threads).
const SUSPENDED_POLL: Duration = Duration::from_secs(1);
const SUSPENDED_POLL_WATCHED: Duration = Duration::from_secs(10);

/// Subscribes to the server's change events on the current connection.
fn watch_server(shared: &Arc<Shared>) {
    let requests = shared.requests.clone();
    // Each change: one flag and one wake (on the connection's thread).
    let on_change = move || {
        requests.ask(Ask::Verify);
    };
    let watched = crate::control::device::watch_server(&shared.service.host(), on_change);
    shared.service.server_events.store(watched, Relaxed);
}
/// The event thread's wait with nothing in flight (whatever starts something wakes it).
const IDLE_WAIT: Duration = Duration::from_secs(5);

fn report(shared: &Shared, seen: &mut Seen) {
    let c = &*shared.counters;
    let check = |now: u64, last: &mut u64, key: &'static str, level: LogLevel, what: &str| {
        if now > *last {
            let msg = format!("{} {what} (total {now})", now - *last);
            // Only advance what was reported, so a suppressed line is summed into the next.
            if shared.log_limited(key, EVERY, level, &msg) {
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

/// The event thread: delivers events at the moment they are heard. Separate from the service
/// thread, whose device queries (blocking server round trips) would otherwise delay them.
pub fn run_events(shared: Arc<Shared>) {
    loop {
        let wait = match deliver(&shared) {
            Some(wait) => wait,
            None => {
                // Nothing queued, playing or due: sleep until a writer queues audio, a
                // marker or flush is asked for, or close. Looked at again with the flag up,
                // so a write in between is seen or wakes us. Polling 20 times a second here
                // was most of an idle player's wakeups.
                shared.events.idle.store(true, SeqCst);
                deliver(&shared).unwrap_or(IDLE_WAIT)
            }
        };
        shared.events.wake.wait(wait);
        shared.events.idle.store(false, SeqCst);
        if shared.closing.load(Relaxed) {
            deliver(&shared);
            break;
        }
    }
}
