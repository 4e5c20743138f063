//! Layer 4, control threads: the stream slot and its three-phase recreate, the writer, the
//! device watcher and service thread, event delivery, idle suspend, the S3 fallback, thread
//! priority, outage handling and the lifecycle of the library's threads. Everything the
//! callback may not do happens here. Imports `data`, `dsp` and `realtime`, never the player
//! facade or the FFI.

// Internals: nothing here is API. What the crate exports from here (through `internals`,
// hidden) is for its own binary, tests and benchmarks.
#![allow(missing_docs)]

pub mod delivery;
pub mod device;
pub mod fallback;
pub mod idle;
pub mod lifecycle;
pub mod log;
pub mod outage;
pub mod priority;
pub mod recreate;
pub mod service;
pub mod shared;
pub mod watcher;
pub mod writer;
