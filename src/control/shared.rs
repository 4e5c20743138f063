//! What the player's threads share: the ring's writing end (behind the writer's lock), the
//! stream slot (behind L1), published stream state, and the flags and wakes by which any
//! thread asks the service thread for work. Owned by the player; every control thread holds
//! an `Arc` of it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::control::delivery::Delivery;
use crate::control::lifecycle::Gate;
use crate::control::log::Logger;
use crate::data::config::{Config, LogLevel};
use crate::data::counters::{Counters, DeviceStats};
use crate::data::events::Event;
use crate::data::state::StreamState;
use crate::realtime::command::Garbage;
use crate::realtime::render::RenderCore;
use crate::thread_role::debug_assert_not_audio;

/// L1: the device stream and what describes it (started, device id, rates, generation),
/// behind the slot's lock and nothing else. The description is the one source of the state
/// published in [`Shared::state`] for lock-free readers: R3 and a failed recreate publish a
/// copy of it, with the lock held.
#[derive(Default)]
pub struct StreamSlot {
    pub stream: Option<cpal::Stream>,
    pub state: StreamState,
}

/// L3: what runs under the slot's lock is a method of the slot, handed only the atomics and
/// the publication it touches: it cannot reach `Shared` (so neither the lock again nor the
/// host, the logger or any I/O).
impl StreamSlot {
    /// R1: empties the slot, marks `recreating`, and reserves the next generation. The
    /// returned stream is closed by phase 2 with the lock released.
    pub fn begin(
        &mut self,
        phase: &Phase,
        next_generation: &AtomicU64,
    ) -> (Option<cpal::Stream>, u64) {
        phase.begin_recreate();
        let generation = next_generation.fetch_add(1, AcqRel) + 1;
        self.state.started = false;
        (self.stream.take(), generation)
    }

    /// R3: installs the running stream, lets its generation's callbacks render (C1), and
    /// publishes its description.
    pub fn install(
        &mut self,
        stream: cpal::Stream,
        state: StreamState,
        core: &RenderCore,
        published: &ArcSwap<StreamState>,
    ) {
        self.stream = Some(stream);
        core.publish_generation(state.generation);
        self.state = state;
        self.publish(published);
    }

    /// The server moved the running stream to device `id` (PulseAudio moves the default
    /// sink's streams to a new default): the same stream plays on, without a gap, so only its
    /// description changes.
    pub fn moved(
        &mut self,
        id: &str,
        name: &str,
        device_rate: u32,
        published: &ArcSwap<StreamState>,
    ) {
        self.state.device_id = id.to_string();
        self.state.device_name = name.to_string();
        self.state.device_rate = device_rate;
        self.publish(published);
    }

    /// R3 when phase 2 failed or timed out: the slot stays empty, readers see no stream (the
    /// rest of the description is the last stream's).
    pub fn mark_stopped(&mut self, published: &ArcSwap<StreamState>) {
        self.state.started = false;
        self.publish(published);
    }

    fn publish(&self, published: &ArcSwap<StreamState>) {
        published.store(Arc::new(self.state.clone()));
    }
}

/// What any thread asks of the service thread: flags it takes (clearing them) on its next
/// tick, and the wake that cuts its sleep short. The only way in: nobody else reads the bits.
#[derive(Default)]
pub struct ServiceRequests {
    bits: AtomicU32,
    wake: Wake,
}

/// One thing asked of the service thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Ask {
    /// A stream's error callback saw its device gone: the watcher checks at once.
    StreamLost = 1,
    /// `set_device` asked for a move.
    Device = 2,
    /// A write arrived while the stream is suspended for idleness.
    Resume = 4,
    /// A stream's error callback saw an error or a device change: check the device, even
    /// during a failed-query cooldown.
    Verify = 8,
}

impl ServiceRequests {
    /// Asks, and wakes the service thread unless it was asked already (then a wake is on its
    /// way or the thread is about to take it). Returns whether it was asked already.
    pub fn ask(&self, what: Ask) -> bool {
        let already = self.bits.fetch_or(what as u32, AcqRel) & what as u32 != 0;
        if !already {
            self.wake.notify();
        }
        already
    }

    /// Takes the request (service thread): whether it was asked since the last take.
    pub fn take(&self, what: Ask) -> bool {
        self.bits.fetch_and(!(what as u32), AcqRel) & what as u32 != 0
    }

    /// Wakes the service thread for work that has no flag of its own (an utterance starting,
    /// pause, resume, flush, close).
    pub fn notify(&self) {
        self.wake.notify();
    }

    /// Service thread: sleeps until woken or `timeout` (what it was woken for is in the
    /// flags, or in state it looks at anyway).
    pub fn wait(&self, timeout: Duration) {
        self.wake.wait(timeout);
    }
}

/// Where the device stream is in its life, published by the service thread (and by player
/// creation, before that thread starts). Each transition is one method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamPhase {
    /// A stream is installed and playing, or none could be opened (`StreamState::started`
    /// says which); the watcher retries the latter.
    Running = 0,
    /// R1-R3 in progress: the old stream is out of the slot, the new one not yet in.
    Recreating = 1,
    /// Paused for idleness (`idle_suspend_ms`); a write asks for it back.
    Suspended = 2,
}

/// The published [`StreamPhase`].
#[derive(Default)]
pub struct Phase(AtomicU8);

impl Phase {
    /// The phase now.
    pub fn get(&self) -> StreamPhase {
        match self.0.load(Acquire) {
            1 => StreamPhase::Recreating,
            2 => StreamPhase::Suspended,
            _ => StreamPhase::Running,
        }
    }

    /// R1 (under the slot lock).
    pub fn begin_recreate(&self) {
        self.0.store(StreamPhase::Recreating as u8, Release);
    }

    /// After R3 or a failed recreate: a new stream (or none) is not suspended, whatever the
    /// old one was.
    pub fn end_recreate(&self) {
        self.0.store(StreamPhase::Running as u8, Release);
    }

    /// Idle suspend: only a running stream is suspended. Returns whether it was.
    pub fn suspend(&self) -> bool {
        self.swap_from(StreamPhase::Running, StreamPhase::Suspended)
    }

    /// Back from idle suspend. Returns whether it was suspended.
    pub fn resume(&self) -> bool {
        self.swap_from(StreamPhase::Suspended, StreamPhase::Running)
    }

    fn swap_from(&self, from: StreamPhase, to: StreamPhase) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, AcqRel, Acquire)
            .is_ok()
    }
}

/// Wakes a thread early (a stream error, shutdown).
#[derive(Default)]
pub struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits until notified or `timeout`, and consumes the notification. What it was for is
    /// in state the waiter looks at anyway.
    pub fn wait(&self, timeout: Duration) {
        let g = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |f| !*f)
            .unwrap_or_else(|e| e.into_inner());
        *g = false;
    }
}

/// What the player's threads share, grouped by who writes it. Each group says its owner;
/// nothing outside its owner writes it (the atomics make reads safe from anywhere).
pub struct Shared {
    pub cfg: Config,
    /// The render core the audio callback runs (its own synchronisation: handoff, queues).
    pub core: Arc<RenderCore>,
    /// Counted by the callback, read by anyone.
    pub counters: Arc<Counters>,
    /// Recreate and watch statistics, written by the service thread.
    pub stats: DeviceStats,
    /// The service thread's: the slot, the host connection, what it publishes.
    pub service: ServiceOwned,
    /// Requests to the service thread and its wake (shared with streams' error callbacks).
    pub requests: Arc<ServiceRequests>,
    /// What the event thread pumps.
    pub events: EventPump,
    /// What the writers and the control calls that interrupt them signal each other.
    pub writers: WriterSignals,
    /// Set once by `close`; every thread checks it.
    pub closing: AtomicBool,
    pub logger: Mutex<Logger>,
    /// Every call into the host's `event_fn`/`log_fn` passes it; closed by `close`.
    pub callbacks: Arc<Gate>,
}

/// Written by the service thread (and by player creation, before that thread starts).
pub struct ServiceOwned {
    /// The connection to the sound server (or the caller's host). Replaced whole when the
    /// server restarts; every user clones the `Arc` out and releases the lock at once.
    host: Mutex<Arc<cpal::Host>>,
    /// Opens a fresh connection to the sound server, for a player on the system's host;
    /// `None` for a host the caller gave (it cannot be rebuilt).
    pub connect: Option<crate::control::device::Connect>,
    slot: Mutex<StreamSlot>,
    /// The slot's description, published for lock-free readers (U3).
    pub state: ArcSwap<StreamState>,
    /// Running, recreating or suspended.
    pub phase: Phase,
    pub next_generation: AtomicU64,
    /// No output has played for `device_lost_timeout_ms`: writes and drains fail with
    /// `Error::NoOutput` until it is back.
    pub output_lost: AtomicBool,
    /// SPEC S3 moved resampling to the writing thread.
    pub producer_fallback: AtomicBool,
    /// The device the application chose (`set_device` writes it, then asks for a move),
    /// else the config's.
    pinned: Mutex<Option<String>>,
    /// The sound server tells this connection of its sink and default changes (subscribed),
    /// so the watcher need not poll for them.
    pub server_events: AtomicBool,
    /// The current stream's way to rewrite what its server already holds (PulseAudio), for
    /// a barge-in to fade from the frame playing now (issue 14 §6). Set at R3; it does not
    /// keep the stream or its connection alive.
    pub rewriter: Mutex<Option<cpal::platform::OutputRewriter>>,
    /// Where the server has moved the current stream (PulseAudio moves the default sink's
    /// streams to a new default, and one pinned elsewhere along with them). Set at R3.
    pub route: Mutex<Option<cpal::platform::OutputRoute>>,
}

impl ServiceOwned {
    pub fn new(
        host: cpal::Host,
        connect: Option<crate::control::device::Connect>,
        pinned: Option<String>,
    ) -> Self {
        ServiceOwned {
            server_events: AtomicBool::new(false),
            rewriter: Mutex::new(None),
            route: Mutex::new(None),
            host: Mutex::new(Arc::new(host)),
            connect,
            slot: Mutex::default(),
            state: ArcSwap::from_pointee(StreamState::default()),
            phase: Phase::default(),
            next_generation: AtomicU64::new(0),
            output_lost: AtomicBool::new(false),
            producer_fallback: AtomicBool::new(false),
            pinned: Mutex::new(pinned),
        }
    }

    /// L1: the only way to the stream slot.
    pub fn lock_slot(&self) -> MutexGuard<'_, StreamSlot> {
        debug_assert_not_audio!();
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current host (sound-server connection).
    pub fn host(&self) -> Arc<cpal::Host> {
        self.host.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a fresh connection in place of a dead one. The old one is dropped by the
    /// caller's last clone, with no lock held.
    pub fn replace_host(&self, host: cpal::Host) -> Arc<cpal::Host> {
        std::mem::replace(
            &mut *self.host.lock().unwrap_or_else(|e| e.into_inner()),
            Arc::new(host),
        )
    }

    /// The output the server moved the current stream to last, if it did.
    pub fn moved_to(&self) -> Option<String> {
        let route = self.route.lock().unwrap_or_else(|e| e.into_inner()).clone();
        route.and_then(|r| r.moved_to())
    }

    /// The device the application chose, if any.
    pub fn pinned(&self) -> Option<String> {
        self.pinned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `set_device`: the next move goes to `id` (None = follow the system default).
    pub fn pin(&self, id: Option<String>) {
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = id;
    }
}

/// The event thread's: events and garbage from the callback, delivery, and its wake.
pub struct EventPump {
    /// The consumer ends of the callback's event and garbage queues.
    pub from_callback: Mutex<(rtrb::Consumer<Event>, rtrb::Consumer<Garbage>)>,
    pub delivery: Delivery,
    /// Wakes the event thread (an utterance starting, shutdown).
    pub wake: Wake,
    /// The event thread is in its long idle wait (nothing queued, playing or coming): a
    /// writer that queues audio wakes it (`wake_if_idle`), since the callback cannot.
    pub idle: std::sync::atomic::AtomicBool,
}

impl EventPump {
    /// Wakes the event thread if it is in its idle wait. Writers call it after queuing audio
    /// (one atomic load when it is awake).
    pub fn wake_if_idle(&self) {
        if self.idle.load(std::sync::atomic::Ordering::SeqCst) {
            self.wake.notify();
        }
    }
}

/// Between writers and the calls that interrupt them.
#[derive(Default)]
pub struct WriterSignals {
    /// Bumped by every flush: a writer blocked for space returns with what it queued.
    pub flush_epoch: AtomicU64,
    /// Releases a writer waiting for room in the ring: a flush or close (the callback that
    /// frees room cannot signal; the writer sleeps until room should be there).
    pub room_wake: Wake,
    /// S3: the writer builds its producer resampler at its next write (the service thread
    /// never takes the writer's lock).
    pub producer_request: AtomicBool,
}

impl Shared {
    pub fn log(&self, level: LogLevel, msg: &str) {
        debug_assert_not_audio!();
        self.logger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log(level, msg);
    }

    /// S3 fallback: from the next write on, the writer resamples (the ring switches to float32
    /// at the stream rate in band, like a voice change). Only raises a flag: the service
    /// thread never waits for a writer; the writer builds its resampler on its own thread.
    pub fn enable_producer_resampling(&self) {
        self.writers.producer_request.store(true, Release);
    }

    /// Logs at most once per `every` for `key`; returns whether it logged.
    pub fn log_limited(
        &self,
        key: &'static str,
        every: Duration,
        level: LogLevel,
        msg: &str,
    ) -> bool {
        debug_assert_not_audio!();
        self.logger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .limited(key, every, level, msg)
    }
}
