//! Which callback may render (SPEC C1, R3) and who owns the ring.
//!
//! Every stream generation's callback renders from the same state (the ring consumer and the
//! render scratch). A callback may touch it only while it holds the token, a try-lock that
//! never blocks (a loser outputs silence), *and* its captured generation is the current one,
//! checked again after taking the token: a recreate may publish a new generation in between.
//! So two callbacks can never pop the ring at once, and once a newer generation has rendered
//! an older one never renders again.
//!
//! This file is also compiled into `tests/loom_handoff.rs` with loom's atomics behind
//! `crate::sync`, which explores every interleaving of old callback, new callback and the
//! service thread; keep it free of other dependencies.

use crate::sync::{yield_now, AtomicBool, AtomicU64, Ordering};

pub struct Handoff {
    token: AtomicBool,
    current: AtomicU64,
}

/// What a callback of some generation may do now.
pub enum Entry<'a> {
    /// Not the current generation: output silence (C1).
    Stale,
    /// Another callback holds the token: output silence.
    Busy,
    /// Exclusive access until the token is dropped.
    Granted(Token<'a>),
}

/// Exclusive access to the shared render state, released on drop.
pub struct Token<'a>(&'a Handoff);

impl Drop for Token<'_> {
    fn drop(&mut self) {
        self.0.token.store(false, Ordering::Release);
    }
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff {
            token: AtomicBool::new(false),
            current: AtomicU64::new(0),
        }
    }
}

impl Handoff {
    /// The audio-thread side: never blocks, never spins.
    pub fn enter(&self, generation: u64) -> Entry<'_> {
        if self.current.load(Ordering::Acquire) != generation {
            return Entry::Stale;
        }
        let Some(token) = self.try_take() else {
            return Entry::Busy;
        };
        // A recreate may have published a newer generation between the check and the token;
        // the token's acquire orders this load after the last holder's release.
        if self.current.load(Ordering::Acquire) != generation {
            return Entry::Stale;
        }
        Entry::Granted(token)
    }

    fn try_take(&self) -> Option<Token<'_>> {
        self.token
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Token(self))
    }

    /// The service-thread side: waits for the token (a callback holds it for microseconds).
    pub fn take(&self) -> Token<'_> {
        loop {
            if let Some(t) = self.try_take() {
                return t;
            }
            yield_now();
        }
    }

    /// R3 phase 3: only callbacks that captured `generation` render from now on.
    /// `u64::MAX` (no stream has it) parks the handoff for good: a closed player publishes
    /// it, and a recreate finishing after close must not start consuming again.
    pub fn publish(&self, generation: u64) {
        let _ = self
            .current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c != u64::MAX).then_some(generation)
            });
    }

    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }
}
