//! The player: a ring that outlives device streams, a stream slot replaced through the
//! three-phase recreate, and a service thread that does everything the callback may not.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::{Config, InputFormat, LogLevel};
use crate::device;
use crate::error::Error;
use crate::log::Logger;
use crate::metrics::{Counters, DeviceStats, Percentiles};
use crate::recreate::{self, Reason, StreamSlot};
use crate::render::{InputShape, OutputShape, RenderCore};
use crate::service;

/// Stream state published for lock-free readers (U3). Replaced whole on every recreate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    pub generation: u64,
    pub started: bool,
    pub device_id: String,
    pub device_name: String,
    pub device_rate: u32,
    pub stream_rate: u32,
    pub content_rate: u32,
    pub channels: u16,
    pub format: Option<cpal::SampleFormat>,
}

/// A point-in-time view of everything the player counts (C3, M1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    pub frames_written: u64,
    pub frames_played: u64,
    pub frames_queued: u64,
    pub frames_dropped: u64,
    pub callbacks: u64,
    pub underruns: u64,
    pub generation_mismatches: u64,
    pub shape_mismatches: u64,
    pub callback_errors: u64,
    pub resample_errors: u64,
    pub render_contended: u64,
    pub stream_errors: u64,
    pub callback_time: Percentiles,
    pub resample_time: Percentiles,
    pub output_latency_ns: u64,
    pub recreating: bool,
    pub state: StreamState,
    pub frames_replayed: u64,
    pub recreates: u64,
    pub recreate_failures: u64,
    pub recreates_refused: u64,
    pub device_query_failures: u64,
    pub last_recreate_reason: Option<Reason>,
    /// Milliseconds from the last frame on the old device to the first on the new one.
    pub last_route_gap_ms: Option<f64>,
    /// Recreate duration (p50, p95, max), ms.
    pub recreate_ms: (f64, f64, f64),
}

impl Metrics {
    pub fn needs_resample(&self) -> bool {
        self.state.stream_rate != 0 && self.state.stream_rate != self.state.content_rate
    }
}

/// Wakes the service thread early (a stream error, shutdown).
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

    /// Waits until notified or `timeout`; returns whether it was notified.
    pub fn wait(&self, timeout: Duration) -> bool {
        let g = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |f| !*f)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *g, false)
    }
}

pub struct Shared {
    pub cfg: Config,
    pub host: cpal::Host,
    pub core: Arc<RenderCore>,
    pub counters: Arc<Counters>,
    slot: Mutex<StreamSlot>,
    pub state: ArcSwap<StreamState>,
    pub recreating: AtomicBool,
    pub next_generation: AtomicU64,
    producer: Mutex<rtrb::Producer<u8>>,
    pub closing: AtomicBool,
    pub wake: Arc<Wake>,
    pub logger: Mutex<Logger>,
    frame_bytes: usize,
    /// Set by a stream's error callback when its device is gone; the watcher acts at once.
    pub stream_lost: Arc<AtomicBool>,
    pub stats: DeviceStats,
}

impl Shared {
    /// L1: the only way to the stream slot.
    pub fn lock_slot(&self) -> MutexGuard<'_, StreamSlot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self, level: LogLevel, msg: &str) {
        self.logger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log(level, msg);
    }

    /// Logs at most once per `every` for `key`; returns whether it logged.
    pub fn log_limited(
        &self,
        key: &'static str,
        every: Duration,
        level: LogLevel,
        msg: &str,
    ) -> bool {
        self.logger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .limited(key, every, level, msg)
    }
}

pub struct Player {
    shared: Arc<Shared>,
    service: Mutex<Option<JoinHandle<()>>>,
}

/// How often a blocked writer or a drain looks at the ring again. A 10 ms callback frees
/// space in steps of ~10 ms, so 2 ms wakes add at most that much to a writer's latency.
const POLL: Duration = Duration::from_millis(2);

impl Player {
    /// A player on the system's output (PulseAudio when reachable).
    pub fn new(cfg: Config) -> Result<Player, Error> {
        let host = device::system_host().map_err(Error::NoDevice)?;
        Self::with_host(cfg, host)
    }

    /// A player on any cpal host: the system's, or a [`crate::virtual_device::VirtualHost`].
    pub fn with_host(cfg: Config, host: cpal::Host) -> Result<Player, Error> {
        cfg.validate().map_err(Error::InvalidArgument)?;
        let frame_bytes = cfg.frame_bytes();
        let ring_frames = (cfg.input_rate as u64 * cfg.ring_capacity_ms as u64 / 1000).max(1);
        let (producer, consumer) = rtrb::RingBuffer::new(ring_frames as usize * frame_bytes);
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
        let core = Arc::new(RenderCore::new(
            consumer,
            input,
            first_guess,
            counters.clone(),
            history,
        ));
        let logger = Logger::new(cfg.log_sink.clone(), cfg.log_level);
        let shared = Arc::new(Shared {
            cfg,
            host,
            core,
            counters,
            slot: Mutex::new(StreamSlot::default()),
            state: ArcSwap::from_pointee(StreamState::default()),
            recreating: AtomicBool::new(false),
            next_generation: AtomicU64::new(0),
            producer: Mutex::new(producer),
            closing: AtomicBool::new(false),
            wake: Arc::new(Wake::default()),
            logger: Mutex::new(logger),
            frame_bytes,
            stream_lost: Arc::new(AtomicBool::new(false)),
            stats: DeviceStats::default(),
        });
        // A pinned device must exist at creation (a typo is an error, not a silent fallback);
        // later it may come and go.
        let target = device::query_target(&shared.host, None)
            .ok()
            .map(|d| d.id)
            .filter(|_| shared.cfg.device_id.is_none())
            .or_else(|| shared.cfg.device_id.clone());
        recreate::recreate(&shared, Reason::Initial, target)?;
        let svc = shared.clone();
        let handle = std::thread::Builder::new()
            .name("audioplay-service".into())
            .spawn(move || service::run(svc))
            .map_err(|e| Error::Device(format!("cannot start the service thread: {e}")))?;
        Ok(Player {
            shared,
            service: Mutex::new(Some(handle)),
        })
    }

    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    pub fn frame_bytes(&self) -> usize {
        self.shared.frame_bytes
    }

    /// Queues whole frames of native-endian PCM in the configured format. Blocks up to the
    /// configured write timeout while the ring is full, then returns the frames it queued
    /// (fewer than given when the timeout passed). `Error::Closed` if the player is closed
    /// before or during the call.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<usize, Error> {
        let fb = self.shared.frame_bytes;
        if bytes.len() % fb != 0 {
            return Err(Error::InvalidArgument(format!(
                "{} bytes is not a whole number of {fb}-byte frames",
                bytes.len()
            )));
        }
        if self.shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        let timeout = Duration::from_millis(self.shared.cfg.write_timeout_ms as u64);
        let deadline = Instant::now() + timeout;
        let mut prod = self
            .shared
            .producer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared.core.set_draining(false);
        let mut done = 0;
        loop {
            let n = (prod.slots() / fb * fb).min(bytes.len() - done);
            if n > 0 {
                // Counted before the commit so that, read played-then-written, played never
                // exceeds written: queued = written - played - dropped is exact.
                self.shared
                    .counters
                    .frames_written
                    .fetch_add((n / fb) as u64, Release);
                if let Ok(chunk) = prod.write_chunk_uninit(n) {
                    chunk.fill_from_iter(bytes[done..done + n].iter().copied());
                }
                done += n;
            }
            if done == bytes.len() {
                break;
            }
            if self.shared.closing.load(Acquire) {
                // What was queued is counted as dropped by close(); the caller learns why.
                return Err(Error::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
        Ok(done / fb)
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
        if self.shared.cfg.input_format != format {
            return Err(Error::InvalidArgument(format!(
                "player is configured for {:?}, not {format:?}",
                self.shared.cfg.input_format
            )));
        }
        let raw: Vec<u8> = samples.iter().flat_map(|&s| bytes(s)).collect();
        self.write_bytes(&raw)
    }

    /// Declares everything written so far the end of speech: the ring running dry from here
    /// on is not an underrun, and the resampler completes its last frames. The next write
    /// starts a new stream of speech. Returns at once.
    pub fn mark_end(&self) {
        self.shared.core.set_draining(true);
    }

    /// Waits until everything written has been played by the device (its reported latency
    /// included) or `timeout` passes. Returns whether it completed. While draining, the ring
    /// running dry is the end of speech, not an underrun.
    pub fn drain(&self, timeout: Duration) -> Result<bool, Error> {
        if self.shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        let deadline = Instant::now() + timeout;
        self.mark_end();
        let c = &self.shared.counters;
        loop {
            let played = c.frames_played.load(Acquire);
            let written = c.frames_written.load(Acquire);
            if played + c.frames_dropped.load(Acquire) >= written {
                break;
            }
            if Instant::now() >= deadline || self.shared.closing.load(Acquire) {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
        // The last frames are in the device buffer: wait out its latency plus one period.
        let period = Duration::from_millis(self.shared.cfg.target_latency_ms as u64 / 2);
        let tail = Duration::from_nanos(c.output_latency_ns.load(Relaxed)) + period;
        let now = Instant::now();
        let until = (now + tail).min(deadline);
        std::thread::sleep(until - now);
        Ok(now + tail <= deadline)
    }

    /// Lock-free view of the current stream (U3).
    pub fn snapshot(&self) -> Arc<StreamState> {
        self.shared.state.load_full()
    }

    pub fn recreating(&self) -> bool {
        self.shared.recreating.load(Acquire)
    }

    pub fn metrics(&self) -> Metrics {
        let c = &*self.shared.counters;
        let d = &self.shared.stats;
        let played = c.frames_played.load(Acquire);
        let dropped = c.frames_dropped.load(Acquire);
        let written = c.frames_written.load(Acquire);
        Metrics {
            frames_written: written,
            frames_played: played,
            frames_queued: written.saturating_sub(played + dropped),
            frames_dropped: dropped,
            callbacks: c.callbacks.load(Relaxed),
            underruns: c.underruns.load(Relaxed),
            generation_mismatches: c.generation_mismatches.load(Relaxed),
            shape_mismatches: c.shape_mismatches.load(Relaxed),
            callback_errors: c.callback_errors.load(Relaxed),
            resample_errors: c.resample_errors.load(Relaxed),
            render_contended: c.render_contended.load(Relaxed),
            stream_errors: c.stream_errors.load(Relaxed),
            callback_time: c.callback_time.percentiles(),
            resample_time: c.resample_time.percentiles(),
            output_latency_ns: c.output_latency_ns.load(Relaxed),
            recreating: self.recreating(),
            state: (*self.snapshot()).clone(),
            frames_replayed: c.frames_replayed.load(Relaxed),
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
        }
    }

    /// Stops the service thread and the device stream. Idempotent; also run on drop. Queued
    /// audio not yet played is counted as dropped.
    pub fn close(&self) {
        if self.shared.closing.swap(true, AcqRel) {
            return;
        }
        self.shared.wake.notify();
        if let Some(h) = self
            .service
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
        let old = self.shared.lock_slot().stream.take();
        drop(old); // closes the stream with the slot lock released (L2)
        let c = &self.shared.counters;
        let left = self.shared.core.queued_frames();
        c.frames_dropped.fetch_add(left, Release);
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
        _ => return None,
    })
}

impl Drop for Player {
    fn drop(&mut self) {
        self.close();
    }
}
