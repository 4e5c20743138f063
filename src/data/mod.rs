//! Layer 1, plain data: configuration, errors, events, stream state and the metrics the
//! player counts. Imports nothing of the crate outside this folder; every layer above may
//! use it.

pub mod config;
pub mod error;
pub mod events;
pub mod metrics;
pub mod state;
