//! audioplay: glitch-free speech playback for TTS engines, with a C ABI.
//!
//! The Rust API ([`Player`]) is the safe core; [`ffi`] is the C ABI over it
//! (`include/audioplay.h`). Requirement IDs in comments are defined in
//! docs/REQUIREMENTS.md; docs/ARCHITECTURE.md shows the layers and threads.
//!
//! ```no_run
//! use audioplay::{Config, EventKind, Player};
//! use std::time::Duration;
//!
//! // 22050 Hz mono int16, the system's default output.
//! let player = Player::new(Config::default())?;
//! let tone: Vec<i16> = (0..22050)
//!     .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 22050.0).sin() * 8000.0) as i16)
//!     .collect();
//! player.write_i16(&tone)?; // blocks only while the queue is full
//! player.mark(1)?; // an event fires when the listener hears this point
//! player.end_utterance()?;
//! player.drain(Duration::from_secs(5))?; // everything written has been heard
//! let mut heard_at = Vec::new(); // content frames at which markers were heard
//! while let Some(e) = player.poll_event() {
//!     if e.kind == EventKind::Marker {
//!         heard_at.push(e.frame);
//!     }
//! }
//! # Ok::<(), audioplay::Error>(())
//! ```

#![warn(missing_docs)]

// The layers, lowest first: each imports only layers listed before it (scripts/check-layers.py
// keeps it so; docs/ARCHITECTURE.md draws them).
mod control;
mod data;
mod dsp;
pub mod ffi;
mod player;
mod realtime;
mod sync;
mod thread_role;
pub mod virtual_device;

pub use data::config::{
    Config, GainScope, Identity, InputFormat, LogLevel, PreferStreamRate, ResampleMode,
    ResampleQuality,
};
pub use data::error::Error;
pub use data::events::{Event, EventKind, EventSink};
pub use data::metrics::Metrics;
pub use data::state::{Reason, StreamState};
pub use data::{config, error, events, metrics};
pub use player::Player;

/// The crate's insides that its own binary, tests and benchmarks reach: not API, may change
/// in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::control::device;
    pub use crate::data::counters;
    pub use crate::dsp::{convert, gain, quality, resample, stretch, wav};
    pub use crate::realtime::{render, shape};
    /// Tests that call the render core directly take the audio thread's role.
    pub mod thread_role {
        pub use crate::thread_role::{enter, Role};
    }
}

/// The header cbindgen generates from this build's `src/ffi`; a test checks that the
/// committed `include/audioplay.h` equals it.
#[doc(hidden)]
pub const GENERATED_HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/audioplay.h"));
