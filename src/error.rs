//! The library's error type; `ffi::ApError` maps each kind to a stable C code.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    InvalidArgument(String),
    NoDevice(String),
    Device(String),
    /// The player was closed (or is closing) while the call ran.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::NoDevice(m) => write!(f, "no output device: {m}"),
            Error::Device(m) => write!(f, "device error: {m}"),
            Error::Closed => f.write_str("player is closed"),
        }
    }
}

impl std::error::Error for Error {}
