//! Speech control: utterances, markers, barge-in, pause, volume, voice changes.

use super::config::{ApFormat, AP_FORMAT_F32, AP_FORMAT_S16};
use super::ffi_guard;
use super::handle::{self, ApPlayer, Handle};
use super::status::ApStatus;
use crate::data::config::{GainScope, InputFormat};
use crate::data::error::Error;

/// Runs `f` on a resolved handle, recording its error as the last error.
fn with_player(
    player: *mut ApPlayer,
    call: &str,
    f: impl FnOnce(&Handle) -> Result<(), Error>,
) -> ApStatus {
    let h = match handle::resolve(player) {
        Ok(h) => h,
        Err(s) => return s,
    };
    match f(&h) {
        Ok(()) => ApStatus::AP_OK,
        Err(e) => {
            h.set_error(format!("{call}: {e}"));
            ApStatus::from(&e)
        }
    }
}

/// Marks the end of what was written so far as one utterance. Returns at once. The queue
/// running dry afterwards is the end of speech (no underrun); `AP_EVENT_UTTERANCE_END` fires
/// when its last frame is heard; the next `ap_write` starts a new utterance. Never waits for
/// a writer: if an `ap_write` is in progress on another thread (blocked for room, say), the
/// utterance ends after the data that write queues, when it returns. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_end_utterance(player: *mut ApPlayer) -> ApStatus {
    ffi_guard!({ with_player(player, "ap_end_utterance", |h| h.player.end_utterance()) })
}

/// Places marker `id` at the current write position: `AP_EVENT_MARKER` with this id fires
/// when the device plays that frame (markers inside flushed audio never fire). Thread-safe;
/// call it from the writing thread to place it between two writes. Never waits for a
/// writer: during an `ap_write` on another thread the marker lands after the data that write
/// queues (and a flush before that write returns drops it, counted in `markers_flushed`).
#[no_mangle]
pub extern "C" fn ap_mark(player: *mut ApPlayer, id: u64) -> ApStatus {
    ffi_guard!({ with_player(player, "ap_mark", |h| h.player.mark(id)) })
}

/// Barge-in: drops everything queued; what is playing fades out over `fade_ms` (0 = cut;
/// larger values are clamped to 10000) on the audio thread, without a click. Returns at once; `*heard_frame`
/// (may be NULL) receives the content frame being heard when the flush was asked for, so
/// the engine knows which word was interrupted. `AP_EVENT_FLUSHED` reports where the fade
/// ended. A writer blocked in `ap_write` returns with what it queued and queues nothing more;
/// the flush never waits for it. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_flush(player: *mut ApPlayer, fade_ms: u32, heard_frame: *mut u64) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_flush", |h| {
            let heard = h.player.flush(fade_ms)?;
            // SAFETY: NULL (skipped) or, per the contract, a writable u64.
            if let Some(p) = unsafe { heard_frame.as_mut() } {
                *p = heard;
            }
            Ok(())
        })
    })
}

/// Pauses playback with a `ramp_ms` fade (no click; clamped to 10000). While paused no underruns are counted
/// and the position holds; writes still queue. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_pause(player: *mut ApPlayer, ramp_ms: u32) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_pause", |h| {
            h.player.pause(ramp_ms);
            Ok(())
        })
    })
}

/// Resumes after `ap_pause`, fading in over `ramp_ms` (clamped to 10000). Thread-safe.
#[no_mangle]
pub extern "C" fn ap_resume(player: *mut ApPlayer, ramp_ms: u32) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_resume", |h| {
            h.player.resume(ramp_ms);
            Ok(())
        })
    })
}

/// Sets the output gain (linear, 0..=4; 1 = unchanged), ramped over `ramp_ms` (clamped to
/// 10000) so it never steps. `AP_ERR_INVALID_ARG` for NaN or out of range. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_set_volume(player: *mut ApPlayer, gain: f32, ramp_ms: u32) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_set_volume", |h| {
            h.player.set_volume(gain, ramp_ms)
        })
    })
}

/// `ap_set_gain_pan` scope: this utterance only (the next one goes back to the last
/// `AP_GAIN_UNTIL_CHANGED` setting; made between utterances, it is for the next one).
pub const AP_GAIN_UTTERANCE: u32 = 0;
/// `ap_set_gain_pan` scope: from here on, until changed.
pub const AP_GAIN_UNTIL_CHANGED: u32 = 1;

/// Gain and pan, in band: audio written from now on gets `gain` (linear, 0..=4; 1 =
/// unchanged) and `pan` (-1 hard left ..= 1 hard right, 0 centre; equal-power with unity at
/// the centre, so hard left is +3 dB on the left; ignored on a mono device), ramped over
/// `ramp_ms` (clamped to 10000) so it never clicks. `scope` is `AP_GAIN_UTTERANCE` or
/// `AP_GAIN_UNTIL_CHANGED`. Above unity a soft limiter keeps peaks under 0 dBFS (no hard
/// clip); at gain <= 1 the audio is bit-exact. Applies on top of `ap_set_volume`.
/// `AP_ERR_INVALID_ARG` for NaN, infinity, out of range values or an unknown scope. Never
/// waits for a writer (like `ap_mark`). Thread-safe.
#[no_mangle]
pub extern "C" fn ap_set_gain_pan(
    player: *mut ApPlayer,
    gain: f32,
    pan: f32,
    ramp_ms: u32,
    scope: u32,
) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_set_gain_pan", |h| {
            let scope = match scope {
                AP_GAIN_UTTERANCE => GainScope::Utterance,
                AP_GAIN_UNTIL_CHANGED => GainScope::UntilChanged,
                v => {
                    return Err(Error::InvalidArgument(format!(
                        "scope {v} is not an AP_GAIN_* value"
                    )))
                }
            };
            h.player.set_gain_pan(gain, pan, ramp_ms, scope)
        })
    })
}

/// Speed without pitch change, in band: audio written from now on plays at `speed`
/// (0.5..=4; 1 = as written), audio written before at its old speed; the change is
/// crossfaded, never a click. Speech-tuned WSOLA on the writing thread: the audio callback
/// only plays its output (same per-frame work, plus the content-position bookkeeping of
/// producer resampling), allocation-free; speed 1 is a bypass (bit-exact). `ap_position`
/// and event frames stay content frames; markers and utterance events fire when their frame
/// is heard at the new speed. The stretch holds back about 30 ms of output's worth of input
/// (45 ms of content at 1.5x, 75 ms at 2.5x), queued at
/// `ap_end_utterance`/`ap_drain` and dropped by `ap_flush`. Needs `resample_mode` callback
/// (the default). `AP_ERR_INVALID_ARG` for NaN or out of range. Never waits for a writer
/// (like `ap_mark`). Thread-safe.
#[no_mangle]
pub extern "C" fn ap_set_speed(player: *mut ApPlayer, speed: f32) -> ApStatus {
    ffi_guard!({ with_player(player, "ap_set_speed", |h| h.player.set_speed(speed)) })
}

/// Voice change, in band: audio written before this call plays in its old format, audio
/// written after it in `format`/`channels`/`rate` (what `ap_write` takes from now on). The
/// device stream is not recreated. Call it from the writing thread. Never waits for a
/// writer: an `ap_write` in progress on another thread finishes in the old format and the
/// new one applies from the next `ap_write` on. Invalid values are reported at once.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ap_set_input_format(
    player: *mut ApPlayer,
    format: ApFormat,
    channels: u32,
    rate: u32,
) -> ApStatus {
    ffi_guard!({
        with_player(player, "ap_set_input_format", |h| {
            let f = match format {
                AP_FORMAT_S16 => InputFormat::S16,
                AP_FORMAT_F32 => InputFormat::F32,
                v => {
                    return Err(Error::InvalidArgument(format!(
                        "format {v} is not an AP_FORMAT_* value"
                    )))
                }
            };
            let ch = u16::try_from(channels)
                .map_err(|_| Error::InvalidArgument(format!("channels {channels} out of range")))?;
            h.player.set_input_format(f, ch, rate)
        })
    })
}
