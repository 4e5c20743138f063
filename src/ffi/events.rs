//! Events and position: markers, utterances, underruns, device changes, flushes.

use super::handle::{self, ApPlayer};
use super::status::ApStatus;
use super::{ffi_guard, try_mut};
use crate::data::events::{Event, EventKind};

/// Event kinds (`ApEvent.kind`).
pub const AP_EVENT_MARKER: u32 = 1;
/// The first frame of an utterance was heard.
pub const AP_EVENT_UTTERANCE_START: u32 = 2;
/// The last frame of an utterance was heard.
pub const AP_EVENT_UTTERANCE_END: u32 = 3;
/// The queue ran dry while audio was playing.
pub const AP_EVENT_UNDERRUN_START: u32 = 4;
/// Audio plays again after an underrun.
pub const AP_EVENT_UNDERRUN_END: u32 = 5;
/// Playback moved to another device or stream; `id` is the new stream generation.
pub const AP_EVENT_DEVICE_CHANGED: u32 = 6;
/// A flush finished fading out; `frame` is where the fade ended.
pub const AP_EVENT_FLUSHED: u32 = 7;
/// No output at all (the sound server or every device gone, or the stream stopped); queued
/// audio waits. `frame` is the content frame being heard when it was noticed.
pub const AP_EVENT_OUTPUT_LOST: u32 = 8;
/// Output is back after `AP_EVENT_OUTPUT_LOST`; `id` is the new stream generation.
pub const AP_EVENT_OUTPUT_RESTORED: u32 = 9;

/// Something that happened, delivered when the listener hears it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ApEvent {
    /// `sizeof(ApEvent)`; set it before `ap_poll_event`.
    pub struct_size: u32,
    /// `AP_EVENT_*`.
    pub kind: u32,
    /// The marker id (`AP_EVENT_MARKER`), the new stream generation
    /// (`AP_EVENT_DEVICE_CHANGED`), else 0.
    pub id: u64,
    /// The content frame it happened at (for `AP_EVENT_FLUSHED`: where the fade-out ended).
    pub frame: u64,
    /// When it reached the listener, ms since the player was created.
    pub heard_ms: f64,
}

impl From<&Event> for ApEvent {
    fn from(e: &Event) -> Self {
        ApEvent {
            struct_size: std::mem::size_of::<ApEvent>() as u32,
            kind: match e.kind {
                EventKind::Marker => AP_EVENT_MARKER,
                EventKind::UtteranceStart => AP_EVENT_UTTERANCE_START,
                EventKind::UtteranceEnd => AP_EVENT_UTTERANCE_END,
                EventKind::UnderrunStart => AP_EVENT_UNDERRUN_START,
                EventKind::UnderrunEnd => AP_EVENT_UNDERRUN_END,
                EventKind::DeviceChanged => AP_EVENT_DEVICE_CHANGED,
                EventKind::Flushed => AP_EVENT_FLUSHED,
                EventKind::OutputLost => AP_EVENT_OUTPUT_LOST,
                EventKind::OutputRestored => AP_EVENT_OUTPUT_RESTORED,
            },
            id: e.id,
            frame: e.frame,
            heard_ms: e.heard_ns as f64 / 1e6,
        }
    }
}

/// Takes the oldest delivered event, if any: `*n_events` is 1 and `*event` filled, or 0 and
/// `*event` untouched. For hosts that cannot take callbacks (Go, Node). `event->struct_size`
/// must be `sizeof(ApEvent)`. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_poll_event(
    player: *mut ApPlayer,
    event: *mut ApEvent,
    n_events: *mut usize,
) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        // The size first, by raw pointer: nothing past a wrong one is read or written.
        let Some(size) = super::struct_size_of(event) else {
            return ApStatus::AP_ERR_NULL;
        };
        let n = try_mut!(n_events);
        if !h.struct_size_is::<ApEvent>(size, "ap_poll_event") {
            return ApStatus::AP_ERR_STRUCT_SIZE;
        }
        let out = try_mut!(event);
        match h.player.poll_event() {
            Some(e) => {
                *out = ApEvent::from(&e);
                *n = 1;
            }
            None => *n = 0,
        }
        ApStatus::AP_OK
    })
}

/// Where playback is, from atomics only (cheap): the content frame being heard now
/// (monotonic across device changes), frames queued, and the device latency in ms. Any
/// output pointer may be NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_position(
    player: *mut ApPlayer,
    frames_heard: *mut u64,
    frames_queued: *mut u64,
    latency_ms: *mut f64,
) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        let (heard, queued, latency_ns) = h.player.position();
        // SAFETY: each pointer is either NULL (skipped) or, per the contract, writable.
        unsafe {
            if let Some(p) = frames_heard.as_mut() {
                *p = heard;
            }
            if let Some(p) = frames_queued.as_mut() {
                *p = queued;
            }
            if let Some(p) = latency_ms.as_mut() {
                *p = latency_ns as f64 / 1e6;
            }
        }
        ApStatus::AP_OK
    })
}
