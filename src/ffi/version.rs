//! Library version.

use std::os::raw::c_char;

/// The library's version as "MAJOR.MINOR.PATCH" (static storage; never NULL). Compare with
/// the header's `AP_VERSION_*` macros to detect a header/library mismatch. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
