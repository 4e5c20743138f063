//! Output outages (issue 12), owned by the service thread: noticing that nothing can play
//! (no stream, or a stream whose callbacks stopped: a sound server that died or froze),
//! telling the host (events at once; after `device_lost_timeout_ms`, `Error::NoOutput` from
//! writes and drains), and rebuilding the connection when a new server accepts clients.

use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::time::{Duration, Instant};

use crate::control::device::{self, DeviceInfo};
use crate::control::shared::{Shared, StreamPhase};
use crate::data::config::LogLevel;
use crate::data::events::{Event, EventKind};
use crate::thread_role::debug_assert_role;

/// A running (not suspended) stream whose callbacks have not come for this long has stopped:
/// its server died or froze. Periods are 1-500 ms; a callback comes at least every period.
const STALL: Duration = Duration::from_millis(600);
/// How often a dead connection is tried again: a new server is used within this of
/// accepting clients (a failed attempt costs one refused connect).
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

pub struct Outage {
    /// The callback count when last seen, and when it last moved.
    callbacks: u64,
    progress: Instant,
    /// Output has been lost since then.
    since: Option<Instant>,
    next_connect: Instant,
}

impl Outage {
    pub fn new() -> Self {
        Outage {
            callbacks: 0,
            progress: Instant::now(),
            since: None,
            next_connect: Instant::now(),
        }
    }

    /// Whether anything can play now. Stopped callbacks count only on a sound server's host
    /// (`Shared::connect`): a virtual device's callbacks run when its test drives them.
    fn output_lost_now(&mut self, shared: &Shared) -> bool {
        let now = Instant::now();
        let callbacks = shared.counters.callbacks.load(Relaxed);
        if callbacks != self.callbacks || shared.service.phase.get() != StreamPhase::Running {
            self.callbacks = callbacks;
            self.progress = now;
        }
        let stalled =
            shared.service.connect.is_some() && now.duration_since(self.progress) >= STALL;
        !shared.service.state.load().started || stalled
    }

    /// Notices outages and their end (every service tick).
    pub fn tick(&mut self, shared: &Shared) {
        debug_assert_role!(Service);
        let lost = self.output_lost_now(shared);
        let event = |kind| Event {
            kind,
            id: shared.service.state.load().generation,
            frame: shared.core.heard_frames(),
            heard_ns: shared.core.now_ns(),
        };
        match self.since {
            None if lost => {
                self.since = Some(Instant::now());
                shared.stats.outages.fetch_add(1, Relaxed);
                shared.log(
                    LogLevel::Warn,
                    "output lost: no stream is playing (sound server or device gone); queued audio waits",
                );
                shared.events.delivery.deliver(event(EventKind::OutputLost));
            }
            Some(t) if lost => {
                let ms = t.elapsed().as_millis() as u64;
                shared.stats.outage_ms.store(ms, Relaxed);
                let limit = shared.cfg.device_lost_timeout_ms as u64;
                if limit != 0 && ms >= limit && !shared.service.output_lost.swap(true, AcqRel) {
                    shared.log(
                        LogLevel::Error,
                        &format!(
                            "no output for {ms} ms: writes and drains fail (no audio output) until it is back"
                        ),
                    );
                    // Writers blocked for room and drains give up now.
                    shared.writers.room_wake.notify();
                }
            }
            Some(t) => {
                self.since = None;
                shared.service.output_lost.store(false, Release);
                shared.log(
                    LogLevel::Info,
                    &format!("output back after {} ms", t.elapsed().as_millis()),
                );
                shared
                    .events
                    .delivery
                    .deliver(event(EventKind::OutputRestored));
            }
            None => {}
        }
    }

    /// During an outage on a sound server's host: if the connection is dead and a server
    /// accepts clients again, puts a new connection in place and returns the device to play
    /// on (the caller recreates the stream there).
    pub fn reconnect(&mut self, shared: &Shared) -> Option<DeviceInfo> {
        debug_assert_role!(Service);
        let connect = shared.service.connect?;
        if !self.output_lost_now(shared) {
            return None;
        }
        let now = Instant::now();
        if now < self.next_connect {
            return None;
        }
        self.next_connect = now + RECONNECT_EVERY;
        let pinned = shared.service.pinned();
        if device::query_target(&shared.service.host(), pinned.as_deref()).is_ok() {
            return None; // the connection works: a device problem, not a server restart
        }
        let host = connect(&shared.cfg.identity.resolve()).ok()?;
        let info = device::query_target(&host, pinned.as_deref()).ok()?;
        // A frozen server that resumed meanwhile answers the new connection and the old one
        // alike: the old one, and its stream, are alive, and replacing them would cut what
        // the stream holds. Only a dead connection is replaced.
        if device::query_target(&shared.service.host(), pinned.as_deref()).is_ok() {
            return None;
        }
        drop(shared.service.replace_host(host));
        shared.stats.server_reconnects.fetch_add(1, Relaxed);
        shared.log(
            LogLevel::Info,
            &format!("reconnected to the sound server; playing on '{}'", info.id),
        );
        Some(info)
    }
}
