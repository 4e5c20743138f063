//! What travels beside the audio: commands from the writing side to the audio callback,
//! tagged with the content frame they apply at, and events from the callback to the service
//! thread, stamped with when they are heard.

use crate::dsp::resample::{Heap, Period, Resampler};
use crate::realtime::shape::InputShape;

/// What the callback retires: freed on the service thread, never on the audio thread.
pub enum Garbage {
    Scratch(Vec<f32>),
    Resampler(Box<Resampler>),
    /// The linear resampler's period tables (from one the callback could not use).
    Tables(Box<Period>),
}

impl From<Heap> for Garbage {
    fn from(h: Heap) -> Self {
        match h {
            Heap::Scratch(v) => Garbage::Scratch(v),
            Heap::Tables(t) => Garbage::Tables(t),
        }
    }
}

/// In-band commands. Each applies when the callback has consumed exactly `at` ring frames
/// (everything written before the command), so they stay in step with the audio. Ring
/// frames are content frames, except in a segment the writer resamples (U2), where they are
/// stream-rate frames and `Sync` commands tie them back to content frames.
pub enum Cmd {
    UtteranceStart {
        at: u64,
    },
    UtteranceEnd {
        at: u64,
    },
    Mark {
        at: u64,
        id: u64,
    },
    /// Frames from `at` on are in `shape`. `xin` is decode scratch sized for it and
    /// `resampler` is set up from its rate to `out_rate`, both allocated on the writing
    /// thread; the callback swaps them in and hands the old ones back.
    Format {
        at: u64,
        shape: InputShape,
        xin: Vec<f32>,
        resampler: Box<Resampler>,
        out_rate: u32,
        /// The ring frames from here on are the writer's resampled output (U2), not content
        /// frames: content positions come from `Sync` commands.
        resampled: bool,
    },
    /// Per-utterance gain and pan (issue 16) from ring frame `at`, ramped over `ramp_ms`.
    /// `utterance`: for the utterance it is in only (the next utterance start goes back to
    /// the last setting made until changed); else until changed.
    GainPan {
        at: u64,
        gain: f32,
        pan: f32,
        ramp_ms: u32,
        utterance: bool,
    },
    /// Producer resampling (U2): when the callbacks reach ring frame `at`, the application
    /// had written `content` content frames at `rate` Hz. Queued before the audio it ends,
    /// so the callback interpolates content positions inside it exactly.
    Sync {
        at: u64,
        content: u64,
        rate: u32,
    },
}

impl Cmd {
    pub fn at(&self) -> u64 {
        match self {
            Cmd::UtteranceStart { at }
            | Cmd::UtteranceEnd { at }
            | Cmd::Mark { at, .. }
            | Cmd::Format { at, .. }
            | Cmd::GainPan { at, .. }
            | Cmd::Sync { at, .. } => *at,
        }
    }
}
