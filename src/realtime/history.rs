//! A window onto the content already consumed, so audio a vanished device never played can
//! be played again on the next one (issue 3, "nothing lost").

/// A window onto the content stream: replay moves a cursor back into it; new frames are
/// appended only when the cursor is at the head.
pub struct History {
    buf: Vec<u8>,
    head: usize,
    pub len: usize,
    /// Bytes behind the head still to be replayed.
    pub replay: usize,
}

impl History {
    pub fn append(&mut self, mut a: &[u8], mut b: &[u8]) {
        let cap = self.buf.len();
        if cap == 0 {
            return;
        }
        // Only the newest `cap` bytes can be kept.
        let total = a.len() + b.len();
        if total > cap {
            let mut skip = total - cap;
            let sa = skip.min(a.len());
            a = &a[sa..];
            skip -= sa;
            b = &b[skip..];
        }
        for part in [a, b] {
            if part.is_empty() {
                continue;
            }
            let first = part.len().min(cap - self.head);
            self.buf[self.head..self.head + first].copy_from_slice(&part[..first]);
            self.buf[..part.len() - first].copy_from_slice(&part[first..]);
            // part.len() <= cap: one subtraction wraps it (a division costs more than the
            // copy of a short callback's worth).
            self.head += part.len();
            if self.head >= cap {
                self.head -= cap;
            }
            self.len = (self.len + part.len()).min(cap);
        }
    }

    /// The bytes to replay next, as up to two slices, at most `max` bytes.
    pub fn replay_slices(&self, max: usize) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        let n = self.replay.min(max);
        let start = (self.head + cap - self.replay) % cap;
        let first = n.min(cap - start);
        (&self.buf[start..start + first], &self.buf[..n - first])
    }
}

impl History {
    pub fn new(bytes: usize) -> Self {
        History {
            buf: crate::dsp::prefault::zeroed(bytes),
            head: 0,
            len: 0,
            replay: 0,
        }
    }

    /// Forgets everything (a flush, or a format change: old bytes no longer decode).
    pub fn clear(&mut self) {
        self.len = 0;
        self.replay = 0;
    }
}
