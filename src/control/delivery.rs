//! Event delivery on the player's event thread: events from the callback wait until the listener
//! hears them, then go to the event callback and the pollable queue (for hosts that cannot
//! take callbacks: Go, Node).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use crate::data::events::{Event, EventKind, EventSink};
use crate::thread_role::{debug_assert_not_audio, debug_assert_role};

/// Events kept for `poll` at most; older ones are dropped (and counted) past this.
const POLL_CAPACITY: usize = 4096;

pub struct Delivery {
    /// From the callback, not yet due.
    pending: Mutex<VecDeque<Event>>,
    /// Due, waiting for `poll`.
    ready: Mutex<VecDeque<Event>>,
    sink: Option<EventSink>,
    pub dropped: std::sync::atomic::AtomicU64,
    /// Content positions of queued commands that make the callback emit an event (utterance
    /// starts and ends, markers), in order: the event thread looks for them when the
    /// callbacks get there instead of polling all the time (issue 5: CPU while streaming).
    expected: Mutex<VecDeque<u64>>,
}

impl Delivery {
    pub fn new(sink: Option<EventSink>) -> Self {
        Delivery {
            pending: Mutex::default(),
            ready: Mutex::default(),
            sink,
            dropped: Default::default(),
            expected: Mutex::default(),
        }
    }

    /// Queues an event from the callback until it is heard. A `Flushed` event takes the
    /// markers still waiting past the frame where its fade ended with it: a flush rewritten
    /// into what the server held (`RenderCore::rewrite`) silenced audio whose markers the
    /// callbacks had already emitted, and those words are never heard. Returns how many.
    pub fn push_pending(&self, e: Event) -> u64 {
        debug_assert_not_audio!();
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut unheard = 0;
        if e.kind == EventKind::Flushed {
            let before = p.len();
            p.retain(|m| !(m.kind == EventKind::Marker && m.frame > e.frame));
            unheard = (before - p.len()) as u64;
        }
        p.push_back(e);
        unheard
    }

    /// The writer queued a command that emits an event when the callbacks reach `at`.
    /// Returns whether it is the only one expected: the event thread may then be in its long
    /// poll and must be woken to look for it in time.
    pub fn expect(&self, at: u64) -> bool {
        let mut q = self.expected.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(at);
        q.len() == 1
    }

    /// The next expected event position at or after `pos` (the callbacks' published
    /// position); forgets those before it: their events are already queued (or were
    /// flushed). One at `pos` itself may still be ahead (queued after the last callback).
    pub fn next_expected(&self, pos: u64) -> Option<u64> {
        let mut q = self.expected.lock().unwrap_or_else(|p| p.into_inner());
        while q.front().is_some_and(|&at| at < pos) {
            q.pop_front();
        }
        q.front().copied()
    }

    /// Delivers everything heard by `now_ns`; returns when the next pending event is due.
    pub fn deliver_due(&self, now_ns: u64) -> Option<u64> {
        debug_assert_role!(Events);
        loop {
            let e = {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                match p.front() {
                    Some(e) if e.heard_ns <= now_ns => p.pop_front(),
                    Some(e) => return Some(e.heard_ns),
                    None => return None,
                }
            };
            let e = e?;
            self.deliver(e);
        }
    }

    /// Hands an event to the sink and the poll queue now.
    pub fn deliver(&self, e: Event) {
        debug_assert_not_audio!();
        if let Some(s) = &self.sink {
            s(&e);
        }
        let mut r = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == POLL_CAPACITY {
            r.pop_front();
            self.dropped.fetch_add(1, Relaxed);
        }
        r.push_back(e);
    }

    pub fn poll(&self) -> Option<Event> {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, id: u64, frame: u64, heard_ns: u64) -> Event {
        Event {
            kind,
            id,
            frame,
            heard_ns,
        }
    }

    /// Markers the callbacks emitted for audio a rewrite then silenced are not delivered;
    /// those heard before the fade's end are, and so is everything else.
    #[test]
    fn a_flush_takes_the_markers_past_its_end_with_it() {
        let d = Delivery::new(None);
        let _role = crate::thread_role::enter(crate::thread_role::Role::Events);
        assert_eq!(d.push_pending(ev(EventKind::Marker, 1, 100, 10)), 0);
        assert_eq!(d.push_pending(ev(EventKind::Marker, 2, 200, 20)), 0);
        assert_eq!(d.push_pending(ev(EventKind::UtteranceEnd, 0, 300, 30)), 0);
        assert_eq!(d.push_pending(ev(EventKind::Marker, 3, 300, 30)), 0);
        assert_eq!(d.push_pending(ev(EventKind::Flushed, 0, 150, 15)), 2);
        assert_eq!(d.deliver_due(u64::MAX), None);
        let got: Vec<_> = std::iter::from_fn(|| d.poll())
            .map(|e| (e.kind, e.id))
            .collect();
        assert_eq!(
            got,
            [
                (EventKind::Marker, 1),
                (EventKind::UtteranceEnd, 0),
                (EventKind::Flushed, 0)
            ]
        );
    }
}
