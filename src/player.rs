//! The player: a ring that outlives device streams, a stream slot replaced through the
//! three-phase recreate, and a service thread that does everything the callback may not.

use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::control::delivery::Delivery;
use crate::control::device;
use crate::control::lifecycle::{Gate, Worker};
use crate::control::log::Logger;
use crate::control::recreate;
use crate::control::service;
use crate::control::shared::{
    Ask, EventPump, ServiceOwned, Shared, StreamPhase, Wake, WriterSignals,
};
use crate::control::writer::{log_request_error, Request, Writer, Writing, POLL};
use crate::data::config::{Config, GainScope, InputFormat, LogLevel};
use crate::data::counters::{Counters, DeviceStats};
use crate::data::error::Error;
use crate::data::events::{Event, EventKind};
use crate::data::metrics::Metrics;
use crate::data::state::{Reason, StreamState};
use crate::realtime::render::{Queues, RenderCore};
use crate::realtime::shape::{InputShape, OutputShape};
use crate::thread_role::{self, Role};

/// Plays speech on one output: accepts PCM from any thread, follows the output device
/// through changes, and reports what is heard. Dropping it closes it.
pub struct Player {
    shared: Arc<Shared>,
    /// The ring's writing end: only the application's threads, through the player, write.
    writing: Writing,
    service: Mutex<Option<Worker>>,
    events: Mutex<Option<Worker>>,
}

/// How long `close` waits in all for the library's threads and the device stream; past it
/// they are left to finish on their own (a frozen sound server), so `ap_destroy` returns
/// well within a second whatever the backend does.
const CLOSE_BUDGET: Duration = Duration::from_millis(700);
/// The stream gets at least this long even when the threads used up the budget.
const CLOSE_STREAM_MIN: Duration = Duration::from_millis(100);

impl Player {
    /// A player on the system's output (PulseAudio when reachable).
    pub fn new(cfg: Config) -> Result<Player, Error> {
        let (host, connect) =
            device::system_host(&cfg.identity.resolve()).map_err(Error::NoDevice)?;
        Self::build(cfg, host, connect)
    }

    /// A player on any cpal host: the system's, or a [`crate::virtual_device::VirtualHost`].
    pub fn with_host(cfg: Config, host: cpal::Host) -> Result<Player, Error> {
        Self::build(cfg, host, None)
    }

    fn build(
        cfg: Config,
        host: cpal::Host,
        connect: Option<device::Connect>,
    ) -> Result<Player, Error> {
        cfg.validate().map_err(Error::InvalidArgument)?;
        let frame_bytes = cfg.frame_bytes();
        let ring_frames = (cfg.input_rate as u64 * cfg.ring_capacity_ms as u64 / 1000).max(1);
        // Exactly the configured duration of the configured format. After a voice change to
        // wider frames the same bytes hold proportionally less time.
        let mut ring_bytes = ring_frames as usize * frame_bytes;
        if cfg.resample_mode == crate::data::config::ResampleMode::Producer {
            // The ring carries float32 at the stream rate: size it for up to 96 kHz.
            ring_bytes = ring_bytes
                .max(cfg.ring_capacity_ms as usize * 96 * 4 * cfg.input_channels as usize);
        }
        let (ring, audio) = rtrb::RingBuffer::new(ring_bytes);
        let (cmd_tx, commands) = rtrb::RingBuffer::new(4096);
        let (mut events, mut ev_rx) = rtrb::RingBuffer::new(8192);
        let (mut garbage, mut garbage_rx) = rtrb::RingBuffer::new(8192);
        // The callback is the producer of these two: map their pages now, not on its thread.
        crate::dsp::prefault::cycle_queue(&mut events, &mut ev_rx, || Event {
            kind: EventKind::Marker,
            id: 0,
            frame: 0,
            heard_ns: 0,
        });
        crate::dsp::prefault::cycle_queue(&mut garbage, &mut garbage_rx, || {
            crate::realtime::command::Garbage::Scratch(Vec::new())
        });
        let counters = Arc::new(Counters::default());
        let input = InputShape {
            s16: cfg.input_format == InputFormat::S16,
            channels: cfg.input_channels as usize,
            rate: cfg.input_rate,
        };
        let first_guess = OutputShape {
            rate: cfg.input_rate,
            channels: cfg.input_channels as usize,
        };
        let history = (cfg.input_rate as u64 * cfg.max_replay_ms as u64 / 1000) as usize;
        let preroll = cfg.input_rate as u64 * cfg.start_threshold_ms as u64 / 1000;
        let core = Arc::new(RenderCore::new(
            Queues {
                audio,
                commands,
                events,
                garbage,
            },
            input,
            first_guess,
            counters.clone(),
            history,
            preroll,
        ));
        core.set_resample_quality(cfg.resample_quality);
        let producer = (cfg.resample_mode == crate::data::config::ResampleMode::Producer)
            .then(|| crate::control::writer::ProducerResampler::new(cfg.resample_quality));
        let writer = Writer {
            ring,
            commands: cmd_tx,
            shape: input,
            ring_shape: input,
            in_utterance: false,
            fresh_utterance: false,
            producer,
            trim: crate::control::writer::Trim::new(cfg.trim_threshold, cfg.trim_keep_ms),
            speed: crate::control::writer::Speed::new(),
        };
        // The host's callbacks run only through the gate: after close, none starts again.
        let callbacks = Arc::new(Gate::default());
        let log_sink = cfg.log_sink.clone().map(|sink| {
            let gate = callbacks.clone();
            Arc::new(move |level: LogLevel, msg: &str| {
                gate.run(|| sink(level, msg));
            }) as crate::data::config::LogSink
        });
        let cfg_sink = cfg.event_sink.clone().map(|sink| {
            let gate = callbacks.clone();
            Arc::new(move |e: &Event| {
                gate.run(|| sink(e));
            }) as crate::data::events::EventSink
        });
        let logger = Logger::new(log_sink, cfg.log_level);
        let pinned = cfg.device_id.clone();
        let shared = Arc::new(Shared {
            cfg,
            core,
            counters,
            stats: DeviceStats::default(),
            service: ServiceOwned::new(host, connect, pinned),
            requests: Arc::default(),
            events: EventPump {
                from_callback: Mutex::new((ev_rx, garbage_rx)),
                delivery: Delivery::new(cfg_sink),
                wake: Wake::default(),
                idle: AtomicBool::new(false),
            },
            writers: WriterSignals::default(),
            closing: AtomicBool::new(false),
            logger: Mutex::new(logger),
            callbacks,
        });
        // A pinned device must exist at creation (a typo is an error, not a silent fallback);
        // later it may come and go.
        let target = match shared.service.pinned() {
            Some(id) => Some(id),
            None => device::query_target(&shared.service.host(), None)
                .ok()
                .map(|d| d.id),
        };
        recreate::recreate(&shared, Reason::Initial, target)?;
        let player = Player {
            shared: shared.clone(),
            writing: Writing::new(writer),
            service: Mutex::new(None),
            events: Mutex::new(None),
        };
        // On an error the player is dropped: close() stops what did start.
        let svc = shared.clone();
        let handle = Worker::spawn("audioplay-service", move || {
            let _role = thread_role::enter(Role::Service);
            service::run(svc)
        })
        .map_err(|e| Error::Device(format!("cannot start the service thread: {e}")))?;
        *player.service.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        let ev = shared;
        let events = Worker::spawn("audioplay-events", move || {
            let _role = thread_role::enter(Role::Events);
            service::run_events(ev)
        })
        .map_err(|e| Error::Device(format!("cannot start the event thread: {e}")))?;
        *player.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(events);
        Ok(player)
    }

    /// Bytes per frame of what `write_bytes` takes now (voice changes move it).
    pub fn frame_bytes(&self) -> usize {
        self.with_writer(|w| w.shape.frame_bytes())
    }

    /// Runs `f` on the writer (waiting for it, like a write), with pending requests applied
    /// first and again on release.
    fn with_writer<R>(&self, f: impl FnOnce(&mut Writer) -> R) -> R {
        self.writing.with(&self.shared, f)
    }

    /// Queues whole frames of native-endian PCM in the current format. Blocks up to the
    /// configured write timeout while the ring is full, then returns the frames it queued
    /// (fewer than given when the timeout passed or a flush released it). The first write
    /// after an utterance ended starts a new one. `Error::Closed` if the player is closed
    /// before or during the call.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<usize, Error> {
        if self.shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        self.check_output()?;
        if self.shared.service.phase.get() == StreamPhase::Suspended {
            self.shared.requests.ask(Ask::Resume);
        }
        let timeout = Duration::from_millis(self.shared.cfg.write_timeout_ms as u64);
        let mut w = self.writing.lock();
        let r = w.write(&self.shared, &self.writing, bytes, timeout);
        // Control calls made during this write take effect here, after its data.
        self.writing.release(&self.shared, w);
        r
    }

    /// Queues interleaved int16 frames (the player must be configured for S16).
    pub fn write_i16(&self, samples: &[i16]) -> Result<usize, Error> {
        self.write_typed(InputFormat::S16, samples, |s| s.to_ne_bytes())
    }

    /// Queues interleaved float32 frames (the player must be configured for F32).
    pub fn write_f32(&self, samples: &[f32]) -> Result<usize, Error> {
        self.write_typed(InputFormat::F32, samples, |s| s.to_ne_bytes())
    }

    fn write_typed<T: Copy, const N: usize>(
        &self,
        format: InputFormat,
        samples: &[T],
        bytes: impl Fn(T) -> [u8; N],
    ) -> Result<usize, Error> {
        let s16 = self.with_writer(|w| w.shape.s16);
        if s16 != (format == InputFormat::S16) {
            return Err(Error::InvalidArgument(format!(
                "the current input format is not {format:?}"
            )));
        }
        let raw: Vec<u8> = samples.iter().flat_map(|&s| bytes(s)).collect();
        self.write_bytes(&raw)
    }

    /// Ends the current utterance: everything written so far is one utterance. The ring
    /// running dry after it is the end of speech, not an underrun; the resampler completes
    /// its last frames; an utterance-end event fires when its last frame is heard. The next
    /// write starts a new utterance. Returns at once, never waiting for a writer: during a
    /// write on another thread, the utterance ends after the data that write queues.
    pub fn end_utterance(&self) -> Result<(), Error> {
        self.writing.request(&self.shared, Request::EndUtterance)
    }

    /// Places a marker at the current write position; an event with `id` fires when the
    /// device plays that frame. During a write on another thread, the marker lands after the
    /// data that write queues (never waits for it).
    pub fn mark(&self, id: u64) -> Result<(), Error> {
        self.writing.request(&self.shared, Request::Mark(id))
    }

    /// Voice change, in band: audio written before plays in its old format, audio written
    /// after in this one. No stream recreate. Never waits for a writer: a write in progress on
    /// another thread finishes in the old format and the new one applies from the next write.
    pub fn set_input_format(
        &self,
        format: InputFormat,
        channels: u16,
        rate: u32,
    ) -> Result<(), Error> {
        let probe = Config {
            input_format: format,
            input_channels: channels,
            input_rate: rate,
            ..Config::default()
        };
        probe.validate().map_err(Error::InvalidArgument)?;
        let shape = InputShape {
            s16: format == InputFormat::S16,
            channels: channels as usize,
            rate,
        };
        self.writing.request(&self.shared, Request::Format(shape))
    }

    /// Barge-in: drops everything queued; what is playing fades out over `fade_ms` on the
    /// audio thread (0 = cut). Returns at once with the content frame being heard when the
    /// flush was asked for; the `Flushed` event later gives the frame where the fade ended.
    /// A writer blocked for space returns with what it queued.
    pub fn flush(&self, fade_ms: u32) -> Result<u64, Error> {
        if self.shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        let heard = self.shared.core.heard_frames();
        self.shared.writers.flush_epoch.fetch_add(1, AcqRel);
        self.shared.writers.room_wake.notify();
        let fade_ms = fade_ms.min(10_000);
        // Where the stream can rewrite what its server holds, the fade starts from the frame
        // playing now instead of behind everything queued (issue 14 §6).
        let rewriter = self
            .shared
            .service
            .rewriter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if rewriter.is_some() {
            self.shared.core.expect_rewrite();
        }
        match self.writing.try_lock() {
            Some(mut w) => {
                // Requests made before the flush come first (a marker then is flushed).
                if let Err(e) = w.apply_requests(&self.shared, &self.writing) {
                    log_request_error(&self.shared, &e);
                }
                let upto = w.cut(&self.shared);
                self.shared.core.request_flush(upto, fade_ms);
                if let Some(r) = &rewriter {
                    r.request();
                }
                self.writing.release(&self.shared, w);
            }
            None => {
                // A write is in progress: it stops queuing at once (it checks the epoch before
                // each chunk). Flush everything counted so far; the writer ends the utterance
                // on its side when it returns. Markers and utterance ends asked for during
                // that write belonged to the flushed audio: they are dropped (a voice change
                // is kept).
                let upto = self.shared.counters.ring_frames_written.load(Acquire);
                self.shared.core.request_flush(upto, fade_ms);
                if let Some(r) = &rewriter {
                    r.request();
                }
                let mut q = self.writing.requests();
                let marks = q.iter().filter(|r| matches!(r, Request::Mark(_))).count();
                // An until-changed gain or pan is kept too (it outlives the flushed audio).
                q.retain(|r| {
                    matches!(
                        r,
                        Request::Format(_)
                            | Request::Speed(_)
                            | Request::GainPan {
                                scope: GainScope::UntilChanged,
                                ..
                            }
                    )
                });
                q.push_back(Request::Cut);
                drop(q);
                self.shared
                    .counters
                    .markers_flushed
                    .fetch_add(marks as u64, Relaxed);
                // The writer may have released the lock meanwhile: apply if nobody holds it.
                if let Some(w) = self.writing.try_lock() {
                    self.writing.release(&self.shared, w);
                }
            }
        }
        self.shared.requests.notify();
        // Its Flushed event is coming: the event thread may be in its idle wait.
        self.shared.events.wake.notify();
        Ok(heard)
    }

    /// Pauses with a `ramp_ms` fade; no underruns are counted and the position holds.
    pub fn pause(&self, ramp_ms: u32) {
        self.shared.core.set_paused(true, ramp_ms.min(10_000));
        self.shared.requests.notify();
    }

    /// Resumes after `pause` with a `ramp_ms` fade in.
    pub fn resume(&self, ramp_ms: u32) {
        self.shared.core.set_paused(false, ramp_ms.min(10_000));
        self.shared.requests.notify();
    }

    /// Sets the output gain (0..=4, linear), ramped over `ramp_ms` so it never clicks.
    pub fn set_volume(&self, gain: f32, ramp_ms: u32) -> Result<(), Error> {
        in_range("volume", gain, 0.0, 4.0)?;
        self.shared.core.set_volume(gain, ramp_ms.min(10_000));
        Ok(())
    }

    /// Gain and pan in band (issue 16): from the next frame written, the output gets `gain`
    /// (linear, 0..=4; 1 = unchanged) and `pan` (-1 hard left ..= 1 hard right, 0 centre;
    /// equal-power, unity at the centre; ignored on a mono device), ramped over `ramp_ms`
    /// (clamped to 10000) so it never clicks. `scope`: for this utterance (the next one goes
    /// back to the last until-changed setting), or until changed. Above unity a soft
    /// limiter keeps peaks under 0 dBFS; at or below it the output is bit-exact.
    pub fn set_gain_pan(
        &self,
        gain: f32,
        pan: f32,
        ramp_ms: u32,
        scope: GainScope,
    ) -> Result<(), Error> {
        in_range("gain", gain, 0.0, 4.0)?;
        in_range("pan", pan, -1.0, 1.0)?;
        let req = Request::GainPan {
            gain,
            pan,
            ramp_ms: ramp_ms.min(10_000),
            scope,
        };
        self.writing.request(&self.shared, req)
    }

    /// Speed without pitch change (issue 16 §1), in band: content written from now on plays
    /// at `speed` (0.5..=4; 1 = as written, a bypass), what was written before at its old
    /// speed; the change is crossfaded, never a click. Positions and events stay in content
    /// frames; markers fire when their frame is heard at the new speed. Needs callback
    /// resampling. Never waits for a writer (like `mark`).
    pub fn set_speed(&self, speed: f32) -> Result<(), Error> {
        let (lo, hi) = (
            crate::dsp::stretch::MIN_SPEED,
            crate::dsp::stretch::MAX_SPEED,
        );
        in_range("speed", speed, lo, hi)?;
        if self.shared.cfg.resample_mode == crate::data::config::ResampleMode::Producer {
            return Err(Error::InvalidArgument(
                "speed needs resample_mode callback".into(),
            ));
        }
        self.writing.request(&self.shared, Request::Speed(speed))
    }

    /// Moves playback to another device (None = follow the system default) through the
    /// same three-phase recreate as a device change; nothing queued is lost.
    pub fn set_device(&self, id: Option<&str>) -> Result<(), Error> {
        if let Some(id) = id {
            device::find_output(&self.shared.service.host(), Some(id)).map_err(Error::NoDevice)?;
        }
        self.shared.service.pin(id.map(str::to_string));
        self.shared.requests.ask(Ask::Device);
        Ok(())
    }

    /// The next delivered event, if any (for hosts that poll instead of taking callbacks).
    pub fn poll_event(&self) -> Option<Event> {
        self.shared.events.delivery.poll()
    }

    /// (content frame heard now, frames queued, device latency in ns). Atomics only.
    pub fn position(&self) -> (u64, u64, u64) {
        let c = &self.shared.counters;
        let played = c.frames_played.load(Acquire);
        let gone = played + c.frames_flushed.load(Acquire) + c.frames_dropped.load(Acquire);
        let written = c.frames_written.load(Acquire);
        (
            self.shared.core.heard_frames(),
            written.saturating_sub(gone),
            c.output_latency_ns.load(Relaxed),
        )
    }

    /// Ends the utterance, then waits until everything written has been heard (the device's
    /// latency included) or `timeout` passes. Returns whether it completed; `Error::Closed`
    /// if the player is closed before or while it waits.
    pub fn drain(&self, timeout: Duration) -> Result<bool, Error> {
        if self.shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        let deadline = Instant::now() + timeout;
        self.end_utterance()?;
        // In ring frames: those are what the callbacks' position counts.
        let target = self.shared.counters.ring_frames_written.load(Acquire);
        let core = &self.shared.core;
        loop {
            if core.position() >= target && core.unheard_ns(core.now_ns()) == 0 {
                return Ok(true);
            }
            if self.shared.closing.load(Acquire) {
                return Err(Error::Closed); // destroyed while waiting
            }
            self.check_output()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // Sleep until about when the callbacks reach the end, then until it is heard,
            // rather than polling all along (at most 50 ms at a time: close is not signalled).
            let left = target.saturating_sub(core.position());
            let wait = if left > 0 {
                let rate = u64::from(core.ring_rate().max(1));
                Duration::from_nanos(left * 1_000_000_000 / rate).max(POLL)
            } else {
                Duration::from_nanos(core.unheard_ns(core.now_ns()))
            };
            std::thread::sleep(
                wait.clamp(Duration::from_millis(1), Duration::from_millis(50))
                    .min(deadline - now),
            );
        }
    }

    /// `Error::NoOutput` once nothing has played for `device_lost_timeout_ms`.
    fn check_output(&self) -> Result<(), Error> {
        if self.shared.service.output_lost.load(Acquire) {
            return Err(Error::NoOutput(format!(
                "nothing has played for {} ms or more (sound server or device gone); queued audio waits",
                self.shared.cfg.device_lost_timeout_ms
            )));
        }
        Ok(())
    }

    /// Lock-free view of the current stream (U3). The published state is replaced only by
    /// recreates; the content rate is the live one (voice changes move it without a
    /// recreate), so a copy is made only while they differ.
    pub fn snapshot(&self) -> Arc<StreamState> {
        let st = self.shared.service.state.load_full();
        let live = self.shared.core.content_rate();
        if st.content_rate == live {
            return st;
        }
        Arc::new(StreamState {
            content_rate: live,
            ..(*st).clone()
        })
    }

    /// Whether a stream recreate is in progress now.
    pub fn recreating(&self) -> bool {
        self.shared.service.phase.get() == StreamPhase::Recreating
    }

    /// The render core's clock and the start of the latest callback that rendered audio
    /// (ns), and the callback-time histogram buckets: for benchmarks.
    #[doc(hidden)]
    pub fn render_clock(&self) -> (u64, u64) {
        let core = &self.shared.core;
        (core.now_ns(), core.last_audio_cb_ns())
    }

    /// Every bucket's count of the callback-time histogram (see `metrics::percentile_of`).
    #[doc(hidden)]
    pub fn callback_counts(&self) -> Vec<u64> {
        self.shared.counters.callback_time.counts()
    }

    #[doc(hidden)]
    pub fn callback_histogram(&self) -> Vec<(u64, u64)> {
        self.shared.counters.callback_time.buckets()
    }

    /// A point-in-time view of everything the player counts.
    pub fn metrics(&self) -> Metrics {
        let c = &*self.shared.counters;
        let d = &self.shared.stats;
        let played = c.frames_played.load(Acquire);
        let flushed = c.frames_flushed.load(Acquire);
        let dropped = c.frames_dropped.load(Acquire);
        let written = c.frames_written.load(Acquire);
        Metrics {
            frames_written: written,
            frames_played: played,
            frames_queued: written.saturating_sub(played + flushed + dropped),
            frames_dropped: dropped,
            callbacks: c.callbacks.load(Relaxed),
            underruns: c.underruns.load(Relaxed),
            late_callbacks: c.late_callbacks.load(Relaxed),
            resample_fallback: self.shared.service.producer_fallback.load(Relaxed),
            generation_mismatches: c.generation_mismatches.load(Relaxed),
            shape_mismatches: c.shape_mismatches.load(Relaxed),
            callback_errors: c.callback_errors.load(Relaxed),
            resample_errors: c.resample_errors.load(Relaxed),
            render_contended: c.render_contended.load(Relaxed),
            stream_errors: c.stream_errors.load(Relaxed),
            server_underflows: c.server_underflows.load(Relaxed),
            callback_time: c.callback_time.percentiles(),
            resample_time: c.resample_time.percentiles(),
            output_latency_ns: c.output_latency_ns.load(Relaxed),
            recreating: self.recreating(),
            suspended: self.shared.service.phase.get() == StreamPhase::Suspended,
            last_wake_ms: match d.last_wake_us.load(Relaxed) {
                u64::MAX => None,
                us => Some(us as f64 / 1000.0),
            },
            state: (*self.snapshot()).clone(),
            frames_replayed: c.frames_replayed.load(Relaxed),
            frames_flushed: flushed,
            frames_heard: self.shared.core.heard_frames(),
            markers_flushed: c.markers_flushed.load(Relaxed),
            events_dropped: c.events_dropped.load(Relaxed)
                + self.shared.events.delivery.dropped.load(Relaxed),
            recreates: d.recreates.load(Relaxed),
            recreate_failures: d.recreate_failures.load(Relaxed),
            recreates_refused: d.recreates_refused.load(Relaxed),
            device_query_failures: d.device_query_failures.load(Relaxed),
            last_recreate_reason: reason_from(d.last_reason.load(Relaxed)),
            last_route_gap_ms: match d.last_gap_us.load(Relaxed) {
                u64::MAX => None,
                us => Some(us as f64 / 1000.0),
            },
            recreate_ms: d.recreate_ms(),
            output_lost: self.shared.service.output_lost.load(Relaxed),
            outages: d.outages.load(Relaxed),
            last_outage_ms: d.outage_ms.load(Relaxed),
            server_reconnects: d.server_reconnects.load(Relaxed),
            trimmed_ms: c.trimmed_us.load(Relaxed) as f64 / 1000.0,
            flushes_rewritten: c.flushes_rewritten.load(Relaxed),
            server_moves: d.server_moves.load(Relaxed),
        }
    }

    /// Stops the library's threads and the device stream. Idempotent; also run on drop.
    /// Queued audio not yet played is counted as dropped.
    ///
    /// Bounded: waits at most about `CLOSE_BUDGET` for the threads and the stream; a thread
    /// stuck in a sound-server round trip is detached (it holds its own `Arc<Shared>` and
    /// finishes later) and a stream that does not close promptly is dropped on a helper
    /// thread. Safe to call from inside the host's `event_fn`/`log_fn` (on a library thread):
    /// that thread is not joined by itself; it finishes its teardown when the callback
    /// returns. When this returns no `event_fn`/`log_fn` call starts again; one running on
    /// another thread has returned.
    pub fn close(&self) {
        if self.shared.closing.swap(true, AcqRel) {
            return;
        }
        let deadline = Instant::now() + CLOSE_BUDGET;
        self.shared.requests.notify();
        self.shared.events.wake.notify();
        self.shared.writers.room_wake.notify();
        self.shared.callbacks.close();
        for t in [&self.service, &self.events] {
            let worker = t.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = worker {
                w.finish_by(deadline);
            }
        }
        // No write is in progress once the writer's lock is free: writers check `closing`
        // under it before queuing anything, so no frame is counted after the tally below.
        self.writing.settle(deadline);
        // The callbacks stop consuming: no stream renders this generation, and taking the
        // render token waits out a callback that is rendering now.
        self.shared.core.publish_generation(u64::MAX);
        self.shared.core.rewind(0);
        let c = &self.shared.counters;
        let gone = c.frames_played.load(Acquire) + c.frames_flushed.load(Acquire);
        let left = c.frames_written.load(Acquire).saturating_sub(gone);
        c.frames_dropped.fetch_add(left, Release);
        let old = self.shared.service.lock_slot().stream.take();
        if let Some(stream) = old {
            // Closed with the slot lock released (L2), and never blocking close for long.
            crate::control::lifecycle::drop_by(
                stream,
                deadline.max(Instant::now() + CLOSE_STREAM_MIN),
            );
        }
    }
}

fn reason_from(v: u32) -> Option<Reason> {
    Some(match v {
        1 => Reason::Initial,
        2 => Reason::DeviceChanged,
        3 => Reason::StreamLost,
        4 => Reason::FormatChanged,
        5 => Reason::Retry,
        6 => Reason::Requested,
        7 => Reason::ServerRestarted,
        _ => return None,
    })
}

impl Drop for Player {
    fn drop(&mut self) {
        self.close();
    }
}

/// `InvalidArgument` naming `what` unless `lo <= v <= hi` (NaN is never in range).
fn in_range(what: &str, v: f32, lo: f32, hi: f32) -> Result<(), Error> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} {v} out of range {lo}..={hi}"
        )))
    }
}
