//! The writing side: PCM into the ring and commands beside it, in step (one lock, held by
//! whoever writes; never touched by the audio callback).

use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

use crate::command::Cmd;
use crate::error::Error;
use crate::player::Shared;
use crate::render::{scratch_frames, InputShape};

pub struct Writer {
    pub ring: rtrb::Producer<u8>,
    pub commands: rtrb::Producer<Cmd>,
    /// Format of what is written from now on (voice changes move it).
    pub shape: InputShape,
    pub in_utterance: bool,
}

/// How often a blocked writer or a drain looks again. A 10 ms callback frees space in steps
/// of ~10 ms, so 2 ms wakes add at most that much to a writer's latency.
pub const POLL: Duration = Duration::from_millis(2);

impl Writer {
    /// Queues a command at the current write position, waiting (bounded) if the command
    /// queue is full.
    fn command(&mut self, shared: &Shared, cmd: Cmd) -> Result<(), Error> {
        let mut cmd = cmd;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.commands.push(cmd) {
                Ok(()) => return Ok(()),
                Err(rtrb::PushError::Full(c)) => {
                    if Instant::now() >= deadline || shared.closing.load(Acquire) {
                        return Err(Error::Device(
                            "command queue full: the audio callback is not running".into(),
                        ));
                    }
                    cmd = c;
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    fn at(shared: &Shared) -> u64 {
        shared.counters.frames_written.load(Acquire)
    }

    /// Queues whole frames of native-endian PCM in the current format; see `Player::write_bytes`.
    pub fn write(
        &mut self,
        shared: &Shared,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<usize, Error> {
        let fb = self.shape.frame_bytes();
        if bytes.len() % fb != 0 {
            return Err(Error::InvalidArgument(format!(
                "{} bytes is not a whole number of {fb}-byte frames",
                bytes.len()
            )));
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        self.begin_utterance(shared)?;
        let epoch = shared.flush_epoch.load(Acquire);
        let deadline = Instant::now() + timeout;
        let mut done = 0;
        loop {
            let n = (self.ring.slots() / fb * fb).min(bytes.len() - done);
            if n > 0 {
                // Counted before the commit so that, read played-then-written, played never
                // exceeds written: queued = written - played - flushed - dropped is exact.
                shared
                    .counters
                    .frames_written
                    .fetch_add((n / fb) as u64, Release);
                if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
                    chunk.fill_from_iter(bytes[done..done + n].iter().copied());
                }
                done += n;
            }
            if done == bytes.len() {
                break;
            }
            if shared.closing.load(Acquire) {
                // What was queued is counted as dropped by close(); the caller learns why.
                return Err(Error::Closed);
            }
            // A flush (barge-in) releases a blocked writer with what it queued.
            if shared.flush_epoch.load(Acquire) != epoch {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
        Ok(done / fb)
    }

    pub fn end_utterance(&mut self, shared: &Shared) -> Result<(), Error> {
        if self.in_utterance {
            self.command(
                shared,
                Cmd::UtteranceEnd {
                    at: Self::at(shared),
                },
            )?;
            self.in_utterance = false;
            shared.core.note_utterance_end_written();
        }
        Ok(())
    }

    /// A marker placed before an utterance's first write opens that utterance, so its
    /// event follows the utterance start.
    pub fn mark(&mut self, shared: &Shared, id: u64) -> Result<(), Error> {
        self.begin_utterance(shared)?;
        let at = Self::at(shared);
        self.command(shared, Cmd::Mark { at, id })
    }

    fn begin_utterance(&mut self, shared: &Shared) -> Result<(), Error> {
        if !self.in_utterance {
            let at = Self::at(shared);
            self.command(shared, Cmd::UtteranceStart { at })?;
            self.in_utterance = true;
            // The service thread may be in its long device-poll sleep, and the callback
            // cannot wake it: events from this utterance must be delivered on time.
            shared.wake.notify();
        }
        Ok(())
    }

    /// A voice change, in band: what was written before plays in the old format.
    pub fn set_format(&mut self, shared: &Shared, shape: InputShape) -> Result<(), Error> {
        if shape == self.shape {
            return Ok(());
        }
        // Decode scratch for the new format, allocated here, not on the audio thread.
        let out = shared.state.load().stream_rate.max(8000);
        let output = crate::render::OutputShape {
            rate: out,
            channels: 1,
        };
        let xin = vec![0.0; scratch_frames(shape, output) * shape.channels];
        self.command(
            shared,
            Cmd::Format {
                at: Self::at(shared),
                shape,
                xin,
            },
        )?;
        self.shape = shape;
        Ok(())
    }

    /// Ends the current utterance on the writing side (a flush cut it) and returns the
    /// position the flush covers.
    pub fn cut(&mut self, shared: &Shared) -> u64 {
        self.in_utterance = false;
        Self::at(shared)
    }
}
