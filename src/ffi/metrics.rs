//! `ApMetrics`: a polled snapshot of the player's counters (SPEC C3, M1).

use super::handle::{self, ApPlayer};
use super::status::ApStatus;
use super::{ffi_guard, try_mut};
use crate::metrics::Percentiles;
use crate::player::Metrics;

/// Device sample formats reported in `ApMetrics.device_format`.
pub type ApDeviceFormat = i32;
pub const AP_DEVICE_FORMAT_UNKNOWN: ApDeviceFormat = 0;
pub const AP_DEVICE_FORMAT_I16: ApDeviceFormat = 1;
pub const AP_DEVICE_FORMAT_F32: ApDeviceFormat = 2;
pub const AP_DEVICE_FORMAT_I32: ApDeviceFormat = 3;
pub const AP_DEVICE_FORMAT_I24: ApDeviceFormat = 4;
pub const AP_DEVICE_FORMAT_U8: ApDeviceFormat = 5;
pub const AP_DEVICE_FORMAT_F64: ApDeviceFormat = 6;
pub const AP_DEVICE_FORMAT_OTHER: ApDeviceFormat = 7;

/// Counters and timings. Set `struct_size = sizeof(ApMetrics)` before `ap_metrics`.
/// Frame accounting: `frames_written = frames_played + frames_queued + frames_dropped`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ApMetrics {
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
    pub callback_errors: u64,
    pub resample_errors: u64,
    /// Audio callbacks run.
    pub callbacks: u64,
    /// Errors the device stream reported.
    pub stream_errors: u64,
    /// Generation of the current stream (bumped by every recreate).
    pub stream_generation: u64,
    /// Audio callback duration percentiles, microseconds.
    pub callback_us_p50: f64,
    pub callback_us_p95: f64,
    pub callback_us_p99: f64,
    pub callback_us_max: f64,
    /// Time spent resampling per callback, microseconds (SPEC S3 tripwire).
    pub resample_us_p50: f64,
    pub resample_us_p95: f64,
    pub resample_us_p99: f64,
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
        ApMetrics {
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
        }
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
        let out = try_mut!(out);
        if out.struct_size as usize != std::mem::size_of::<ApMetrics>() {
            h.set_error(format!(
                "ap_metrics: struct_size is {}, expected {}",
                out.struct_size,
                std::mem::size_of::<ApMetrics>()
            ));
            return ApStatus::AP_ERR_STRUCT_SIZE;
        }
        *out = ApMetrics::from(&h.player.metrics());
        ApStatus::AP_OK
    })
}
