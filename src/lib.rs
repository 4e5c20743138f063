//! audioplay: glitch-free speech playback for TTS engines, with a C ABI.
//!
//! The Rust API ([`Player`]) is the safe core; [`ffi`] is the C ABI over it
//! (`include/audioplay.h`). Requirement IDs in comments refer to the user's SPEC.md.

mod clock;
pub mod command;
pub mod config;
pub mod convert;
pub mod device;
pub mod error;
pub mod events;
mod fallback;
pub mod ffi;
mod gain;
mod handoff;
mod history;
mod idle;
mod lifecycle;
mod log;
pub mod metrics;
mod outage;
pub mod player;
pub mod polyphase;
mod prefault;
mod priority;
#[doc(hidden)]
pub mod quality;
pub mod recreate;
pub mod render;
pub mod resample;
mod service;
pub(crate) mod simd;
pub mod virtual_device;
pub mod wav;
mod writer;

/// The atomics `handoff` is written against; `tests/loom_handoff.rs` swaps in loom's.
mod sync {
    pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    pub use std::thread::yield_now;
}

pub use config::{Config, InputFormat, LogLevel, PreferStreamRate, ResampleMode, ResampleQuality};
pub use error::Error;
pub use player::{Metrics, Player, StreamState};

/// The header cbindgen generates from this build's `src/ffi`; a test checks that the
/// committed `include/audioplay.h` equals it.
#[doc(hidden)]
pub const GENERATED_HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/audioplay.h"));
