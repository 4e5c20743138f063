//! Teardown that cannot hang or call the host back late (issue 12).
//!
//! - [`Gate`]: every call into the host's `event_fn`/`log_fn` runs through it. Once
//!   [`Gate::close`] has returned no such call starts again, so a host may free the
//!   callbacks' context as soon as `ap_destroy` returns.
//! - [`Worker`]: a library thread that says when it has finished, so `close` waits for it a
//!   bounded time and joins it only then (a thread stuck in a server round trip is
//!   detached: it owns an `Arc<Shared>` and finishes on its own), and never joins itself
//!   (`ap_destroy` from inside a callback on that thread).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Instant;

#[derive(Default)]
struct GateState {
    closed: bool,
    /// Threads inside a host callback now (one entry per nested call).
    inside: Vec<ThreadId>,
}

/// Admits host callbacks until closed.
#[derive(Default)]
pub struct Gate {
    st: Mutex<GateState>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` (a call into the host) unless the gate is closed.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let me = std::thread::current().id();
        {
            let mut g = self.lock();
            if g.closed {
                return None;
            }
            g.inside.push(me);
        }
        struct Leave<'a>(&'a Gate, ThreadId);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut g = self.0.lock();
                if let Some(i) = g.inside.iter().position(|t| *t == self.1) {
                    g.inside.swap_remove(i);
                }
                drop(g);
                self.0.cv.notify_all();
            }
        }
        let _leave = Leave(self, me);
        Some(f())
    }

    /// From now on no callback starts. Waits for callbacks running on other threads to
    /// return (the host may free their context once this returns); a callback on this thread
    /// (close called from inside it) is not waited for.
    pub fn close(&self) {
        let me = std::thread::current().id();
        let mut g = self.lock();
        g.closed = true;
        while g.inside.iter().any(|t| *t != me) {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[derive(Default)]
struct Done {
    flag: Mutex<bool>,
    cv: Condvar,
}

/// Set when the thread's body has returned (or unwound).
struct DoneGuard(Arc<Done>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        *self.0.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.cv.notify_all();
    }
}

/// A library thread that signals when it has finished.
pub struct Worker {
    handle: JoinHandle<()>,
    done: Arc<Done>,
}

impl Worker {
    pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<Worker> {
        let done = Arc::new(Done::default());
        let signal = DoneGuard(done.clone());
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _signal = signal;
                f();
            })?;
        Ok(Worker { handle, done })
    }

    /// Joins the thread if it finishes by `deadline`; otherwise detaches it. Never joins the
    /// calling thread itself. Returns whether it was joined.
    pub fn finish_by(self, deadline: Instant) -> bool {
        if self.handle.thread().id() == std::thread::current().id() {
            return false; // we are this thread: it finishes when the callback returns
        }
        let done = {
            let g = self.done.flag.lock().unwrap_or_else(|e| e.into_inner());
            let wait = deadline.saturating_duration_since(Instant::now());
            let (g, _) = self
                .done
                .cv
                .wait_timeout_while(g, wait, |d| !*d)
                .unwrap_or_else(|e| e.into_inner());
            *g
        };
        if done {
            // Its body has returned: the join only collects the OS thread (a thread-local
            // destructor at most), and never reports a panic we could act on.
            let _ = self.handle.join();
        }
        done
    }
}

/// Drops `v` on a helper thread, waiting for it until `deadline`; past that the helper is
/// left to finish on its own (a device stream whose server is frozen). If no thread can be
/// started, `v` is dropped here.
pub fn drop_by<T: Send + 'static>(v: T, deadline: Instant) {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("audioplay-close".into())
        .spawn(move || {
            drop(v);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    #[test]
    fn a_closed_gate_admits_nothing_and_waits_for_other_threads() {
        let gate = Arc::new(Gate::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (g, c) = (gate.clone(), calls.clone());
        let t = std::thread::spawn(move || {
            g.run(|| {
                c.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                c.fetch_add(1, SeqCst);
            })
        });
        while calls.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        gate.close();
        assert_eq!(calls.load(SeqCst), 2, "close waited for the running call");
        assert!(gate.run(|| ()).is_none());
        assert!(t.join().unwrap().is_some());
        // Closing from inside a call on the same thread does not wait for itself.
        let gate = Gate::default();
        assert_eq!(gate.run(|| gate.close()), Some(()));
        assert!(gate.run(|| ()).is_none());
    }

    #[test]
    fn a_stuck_worker_is_detached_by_the_deadline() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let w = Worker::spawn("t-stuck", move || {
            let _ = rx.recv();
        })
        .unwrap();
        let t0 = Instant::now();
        assert!(!w.finish_by(Instant::now() + Duration::from_millis(50)));
        assert!(t0.elapsed() < Duration::from_secs(5));
        drop(tx);
        let w = Worker::spawn("t-quick", || ()).unwrap();
        assert!(w.finish_by(Instant::now() + Duration::from_secs(10)));
    }
}
