//! Layer 2, pure DSP: sample-format conversion, gain ramps, SIMD dispatch, the linear and
//! polyphase resamplers, WAV files, and the quality probe. No threads, no locks, no device:
//! functions of their inputs and their own state. Imports only `data`.

// Internals: nothing here is API. What the crate exports from here (through `internals`,
// hidden) is for its own binary, tests and benchmarks.
#![allow(missing_docs)]

pub mod convert;
pub mod gain;
pub mod phase;
pub mod polyphase;
pub mod prefault;
pub mod quality;
pub mod resample;
pub(crate) mod simd;
pub mod stretch;
pub mod wav;
