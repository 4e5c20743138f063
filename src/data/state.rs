//! What describes the output stream as it is now and why it last changed: published whole
//! by the service thread after every recreate, read lock-free by anyone.

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

/// Why a stream was (re)created; also `ApMetrics.last_recreate_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
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
