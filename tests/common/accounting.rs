//! Frame accounting, one check for every form the counters come in (the Rust metrics, the C
//! ABI's, `applay --json`'s line): each content frame written was played, is still queued,
//! was flushed by a barge-in or was dropped by the library. None lost, none invented.

use audioplay::ffi::metrics::ApMetrics;
use audioplay::Metrics;

use super::json_num;

/// The content-frame counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    pub written: u64,
    pub played: u64,
    pub queued: u64,
    pub flushed: u64,
    pub dropped: u64,
}

/// Anything that carries the counters, and what a failed check shows of it.
pub trait FrameCounts {
    fn frames(&self) -> Frames;
    fn context(&self) -> String;
}

/// The Rust and the C metrics name the counters alike.
macro_rules! frames_of {
    ($m:expr) => {
        Frames {
            written: $m.frames_written,
            played: $m.frames_played,
            queued: $m.frames_queued,
            flushed: $m.frames_flushed,
            dropped: $m.frames_dropped,
        }
    };
}

impl FrameCounts for Metrics {
    fn frames(&self) -> Frames {
        frames_of!(self)
    }
    fn context(&self) -> String {
        format!("{self:?}")
    }
}

impl FrameCounts for ApMetrics {
    fn frames(&self) -> Frames {
        frames_of!(self)
    }
    fn context(&self) -> String {
        format!("{:?}", self.frames())
    }
}

/// `applay --json`'s metrics line. applay never flushes and does not print `frames_flushed`:
/// it counts as 0 unless the line has it.
impl FrameCounts for str {
    fn frames(&self) -> Frames {
        let n = |key| json_num(self, key) as u64;
        Frames {
            written: n("frames_written"),
            played: n("frames_played"),
            queued: n("frames_queued"),
            flushed: if self.contains("\"frames_flushed\":") {
                n("frames_flushed")
            } else {
                0
            },
            dropped: n("frames_dropped"),
        }
    }
    fn context(&self) -> String {
        self.to_string()
    }
}

impl FrameCounts for String {
    fn frames(&self) -> Frames {
        self.as_str().frames()
    }
    fn context(&self) -> String {
        self.clone()
    }
}

/// Nothing lost or invented: written = played + queued + flushed + dropped.
pub fn accounting_holds<M: FrameCounts + ?Sized>(m: &M) -> bool {
    let f = m.frames();
    f.written == f.played + f.queued + f.flushed + f.dropped
}

/// Nothing lost or invented (see [`accounting_holds`]).
pub fn assert_accounting<M: FrameCounts + ?Sized>(m: &M) {
    assert!(
        accounting_holds(m),
        "frames lost or invented: written != played + queued + flushed + dropped: {}",
        m.context()
    );
}

/// Nothing lost or invented in a run that never flushed: written = played + queued +
/// dropped, and nothing counted as flushed.
pub fn assert_accounting_unflushed<M: FrameCounts + ?Sized>(m: &M) {
    assert_accounting(m);
    assert_eq!(
        m.frames().flushed,
        0,
        "nothing was flushed: {}",
        m.context()
    );
}

/// Everything written was played: nothing lost or invented, nothing left queued, flushed or
/// dropped.
pub fn assert_all_played<M: FrameCounts + ?Sized>(m: &M) {
    assert_accounting(m);
    let f = m.frames();
    assert_eq!(
        f.played,
        f.written,
        "not everything written was played: {}",
        m.context()
    );
}
