//! The metrics snapshot: everything the player counts, as the application reads it.

use crate::data::state::{Reason, StreamState};

/// Percentiles of a duration histogram, ns (upper bucket bounds: never optimistic).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest seen.
    pub max_ns: u64,
}

/// A point-in-time view of everything the player counts (C3, M1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Content frames accepted by `write`.
    pub frames_written: u64,
    /// Content frames the audio callback took from the queue.
    pub frames_played: u64,
    /// Content frames waiting in the queue.
    pub frames_queued: u64,
    /// Content frames discarded by the library (at close).
    pub frames_dropped: u64,
    /// Audio callbacks run.
    pub callbacks: u64,
    /// Dry spells that interrupted playing audio (never counted while idle or draining).
    pub underruns: u64,
    /// Callbacks that came too late to keep the device fed (starved audio thread).
    pub late_callbacks: u64,
    /// SPEC S3 moved resampling from the callback to the writing thread.
    pub resample_fallback: bool,
    /// Callbacks of a stream that is no longer current (they output silence, SPEC C1).
    pub generation_mismatches: u64,
    /// Callbacks whose buffer did not fit the stream's shape (silence).
    pub shape_mismatches: u64,
    /// Memory the callback could not hand back for freeing (the garbage queue was full) and
    /// leaked rather than free on the audio thread.
    pub callback_errors: u64,
    /// Voice changes whose prepared resampler no longer fit the stream's rate: played on
    /// with linear resampling until the next change.
    pub resample_errors: u64,
    /// Callbacks that found the render core held by another stream's callback (silence).
    pub render_contended: u64,
    /// Errors the device stream reported.
    pub stream_errors: u64,
    /// Times the audio server filled a gap with silence of its own (the stream's data came
    /// too late: PulseAudio's UNDERFLOW). Not counted in `underruns` or `stream_errors`.
    pub server_underflows: u64,
    /// Audio callback durations.
    pub callback_time: Percentiles,
    /// Time spent resampling per callback.
    pub resample_time: Percentiles,
    /// Device latency the stream reports, ns.
    pub output_latency_ns: u64,
    /// A stream recreate is in progress.
    pub recreating: bool,
    /// The device stream is paused for idleness.
    pub suspended: bool,
    /// Write to first audio heard at the last wake from idle, ms.
    pub last_wake_ms: Option<f64>,
    /// The output stream as it is now.
    pub state: StreamState,
    /// Content frames played again on a new device because the old one vanished first.
    pub frames_replayed: u64,
    /// Content frames discarded by flushes.
    pub frames_flushed: u64,
    /// The content frame the listener hears now (monotonic, across device changes).
    pub frames_heard: u64,
    /// Markers inside flushed audio (they never fire).
    pub markers_flushed: u64,
    /// Events lost because nobody polled them.
    pub events_dropped: u64,
    /// Stream (re)creations, including the first and failed ones.
    pub recreates: u64,
    /// Stream (re)creations that failed.
    pub recreate_failures: u64,
    /// Recreates held back by `max_recreate_per_minute` (P1).
    pub recreates_refused: u64,
    /// Failed output-device queries (the last known device is used meanwhile).
    pub device_query_failures: u64,
    /// Why the stream was last (re)created.
    pub last_recreate_reason: Option<Reason>,
    /// Milliseconds from the last frame on the old device to the first on the new one.
    pub last_route_gap_ms: Option<f64>,
    /// Recreate duration (p50, p95, max), ms.
    pub recreate_ms: (f64, f64, f64),
    /// Nothing has played for `device_lost_timeout_ms`: writes and drains fail.
    pub output_lost: bool,
    /// Outages so far and the latest one's length, ms.
    pub outages: u64,
    /// How long the latest outage lasted (or has lasted), ms.
    pub last_outage_ms: u64,
    /// Sound-server connections rebuilt after a server restart.
    pub server_reconnects: u64,
    /// Leading silence dropped at utterance starts (`Config::trim_threshold`), ms of
    /// content; those frames are in no other counter.
    pub trimmed_ms: f64,
    /// Flushes whose fade was written into what the sound server already held (PulseAudio:
    /// a rewrite of its buffer from the frame about to play), so the fade is heard a few ms
    /// after the flush instead of after the device's latency. A flush not counted here
    /// faded behind what the server held (another server, a rewrite that came too late).
    pub flushes_rewritten: u64,
    /// Route changes the sound server made itself (PulseAudio moves the default sink's
    /// streams to a new default) at the format the stream plays at: the stream was kept,
    /// without a gap, instead of recreated. Not in `recreates`.
    pub server_moves: u64,
}

impl Metrics {
    /// Whether the library resamples (the stream rate differs from the content rate).
    pub fn needs_resample(&self) -> bool {
        self.state.stream_rate != 0 && self.state.stream_rate != self.state.content_rate
    }
}
