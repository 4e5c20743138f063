//! `ApConfig`: creation settings (SPEC U4).

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::sync::Arc;

use super::status::ApStatus;
use super::{ffi_guard, try_mut};
use crate::data::config::{
    Config, InputFormat, LogLevel, PreferStreamRate, ResampleMode, ResampleQuality,
};

/// Sample format of the PCM passed to `ap_write`.
pub type ApFormat = i32;
/// Signed 16-bit, native endian.
pub const AP_FORMAT_S16: ApFormat = 1;
/// 32-bit float, native endian, nominal range [-1, 1]; NaN is played as 0, overs are clipped.
pub const AP_FORMAT_F32: ApFormat = 2;

/// `prefer_stream_rate`: which rate the device stream runs at.
pub type ApStreamRate = i32;
/// Open at the content rate when the device accepts it.
pub const AP_STREAM_RATE_CONTENT: ApStreamRate = 1;
/// Open at the device's native rate; the library resamples (default).
pub const AP_STREAM_RATE_DEVICE: ApStreamRate = 2;

/// `resample_mode`: where resampling happens.
pub type ApResampleMode = i32;
/// In the audio callback, from preallocated scratch (default).
pub const AP_RESAMPLE_CALLBACK: ApResampleMode = 1;
/// Before the ring, on the writing thread: the callback only copies (SPEC U2).
pub const AP_RESAMPLE_PRODUCER: ApResampleMode = 2;
/// Never: the stream runs at the content rate.
pub const AP_RESAMPLE_OFF: ApResampleMode = 3;

/// `resample_quality`: how the library resamples when it does.
pub type ApResampleQuality = i32;
/// Linear interpolation (default): the cheapest, about 1 ns per output frame.
pub const AP_QUALITY_LINEAR: ApResampleQuality = 1;
/// Polyphase windowed sinc: >= 96 dB SINAD for int16 content (transparent), flat to 0.415 of
/// the lower rate, under 1 ms of lookahead, a few ns per output frame.
pub const AP_QUALITY_HIGH: ApResampleQuality = 2;

/// Log severities, most severe first.
pub type ApLogLevel = i32;
/// Errors only.
pub const AP_LOG_ERROR: ApLogLevel = 1;
/// Warnings and errors.
pub const AP_LOG_WARN: ApLogLevel = 2;
/// What the player did, warnings and errors.
pub const AP_LOG_INFO: ApLogLevel = 3;
/// Everything.
pub const AP_LOG_DEBUG: ApLogLevel = 4;

/// Receives log lines. Called on the player's service thread (or the thread calling
/// `ap_create`), never on the audio thread. `message` is valid only during the call.
pub type ApLogFn =
    Option<unsafe extern "C" fn(user: *mut c_void, level: ApLogLevel, message: *const c_char)>;

/// Receives events when they are heard, on the player's event thread. `event` is valid
/// only during the call.
pub type ApEventFn =
    Option<unsafe extern "C" fn(user: *mut c_void, event: *const super::events::ApEvent)>;

/// Settings for `ap_create`. Always initialise with `ap_config_init`, then change fields.
#[repr(C)]
pub struct ApConfig {
    /// `sizeof(ApConfig)`, set by `ap_config_init`. Lets later versions append fields.
    pub struct_size: u32,
    /// `AP_FORMAT_S16` (default) or `AP_FORMAT_F32`.
    pub input_format: ApFormat,
    /// Interleaved channels in written PCM, 1..=32 (default 1).
    pub input_channels: u32,
    /// Content sample rate in Hz, 1000..=384000 (default 22050).
    pub input_rate: u32,
    /// Output device id (as listed by the host, e.g. a PulseAudio sink name); NULL follows
    /// the system default (default). Copied during `ap_create`.
    pub device_id: *const c_char,
    /// Device buffer target in ms, 2..=1000 (default 20: 10 ms callbacks).
    pub target_latency_ms: u32,
    /// Queue capacity in ms of content, 10..=60000 (default 2000).
    pub ring_capacity_ms: u32,
    /// How long `ap_write` may block for space, ms, 0..=600000; 0 = never block (default 1000).
    pub write_timeout_ms: u32,
    /// `AP_STREAM_RATE_DEVICE` (default) or `AP_STREAM_RATE_CONTENT`.
    pub prefer_stream_rate: ApStreamRate,
    /// `AP_RESAMPLE_CALLBACK` (default), `AP_RESAMPLE_OFF`.
    pub resample_mode: ApResampleMode,
    /// Most verbose level delivered to `log_fn` (default `AP_LOG_INFO`).
    pub log_level: ApLogLevel,
    /// Log receiver, or NULL for none (default).
    pub log_fn: ApLogFn,
    /// Passed back to `log_fn`.
    pub log_user: *mut c_void,
    /// How often the output device is checked, ms, 10..=10000 (default 250).
    pub device_poll_ms: u32,
    /// After a failed device query, wait this long before the next, ms (default 1000).
    /// Successful queries are acted on at once.
    pub device_query_cooldown_ms: u32,
    /// Stream recreates allowed in any 60 s window, 1..=600 (default 30).
    pub max_recreate_per_minute: u32,
    /// A new output device must stay the same this long before the stream moves, ms
    /// (default 60), so a flapping route causes one recreate.
    pub debounce_ms: u32,
    /// Audio handed to a vanished device but not yet heard is replayed on the new one, up to
    /// this many ms (default 200; 0 = never).
    pub max_replay_ms: u32,
    /// Recreates slower than this many ms are logged as warnings (default 500).
    pub recreate_warn_ms: u32,
    /// Pre-roll: an utterance starts playing once this many ms of it are queued or it has
    /// ended, so a slow engine's first chunks do not stutter (default 0 = at once).
    pub start_threshold_ms: u32,
    /// After this many ms with nothing queued or playing, the device stream is paused to save
    /// power; the next `ap_write` resumes it (default 0 = never).
    pub idle_suspend_ms: u32,
    /// Receives events (markers, utterance start/end, underruns, device changes, flushes)
    /// when they are heard, on the player's event thread; NULL for none (default). Events
    /// are also queued for `ap_poll_event` either way.
    pub event_fn: ApEventFn,
    /// Passed back to `event_fn`.
    pub event_user: *mut c_void,
    /// `AP_QUALITY_LINEAR` (default) or `AP_QUALITY_HIGH`; applies to callback and producer
    /// resampling alike.
    pub resample_quality: ApResampleQuality,
    /// SPEC S3: when the audio callback's resample time p95 (over ~100 callbacks) exceeds
    /// this many microseconds, resampling moves to the writing thread for good, logged once
    /// (default 5000).
    pub resample_p95_limit_us: u32,
    /// SCHED_FIFO priority (1-99) the library asks for its audio thread (on PulseAudio, the
    /// client thread that runs the callback), best effort: without the right to (root,
    /// CAP_SYS_NICE or RLIMIT_RTPRIO) it logs once at info level and carries on. 0 leaves
    /// the thread's scheduling alone (default 10).
    pub audio_thread_priority: u32,
    /// After this many ms with no output at all (the sound server gone, no device, a stream
    /// that stopped), `ap_write` and `ap_drain` return `AP_ERR_NO_OUTPUT` until output is
    /// back; `AP_EVENT_OUTPUT_LOST` / `AP_EVENT_OUTPUT_RESTORED` tell when it goes and
    /// comes back. 0 = never give up (default 10000).
    pub device_lost_timeout_ms: u32,
    /// How the sound server (PulseAudio, PipeWire) shows, remembers and routes this player;
    /// each a NUL-terminated UTF-8 string of at most 256 bytes, copied during `ap_create`,
    /// NULL for the default. application.name: default the program's file name.
    pub application_name: *const c_char,
    /// application.id, reverse-DNS (`org.example.Reader`): default none.
    pub application_id: *const c_char,
    /// media.name of the stream: default "Speech".
    pub stream_name: *const c_char,
    /// media.role of the stream: default "a11y" (accessibility: desktops duck other audio for
    /// it and route it as speech); "none" sets no role.
    pub media_role: *const c_char,
    /// The keep-awake window: after this many ms with nothing queued or playing the device
    /// stream is suspended (no callbacks, no wakeups; the sink may sleep) and the next write
    /// wakes it. 0 = never suspend (default 30000). `idle_suspend_ms`, if set, wins.
    pub keep_awake_ms: u32,
    /// Silence played after a suspend before the first frame, ms (0-1000), so a sink that
    /// wakes slowly (Bluetooth) does not clip the first syllable (default 0).
    pub wake_preroll_ms: u32,
    /// Leading-silence trim: at an utterance's start, leading frames whose every sample is
    /// below this magnitude (full scale 1.0; int16 is scaled by 1/32768) are dropped before
    /// they are queued, keeping the last `trim_keep_ms` of them, so the first sound starts
    /// sooner; markers stay on their words. 0 = off (default), else up to 1. Dropped time is
    /// in `ApMetrics.trimmed_ms`.
    pub trim_threshold: f32,
    /// Leading silence kept before the first sound when trimming, ms (0-1000, default 10).
    pub trim_keep_ms: u32,
}

/// Fills `config` with defaults, including `struct_size`. Thread-safe (touches only `config`).
///
/// Returns `AP_ERR_NULL` if `config` is NULL.
#[no_mangle]
pub extern "C" fn ap_config_init(config: *mut ApConfig) -> ApStatus {
    ffi_guard!({
        let out = try_mut!(config);
        let d = Config::default();
        *out = ApConfig {
            struct_size: std::mem::size_of::<ApConfig>() as u32,
            input_format: AP_FORMAT_S16,
            input_channels: d.input_channels as u32,
            input_rate: d.input_rate,
            device_id: std::ptr::null(),
            target_latency_ms: d.target_latency_ms,
            ring_capacity_ms: d.ring_capacity_ms,
            write_timeout_ms: d.write_timeout_ms,
            prefer_stream_rate: AP_STREAM_RATE_DEVICE,
            resample_mode: AP_RESAMPLE_CALLBACK,
            log_level: AP_LOG_INFO,
            log_fn: None,
            log_user: std::ptr::null_mut(),
            device_poll_ms: d.device_poll_ms,
            device_query_cooldown_ms: d.device_query_cooldown_ms,
            max_recreate_per_minute: d.max_recreate_per_minute,
            debounce_ms: d.debounce_ms,
            max_replay_ms: d.max_replay_ms,
            recreate_warn_ms: d.recreate_warn_ms,
            start_threshold_ms: d.start_threshold_ms,
            idle_suspend_ms: d.idle_suspend_ms,
            event_fn: None,
            resample_quality: AP_QUALITY_LINEAR,
            resample_p95_limit_us: d.resample_p95_limit_us,
            audio_thread_priority: d.audio_thread_priority,
            event_user: std::ptr::null_mut(),
            device_lost_timeout_ms: d.device_lost_timeout_ms,
            application_name: std::ptr::null(),
            application_id: std::ptr::null(),
            stream_name: std::ptr::null(),
            media_role: std::ptr::null(),
            keep_awake_ms: d.keep_awake_ms,
            wake_preroll_ms: d.wake_preroll_ms,
            trim_threshold: d.trim_threshold,
            trim_keep_ms: d.trim_keep_ms,
        };
        ApStatus::AP_OK
    })
}

/// Carries the C user pointer into the log closure.
struct UserPtr(*mut c_void);
// SAFETY: the pointer is only handed back to the caller's own log function, which the header
// documents may run on the player's service and event threads.
unsafe impl Send for UserPtr {}
// SAFETY: as above; the library never dereferences it.
unsafe impl Sync for UserPtr {}

impl UserPtr {
    // A method, so closures capture the whole Send wrapper rather than its raw field.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

fn level_from(v: ApLogLevel) -> Option<LogLevel> {
    Some(match v {
        AP_LOG_ERROR => LogLevel::Error,
        AP_LOG_WARN => LogLevel::Warn,
        AP_LOG_INFO => LogLevel::Info,
        AP_LOG_DEBUG => LogLevel::Debug,
        _ => return None,
    })
}

/// Converts a checked `ApConfig` to the Rust config. The error names the bad field.
pub(crate) fn to_config(c: &ApConfig) -> Result<Config, (ApStatus, String)> {
    let invalid = |m: String| (ApStatus::AP_ERR_INVALID_ARG, m);
    if c.struct_size as usize != std::mem::size_of::<ApConfig>() {
        return Err((
            ApStatus::AP_ERR_STRUCT_SIZE,
            format!(
                "ApConfig.struct_size is {}, this library's ApConfig is {} bytes (use ap_config_init)",
                c.struct_size,
                std::mem::size_of::<ApConfig>()
            ),
        ));
    }
    let input_format = match c.input_format {
        AP_FORMAT_S16 => InputFormat::S16,
        AP_FORMAT_F32 => InputFormat::F32,
        v => {
            return Err(invalid(format!(
                "input_format {v} is not an AP_FORMAT_* value"
            )))
        }
    };
    let prefer_stream_rate = match c.prefer_stream_rate {
        AP_STREAM_RATE_CONTENT => PreferStreamRate::Content,
        AP_STREAM_RATE_DEVICE => PreferStreamRate::Device,
        v => {
            return Err(invalid(format!(
                "prefer_stream_rate {v} is not an AP_STREAM_RATE_* value"
            )))
        }
    };
    let resample_mode = match c.resample_mode {
        AP_RESAMPLE_CALLBACK => ResampleMode::Callback,
        AP_RESAMPLE_PRODUCER => ResampleMode::Producer,
        AP_RESAMPLE_OFF => ResampleMode::Off,
        v => {
            return Err(invalid(format!(
                "resample_mode {v} is not an AP_RESAMPLE_* value"
            )))
        }
    };
    let resample_quality = match c.resample_quality {
        AP_QUALITY_LINEAR => ResampleQuality::Linear,
        AP_QUALITY_HIGH => ResampleQuality::High,
        v => {
            return Err(invalid(format!(
                "resample_quality {v} is not an AP_QUALITY_* value"
            )))
        }
    };
    let log_level = level_from(c.log_level).ok_or_else(|| {
        invalid(format!(
            "log_level {} is not an AP_LOG_* value",
            c.log_level
        ))
    })?;
    let string = |p: *const c_char, name: &str| -> Result<Option<String>, (ApStatus, String)> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: non-null; the header requires a NUL-terminated string valid during the call.
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| invalid(format!("{name} is not valid UTF-8")))
    };
    let device_id = string(c.device_id, "device_id")?;
    let identity = crate::data::config::Identity {
        application_name: string(c.application_name, "application_name")?,
        application_id: string(c.application_id, "application_id")?,
        stream_name: string(c.stream_name, "stream_name")?,
        media_role: string(c.media_role, "media_role")?,
    };
    let channels = u16::try_from(c.input_channels)
        .map_err(|_| invalid(format!("input_channels {} out of range", c.input_channels)))?;
    let log_sink: Option<crate::data::config::LogSink> = c.log_fn.map(|f| {
        let user = UserPtr(c.log_user);
        Arc::new(move |level: LogLevel, msg: &str| {
            let text = std::ffi::CString::new(msg.replace('\0', " ")).unwrap_or_default();
            // SAFETY: `f` is the caller's log function; the message outlives the call.
            unsafe { f(user.get(), level as i32, text.as_ptr()) }
        }) as crate::data::config::LogSink
    });
    let cfg = Config {
        identity,
        keep_awake_ms: c.keep_awake_ms,
        wake_preroll_ms: c.wake_preroll_ms,
        trim_threshold: c.trim_threshold,
        trim_keep_ms: c.trim_keep_ms,
        input_format,
        input_channels: channels,
        input_rate: c.input_rate,
        device_id,
        target_latency_ms: c.target_latency_ms,
        ring_capacity_ms: c.ring_capacity_ms,
        write_timeout_ms: c.write_timeout_ms,
        prefer_stream_rate,
        resample_mode,
        resample_quality,
        resample_p95_limit_us: c.resample_p95_limit_us,
        audio_thread_priority: c.audio_thread_priority,
        log_sink,
        log_level,
        device_poll_ms: c.device_poll_ms,
        device_query_cooldown_ms: c.device_query_cooldown_ms,
        max_recreate_per_minute: c.max_recreate_per_minute,
        debounce_ms: c.debounce_ms,
        max_replay_ms: c.max_replay_ms,
        recreate_warn_ms: c.recreate_warn_ms,
        start_threshold_ms: c.start_threshold_ms,
        idle_suspend_ms: c.idle_suspend_ms,
        device_lost_timeout_ms: c.device_lost_timeout_ms,
        event_sink: c.event_fn.map(|f| {
            let user = UserPtr(c.event_user);
            Arc::new(move |e: &crate::data::events::Event| {
                let ev = super::events::ApEvent::from(e);
                // SAFETY: `f` is the caller's event function; `ev` outlives the call.
                unsafe { f(user.get(), &ev) }
            }) as crate::data::events::EventSink
        }),
    };
    cfg.validate().map_err(invalid)?;
    Ok(cfg)
}
