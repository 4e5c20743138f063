//! The library's error type; `ffi::ApError` maps each kind to a stable C code.

use std::fmt;

/// Why a call failed; every variant carries a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A bad argument or configuration; nothing was changed.
    InvalidArgument(String),
    /// No output device could be found or opened.
    NoDevice(String),
    /// The device or sound server failed; the player keeps what it accepted and retries.
    Device(String),
    /// The player was closed (or is closing) while the call ran.
    Closed,
    /// No output has played for `device_lost_timeout_ms` (no sound server, no device, or a
    /// stream that stopped); queued audio is kept and plays if output comes back.
    NoOutput(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::NoDevice(m) => write!(f, "no output device: {m}"),
            Error::Device(m) => write!(f, "device error: {m}"),
            Error::Closed => f.write_str("player is closed"),
            Error::NoOutput(m) => write!(f, "no audio output: {m}"),
        }
    }
}

impl std::error::Error for Error {}
