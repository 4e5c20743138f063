//! Layer 0: the atomics `realtime::handoff` is written against; `tests/loom_handoff.rs`
//! compiles that file with loom's in their place.

pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub use std::thread::yield_now;
