//! Events: what the player reports, each stamped with the content frame it happened at and
//! when the listener hears it. Plain data, shared by the callback (which emits them), the
//! event thread (which delivers them) and the application.

use std::sync::Arc;

/// Receives events on the player's event thread.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// What an [`Event`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventKind {
    /// A marker placed with `mark` was heard; `id` is its id.
    Marker = 1,
    /// The first frame of an utterance was heard.
    UtteranceStart = 2,
    /// The last frame of an utterance was heard.
    UtteranceEnd = 3,
    /// The queue ran dry while audio was playing (an underrun began).
    UnderrunStart = 4,
    /// Audio plays again after an underrun.
    UnderrunEnd = 5,
    /// Playback moved to another device or stream; `id` is the new stream generation.
    DeviceChanged = 6,
    /// A flush finished fading out; `frame` is where the fade ended.
    Flushed = 7,
    /// Nothing can play: the sound server or every device is gone, or the stream stopped.
    /// Queued audio waits.
    OutputLost = 8,
    /// Output is back (a new server, device or stream): queued audio plays on.
    OutputRestored = 9,
}

/// Something that happened, reported when the listener hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The marker id (markers), the stream generation (device changes), else 0.
    pub id: u64,
    /// The content frame it happened at.
    pub frame: u64,
    /// When it reaches the listener, ns on the render core's clock.
    pub heard_ns: u64,
}
