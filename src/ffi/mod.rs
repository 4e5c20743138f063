//! The C ABI (`include/audioplay.h`), one file per header section.
//!
//! Rules every entry point follows (rustls-ffi style):
//! - runs inside [`ffi_guard!`]: a panic becomes `AP_ERR_PANIC`, never an unwind into C;
//! - checks every pointer ([`try_ref!`], [`try_mut!`]) and every enum value before use;
//! - writes its outputs only on success (`ap_write`'s partial count is a success);
//! - records a per-handle error message, readable with `ap_last_error` (not thread-local:
//!   Go and others move calls between OS threads).

// Entry points take raw pointers from C and check them; marking them `unsafe fn` would mean
// nothing to a C caller and only move the SAFETY reasoning away from the checks.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod config;
pub mod control;
pub mod devices;
pub mod events;
pub mod handle;
pub mod metrics;
pub mod player;
pub mod status;
pub mod version;

/// Runs an entry point's body, turning a panic into `AP_ERR_PANIC`.
macro_rules! ffi_guard {
    ($body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::ffi::status::ApStatus { $body },
        )) {
            Ok(status) => status,
            Err(_) => $crate::ffi::status::ApStatus::AP_ERR_PANIC,
        }
    }};
}

/// `&T` from a C pointer, or return `AP_ERR_NULL`.
macro_rules! try_ref {
    ($ptr:expr) => {{
        let p = $ptr;
        if p.is_null() {
            return $crate::ffi::status::ApStatus::AP_ERR_NULL;
        }
        // SAFETY: non-null, and the C caller promises it points to a valid, aligned object
        // for the duration of the call (documented on every entry point).
        unsafe { &*p }
    }};
}

/// `&mut T` from a C pointer, or return `AP_ERR_NULL`.
macro_rules! try_mut {
    ($ptr:expr) => {{
        let p = $ptr;
        if p.is_null() {
            return $crate::ffi::status::ApStatus::AP_ERR_NULL;
        }
        // SAFETY: non-null, and the C caller promises exclusive access to a valid, aligned
        // object for the duration of the call (documented on every entry point).
        unsafe { &mut *p }
    }};
}

pub(crate) use {ffi_guard, try_mut, try_ref};

/// Reads a public struct's leading `struct_size` through a raw pointer, before any reference
/// to the whole struct is formed, so nothing past a wrong size is ever read or written (the
/// caller may have allocated only that much). None if `p` is NULL.
pub(crate) fn struct_size_of<T>(p: *const T) -> Option<u32> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null; every public struct starts with a `u32 struct_size`, and the C caller
    // promises at least that field is readable. Read unaligned: nothing else is known yet.
    Some(unsafe { p.cast::<u32>().read_unaligned() })
}
