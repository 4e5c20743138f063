//! `ApMetrics`: a polled snapshot of the player's counters (SPEC C3, M1).

use std::os::raw::c_char;

use super::handle::{self, ApPlayer};
use super::status::ApStatus;
use super::{ffi_guard, try_mut};
use crate::data::metrics::Metrics;
use crate::data::metrics::Percentiles;

/// Size of the device id and name buffers in `ApMetrics` and `ApStreamState`.
pub const AP_DEVICE_ID_LEN: usize = 128;

/// Why the stream was last (re)created (`ApMetrics.last_recreate_reason`).
pub const AP_REASON_NONE: u32 = 0;
/// The first stream, at creation.
pub const AP_REASON_INITIAL: u32 = 1;
/// The system's default output changed (or the pinned device left or came back).
pub const AP_REASON_DEVICE_CHANGED: u32 = 2;
/// The stream reported its device gone.
pub const AP_REASON_STREAM_LOST: u32 = 3;
/// Same device, new native rate or channel count.
pub const AP_REASON_FORMAT_CHANGED: u32 = 4;
/// No stream was running (an earlier attempt failed).
pub const AP_REASON_RETRY: u32 = 5;
/// The application chose another device (`ap_set_device`).
pub const AP_REASON_REQUESTED: u32 = 6;
/// The sound server restarted and the player rebuilt its connection.
pub const AP_REASON_SERVER_RESTARTED: u32 = 7;

/// Copies `s` into a fixed C buffer, truncated at a character boundary, NUL-terminated.
pub(crate) fn copy_str(s: &str, out: &mut [c_char]) {
    let mut n = s.len().min(out.len().saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (o, b) in out.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *o = *b as c_char;
    }
    out[n..].fill(0);
}

impl Default for ApMetrics {
    fn default() -> Self {
        // SAFETY: every field is an integer, a float or an array of them: all-zero is valid.
        unsafe { std::mem::zeroed() }
    }
}

/// Device sample formats reported in `ApMetrics.device_format`.
pub type ApDeviceFormat = i32;
/// No stream yet.
pub const AP_DEVICE_FORMAT_UNKNOWN: ApDeviceFormat = 0;
/// Signed 16-bit.
pub const AP_DEVICE_FORMAT_I16: ApDeviceFormat = 1;
/// 32-bit float.
pub const AP_DEVICE_FORMAT_F32: ApDeviceFormat = 2;
/// Signed 32-bit.
pub const AP_DEVICE_FORMAT_I32: ApDeviceFormat = 3;
/// Signed 24-bit.
pub const AP_DEVICE_FORMAT_I24: ApDeviceFormat = 4;
/// Unsigned 8-bit.
pub const AP_DEVICE_FORMAT_U8: ApDeviceFormat = 5;
/// 64-bit float.
pub const AP_DEVICE_FORMAT_F64: ApDeviceFormat = 6;
/// Another format.
pub const AP_DEVICE_FORMAT_OTHER: ApDeviceFormat = 7;

/// Counters and timings. Set `struct_size = sizeof(ApMetrics)` before `ap_metrics`.
/// Frame accounting: `frames_written = frames_played + frames_queued + frames_flushed +
/// frames_dropped`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ApMetrics {
    /// `sizeof(ApMetrics)`, set by the caller.
    pub struct_size: u32,
    /// Output channels of the device stream.
    pub output_channels: u32,
    /// Content frames accepted by `ap_write`.
    pub frames_written: u64,
    /// Content frames taken by the audio callback.
    pub frames_played: u64,
    /// Content frames waiting in the queue.
    pub frames_queued: u64,
    /// Content frames discarded by the library (destroy).
    pub frames_dropped: u64,
    /// Dry spells that interrupted playing audio (never counted while idle or draining).
    pub underruns: u64,
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
    /// Audio callbacks run.
    pub callbacks: u64,
    /// Errors the device stream reported.
    pub stream_errors: u64,
    /// Generation of the current stream (bumped by every recreate).
    pub stream_generation: u64,
    /// Audio callback duration percentiles, microseconds.
    pub callback_us_p50: f64,
    /// 95th percentile.
    pub callback_us_p95: f64,
    /// 99th percentile.
    pub callback_us_p99: f64,
    /// Largest seen.
    pub callback_us_max: f64,
    /// Time spent resampling per callback, microseconds (SPEC S3 tripwire).
    pub resample_us_p50: f64,
    /// 95th percentile.
    pub resample_us_p95: f64,
    /// 99th percentile.
    pub resample_us_p99: f64,
    /// Largest seen.
    pub resample_us_max: f64,
    /// Device latency reported by the stream, milliseconds.
    pub output_latency_ms: f64,
    /// Rate the device stream runs at.
    pub stream_rate: u32,
    /// The device's native rate.
    pub device_rate: u32,
    /// Rate of the written content.
    pub content_rate: u32,
    /// `AP_DEVICE_FORMAT_*` of the device stream.
    pub device_format: ApDeviceFormat,
    /// 1 when the library resamples (stream rate differs from content rate).
    pub needs_resample: u32,
    /// 1 while a stream recreate is in progress.
    pub recreating: u32,
    /// `AP_REASON_*` of the last stream (re)creation.
    pub last_recreate_reason: u32,
    /// Content frames played again on a new device because the old one vanished before
    /// playing them (not part of the frame accounting identity).
    pub frames_replayed: u64,
    /// Stream (re)creations, including the first and failed ones.
    pub recreates: u64,
    /// Stream (re)creations that failed.
    pub recreate_failures: u64,
    /// Recreates held back by `max_recreate_per_minute`.
    pub recreates_refused: u64,
    /// Failed output-device queries (the last known device is used meanwhile).
    pub device_query_failures: u64,
    /// Milliseconds from the last frame on the old device to the first on the new one at the
    /// last route change; -1 until one was measured.
    pub last_route_gap_ms: f64,
    /// Recreate durations, milliseconds.
    pub recreate_ms_p50: f64,
    /// 95th percentile.
    pub recreate_ms_p95: f64,
    /// Largest seen.
    pub recreate_ms_max: f64,
    /// Current output device id and name, NUL-terminated (truncated to fit).
    pub device_id: [c_char; AP_DEVICE_ID_LEN],
    /// Current output device's name, NUL-terminated (truncated to fit).
    pub device_name: [c_char; AP_DEVICE_ID_LEN],
    /// Content frames discarded by `ap_flush`.
    pub frames_flushed: u64,
    /// The content frame the listener hears now (monotonic, across device changes).
    pub frames_heard: u64,
    /// Markers inside flushed audio (they never fire).
    pub markers_flushed: u64,
    /// Events lost because nobody polled them (the queue keeps the newest 4096).
    pub events_dropped: u64,
    /// Write to first audio heard at the last wake from idle suspend, ms; -1 if none yet.
    pub last_wake_ms: f64,
    /// 1 while the device stream is paused for idleness (`idle_suspend_ms`).
    pub suspended: u32,
    /// Callbacks that came after the device had played everything written before them: the
    /// audio thread was starved of CPU and the device ran dry (`underruns` counts a dry queue).
    pub late_callbacks: u64,
    /// 1 once SPEC S3 has moved resampling from the audio callback to the writing thread.
    pub resample_fallback: u32,
    /// 1 while nothing has played for `device_lost_timeout_ms` (`ap_write` and `ap_drain`
    /// return `AP_ERR_NO_OUTPUT`).
    pub output_lost: u32,
    /// Outages so far (no server, no device, or a stream whose callbacks stopped), and how
    /// long the latest lasted (or has lasted), ms.
    pub outages: u64,
    /// How long the latest outage lasted (or has lasted), ms.
    pub last_outage_ms: u64,
    /// Connections to the sound server rebuilt after it went away and came back.
    pub server_reconnects: u64,
    /// Times the audio server played silence of its own because the stream's data came too
    /// late (PulseAudio's UNDERFLOW notification; an xrun on other hosts). Not part of
    /// `underruns` (a dry queue) or `stream_errors`.
    pub server_underflows: u64,
    /// Leading silence dropped at utterance starts (`ApConfig.trim_threshold`), ms of
    /// content; those frames are in no other counter (not in `frames_written`).
    pub trimmed_ms: f64,
    /// Flushes whose fade was written into what the sound server already held (PulseAudio),
    /// so silence came a few ms after `ap_flush` rather than after the device latency. A
    /// flush not counted here faded behind what the server held.
    pub flushes_rewritten: u64,
    /// Route changes the sound server made itself (PulseAudio moves the default sink's
    /// streams to a new default) at the format the stream plays at: the stream was kept,
    /// without a gap, instead of recreated (not in `recreates`).
    pub server_moves: u64,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn format_code(f: Option<cpal::SampleFormat>) -> ApDeviceFormat {
    use cpal::SampleFormat as F;
    match f {
        None => AP_DEVICE_FORMAT_UNKNOWN,
        Some(F::I16) => AP_DEVICE_FORMAT_I16,
        Some(F::F32) => AP_DEVICE_FORMAT_F32,
        Some(F::I32) => AP_DEVICE_FORMAT_I32,
        Some(F::I24) => AP_DEVICE_FORMAT_I24,
        Some(F::U8) => AP_DEVICE_FORMAT_U8,
        Some(F::F64) => AP_DEVICE_FORMAT_F64,
        Some(_) => AP_DEVICE_FORMAT_OTHER,
    }
}

impl From<&Metrics> for ApMetrics {
    fn from(m: &Metrics) -> Self {
        let (c, r): (Percentiles, Percentiles) = (m.callback_time, m.resample_time);
        let mut out = ApMetrics {
            struct_size: std::mem::size_of::<ApMetrics>() as u32,
            output_channels: m.state.channels as u32,
            frames_written: m.frames_written,
            frames_played: m.frames_played,
            frames_queued: m.frames_queued,
            frames_dropped: m.frames_dropped,
            underruns: m.underruns,
            generation_mismatches: m.generation_mismatches,
            shape_mismatches: m.shape_mismatches,
            callback_errors: m.callback_errors,
            resample_errors: m.resample_errors,
            callbacks: m.callbacks,
            stream_errors: m.stream_errors,
            stream_generation: m.state.generation,
            callback_us_p50: us(c.p50_ns),
            callback_us_p95: us(c.p95_ns),
            callback_us_p99: us(c.p99_ns),
            callback_us_max: us(c.max_ns),
            resample_us_p50: us(r.p50_ns),
            resample_us_p95: us(r.p95_ns),
            resample_us_p99: us(r.p99_ns),
            resample_us_max: us(r.max_ns),
            output_latency_ms: m.output_latency_ns as f64 / 1e6,
            stream_rate: m.state.stream_rate,
            device_rate: m.state.device_rate,
            content_rate: m.state.content_rate,
            device_format: format_code(m.state.format),
            needs_resample: m.needs_resample() as u32,
            recreating: m.recreating as u32,
            last_recreate_reason: m.last_recreate_reason.map_or(AP_REASON_NONE, |r| r as u32),
            frames_replayed: m.frames_replayed,
            recreates: m.recreates,
            recreate_failures: m.recreate_failures,
            recreates_refused: m.recreates_refused,
            device_query_failures: m.device_query_failures,
            last_route_gap_ms: m.last_route_gap_ms.unwrap_or(-1.0),
            recreate_ms_p50: m.recreate_ms.0,
            recreate_ms_p95: m.recreate_ms.1,
            recreate_ms_max: m.recreate_ms.2,
            device_id: [0; AP_DEVICE_ID_LEN],
            device_name: [0; AP_DEVICE_ID_LEN],
            frames_flushed: m.frames_flushed,
            frames_heard: m.frames_heard,
            markers_flushed: m.markers_flushed,
            events_dropped: m.events_dropped,
            last_wake_ms: m.last_wake_ms.unwrap_or(-1.0),
            suspended: m.suspended as u32,
            late_callbacks: m.late_callbacks,
            resample_fallback: m.resample_fallback as u32,
            output_lost: m.output_lost as u32,
            outages: m.outages,
            last_outage_ms: m.last_outage_ms,
            server_reconnects: m.server_reconnects,
            server_underflows: m.server_underflows,
            trimmed_ms: m.trimmed_ms,
            flushes_rewritten: m.flushes_rewritten,
            server_moves: m.server_moves,
        };
        copy_str(&m.state.device_id, &mut out.device_id);
        copy_str(&m.state.device_name, &mut out.device_name);
        out
    }
}

/// Fills `*out` with a snapshot of the player's metrics. `out->struct_size` must be
/// `sizeof(ApMetrics)` (`AP_ERR_STRUCT_SIZE` otherwise; `*out` is then untouched).
/// Lock-free with respect to the audio thread; thread-safe.
#[no_mangle]
pub extern "C" fn ap_metrics(player: *mut ApPlayer, out: *mut ApMetrics) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        // The size first, by raw pointer: nothing past a wrong one is read or written.
        let Some(size) = super::struct_size_of(out) else {
            return ApStatus::AP_ERR_NULL;
        };
        if !h.struct_size_is::<ApMetrics>(size, "ap_metrics") {
            return ApStatus::AP_ERR_STRUCT_SIZE;
        }
        let out = try_mut!(out);
        *out = ApMetrics::from(&h.player.metrics());
        ApStatus::AP_OK
    })
}

/// The current stream, read without taking any lock (SPEC U3). Set `struct_size` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ApStreamState {
    /// `sizeof(ApStreamState)`, set by the caller.
    pub struct_size: u32,
    /// 1 while a stream is installed and running.
    pub started: u32,
    /// Generation of the installed stream.
    pub generation: u64,
    /// Rate the device stream runs at, Hz.
    pub stream_rate: u32,
    /// The device's native rate, Hz.
    pub device_rate: u32,
    /// Rate of the content being played now (follows voice changes), Hz.
    pub content_rate: u32,
    /// Channels of the device stream.
    pub output_channels: u32,
    /// 1 while a recreate is in progress.
    pub recreating: u32,
    /// `AP_DEVICE_FORMAT_*` of the device stream.
    pub device_format: ApDeviceFormat,
    /// Current output device id, NUL-terminated (truncated to fit).
    pub device_id: [c_char; AP_DEVICE_ID_LEN],
    /// Current output device's name, NUL-terminated (truncated to fit).
    pub device_name: [c_char; AP_DEVICE_ID_LEN],
}

/// Fills `*out` with the current stream state without taking the stream lock or touching
/// the audio thread (SPEC U3): cheap enough to poll. `out->struct_size` must be
/// `sizeof(ApStreamState)`. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_snapshot_state(player: *mut ApPlayer, out: *mut ApStreamState) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        // The size first, by raw pointer: nothing past a wrong one is read or written.
        let Some(size) = super::struct_size_of(out) else {
            return ApStatus::AP_ERR_NULL;
        };
        if !h.struct_size_is::<ApStreamState>(size, "ap_snapshot_state") {
            return ApStatus::AP_ERR_STRUCT_SIZE;
        }
        let out = try_mut!(out);
        let st = h.player.snapshot();
        let mut s = ApStreamState {
            struct_size: std::mem::size_of::<ApStreamState>() as u32,
            started: st.started as u32,
            generation: st.generation,
            stream_rate: st.stream_rate,
            device_rate: st.device_rate,
            content_rate: st.content_rate,
            output_channels: st.channels as u32,
            recreating: h.player.recreating() as u32,
            device_format: format_code(st.format),
            device_id: [0; AP_DEVICE_ID_LEN],
            device_name: [0; AP_DEVICE_ID_LEN],
        };
        copy_str(&st.device_id, &mut s.device_id);
        copy_str(&st.device_name, &mut s.device_name);
        *out = s;
        ApStatus::AP_OK
    })
}
