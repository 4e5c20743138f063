//! Player configuration: the Rust-side mirror of `ApConfig` (SPEC U4).

use std::sync::Arc;

/// Sample format of the PCM the engine writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// Signed 16-bit native-endian; converted with `x / 32768` (SPEC D3).
    S16,
    /// 32-bit float, nominal range [-1, 1].
    F32,
}

impl InputFormat {
    /// Bytes one sample of this format takes.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            InputFormat::S16 => 2,
            InputFormat::F32 => 4,
        }
    }
}

/// Which rate the device stream is opened at (SPEC U4 `prefer_stream_rate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreferStreamRate {
    /// Open at the content rate when the device accepts it (the server may resample).
    Content,
    /// Open at the device's native rate and resample in the library (SPEC A2).
    Device,
}

/// Where resampling happens (SPEC U4 `resample_mode`, S3, U2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResampleMode {
    /// In the audio callback, from a preallocated scratch buffer.
    Callback,
    /// Before the ring buffer, on the writing thread (U2).
    Producer,
    /// Never: the stream is opened at the content rate.
    Off,
}

/// How the library resamples (issue 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResampleQuality {
    /// Linear interpolation (SPEC S1): the cheapest; images and HF droop are audible on
    /// music, rarely on speech.
    Linear,
    /// Polyphase windowed sinc: >= 96 dB SINAD for int16 content, < 1 ms lookahead.
    High,
}

/// How long a [`crate::Player::set_gain_pan`] setting lasts (issue 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GainScope {
    /// The utterance it is made in (or the next one, if made between utterances): the next
    /// utterance goes back to the last `UntilChanged` setting (gain 1, centre at first).
    Utterance,
    /// From here on, until changed.
    UntilChanged,
}

/// Severity of a deferred log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed: a stream could not be opened, a request was lost.
    Error = 1,
    /// Something the application should know: a slow recreate, a fallback taken.
    Warn = 2,
    /// What the player did: device changes, recreates, suspends.
    Info = 3,
    /// Detail for debugging: every query and decision.
    Debug = 4,
}

/// Receives formatted log lines on the player's service thread, never on the audio thread (C4).
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// How a [`crate::Player`] is set up; `Config::default()` is speech at 22050 Hz mono int16
/// to the system's default output.
#[derive(Clone)]
pub struct Config {
    /// Sample format `write` takes at first (`set_input_format` changes it).
    pub input_format: InputFormat,
    /// Interleaved channels of the written audio at first (1 or 2).
    pub input_channels: u16,
    /// Rate of the written audio at first, Hz.
    pub input_rate: u32,
    /// `None` = follow the system default output.
    pub device_id: Option<String>,
    /// End-to-end device buffer target; one callback period is half of it.
    pub target_latency_ms: u32,
    /// How much written audio the queue holds, ms of the configured format.
    pub ring_capacity_ms: u32,
    /// How long `write` may block for ring space; 0 = never block.
    pub write_timeout_ms: u32,
    /// Which rate the device stream opens at.
    pub prefer_stream_rate: PreferStreamRate,
    /// Where resampling runs.
    pub resample_mode: ResampleMode,
    /// How resampling is done.
    pub resample_quality: ResampleQuality,
    /// SPEC S3: when the callback's resample time p95 (over ~100 callbacks) exceeds this,
    /// resampling moves to the writing thread, once and for good (logged).
    pub resample_p95_limit_us: u32,
    /// SCHED_FIFO priority asked for the audio thread (PulseAudio's client thread, which runs
    /// the callback), best effort: 0 leaves its scheduling alone (see `priority`).
    pub audio_thread_priority: u32,
    /// Receives log lines (on the service thread); `None` drops them.
    pub log_sink: Option<LogSink>,
    /// The most detailed level passed to `log_sink`.
    pub log_level: LogLevel,
    /// How often the service thread checks the output device (V1).
    pub device_poll_ms: u32,
    /// After a failed device query, wait this long before the next (V2: failures only).
    pub device_query_cooldown_ms: u32,
    /// P1: recreates allowed in any 60 s window.
    pub max_recreate_per_minute: u32,
    /// A new target device must stay the same this long before a recreate (debounce).
    pub debounce_ms: u32,
    /// Audio already handed to a vanished device but not yet heard, replayed on the new one,
    /// at most this much (0 = never replay).
    pub max_replay_ms: u32,
    /// P3: recreates slower than this are warned about.
    pub recreate_warn_ms: u32,
    /// Pre-roll: an utterance starts playing once this much of it is queued, or it has
    /// ended (0 = at once).
    pub start_threshold_ms: u32,
    /// After this long with nothing queued or playing, the device stream is paused to save
    /// power; the next write resumes it (0 = never).
    pub idle_suspend_ms: u32,
    /// Receives events (markers, utterance start/end, underruns, device changes, flushes)
    /// on the player's event thread when they are heard; they are also queued for polling.
    pub event_sink: Option<crate::data::events::EventSink>,
    /// After this long with no output at all (no server, no device, a stopped stream),
    /// `write` and `drain` fail with `Error::NoOutput` until output is back (0 = never).
    pub device_lost_timeout_ms: u32,
    /// How the sound server shows, remembers and routes this player's stream.
    pub identity: Identity,
    /// The keep-awake window: after this long with nothing queued or playing, the device
    /// stream is suspended (corked: no callbacks, the sink may sleep); the next write wakes
    /// it. 0 = never suspend. `idle_suspend_ms`, when set, takes its place.
    pub keep_awake_ms: u32,
    /// After a suspend, this much silence is played before the first frame, so a sink that
    /// wakes slowly (Bluetooth) does not clip the first syllable (0 = none).
    pub wake_preroll_ms: u32,
    /// Leading-silence trim (issue 16): at an utterance's start, leading frames whose every
    /// sample is below this magnitude (full scale 1.0; int16 content is scaled by 1/32768)
    /// are dropped before they are queued, keeping the last `trim_keep_ms` of them, so the
    /// first sound starts sooner. 0 = off (the default). Dropped time is in
    /// `Metrics::trimmed_ms`.
    pub trim_threshold: f32,
    /// Leading silence kept before the first sound when trimming, ms (0-1000, default 10).
    pub trim_keep_ms: u32,
}

/// How the sound server shows, remembers and routes a player (PulseAudio and PipeWire:
/// `pactl list sink-inputs`). A desktop ducks other audio for the `a11y` role, keeps the
/// volume the user gave this application, and routes by role; `None` takes the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// application.name; default: the program's file name (stable across runs).
    pub application_name: Option<String>,
    /// application.id, reverse-DNS (`org.example.Reader`); default: none.
    pub application_id: Option<String>,
    /// media.name of the stream; default "Speech".
    pub stream_name: Option<String>,
    /// media.role; default "a11y" (accessibility: speech), "none" sets no role.
    pub media_role: Option<String>,
}

/// The role speech has on PulseAudio and PipeWire (module-role-ducking, WirePlumber).
pub const DEFAULT_MEDIA_ROLE: &str = "a11y";
/// The stream name shown when none is given.
pub const DEFAULT_STREAM_NAME: &str = "Speech";
/// Longest identity value accepted, bytes (the server's property lists are small).
pub const MAX_IDENTITY_LEN: usize = 256;

/// The identity with every default filled in: (application name, application id, stream
/// name, media role), "" where there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// application.name.
    pub application_name: String,
    /// application.id ("": none).
    pub application_id: String,
    /// media.name.
    pub stream_name: String,
    /// media.role ("": none).
    pub media_role: String,
}

impl Identity {
    /// Every default filled in (the program's name, "Speech", "a11y").
    pub fn resolve(&self) -> ResolvedIdentity {
        let program = || {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .or_else(|| std::env::args().next())
                .unwrap_or_else(|| "audioplay".into())
        };
        ResolvedIdentity {
            application_name: self.application_name.clone().unwrap_or_else(program),
            application_id: self.application_id.clone().unwrap_or_default(),
            stream_name: self
                .stream_name
                .clone()
                .unwrap_or_else(|| DEFAULT_STREAM_NAME.into()),
            media_role: match self.media_role.as_deref() {
                None => DEFAULT_MEDIA_ROLE.into(),
                Some("none") => String::new(),
                Some(r) => r.into(),
            },
        }
    }

    fn validate(&self) -> Result<(), String> {
        let fields = [
            ("application_name", &self.application_name),
            ("application_id", &self.application_id),
            ("stream_name", &self.stream_name),
            ("media_role", &self.media_role),
        ];
        for (name, v) in fields {
            let Some(v) = v else { continue };
            if v.is_empty() || v.len() > MAX_IDENTITY_LEN || v.contains('\0') {
                return Err(format!(
                    "{name} {v:?}: must be 1..={MAX_IDENTITY_LEN} bytes with no NUL"
                ));
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            input_format: InputFormat::S16,
            input_channels: 1,
            input_rate: 22050,
            device_id: None,
            target_latency_ms: 20,
            ring_capacity_ms: 2000,
            write_timeout_ms: 1000,
            prefer_stream_rate: PreferStreamRate::Device,
            resample_mode: ResampleMode::Callback,
            resample_quality: ResampleQuality::Linear,
            resample_p95_limit_us: 5000,
            audio_thread_priority: 10,
            log_sink: None,
            log_level: LogLevel::Info,
            device_poll_ms: 250,
            device_query_cooldown_ms: 1000,
            max_recreate_per_minute: 30,
            debounce_ms: 60,
            max_replay_ms: 200,
            recreate_warn_ms: 500,
            start_threshold_ms: 0,
            idle_suspend_ms: 0,
            event_sink: None,
            device_lost_timeout_ms: 10_000,
            identity: Identity::default(),
            keep_awake_ms: 30_000,
            wake_preroll_ms: 0,
            trim_threshold: 0.0,
            trim_keep_ms: 10,
        }
    }
}

/// Largest channel count accepted on either side; bounds the resampler's per-frame state.
pub const MAX_CHANNELS: usize = 32;
/// Lowest content rate accepted, Hz.
pub const MIN_RATE: u32 = 1000;
/// Highest content rate accepted, Hz.
pub const MAX_RATE: u32 = 384_000;

impl Config {
    /// How long an idle player keeps its stream awake before suspending it (ms, 0: never).
    pub fn suspend_after_ms(&self) -> u32 {
        if self.idle_suspend_ms != 0 {
            self.idle_suspend_ms
        } else {
            self.keep_awake_ms
        }
    }

    /// Checks every field; the message names the field so C callers get a useful last-error.
    pub fn validate(&self) -> Result<(), String> {
        self.identity.validate()?;
        if !(0.0..=1.0).contains(&self.trim_threshold) {
            return Err(format!(
                "trim_threshold {} out of range 0..=1 (0 = off)",
                self.trim_threshold
            ));
        }
        if self.input_channels == 0 || self.input_channels as usize > MAX_CHANNELS {
            return Err(format!(
                "input_channels {} out of range 1..={MAX_CHANNELS}",
                self.input_channels
            ));
        }
        if !(MIN_RATE..=MAX_RATE).contains(&self.input_rate) {
            return Err(format!(
                "input_rate {} out of range {MIN_RATE}..={MAX_RATE}",
                self.input_rate
            ));
        }
        if !(2..=1000).contains(&self.target_latency_ms) {
            return Err(format!(
                "target_latency_ms {} out of range 2..=1000",
                self.target_latency_ms
            ));
        }
        if !(10..=60_000).contains(&self.ring_capacity_ms) {
            return Err(format!(
                "ring_capacity_ms {} out of range 10..=60000",
                self.ring_capacity_ms
            ));
        }
        let ranges = [
            // A writer may block this long for room; past 10 minutes it is a unit mistake.
            ("write_timeout_ms", self.write_timeout_ms, 0, 600_000),
            ("device_poll_ms", self.device_poll_ms, 10, 10_000),
            (
                "device_query_cooldown_ms",
                self.device_query_cooldown_ms,
                0,
                60_000,
            ),
            (
                "max_recreate_per_minute",
                self.max_recreate_per_minute,
                1,
                600,
            ),
            ("debounce_ms", self.debounce_ms, 0, 5_000),
            ("max_replay_ms", self.max_replay_ms, 0, 2_000),
            ("recreate_warn_ms", self.recreate_warn_ms, 1, 60_000),
            ("start_threshold_ms", self.start_threshold_ms, 0, 10_000),
            ("idle_suspend_ms", self.idle_suspend_ms, 0, 3_600_000),
            ("keep_awake_ms", self.keep_awake_ms, 0, 3_600_000),
            ("wake_preroll_ms", self.wake_preroll_ms, 0, 1_000),
            ("trim_keep_ms", self.trim_keep_ms, 0, 1_000),
            (
                "resample_p95_limit_us",
                self.resample_p95_limit_us,
                0,
                1_000_000,
            ),
            ("audio_thread_priority", self.audio_thread_priority, 0, 99),
            (
                "device_lost_timeout_ms",
                self.device_lost_timeout_ms,
                0,
                3_600_000,
            ),
        ];
        for (name, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{name} {v} out of range {lo}..={hi}"));
            }
        }
        Ok(())
    }

    /// Bytes per frame of the configured input format.
    pub fn frame_bytes(&self) -> usize {
        self.input_format.bytes_per_sample() * self.input_channels as usize
    }
}
