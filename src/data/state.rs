//! What describes the output stream as it is now and why it last changed: published whole
//! by the service thread after every recreate, read lock-free by anyone.

/// Stream state published for lock-free readers (U3). Replaced whole on every recreate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Bumped by every stream (re)creation; callbacks of older generations output silence.
    pub generation: u64,
    /// A stream is open and running.
    pub started: bool,
    /// The output device's id.
    pub device_id: String,
    /// The output device's name for people.
    pub device_name: String,
    /// The device's native rate, Hz.
    pub device_rate: u32,
    /// The rate the device stream runs at, Hz.
    pub stream_rate: u32,
    /// The rate of the content being played now (follows voice changes), Hz.
    pub content_rate: u32,
    /// Channels of the device stream.
    pub channels: u16,
    /// Sample format of the device stream.
    pub format: Option<cpal::SampleFormat>,
}

/// Why a stream was (re)created; also `ApMetrics.last_recreate_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// The first stream, at creation.
    Initial = 1,
    /// The system default output changed (or the pinned device left or came back).
    DeviceChanged = 2,
    /// The stream reported its device gone.
    StreamLost = 3,
    /// Same device, new native rate or channel count.
    FormatChanged = 4,
    /// No stream is running (an earlier attempt failed or timed out).
    Retry = 5,
    /// The application chose another device.
    Requested = 6,
    /// The sound server went away and a new one accepts clients: the connection was rebuilt.
    ServerRestarted = 7,
}

impl Reason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Initial => "initial",
            Reason::DeviceChanged => "device changed",
            Reason::StreamLost => "stream lost",
            Reason::FormatChanged => "device format changed",
            Reason::Retry => "retry",
            Reason::Requested => "requested",
            Reason::ServerRestarted => "sound server restarted",
        }
    }
}
