//! Player lifecycle and audio: create, write, drain, destroy, last error.

use std::os::raw::{c_char, c_void};
use std::time::Duration;

use super::config::{to_config, ApConfig};
use super::handle::{self, ApPlayer};
use super::metrics::copy_str;
use super::status::ApStatus;
use super::{ffi_guard, try_mut, try_ref};
use crate::player::Player;

/// Creates a player and opens its output stream. On success `*out_player` receives a handle
/// to pass to every other call and to `ap_destroy`; on failure `*out_player` is untouched and
/// the reason goes to the config's log function (`ap_create_ex` also returns it).
///
/// Errors: `AP_ERR_NULL`, `AP_ERR_STRUCT_SIZE`, `AP_ERR_INVALID_ARG` (a field is out of range),
/// `AP_ERR_NO_DEVICE`, `AP_ERR_DEVICE`. `config->struct_size` is read first and alone: on
/// `AP_ERR_STRUCT_SIZE` nothing after it is read (so `log_fn` is not called either).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ap_create(config: *const ApConfig, out_player: *mut *mut ApPlayer) -> ApStatus {
    ap_create_ex(config, out_player, std::ptr::null_mut(), 0)
}

/// `ap_create`, also returning why it failed: on failure the reason (for example
/// "input_rate 5 out of range 1000..=384000") is copied into `reason` as a NUL-terminated
/// string of at most `reason_len` bytes, truncated at a character boundary; on success
/// `reason` is set to the empty string. `reason` may be NULL (or `reason_len` 0): nothing is
/// written there. The reason also goes to `log_fn`, as with `ap_create`. A player has no
/// handle before it exists, so `ap_last_error` cannot say this; bindings use this call.
///
/// Errors: as `ap_create`. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_create_ex(
    config: *const ApConfig,
    out_player: *mut *mut ApPlayer,
    reason: *mut c_char,
    reason_len: usize,
) -> ApStatus {
    let mut why = String::new();
    let status = ffi_guard!({ create(config, out_player, &mut why) });
    if status == ApStatus::AP_ERR_PANIC && why.is_empty() {
        why = "ap_create: internal error (panic caught)".into();
    }
    if !reason.is_null() && reason_len > 0 {
        // SAFETY: non-null, and the caller promises `reason_len` writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(reason, reason_len) };
        copy_str(&why, out);
    }
    status
}

/// The body of `ap_create_ex`: `why` receives the reason of any failure.
fn create(config: *const ApConfig, out_player: *mut *mut ApPlayer, why: &mut String) -> ApStatus {
    let Some(size) = super::struct_size_of(config) else {
        *why = "ap_create: config is NULL".into();
        return ApStatus::AP_ERR_NULL;
    };
    if out_player.is_null() {
        *why = "ap_create: out_player is NULL".into();
        return ApStatus::AP_ERR_NULL;
    }
    if size as usize != std::mem::size_of::<ApConfig>() {
        *why = format!(
            "ap_create: config->struct_size is {size}, this library's ApConfig is {} bytes \
             (initialise it with ap_config_init; header and library differ?)",
            std::mem::size_of::<ApConfig>()
        );
        return ApStatus::AP_ERR_STRUCT_SIZE;
    }
    let out = try_mut!(out_player);
    let c = try_ref!(config);
    let cfg = match to_config(c) {
        Ok(cfg) => cfg,
        Err((status, msg)) => {
            if let Some(f) = c.log_fn {
                let text = std::ffi::CString::new(msg.as_str()).unwrap_or_default();
                // SAFETY: the caller's own log function, with a message valid for the call.
                unsafe { f(c.log_user, super::config::AP_LOG_ERROR, text.as_ptr()) };
            }
            *why = msg;
            return status;
        }
    };
    match Player::new(cfg) {
        Ok(p) => match handle::try_register(p) {
            Some(h) => {
                *out = h;
                ApStatus::AP_OK
            }
            // 2^36 creates in one process (64-bit): no fresh handle value is left.
            None => {
                *why = "ap_create: no fresh handle value is left in this process".into();
                ApStatus::AP_ERR_DEVICE
            }
        },
        Err(e) => {
            *why = e.to_string();
            ApStatus::from(&e)
        }
    }
}

/// Stops playback, stops every thread the player started and frees it. Audio still queued
/// is discarded (counted as dropped). NULL is a no-op (`AP_OK`); a handle that is not live
/// gives `AP_ERR_BAD_HANDLE`. The handle is unregistered at once: every later call with it
/// gives `AP_ERR_BAD_HANDLE` (handle values are never reused). Calls blocked in other
/// threads on this player (`ap_write`, `ap_drain`) return `AP_ERR_CLOSED`.
///
/// Returns within about a second whatever the audio backend does: a library thread stuck
/// in a sound-server round trip (a frozen server) is left to finish on its own.
///
/// Once it has returned, no `event_fn` or `log_fn` call starts again for this player, so
/// their user context may be freed; if one is running on another thread, `ap_destroy`
/// waits for it to return (so do not hold a lock those callbacks take while calling it).
///
/// May be called from inside `event_fn` or `log_fn`: the destroy completes and returns
/// `AP_OK`; the library thread running the callback is not joined by itself, it finishes
/// its teardown when the callback returns (and makes no further callbacks).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ap_destroy(player: *mut ApPlayer) -> ApStatus {
    ffi_guard!({
        if player.is_null() {
            return ApStatus::AP_OK;
        }
        handle::destroy(player)
    })
}

/// Queues `frame_count` interleaved frames in the configured format and channel count.
/// Blocks up to `write_timeout_ms` while the queue is full, then returns `AP_OK` with
/// `*frames_written` set to what was queued (fewer than `frame_count` when the timeout
/// passed). `frames` may be NULL only when `frame_count` is 0.
///
/// Errors: `AP_ERR_NULL`, `AP_ERR_BAD_HANDLE`, `AP_ERR_INVALID_ARG` (size overflow),
/// `AP_ERR_CLOSED`. Thread-safe: concurrent writers are serialised.
#[no_mangle]
pub extern "C" fn ap_write(
    player: *mut ApPlayer,
    frames: *const c_void,
    frame_count: usize,
    frames_written: *mut usize,
) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        let out = try_mut!(frames_written);
        if frame_count == 0 {
            *out = 0;
            return ApStatus::AP_OK;
        }
        if frames.is_null() {
            h.set_error("ap_write: frames is NULL");
            return ApStatus::AP_ERR_NULL;
        }
        let Some(len) = frame_count.checked_mul(h.player.frame_bytes()) else {
            h.set_error(format!(
                "ap_write: {frame_count} frames overflows the address space"
            ));
            return ApStatus::AP_ERR_INVALID_ARG;
        };
        if len > isize::MAX as usize {
            h.set_error(format!("ap_write: {frame_count} frames is too large"));
            return ApStatus::AP_ERR_INVALID_ARG;
        }
        // SAFETY: non-null; the caller promises `frame_count` frames of readable memory.
        let bytes = unsafe { std::slice::from_raw_parts(frames.cast::<u8>(), len) };
        match h.player.write_bytes(bytes) {
            Ok(n) => {
                *out = n;
                ApStatus::AP_OK
            }
            Err(e) => {
                h.set_error(format!("ap_write: {e}"));
                ApStatus::from(&e)
            }
        }
    })
}

/// Blocks until everything written so far has been played by the device (its latency
/// included), or `timeout_ms` passes (`AP_ERR_TIMEOUT`). The queue running dry after a drain
/// began is the end of speech, not an underrun; the next `ap_write` ends the drain state.
/// `AP_ERR_CLOSED` if `ap_destroy` is called (on another thread) while it waits.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ap_drain(player: *mut ApPlayer, timeout_ms: u32) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        match h.player.drain(Duration::from_millis(timeout_ms as u64)) {
            Ok(true) => ApStatus::AP_OK,
            Ok(false) => {
                h.set_error("ap_drain: timed out");
                ApStatus::AP_ERR_TIMEOUT
            }
            Err(e) => {
                h.set_error(format!("ap_drain: {e}"));
                ApStatus::from(&e)
            }
        }
    })
}

/// Copies the player's most recent error message (empty if none) into `buf` as a
/// NUL-terminated string of at most `buf_len` bytes, truncating if needed. Per handle, not
/// per thread. Returns `AP_ERR_BUFFER_TOO_SMALL` if `buf_len` is 0. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_last_error(
    player: *const ApPlayer,
    buf: *mut c_char,
    buf_len: usize,
) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        if buf.is_null() {
            return ApStatus::AP_ERR_NULL;
        }
        if buf_len == 0 {
            return ApStatus::AP_ERR_BUFFER_TOO_SMALL;
        }
        let msg = h.last_error();
        let mut n = msg.len().min(buf_len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `buf` is non-null and the caller promises `buf_len` writable bytes; we write
        // n + 1 <= buf_len bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
        ApStatus::AP_OK
    })
}
