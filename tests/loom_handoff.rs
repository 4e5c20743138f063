//! Issue 7: an exhaustive model of the generation handoff (SPEC C1, R3) and of ring ownership.
//!
//! `src/realtime/handoff.rs` is compiled here unchanged with loom's atomics, and loom runs every
//! interleaving (and every weak-memory outcome it models) of an old-generation callback, a
//! new-generation callback and the service thread publishing the new generation and then
//! reconfiguring the shared state. The shared render state is a loom `UnsafeCell`: loom fails
//! the test if two threads could ever touch it without a happens-before edge between them.
//! Removing the re-check after taking the token in `Handoff::enter` makes it fail.

mod sync {
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    pub use loom::thread::yield_now;
}

#[allow(dead_code)]
#[path = "../src/realtime/handoff.rs"]
mod handoff;

use handoff::{Entry, Handoff};
use loom::cell::UnsafeCell;
use loom::sync::Arc;

/// The state callbacks share: the ring's read position and which generation last rendered.
#[derive(Default)]
struct Ring {
    popped: u64,
    last_generation: u64,
    reconfigured: bool,
}

struct Core {
    handoff: Handoff,
    ring: UnsafeCell<Ring>,
}

/// One audio callback of `generation`: renders (pops one frame) only if granted. Returns
/// whether it rendered.
fn callback(core: &Core, generation: u64) -> bool {
    match core.handoff.enter(generation) {
        Entry::Granted(_token) => {
            core.ring.with_mut(|r| {
                // SAFETY: the token is held; loom checks that this access is exclusive.
                let r = unsafe { &mut *r };
                // Ownership only moves forward: once a newer generation rendered, an older
                // one never renders again.
                assert!(generation >= r.last_generation, "stale generation rendered");
                r.last_generation = generation;
                r.popped += 1;
            });
            true
        }
        Entry::Stale | Entry::Busy => false,
    }
}

/// `preemption_bound` limits how many times a thread may be switched out against its will;
/// `None` explores everything (feasible for one callback per thread).
fn model(callbacks_per_thread: usize, preemption_bound: Option<usize>) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = preemption_bound;
    b.check(move || {
        let core = Arc::new(Core {
            handoff: Handoff::default(),
            ring: UnsafeCell::new(Ring::default()),
        });
        core.handoff.publish(1);
        let old = {
            let core = core.clone();
            loom::thread::spawn(move || {
                (0..callbacks_per_thread)
                    .filter(|_| callback(&core, 1))
                    .count()
            })
        };
        let new = {
            let core = core.clone();
            loom::thread::spawn(move || {
                (0..callbacks_per_thread)
                    .filter(|_| callback(&core, 2))
                    .count()
            })
        };
        // The service thread: R3 phase 3, then reconfigure under the token (what
        // RenderCore::configure does), excluding every callback.
        core.handoff.publish(2);
        {
            let _t = core.handoff.take();
            core.ring.with_mut(|r| {
                // SAFETY: the token is held; loom checks exclusivity.
                unsafe { (*r).reconfigured = true };
            });
        }
        let rendered = old.join().unwrap() + new.join().unwrap();
        // Every granted callback popped exactly once; nothing popped twice or lost.
        core.ring.with(|r| {
            // SAFETY: all other threads have been joined.
            let r = unsafe { &*r };
            assert_eq!(r.popped, rendered as u64);
            assert!(r.reconfigured);
        });
        // After phase 3, an old-generation callback is always turned away.
        assert!(!callback(&core, 1));
    });
}

#[test]
fn handoff_one_callback_each_exhaustive() {
    model(1, None);
}

#[test]
fn handoff_two_callbacks_each_bounded() {
    model(2, Some(5));
}
