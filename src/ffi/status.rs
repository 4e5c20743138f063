//! Status codes. Numbered explicitly; new codes are only ever appended.

use std::os::raw::c_char;

use crate::data::error::Error;

/// Every entry point returns one of these: `AP_OK` (0) or a negative error.
#[repr(i32)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApStatus {
    /// Success.
    AP_OK = 0,
    /// A required pointer argument was NULL.
    AP_ERR_NULL = -1,
    /// An argument is out of range or inconsistent (the last error says which).
    AP_ERR_INVALID_ARG = -2,
    /// A struct's `struct_size` is zero, too small, or larger than this library knows.
    AP_ERR_STRUCT_SIZE = -3,
    /// The player handle is not live (never created, or already destroyed).
    AP_ERR_BAD_HANDLE = -4,
    /// No output device (none present, or the requested one is not there).
    AP_ERR_NO_DEVICE = -5,
    /// The device or audio server refused to open or start a stream.
    AP_ERR_DEVICE = -6,
    /// A wait (`ap_drain`) ran out of time before it completed.
    AP_ERR_TIMEOUT = -7,
    /// The player was destroyed while this call ran.
    AP_ERR_CLOSED = -8,
    /// The library caught an internal panic; the handle stays usable where possible.
    AP_ERR_PANIC = -9,
    /// The output buffer was too small for the result.
    AP_ERR_BUFFER_TOO_SMALL = -10,
    /// Nothing has played for `device_lost_timeout_ms`: no sound server, no device, or a
    /// stream that stopped. Audio already queued is kept and plays if output comes back;
    /// the call queued nothing (or, for `ap_drain`, stopped waiting).
    AP_ERR_NO_OUTPUT = -11,
}

impl From<&Error> for ApStatus {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => ApStatus::AP_ERR_INVALID_ARG,
            Error::NoDevice(_) => ApStatus::AP_ERR_NO_DEVICE,
            Error::Device(_) => ApStatus::AP_ERR_DEVICE,
            Error::Closed => ApStatus::AP_ERR_CLOSED,
            Error::NoOutput(_) => ApStatus::AP_ERR_NO_OUTPUT,
        }
    }
}

fn describe(code: i32) -> &'static std::ffi::CStr {
    match code {
        0 => c"success",
        -1 => c"a required pointer argument was NULL",
        -2 => c"invalid argument",
        -3 => c"struct_size does not match this library's struct",
        -4 => c"not a live player handle",
        -5 => c"no output device",
        -6 => c"the output device could not be opened or started",
        -7 => c"timed out",
        -8 => c"the player was destroyed",
        -9 => c"internal error (panic caught)",
        -10 => c"output buffer too small",
        -11 => c"no audio output (sound server or device gone)",
        _ => c"unknown status code",
    }
}

/// A static, human-readable description of a status code (never NULL; unknown codes get
/// "unknown status code"). Thread-safe.
#[no_mangle]
pub extern "C" fn ap_strerror(code: i32) -> *const c_char {
    describe(code).as_ptr()
}
