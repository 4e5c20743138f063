//! Counters and timing histograms filled by the audio callback without locks or allocation
//! (SPEC C3, M1), read by the service thread and `ap_metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::data::metrics::Percentiles;
use crate::data::state::Reason;

/// Sub-buckets per power of two: 8 gives ~9% resolution, plenty for p95 tripwires.
const SUB: usize = 8;
const OCTAVES: usize = 40;
const BUCKETS: usize = OCTAVES * SUB;

/// A log-linear histogram of nanosecond durations. `record` is one relaxed `fetch_add` plus
/// one `fetch_max`: safe on the audio thread.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros() as usize; // >= 3
    let shift = octave - 3;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    ((octave - 2) * SUB + sub).min(BUCKETS - 1)
}

/// Upper bound of a bucket's values (what percentiles report: never optimistic).
pub fn bucket_upper(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let octave = b / SUB + 2;
    let sub = (b % SUB) as u64;
    let shift = octave - 3;
    ((SUB as u64 + sub + 1) << shift) - 1
}

/// Adds to a counter that only one thread writes at a time (see `record_exclusive`);
/// readers still see whole values (the store is atomic), published with release ordering.
#[inline]
pub fn add_exclusive(a: &AtomicU64, n: u64) {
    if n != 0 {
        a.store(
            a.load(Relaxed).wrapping_add(n),
            std::sync::atomic::Ordering::Release,
        );
    }
}

/// The `q` quantile (upper bucket bound, ns) of bucket counts from `Histogram::counts`.
pub fn percentile_of(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bucket_upper(i);
        }
    }
    bucket_upper(counts.len() - 1)
}

impl Histogram {
    #[inline]
    pub fn record(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.max.fetch_max(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// `record` for a histogram with one writer at a time (the callback holding the render
    /// token, whose acquire/release orders successive writers): plain loads and stores, no
    /// locked read-modify-write instructions, which cost as much as a light callback's work.
    #[inline]
    pub fn record_exclusive(&self, ns: u64) {
        add_exclusive(&self.buckets[bucket_of(ns)], 1);
        if ns > self.max.load(Relaxed) {
            self.max.store(ns, Relaxed);
        }
        add_exclusive(&self.count, 1);
    }

    /// Every bucket's count. Off the audio thread.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }

    /// Non-empty buckets as (upper bound ns, count), for plots. Off the audio thread.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (bucket_upper(i), b.load(Relaxed)))
            .filter(|&(_, c)| c > 0)
            .collect()
    }

    /// Percentiles over everything recorded. Off the audio thread only (it allocates nothing,
    /// but walks every bucket).
    pub fn percentiles(&self) -> Percentiles {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        let max = self.max.load(Relaxed);
        // Bucket bounds are upper bounds: never report past the largest value seen.
        let at = |q: f64| percentile_of(&counts, q).min(max);
        Percentiles {
            count: total,
            p50_ns: at(0.50),
            p95_ns: at(0.95),
            p99_ns: at(0.99),
            max_ns: max,
        }
    }
}

/// Everything the callback counts (C3). Plain atomics: the callback never logs (C2), the
/// service thread turns changes into log lines (C4).
#[derive(Default)]
pub struct Counters {
    /// Content frames the application wrote (what `ap_write` accepted), in every resampling
    /// mode: the public frame counters below are all in these units.
    pub frames_written: AtomicU64,
    /// Frames put into the ring, in the ring's own units: content frames, or stream-rate
    /// frames where the writer resamples (U2). Command positions and drain use these.
    pub ring_frames_written: AtomicU64,
    /// Content frames taken from the ring by a callback.
    pub frames_played: AtomicU64,
    pub frames_dropped: AtomicU64,
    /// Content frames played a second time after a device vanished before playing them.
    pub frames_replayed: AtomicU64,
    /// Content frames discarded by a flush (barge-in).
    pub frames_flushed: AtomicU64,
    /// Markers inside flushed audio: they never fire.
    pub markers_flushed: AtomicU64,
    /// Events the callback could not queue (the service thread fell behind).
    pub events_dropped: AtomicU64,
    pub device_frames: AtomicU64,
    pub callbacks: AtomicU64,
    pub underruns: AtomicU64,
    /// Callbacks that came after the device had played everything written before them: the
    /// audio thread was starved and the device ran dry (not a ring underrun).
    pub late_callbacks: AtomicU64,
    pub generation_mismatches: AtomicU64,
    pub shape_mismatches: AtomicU64,
    pub callback_errors: AtomicU64,
    pub resample_errors: AtomicU64,
    /// Callbacks that found another callback rendering and stayed silent (C1 handoff).
    pub render_contended: AtomicU64,
    pub stream_errors: AtomicU64,
    /// Times the audio server played silence of its own because the stream's data did not
    /// arrive in time (PulseAudio's UNDERFLOW; an xrun on other hosts). Counted by the stream's
    /// error callback, not the audio callback.
    pub server_underflows: AtomicU64,
    /// Leading silence the writer dropped before it entered the ring (issue 16 trim),
    /// microseconds of content. Trimmed frames are not in `frames_written`.
    pub trimmed_us: AtomicU64,
    /// Flushes whose fade `RenderCore::rewrite` wrote into what the server already held.
    pub flushes_rewritten: AtomicU64,
    /// Latest device latency estimate from the stream timestamps, nanoseconds.
    pub output_latency_ns: AtomicU64,
    pub callback_time: Histogram,
    pub resample_time: Histogram,
}

/// Recreate and device-watch statistics (P1-P3, M2). Written by the service thread.
pub struct DeviceStats {
    pub recreates: AtomicU64,
    pub recreate_failures: AtomicU64,
    /// Recreates held back by `max_recreate_per_minute` (P1).
    pub recreates_refused: AtomicU64,
    pub device_query_failures: AtomicU64,
    /// `Reason` as u32; 0 = none yet.
    pub last_reason: std::sync::atomic::AtomicU32,
    /// Last route-change gap in microseconds; `u64::MAX` = not measured yet.
    pub last_gap_us: AtomicU64,
    /// Last write-to-first-audio after an idle suspend, microseconds; `u64::MAX` = none.
    pub last_wake_us: AtomicU64,
    /// Recent recreate durations in ms (P3), newest last.
    recreate_ms: std::sync::Mutex<std::collections::VecDeque<f64>>,
    /// Connections to the sound server rebuilt after it went away.
    pub server_reconnects: AtomicU64,
    /// Times output was lost (no server, no device, stopped callbacks) and each outage's
    /// total length so far, ms.
    pub outages: AtomicU64,
    pub outage_ms: AtomicU64,
    /// Route changes the server made itself, at a format the stream kept (no recreate).
    pub server_moves: AtomicU64,
}

const RECREATE_HISTORY: usize = 256;

impl Default for DeviceStats {
    fn default() -> Self {
        DeviceStats {
            recreates: AtomicU64::new(0),
            recreate_failures: AtomicU64::new(0),
            recreates_refused: AtomicU64::new(0),
            device_query_failures: AtomicU64::new(0),
            server_reconnects: AtomicU64::new(0),
            outages: AtomicU64::new(0),
            outage_ms: AtomicU64::new(0),
            server_moves: AtomicU64::new(0),
            last_reason: std::sync::atomic::AtomicU32::new(0),
            last_gap_us: AtomicU64::new(u64::MAX),
            last_wake_us: AtomicU64::new(u64::MAX),
            recreate_ms: Default::default(),
        }
    }
}

impl DeviceStats {
    pub fn record_recreate(&self, reason: Reason, ms: f64, ok: bool) {
        self.recreates.fetch_add(1, Relaxed);
        if !ok {
            self.recreate_failures.fetch_add(1, Relaxed);
        }
        self.last_reason.store(reason as u32, Relaxed);
        let mut h = self.recreate_ms.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == RECREATE_HISTORY {
            h.pop_front();
        }
        h.push_back(ms);
    }

    /// (p50, p95, max) of recent recreate durations, ms.
    pub fn recreate_ms(&self) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self
            .recreate_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        (at(0.5), at(0.95), *v.last().unwrap())
    }
}
