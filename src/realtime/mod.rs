//! Layer 3, realtime: what the audio callback runs and the lock-free queues and handoff
//! that feed it. Nothing here allocates, locks, logs or makes a syscall on the callback's
//! path (SPEC C1-C4). Imports only `data`, `dsp` and the `sync` shim.

// Internals: nothing here is API. What the crate exports from here (through `internals`,
// hidden) is for its own binary, tests and benchmarks.
#![allow(missing_docs)]

pub mod clock;
pub mod command;
pub mod handoff;
pub mod history;
pub mod playback;
pub mod render;
pub mod shape;
