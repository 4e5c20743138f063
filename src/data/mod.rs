//! Layer 1, plain data: configuration, errors, events, stream state and the metrics the
//! player counts. Imports nothing of the crate outside this folder; every layer above may
//! use it.

pub mod config;
// Internals (reached by tests and benchmarks through `internals`), not API.
#[allow(missing_docs)]
pub mod counters;
pub mod error;
pub mod events;
pub mod metrics;
pub mod state;
