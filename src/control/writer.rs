//! The writing side: PCM into the ring and commands beside it, in step (one lock, held by
//! whoever writes; never touched by the audio callback).
//!
//! Control calls never wait for that lock (issue 12: a writer may hold it for
//! `write_timeout_ms` while the ring is full). They take it with `try_lock`; when a write is
//! in progress they leave a [`Request`] in [`Writing`]'s queue instead, and whoever holds
//! the lock applies pending requests, in order, before releasing it ([`Writing::release`]):
//! a request made during a write takes effect right after the data that write queues.
//! The player owns the [`Writing`]; no other thread touches it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::*;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::control::shared::Shared;
use crate::data::config::{GainScope, ResampleQuality};
use crate::data::error::Error;
use crate::dsp::resample::Resampler;
use crate::dsp::stretch::Stretch;
use crate::realtime::command::Cmd;
use crate::realtime::shape::{scratch_frames, InputShape};

/// A control call made while the writer's lock was held by someone else.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Request {
    EndUtterance,
    Mark(u64),
    Format(InputShape),
    /// A flush happened while a write was in progress: end the utterance on the writing
    /// side and reset the producer resampler (what `cut` does when the lock is free).
    Cut,
    /// Gain and pan in band (issue 16), checked by the player.
    GainPan {
        gain: f32,
        pan: f32,
        ramp_ms: u32,
        scope: GainScope,
    },
    /// Speed without pitch change (issue 16 §1), checked by the player.
    Speed(f32),
}

/// The writer behind its lock, and the control requests left for whoever holds it.
pub struct Writing {
    writer: Mutex<Writer>,
    /// Control calls made while a write held `writer`, oldest first; applied by whoever
    /// holds it before releasing it. Locked only briefly, never across a wait.
    requests: Mutex<VecDeque<Request>>,
}

impl Writing {
    pub fn new(writer: Writer) -> Self {
        Writing {
            writer: Mutex::new(writer),
            requests: Mutex::default(),
        }
    }

    /// The writer, waiting for it: only for writes (which serialise). Release it with
    /// [`Writing::release`] so requests left meanwhile are applied.
    pub fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer if nobody holds it now; control calls never wait for it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Writer>> {
        match self.writer.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    pub fn requests(&self) -> MutexGuard<'_, VecDeque<Request>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_request(&self) -> Option<Request> {
        self.requests().pop_front()
    }

    /// Runs `f` on the writer with pending requests applied first and again on release.
    pub fn with<R>(&self, shared: &Shared, f: impl FnOnce(&mut Writer) -> R) -> R {
        let mut w = self.lock();
        if let Err(e) = w.apply_requests(shared, self) {
            log_request_error(shared, &e);
        }
        let r = f(&mut w);
        self.release(shared, w);
        r
    }

    /// Releases the writer after applying the requests left while it was held. A request
    /// left just as the lock is dropped is picked up by trying again: either this thread gets
    /// the lock back and applies it, or whoever holds it now will.
    pub fn release<'a>(&'a self, shared: &Shared, mut w: MutexGuard<'a, Writer>) {
        loop {
            if let Err(e) = w.apply_requests(shared, self) {
                log_request_error(shared, &e);
            }
            drop(w);
            if self.requests().is_empty() {
                return;
            }
            match self.try_lock() {
                Some(g) => w = g,
                None => return,
            }
        }
    }

    /// A control request: applied now if no write is in progress (its error returned),
    /// else left for the writer, which applies it right after the data it is queuing.
    pub fn request(&self, shared: &Shared, req: Request) -> Result<(), Error> {
        self.requests().push_back(req);
        match self.try_lock() {
            Some(mut w) => {
                let r = w.apply_requests(shared, self);
                self.release(shared, w);
                r
            }
            None => Ok(()),
        }
    }

    /// Close: waits (until `deadline`) for a write in progress to notice `closing` and
    /// return; writers check it under the writer's lock before queuing anything.
    pub fn settle(&self, deadline: Instant) {
        loop {
            match self.writer.try_lock() {
                Ok(_) | Err(TryLockError::Poisoned(_)) => return,
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

/// A request applied on behalf of another caller failed: nobody is waiting for its result,
/// so it is logged.
pub fn log_request_error(shared: &Shared, e: &Error) {
    shared.log(
        crate::data::config::LogLevel::Warn,
        &format!("deferred control request failed: {e}"),
    );
}

pub struct Writer {
    pub ring: rtrb::Producer<u8>,
    pub commands: rtrb::Producer<Cmd>,
    /// Format the application writes from now on (voice changes move it).
    pub shape: InputShape,
    /// Format of what goes into the ring: `shape`, or float32 at the stream rate when the
    /// writer resamples (U2).
    pub ring_shape: InputShape,
    pub in_utterance: bool,
    /// An utterance started and none of its audio has been queued yet: the event thread is
    /// woken once some is (it idles while nothing is in flight).
    pub fresh_utterance: bool,
    /// Set when `resample_mode` is producer.
    pub producer: Option<ProducerResampler>,
    /// Leading-silence trim (issue 16).
    pub trim: Trim,
    /// Speed without pitch change (issue 16 §1).
    pub speed: Speed,
}

/// Speed without pitch change (issue 16 §1), done here, on the writing thread, so the
/// callback's work and allocations are what they are at speed 1.
///
/// At speed 1 nothing of this runs (no stretch: the bypass). Otherwise the ring carries
/// the stretch's float32 output at the content rate, announced by a `Format` marked as
/// mapped, and `Sync` points tie its frames back to content frames (the mechanism producer
/// resampling uses), so positions and events stay in content frames. The stretch holds
/// back the input of about one step, its search radius and a crossfade (benches/stretch.rs
/// on espeak-ng speech: at most 45 ms of content at 1.5x, 75 ms at 2.5x, ~30 ms of output
/// time); markers placed meanwhile are
/// held with their content frame and queued where the output reaches it. Content frames
/// count as written when their output enters the ring.
#[derive(Default)]
pub struct Speed {
    /// Speed set (1: bypass).
    pub value: f32,
    stretch: Option<Stretch>,
    decoded: Vec<f32>,
    fresh: Vec<f32>,
    fresh_anchors: Vec<(usize, u64)>,
    /// Output not yet in the ring, from absolute output frame `out_from`.
    out: Vec<f32>,
    out_from: u64,
    /// Output frames made, and those queued with their content (absolute, since created).
    made: u64,
    synced: u64,
    synced_content: u64,
    /// Content frames pushed into the stretch (absolute), and where its current run began.
    pushed: u64,
    run_from: u64,
    /// (output frame, content frame) after each stretch step, not yet queued.
    anchors: VecDeque<(u64, u64)>,
    /// Markers and in-band gain/pan waiting for their content frame's output: (content
    /// frame, the command; its `at` is set when it is queued).
    marks: VecDeque<(u64, Cmd)>,
    bytes: Vec<u8>,
}

impl Speed {
    pub fn new() -> Self {
        Speed {
            value: 1.0,
            ..Speed::default()
        }
    }

    fn take(&mut self, st: &mut Stretch, end: bool) {
        self.fresh.clear();
        self.fresh_anchors.clear();
        if end {
            st.finish(&mut self.fresh, &mut self.fresh_anchors);
        } else {
            st.process(&mut self.fresh, &mut self.fresh_anchors);
        }
        let ch = st.channels();
        for &(o, c) in &self.fresh_anchors {
            self.anchors
                .push_back((self.made + o as u64, self.run_from + c));
        }
        self.made += (self.fresh.len() / ch) as u64;
        self.out.extend_from_slice(&self.fresh);
        if end {
            self.run_from = self.pushed;
        }
    }
}

/// Leading-silence trim (issue 16), done here, before samples enter the ring, so the
/// callback does no extra work and every position it counts is a frame that plays.
///
/// Markers: trimmed frames never enter the ring, so they are not in any position (events,
/// `position`, `frames_written`); they are reported only in `trimmed_ms`. A marker placed
/// during the leading silence is held here with its offset into that silence and queued
/// when the first sound arrives, among the kept frames where it was placed: one in the
/// dropped part counts the dropped frames as played instantly and fires at the first kept
/// frame; one placed right before the first sound fires at that sound's first frame.
pub struct Trim {
    /// Frames whose every sample is below this magnitude are silence (0: trim off).
    threshold: f32,
    keep_ms: u32,
    /// In an utterance's leading silence: nothing of it has been queued yet.
    active: bool,
    /// The latest leading silence, in the application's format: at most `keep_ms` of it,
    /// queued in front of the first sound.
    held: Vec<u8>,
    /// Leading frames seen so far (marker offsets count from the utterance's start).
    seen: u64,
    /// Markers placed during the leading silence: (offset in frames, id).
    marks: Vec<(u64, u64)>,
}

impl Trim {
    pub fn new(threshold: f32, keep_ms: u32) -> Self {
        Trim {
            threshold,
            keep_ms,
            active: false,
            held: Vec::new(),
            seen: 0,
            marks: Vec::new(),
        }
    }

    /// Index of the first frame with a sample at or above the threshold, if any.
    fn first_sound(&self, shape: InputShape, bytes: &[u8]) -> Option<usize> {
        let ch = shape.channels;
        if shape.s16 {
            let t = self.threshold * 32768.0;
            bytes
                .chunks_exact(2)
                .position(|b| f32::from(i16::from_ne_bytes([b[0], b[1]])).abs() >= t)
                .map(|i| i / ch)
        } else {
            bytes
                .chunks_exact(4)
                .position(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]).abs() >= self.threshold)
                .map(|i| i / ch)
        }
    }

    /// Adds leading silence: keeps the last `keep_ms` of all seen so far, counting what
    /// falls out as trimmed.
    fn hold(&mut self, shared: &Shared, shape: InputShape, bytes: &[u8]) {
        let fb = shape.frame_bytes();
        self.seen += (bytes.len() / fb) as u64;
        let keep = (self.keep_ms as u64 * shape.rate as u64 / 1000) as usize * fb;
        let dropped = if bytes.len() >= keep {
            let d = self.held.len() + bytes.len() - keep;
            self.held.clear();
            self.held.extend_from_slice(&bytes[bytes.len() - keep..]);
            d
        } else {
            self.held.extend_from_slice(bytes);
            let d = self.held.len().saturating_sub(keep);
            self.held.drain(..d);
            d
        };
        count_trimmed(shared, shape, dropped / fb);
    }

    /// The held silence is dropped whole (an all-silent utterance, a flush, a voice change
    /// during the silence); markers held are placed at its end.
    fn drop_held(&mut self, shared: &Shared, shape: InputShape) {
        count_trimmed(shared, shape, self.held.len() / shape.frame_bytes());
        self.held.clear();
        self.seen = 0;
        for m in &mut self.marks {
            m.0 = 0;
        }
    }
}

fn count_trimmed(shared: &Shared, shape: InputShape, frames: usize) {
    if frames > 0 {
        let us = frames as u64 * 1_000_000 / shape.rate.max(1) as u64;
        shared.counters.trimmed_us.fetch_add(us, Relaxed);
    }
}

/// The ring's format while the writer stretches: the content's own (int16 stays int16, so
/// the ring holds as many ms and the callback decodes as it does at speed 1).
fn stretched_shape(shape: InputShape) -> InputShape {
    shape
}

/// U2: resampling before the ring, on the writing thread, so the callback only copies.
pub struct ProducerResampler {
    resampler: Resampler,
    quality: ResampleQuality,
    /// (content rate, stream rate, channels) the resampler is set up for.
    key: (u32, u32, usize),
    decoded: Vec<f32>,
    out: Vec<f32>,
    bytes: Vec<u8>,
}

impl ProducerResampler {
    pub fn new(quality: ResampleQuality) -> Self {
        ProducerResampler {
            resampler: Resampler::new(ResampleQuality::Linear, 1, 1, 1),
            quality,
            key: (0, 0, 0),
            decoded: Vec::new(),
            out: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// Resamples `input` (whole frames of `shape`) into float32 bytes in `self.bytes`.
    fn run(&mut self, shape: InputShape, input: &[u8]) -> usize {
        let ch = shape.channels;
        let frames = input.len() / shape.frame_bytes();
        self.decoded.resize(frames * ch, 0.0);
        crate::dsp::convert::decode_into(shape.s16, input, &mut self.decoded);
        let cap = self.resampler.max_input_for(0) + frames * 8 + 8;
        self.out.resize(cap * ch, 0.0);
        let (_, produced) = self.resampler.process(&self.decoded, &mut self.out);
        self.fill_bytes(produced * ch)
    }

    /// Ends the stream: the resampler's tail (S1), as float32 bytes in `self.bytes`.
    fn finish(&mut self, ch: usize) -> usize {
        self.out.resize((self.resampler.tail_len() + 8) * ch, 0.0);
        let n = self.resampler.finish(&mut self.out);
        self.fill_bytes(n * ch)
    }

    fn fill_bytes(&mut self, samples: usize) -> usize {
        self.bytes.clear();
        self.bytes
            .extend(self.out[..samples].iter().flat_map(|v| v.to_ne_bytes()));
        samples
    }
}

/// How often a blocked writer or a drain looks again. A 10 ms callback frees space in steps
/// of ~10 ms, so 2 ms wakes add at most that much to a writer's latency.
pub const POLL: Duration = Duration::from_millis(2);
/// The longest a writer sleeps before looking at the ring again (a stalled or paused stream
/// frees no room at all; a flush or close wakes it at once).
const MAX_ROOM_WAIT: Duration = Duration::from_millis(50);

impl Writer {
    /// Queues a command at the current write position, waiting (bounded) if the command
    /// queue is full.
    fn command(&mut self, shared: &Shared, cmd: Cmd) -> Result<(), Error> {
        let mut cmd = cmd;
        let emits = match cmd {
            Cmd::UtteranceStart { at } | Cmd::UtteranceEnd { at } | Cmd::Mark { at, .. } => {
                Some(at)
            }
            Cmd::Format { .. } | Cmd::Sync { .. } | Cmd::GainPan { .. } => None,
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.commands.push(cmd) {
                Ok(()) => {
                    if emits.is_some_and(|at| shared.events.delivery.expect(at)) {
                        shared.events.wake.notify();
                    }
                    return Ok(());
                }
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

    /// The ring position of the next frame written (where a command queued now applies).
    fn at(shared: &Shared) -> u64 {
        shared.counters.ring_frames_written.load(Acquire)
    }

    /// Applies the control requests left while someone else held the lock, oldest first,
    /// and the S3 fallback's request for producer resampling. Returns the first error (each
    /// request is still attempted).
    pub fn apply_requests(&mut self, shared: &Shared, writing: &Writing) -> Result<(), Error> {
        // While the writer stretches, the S3 request waits (the ring carries stretched frames
        // at the content rate; speed 1 takes it up).
        if self.speed.stretch.is_none()
            && shared.writers.producer_request.swap(false, AcqRel)
            && self.producer.is_none()
        {
            // S3: built here, on a writing (or control) thread, never by the service thread.
            self.producer = Some(ProducerResampler::new(shared.cfg.resample_quality));
        }
        let mut result = Ok(());
        while let Some(req) = writing.take_request() {
            let r = match req {
                Request::EndUtterance => self.end_utterance(shared),
                Request::Mark(id) => self.mark(shared, id),
                Request::Format(shape) => self.set_format(shared, shape),
                Request::Cut => {
                    self.cut(shared);
                    Ok(())
                }
                Request::GainPan {
                    gain,
                    pan,
                    ramp_ms,
                    scope,
                } => self.gain_pan(shared, gain, pan, ramp_ms, scope),
                Request::Speed(v) => self.set_speed(shared, v),
            };
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Queues whole frames of native-endian PCM in the current format; see `Player::write_bytes`.
    pub fn write(
        &mut self,
        shared: &Shared,
        writing: &Writing,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<usize, Error> {
        if shared.closing.load(Acquire) {
            return Err(Error::Closed);
        }
        // Requests left before this write come first (a voice change applies to this data).
        if let Err(e) = self.apply_requests(shared, writing) {
            log_request_error(shared, &e);
        }
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
        let deadline = Instant::now() + timeout;
        if self.trim.active {
            let shape = self.shape;
            let Some(first) = self.trim.first_sound(shape, bytes) else {
                // Still leading silence: held or dropped, all of it accepted.
                self.trim.hold(shared, shape, bytes);
                return Ok(bytes.len() / fb);
            };
            self.trim.hold(shared, shape, &bytes[..first * fb]);
            self.end_trim(shared, deadline)?;
            return Ok(first + self.queue(shared, &bytes[first * fb..], deadline)?);
        }
        self.queue(shared, bytes, deadline)
    }

    /// The first sound of an utterance arrived: the kept silence goes into the ring in
    /// front of it, with the markers held during the silence where they were placed in it
    /// (see `Trim`).
    fn end_trim(&mut self, shared: &Shared, deadline: Instant) -> Result<(), Error> {
        self.trim.active = false;
        let held = std::mem::take(&mut self.trim.held);
        let marks = std::mem::take(&mut self.trim.marks);
        let fb = self.shape.frame_bytes();
        let h = (held.len() / fb) as u64;
        // Frames of the leading silence dropped before the held ones.
        let dropped = self.trim.seen.saturating_sub(h);
        self.trim.seen = 0;
        let mut from = 0;
        for (offset, id) in marks {
            let k = offset.saturating_sub(dropped).min(h) as usize;
            if k > from {
                self.queue(shared, &held[from * fb..k * fb], deadline)?;
                from = k;
            }
            self.place_mark(shared, id)?;
        }
        self.queue(shared, &held[from * fb..], deadline)?;
        self.trim.held = held;
        self.trim.held.clear();
        Ok(())
    }

    /// Queues whole frames of the current format (resampling them first in producer mode).
    /// Returns frames queued.
    fn queue(&mut self, shared: &Shared, bytes: &[u8], deadline: Instant) -> Result<usize, Error> {
        let fb = self.shape.frame_bytes();
        if bytes.is_empty() {
            return Ok(0);
        }
        if self.speed.stretch.is_some() {
            return self.queue_stretched(shared, bytes, deadline);
        }
        if self.producer.is_none() {
            return Ok(self.put(shared, bytes, deadline)? / fb);
        }
        // U2: resample a slice at a time, sized to what the ring can take now, so a timeout
        // never leaves resampled audio with nowhere to go.
        self.follow_stream_rate(shared, deadline)?;
        let ratio = self.ring_shape.rate as f64 / self.shape.rate as f64;
        let out_fb = self.ring_shape.frame_bytes();
        let epoch = shared.writers.flush_epoch.load(Acquire);
        let mut done = 0;
        while done < bytes.len() {
            // A flush (barge-in) releases the writer with what it queued: nothing more after it.
            if shared.writers.flush_epoch.load(Acquire) != epoch {
                break;
            }
            let room = self.ring.slots() / out_fb;
            let fit = ((room.saturating_sub(4)) as f64 / ratio).floor() as usize;
            let take = fit.min((bytes.len() - done) / fb);
            if take > 0 {
                let pr = self.producer.as_mut().expect("producer mode");
                pr.run(self.shape, &bytes[done..done + take * fb]);
                let out = std::mem::take(&mut pr.bytes);
                // Content frames are what the application wrote; the Sync point, queued before
                // the audio it ends, lets the callback count the resampled frames back in them.
                let content = shared.counters.frames_written.load(Acquire) + take as u64;
                self.sync(shared, out.len() / out_fb, content)?;
                shared
                    .counters
                    .frames_written
                    .fetch_add(take as u64, Release);
                self.put(shared, &out, deadline)?;
                if let Some(pr) = self.producer.as_mut() {
                    pr.bytes = out;
                }
                done += take * fb;
                continue;
            }
            if shared.closing.load(Acquire) {
                return Err(Error::Closed);
            }
            if shared.service.output_lost.load(Acquire) && done == 0 {
                return Err(Error::NoOutput(
                    "nothing has played for device_lost_timeout_ms (sound server or device gone)"
                        .into(),
                ));
            }
            if Instant::now() >= deadline
                || shared.writers.flush_epoch.load(Acquire) != epoch
                || shared.service.output_lost.load(Acquire)
            {
                break;
            }
            let left = (bytes.len() - done) / fb;
            let want = (left as f64 * ratio).ceil() as usize * out_fb;
            self.wait_for_room(shared, want, deadline);
        }
        Ok(done / fb)
    }

    /// Producer mode: the ring carries float32 at the stream rate; follow it when a device
    /// change moved it (what is already queued keeps its rate and the callback adapts it).
    fn follow_stream_rate(&mut self, shared: &Shared, deadline: Instant) -> Result<(), Error> {
        let rate = match shared.service.state.load().stream_rate {
            0 => self.shape.rate,
            r => r,
        };
        let want = InputShape {
            s16: false,
            channels: self.shape.channels,
            rate,
        };
        let key = (self.shape.rate, rate, self.shape.channels);
        if want == self.ring_shape && self.producer.as_ref().is_some_and(|p| p.key == key) {
            return Ok(());
        }
        self.finish_producer(shared, deadline)?;
        if want != self.ring_shape {
            self.push_format(shared, want)?;
        }
        if let Some(pr) = self.producer.as_mut() {
            pr.resampler = Resampler::new(pr.quality, key.0, key.1, key.2);
            pr.key = key;
        }
        Ok(())
    }

    /// Writes the producer resampler's tail into the ring (end of a stream of speech).
    fn finish_producer(&mut self, shared: &Shared, deadline: Instant) -> Result<(), Error> {
        let ch = self.ring_shape.channels;
        let Some(pr) = self.producer.as_mut() else {
            return Ok(());
        };
        if pr.finish(ch) > 0 {
            let out = std::mem::take(&mut pr.bytes);
            let content = shared.counters.frames_written.load(Acquire);
            self.sync(shared, out.len() / self.ring_shape.frame_bytes(), content)?;
            self.put(shared, &out, deadline)?;
        }
        Ok(())
    }

    /// Producer resampling: the next `ring_frames` frames of the ring end at content frame
    /// `content` (see `Cmd::Sync`).
    fn sync(&mut self, shared: &Shared, ring_frames: usize, content: u64) -> Result<(), Error> {
        let at = Self::at(shared) + ring_frames as u64;
        let rate = self.shape.rate;
        self.command(shared, Cmd::Sync { at, content, rate })
    }

    /// Queues ring-format bytes, blocking up to `deadline` for space. Returns bytes queued.
    fn put(&mut self, shared: &Shared, bytes: &[u8], deadline: Instant) -> Result<usize, Error> {
        let fb = self.ring_shape.frame_bytes();
        let epoch = shared.writers.flush_epoch.load(Acquire);
        let mut done = 0;
        loop {
            if shared.closing.load(Acquire) {
                // Checked before queuing anything, under the writer's lock: close() tallies
                // what is left as dropped once that lock is free, so nothing comes after it.
                // What was queued is counted as dropped by close(); the caller learns why.
                return Err(Error::Closed);
            }
            // A flush (barge-in) releases a blocked writer with what it queued: checked before
            // queuing more, so a writer woken by the flush adds nothing after the flush point.
            if shared.writers.flush_epoch.load(Acquire) != epoch {
                break;
            }
            let n = (self.ring.slots() / fb * fb).min(bytes.len() - done);
            if n > 0 {
                // Counted before the commit so that, read played-then-written, played never
                // exceeds written: queued = written - played - flushed - dropped is exact.
                // Where the writer resamples, `write` counts the content frames itself.
                let frames = (n / fb) as u64;
                if self.producer.is_none() && self.speed.stretch.is_none() {
                    shared.counters.frames_written.fetch_add(frames, Release);
                }
                shared
                    .counters
                    .ring_frames_written
                    .fetch_add(frames, Release);
                if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
                    chunk.fill_from_iter(bytes[done..done + n].iter().copied());
                }
                done += n;
                shared.events.wake_if_idle();
                if self.fresh_utterance {
                    // The first audio of an utterance is queued: its events are coming.
                    self.fresh_utterance = false;
                    shared.events.wake.notify();
                }
            }
            if done == bytes.len() {
                break;
            }
            // Output lost for good: a write that queued nothing says so; one that queued
            // some returns that.
            if shared.service.output_lost.load(Acquire) {
                if done == 0 {
                    return Err(Error::NoOutput(
                        "nothing has played for device_lost_timeout_ms (sound server or device gone)"
                            .into(),
                    ));
                }
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            self.wait_for_room(shared, bytes.len() - done, deadline);
        }
        Ok(done)
    }

    /// Waits until about `want` bytes of room should be free in the ring (at most a quarter
    /// of it), or `deadline`, or a flush or close. The callback frees room but cannot signal,
    /// so this sleeps for as long as playing that much takes: one wake per chunk instead of
    /// one every 2 ms (which cost the writing thread 0.75% of a core while streaming).
    fn wait_for_room(&self, shared: &Shared, want: usize, deadline: Instant) {
        let want = want.min(self.ring.buffer().capacity() / 4);
        let missing = want.saturating_sub(self.ring.slots()) / self.ring_shape.frame_bytes();
        let rate = u64::from(self.ring_shape.rate.max(1));
        let t = Duration::from_nanos(missing as u64 * 1_000_000_000 / rate)
            .clamp(POLL, MAX_ROOM_WAIT)
            .min(deadline.saturating_duration_since(Instant::now()));
        shared.writers.room_wake.wait(t);
    }

    pub fn end_utterance(&mut self, shared: &Shared) -> Result<(), Error> {
        if self.in_utterance {
            if self.trim.active {
                // All of it was silence: nothing queued; its markers fire at its end.
                self.trim.drop_held(shared, self.shape);
                self.trim.active = false;
                for (_, id) in std::mem::take(&mut self.trim.marks) {
                    let at = Self::at(shared);
                    self.command(shared, Cmd::Mark { at, id })?;
                }
            }
            self.finish_producer(shared, Instant::now() + Duration::from_secs(1))?;
            self.finish_stretch(shared, Instant::now() + Duration::from_secs(1))?;
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
        if self.trim.active {
            // Placed when the first sound arrives (see `Trim`).
            self.trim.marks.push((self.trim.seen, id));
            return Ok(());
        }
        self.place_mark(shared, id)
    }

    /// A marker at the next content frame: now, or, while the stretch holds input back,
    /// where its output reaches that frame.
    fn place_mark(&mut self, shared: &Shared, id: u64) -> Result<(), Error> {
        if self.speed.stretch.is_some() && self.speed.pushed > self.speed.synced_content {
            let cmd = Cmd::Mark { at: 0, id };
            self.speed.marks.push_back((self.speed.pushed, cmd));
            return Ok(());
        }
        let at = Self::at(shared);
        self.command(shared, Cmd::Mark { at, id })
    }

    fn begin_utterance(&mut self, shared: &Shared) -> Result<(), Error> {
        if !self.in_utterance {
            let at = Self::at(shared);
            self.command(shared, Cmd::UtteranceStart { at })?;
            self.in_utterance = true;
            self.trim.active = self.trim.threshold > 0.0;
            // The service thread may be in its long device-poll sleep, and the callback
            // cannot wake it: events from this utterance must be delivered on time.
            shared.requests.notify();
            self.fresh_utterance = true;
        }
        Ok(())
    }

    /// Gain and pan in band from the next frame written (issue 16). An utterance-scoped
    /// setting opens the utterance (like a marker) so that it belongs to it.
    pub fn gain_pan(
        &mut self,
        shared: &Shared,
        gain: f32,
        pan: f32,
        ramp_ms: u32,
        scope: GainScope,
    ) -> Result<(), Error> {
        let utterance = scope == GainScope::Utterance;
        if utterance {
            self.begin_utterance(shared)?;
        }
        let cmd = Cmd::GainPan {
            at: Self::at(shared),
            gain,
            pan,
            ramp_ms,
            utterance,
        };
        if self.speed.stretch.is_some() && self.speed.pushed > self.speed.synced_content {
            // Held with its content frame, like a marker, so it lands where it was set.
            self.speed.marks.push_back((self.speed.pushed, cmd));
            return Ok(());
        }
        self.command(shared, cmd)
    }

    /// A voice change, in band: what was written before plays in the old format.
    pub fn set_format(&mut self, shared: &Shared, shape: InputShape) -> Result<(), Error> {
        if shape == self.shape {
            return Ok(());
        }
        if self.trim.active {
            // The held silence is in the old format: dropped (see `Trim::drop_held`).
            self.trim.drop_held(shared, self.shape);
        }
        if self.speed.stretch.is_some() {
            // The stretched ring stays float32 at the content rate: the new rate's.
            self.finish_stretch(shared, Instant::now() + Duration::from_secs(1))?;
            self.shape = shape;
            let v = self.speed.value;
            self.speed.stretch = Some(Stretch::new(shape.rate, shape.channels, v));
            return self.push_format(shared, stretched_shape(shape));
        }
        if self.producer.is_some() {
            // The ring stays float32 at the stream rate; only the resampler's input changes.
            self.finish_producer(shared, Instant::now() + Duration::from_secs(1))?;
            self.shape = shape;
            let want = InputShape {
                s16: false,
                channels: shape.channels,
                rate: self.ring_shape.rate,
            };
            if want != self.ring_shape {
                self.push_format(shared, want)?;
            }
            if let Some(pr) = self.producer.as_mut() {
                let key = (shape.rate, self.ring_shape.rate, shape.channels);
                pr.resampler = Resampler::new(pr.quality, key.0, key.1, key.2);
                pr.key = key;
            }
            return Ok(());
        }
        self.push_format(shared, shape)?;
        self.shape = shape;
        Ok(())
    }

    /// Announces, in band, the format of the ring's bytes from here on.
    fn push_format(&mut self, shared: &Shared, shape: InputShape) -> Result<(), Error> {
        // Decode scratch for the new format, allocated here, not on the audio thread.
        let out = shared.service.state.load().stream_rate.max(8000);
        let output = crate::realtime::shape::OutputShape {
            rate: out,
            channels: 1,
        };
        let xin = crate::dsp::prefault::zeroed(scratch_frames(shape, output) * shape.channels);
        let resampler = Box::new(Resampler::new(
            shared.cfg.resample_quality,
            shape.rate,
            out,
            shape.channels,
        ));
        let at = Self::at(shared);
        self.command(
            shared,
            Cmd::Format {
                at,
                shape,
                xin,
                resampler,
                out_rate: out,
                resampled: self.producer.is_some() || self.speed.stretch.is_some(),
            },
        )?;
        self.ring_shape = shape;
        Ok(())
    }

    /// Ends the current utterance on the writing side (a flush cut it) and returns the
    /// position the flush covers.
    pub fn cut(&mut self, shared: &Shared) -> u64 {
        self.in_utterance = false;
        if self.trim.active {
            // Never queued: the held silence is trimmed, its markers flushed.
            self.trim.drop_held(shared, self.shape);
            self.trim.active = false;
            let marks = std::mem::take(&mut self.trim.marks).len() as u64;
            shared.counters.markers_flushed.fetch_add(marks, Relaxed);
        }
        if let Some(pr) = self.producer.as_mut() {
            pr.resampler.reset();
        }
        if let Some(st) = self.speed.stretch.as_mut() {
            // What the stretch held or made and did not queue was never written: dropped.
            st.reset();
            let sp = &mut self.speed;
            let held: Vec<Cmd> = sp.marks.drain(..).map(|(_, c)| c).collect();
            sp.anchors.clear();
            sp.out.clear();
            sp.made = sp.synced;
            sp.out_from = sp.synced;
            sp.synced_content = sp.pushed;
            sp.run_from = sp.pushed;
            // Held markers were in the flushed audio; an until-changed gain or pan outlives
            // it (as the player keeps one asked for during a write), applied at the cut.
            for cmd in held {
                match cmd {
                    Cmd::Mark { .. } => {
                        shared.counters.markers_flushed.fetch_add(1, Relaxed);
                    }
                    Cmd::GainPan {
                        gain,
                        pan,
                        ramp_ms,
                        utterance: false,
                        ..
                    } => {
                        let at = Self::at(shared);
                        let cmd = Cmd::GainPan {
                            at,
                            gain,
                            pan,
                            ramp_ms,
                            utterance: false,
                        };
                        if let Err(e) = self.command(shared, cmd) {
                            log_request_error(shared, &e);
                        }
                    }
                    _ => {}
                }
            }
        }
        Self::at(shared)
    }

    /// Speed in band (issue 16 §1): content written from here on plays at `v`.
    pub fn set_speed(&mut self, shared: &Shared, v: f32) -> Result<(), Error> {
        if v == self.speed.value {
            return Ok(());
        }
        self.speed.value = v;
        if let Some(st) = self.speed.stretch.as_mut() {
            if v != 1.0 {
                st.set_speed(v);
                return Ok(());
            }
            // Back to the bypass: the stretch's tail ends on the last content frame, so the
            // unstretched audio after it continues without a join.
            self.finish_stretch(shared, Instant::now() + Duration::from_secs(1))?;
            self.speed.stretch = None;
            return self.push_format(shared, self.shape);
        }
        if self.producer.is_some() {
            return Err(Error::InvalidArgument(
                "speed needs resample_mode callback (producer resampling is on)".into(),
            ));
        }
        let shape = self.shape;
        let sp = &mut self.speed;
        sp.synced_content = sp.pushed;
        sp.run_from = sp.pushed;
        sp.stretch = Some(Stretch::new(shape.rate, shape.channels, v));
        self.push_format(shared, stretched_shape(shape))
    }

    /// Stretches whole frames of the current format and queues what the stretch makes.
    /// Takes only as much as the ring has room for the output of (one write's output is
    /// never left with nowhere to go). Returns content frames taken.
    fn queue_stretched(
        &mut self,
        shared: &Shared,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<usize, Error> {
        let fb = self.shape.frame_bytes();
        let out_fb = self.ring_shape.frame_bytes();
        let epoch = shared.writers.flush_epoch.load(Acquire);
        let mut done = 0;
        while done < bytes.len() {
            if shared.closing.load(Acquire) {
                return Err(Error::Closed);
            }
            if shared.writers.flush_epoch.load(Acquire) != epoch {
                break;
            }
            if !self.send_stretched(shared, deadline)? {
                break;
            }
            let room = self.ring.slots() / out_fb;
            let v = self.speed.value.max(crate::dsp::stretch::MIN_SPEED) as f64;
            let take =
                ((room.saturating_sub(64) as f64 * v) as usize).min((bytes.len() - done) / fb);
            if take == 0 {
                if Instant::now() >= deadline || shared.service.output_lost.load(Acquire) {
                    break;
                }
                self.wait_for_room(shared, (bytes.len() - done) / fb * out_fb, deadline);
                continue;
            }
            let chunk = &bytes[done..done + take * fb];
            let sp = &mut self.speed;
            sp.decoded.resize(take * self.shape.channels, 0.0);
            crate::dsp::convert::decode_into(self.shape.s16, chunk, &mut sp.decoded);
            let mut st = sp.stretch.take().expect("stretching");
            st.push(&sp.decoded);
            sp.pushed += take as u64;
            sp.take(&mut st, false);
            sp.stretch = Some(st);
            done += take * fb;
        }
        self.send_stretched(shared, deadline)?;
        Ok(done / fb)
    }

    /// Ends a run of the stretch: its tail (ending on the last content frame) into the ring.
    fn finish_stretch(&mut self, shared: &Shared, deadline: Instant) -> Result<(), Error> {
        let sp = &mut self.speed;
        let Some(mut st) = sp.stretch.take() else {
            return Ok(());
        };
        sp.take(&mut st, true);
        sp.stretch = Some(st);
        self.send_stretched(shared, deadline)?;
        Ok(())
    }

    /// Queues the stretch's output made so far, each piece behind a `Sync` naming the
    /// content frame it ends on, split where a held marker's content frame falls (the
    /// marker goes in there). Only what fits in the ring gets a `Sync`, so a flush never
    /// leaves one naming frames that were not written. Returns whether everything went in.
    fn send_stretched(&mut self, shared: &Shared, deadline: Instant) -> Result<bool, Error> {
        let out_fb = self.ring_shape.frame_bytes();
        let ch = self.ring_shape.channels;
        let epoch = shared.writers.flush_epoch.load(Acquire);
        loop {
            while let Some(&(m, _)) = self.speed.marks.front() {
                if m > self.speed.synced_content {
                    break;
                }
                let Some((_, mut cmd)) = self.speed.marks.pop_front() else {
                    break;
                };
                let now = Self::at(shared);
                if let Cmd::Mark { at, .. } | Cmd::GainPan { at, .. } = &mut cmd {
                    *at = now;
                }
                self.command(shared, cmd)?;
            }
            let sp = &mut self.speed;
            while sp.anchors.front().is_some_and(|a| a.0 <= sp.synced) {
                sp.anchors.pop_front();
            }
            let Some(&(ao, ac)) = sp.anchors.front() else {
                return Ok(true);
            };
            let (so, sc) = (sp.synced, sp.synced_content);
            // The piece ends at this anchor, or at the next marker's frame before it.
            let (mut to, mut tc) = (ao, ac);
            if let Some(&(m, _)) = sp.marks.front() {
                if m < ac {
                    to = so + ((m - sc) * (ao - so)).div_ceil((ac - sc).max(1));
                    tc = m;
                }
            }
            let room = (self.ring.slots() / out_fb) as u64;
            if room == 0 {
                if Instant::now() >= deadline
                    || shared.closing.load(Acquire)
                    || shared.service.output_lost.load(Acquire)
                    || shared.writers.flush_epoch.load(Acquire) != epoch
                {
                    return Ok(false);
                }
                self.wait_for_room(shared, (to - so) as usize * out_fb, deadline);
                continue;
            }
            let n = (to - so).min(room);
            let c = if n == to - so {
                tc
            } else {
                sc + (tc - sc) * n / (to - so)
            };
            let written = shared.counters.frames_written.load(Acquire);
            self.sync(shared, n as usize, written + (c - sc))?;
            shared.counters.frames_written.fetch_add(c - sc, Release);
            let sp = &mut self.speed;
            let from = (so - sp.out_from) as usize * ch;
            let mut bytes = std::mem::take(&mut sp.bytes);
            bytes.clear();
            let piece = &sp.out[from..from + n as usize * ch];
            if self.ring_shape.s16 {
                bytes.extend(piece.iter().flat_map(|v| {
                    ((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_ne_bytes()
                }));
            } else {
                bytes.extend(piece.iter().flat_map(|v| v.to_ne_bytes()));
            }
            sp.synced = so + n;
            sp.synced_content = c;
            // Fits: the room was there, and only this thread writes the ring.
            self.put(shared, &bytes, deadline)?;
            let sp = &mut self.speed;
            sp.bytes = bytes;
            // Queued output leaves the buffer once it is a step's worth.
            let gone = (sp.synced - sp.out_from) as usize;
            if gone * ch >= 4096 || sp.synced == sp.made {
                sp.out.drain(..gone * ch);
                sp.out_from = sp.synced;
            }
        }
    }
}
