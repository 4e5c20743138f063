use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

#[cfg(not(target_has_atomic = "64"))]
use portable_atomic::AtomicU64;
#[cfg(target_has_atomic = "64")]
use std::sync::atomic::AtomicU64;

use futures::FutureExt as _;
use pulseaudio::{protocol, PlaybackSource};

use super::{block_on_timeout, block_on_until};
use crate::{
    host::{emit_error, latch::Latch, ErrorCallbackArc},
    traits::StreamTrait,
    Data, Error, ErrorKind, FrameCount, InputCallbackInfo, InputStreamTimestamp,
    OutputCallbackInfo, OutputStreamTimestamp, SampleFormat, StreamInstant,
};

const LATENCY_MAX_INTERVAL: Duration = Duration::from_millis(100);
/// audioplay patch: the timing poll interval while a playback stream waits to start playing.
const LATENCY_START_INTERVAL: Duration = Duration::from_millis(5);

// Coordinates the latency polling thread
struct LatencyHandle {
    // Cancellation on drop
    cancel: Arc<AtomicBool>,
    // Event-driven early wakeup from callbacks and play/pause
    update: Arc<(Mutex<bool>, Condvar)>,
    // audioplay patch: the stream is corked (created so, or paused): nothing changes at the
    // server, so the timing thread sleeps until play/pause/drop instead of polling 10 times a
    // second (an idle, suspended player must cost no wakeups; issue 14 §5).
    corked: Arc<AtomicBool>,
}

impl LatencyHandle {
    fn new() -> Self {
        Self {
            cancel: Arc::new(AtomicBool::new(false)),
            update: Arc::new((Mutex::new(false), Condvar::new())),
            corked: Arc::new(AtomicBool::new(true)),
        }
    }

    // Trigger an early poll
    fn notify(&self) {
        let (lock, cvar) = &*self.update;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_one();
    }

    // Signal cancellation and wake the thread immediately
    fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.notify();
    }
}

enum StreamInner {
    Playback(pulseaudio::PlaybackStream, Instant, LatencyHandle),
    Record(pulseaudio::RecordStream, Instant, LatencyHandle),
}

pub struct Stream {
    inner: StreamInner,
    workers: Vec<std::thread::JoinHandle<()>>,
    latch: Latch,
    /// audioplay patch: whether `rewriter` offers a rewrite (the host decides).
    rewritable: bool,
}

impl Drop for Stream {
    fn drop(&mut self) {
        match &mut self.inner {
            StreamInner::Playback(stream, _, handle) => {
                handle.cancel();
                // Help the play_all driver thread terminate by
                // queueing a delete, which causes the reactor to drop
                // the source's eof_tx. We need to do this because
                // poll_read always reports a non-empty buffer.
                let _ = stream.clone().delete().now_or_never();
            }
            StreamInner::Record(_, _, handle) => {
                handle.cancel();
            }
        }

        // Unpark the threads in case they're sleeping.
        self.signal_ready();

        for handle in self.workers.drain(..) {
            // Prevent self-join: a worker thread may surface an error
            // through the user's error_callback, and that callback may
            // drop the Stream — in which case we'd be joining ourselves.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl StreamTrait for Stream {
    fn play(&self) -> Result<(), Error> {
        match &self.inner {
            StreamInner::Playback(stream, _, handle) => {
                block_on_timeout(stream.uncork())?;
                handle.corked.store(false, Ordering::Relaxed);
                handle.notify();
            }
            StreamInner::Record(stream, _, handle) => {
                block_on_timeout(stream.uncork())?;
                block_on_timeout(stream.started())?;
                handle.notify();
            }
        }
        Ok(())
    }

    fn pause(&self) -> Result<(), Error> {
        match &self.inner {
            StreamInner::Playback(stream, _, _) => block_on_timeout(stream.cork())?,
            StreamInner::Record(stream, _, _) => block_on_timeout(stream.cork())?,
        };
        match &self.inner {
            StreamInner::Playback(_, _, handle) | StreamInner::Record(_, _, handle) => {
                handle.corked.store(true, Ordering::Relaxed);
                handle.notify()
            }
        }
        Ok(())
    }

    fn now(&self) -> StreamInstant {
        let start = match &self.inner {
            StreamInner::Playback(_, start, _) | StreamInner::Record(_, start, _) => *start,
        };
        let elapsed = start.elapsed();
        StreamInstant::new(elapsed.as_secs(), elapsed.subsec_nanos())
    }

    fn buffer_size(&self) -> Result<FrameCount, Error> {
        let (spec, bytes) = match &self.inner {
            StreamInner::Playback(s, _, _) => (
                s.sample_spec(),
                s.buffer_attr().minimum_request_length as usize,
            ),
            StreamInner::Record(s, _, _) => {
                (s.sample_spec(), s.buffer_attr().fragment_size as usize)
            }
        };
        let frame_size = spec.channels as usize * spec.format.bytes_per_sample();
        Ok((bytes / frame_size) as _)
    }
}

impl Stream {
    pub fn new_playback<D, E>(
        client: pulseaudio::Client,
        params: protocol::PlaybackStreamParams,
        data_callback: D,
        error_callback: E,
        create_timeout: Duration,
    ) -> Result<Self, Error>
    where
        D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        let start = Instant::now();

        // audioplay patch: the callback works out the latency itself from the stream's write
        // index (bytes it has handed over) and the server's read index at the last poll, so
        // the server is polled every LATENCY_MAX_INTERVAL instead of after every callback
        // (which cost two round trips' worth of wakeups per period and a mutex + condvar
        // notify on the audio thread).
        let timing = Arc::new(PlaybackTiming::default());
        let timing_cb = timing.clone();
        let sample_spec = params.sample_spec;
        let pa_format = sample_spec.format;

        let format: SampleFormat = pa_format.try_into().map_err(|_| {
            Error::with_message(
                ErrorKind::UnsupportedConfig,
                "Sample format is not supported",
            )
        })?;

        // Silence for unsigned formats is the midpoint, not zero. Among
        // PulseAudio's supported formats, only U8 is unsigned and has a
        // single-byte repeatable silence representation (0x80). Multi-byte
        // unsigned formats (U16, U32, ...) are not currently supported.
        let silence_byte = if format == SampleFormat::U8 {
            0x80u8
        } else {
            0u8
        };

        let handle = LatencyHandle::new();

        // audioplay patch: the write callback is a source that also keeps the last bytes it
        // handed over, so it can rewrite them (`Playback::rewrite`).
        let callback = Playback {
            data_callback,
            timing: timing_cb,
            sample_spec,
            format,
            silence_byte,
            start,
            recent: vec![silence_byte; RECENT_BYTES].into_boxed_slice(),
            recent_head: 0,
            floor: 0,
        };

        let stream = block_on_until(
            client.create_playback_stream(params, callback),
            Some(create_timeout),
            || false,
        )
        .ok_or_else(stream_creation_timed_out)?
        .map_err(Error::from)?;

        // Share the error callback between the worker and latency threads so
        // both can surface errors to the user.
        let error_callback: ErrorCallbackArc = Arc::new(Mutex::new(error_callback));

        // Spawn a thread to drive the stream future. It will exit automatically
        // when the stream is stopped by the user.
        let stream_clone = stream.clone();
        let error_callback_clone = error_callback.clone();
        let cancel_driver = handle.cancel.clone();

        // The latch is released just before the `Stream` is returned so the driver and latency
        // threads cannot fire any callbacks before the caller has the handle.
        let mut latch = Latch::new();
        let waiter_driver = latch.waiter();

        let driver_handle = std::thread::spawn(move || {
            waiter_driver.wait();
            // audioplay patch: once the stream is dropped (cancelled, then unparked by the
            // latch), wait for the server to confirm the delete (after which the reactor never
            // calls the data callback again) for at most ROUNDTRIP_TIMEOUT: a frozen server
            // held the drop's join for the whole freeze.
            let mut play_all = std::pin::pin!(stream_clone.play_all());
            let played =
                block_on_until(play_all.as_mut(), None, || cancel_driver.load(Ordering::Relaxed))
                    .or_else(|| {
                        block_on_until(play_all.as_mut(), Some(super::ROUNDTRIP_TIMEOUT), || false)
                    });
            if let Some(Err(e)) = played {
                // A server playback error is expected when the client
                // closes their stream. No need to report it back to
                // the client.
                if !cancel_driver.load(Ordering::Relaxed) {
                    emit_error(&error_callback_clone, Error::from(e));
                }
            }
        });

        let cancel_thread = handle.cancel.clone();
        let update_thread = handle.update.clone();
        let corked_thread = handle.corked.clone();
        let stream_clone = stream.clone();

        let waiter_latency = latch.waiter();
        let latency_handle = std::thread::spawn(move || {
            waiter_latency.wait();
            let mut not_playing_since: Option<Instant> = None;
            let mut underflows_seen = 0;
            loop {
                if cancel_thread.load(Ordering::Relaxed) {
                    break;
                }

                // audioplay patch: the server's UNDERFLOW notifications (it played silence for
                // want of data), counted by the client's reactor, reach the error callback
                // here, one `Xrun` error each, off the audio thread.
                let underflows = stream_clone.underflows();
                while underflows_seen < underflows {
                    underflows_seen += 1;
                    emit_error(
                        &error_callback,
                        Error::with_message(
                            ErrorKind::Xrun,
                            "PulseAudio server underflow: it played silence for want of data",
                        ),
                    );
                }

                // audioplay patch: a poll the server does not answer in time is skipped (a
                // frozen server is not a lost stream); a drop cancels it at once.
                let timing_info = match block_on_until(
                    stream_clone.timing_info(),
                    Some(super::ROUNDTRIP_TIMEOUT),
                    || cancel_thread.load(Ordering::Relaxed),
                ) {
                    Some(Ok(timing_info)) => timing_info,
                    Some(Err(e)) => {
                        emit_error(&error_callback, Error::from(e));
                        break;
                    }
                    None => continue,
                };

                let poll_since_epoch =
                    poll_sampled_at(timing_info.local_time, timing_info.remote_time, start);
                timing.store_poll(
                    poll_since_epoch,
                    timing_info.sink_usec,
                    timing_info.read_offset,
                    timing_info.playing,
                );

                // audioplay patch: while the stream is not playing yet (prebuffering after a
                // start, an underrun or an uncork), the callback cannot tell when the server
                // starts reading: poll often until it does, for up to a second (a corked
                // stream stays not playing; it is then polled slowly).
                let now = Instant::now();
                let wait = if timing_info.playing {
                    not_playing_since = None;
                    LATENCY_MAX_INTERVAL
                } else if now.duration_since(*not_playing_since.get_or_insert(now))
                    < Duration::from_secs(1)
                {
                    LATENCY_START_INTERVAL
                } else {
                    LATENCY_MAX_INTERVAL
                };

                // Wait until woken by a play/pause/drop event or until `wait`; corked, only
                // by the event (audioplay patch).
                let (lock, cvar) = &*update_thread;
                let Ok(guard) = lock.lock() else { break };
                let mut guard = if corked_thread.load(Ordering::Relaxed) {
                    cvar.wait_while(guard, |notified| !*notified)
                        .unwrap_or_else(|e| e.into_inner())
                } else {
                    cvar.wait_timeout_while(guard, wait, |notified| !*notified)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                };
                if *guard {
                    // play() or pause(): a new not-playing spell may start.
                    not_playing_since = None;
                }
                *guard = false;
            }
        });

        latch.add_thread(driver_handle.thread().clone());
        latch.add_thread(latency_handle.thread().clone());
        Ok(Self {
            inner: StreamInner::Playback(stream, start, handle),
            workers: vec![driver_handle, latency_handle],
            latch,
            rewritable: false,
        })
    }

    pub fn new_record<D, E>(
        client: pulseaudio::Client,
        params: protocol::RecordStreamParams,
        mut data_callback: D,
        mut error_callback: E,
        create_timeout: Duration,
    ) -> Result<Self, Error>
    where
        D: FnMut(&Data, &InputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        let start = Instant::now();

        let current_latency_micros = Arc::new(AtomicU64::new(0));
        // Microseconds since stream creation at the time of the last latency poll, used
        // to interpolate the latency between polls.
        let last_poll_micros = Arc::new(AtomicU64::new(0));
        let latency_clone = current_latency_micros.clone();
        let poll_clone = last_poll_micros.clone();
        let sample_spec = params.sample_spec;
        let pa_format = sample_spec.format;

        let format: SampleFormat = pa_format.try_into().map_err(|_| {
            Error::with_message(
                ErrorKind::UnsupportedConfig,
                "Sample format is not supported",
            )
        })?;

        let handle = LatencyHandle::new();
        let update_callback = handle.update.clone();

        let callback = move |buf: &[u8]| {
            let elapsed = Instant::now().saturating_duration_since(start);
            let elapsed_usec = elapsed.as_micros() as u64;

            // Interpolate the latency based on elapsed time since the last poll: as audio records,
            // the ADC fills the buffer at a constant rate, so the latency increases linearly
            // between polls.
            let stored_latency = latency_clone.load(Ordering::Relaxed);
            let poll_usec = poll_clone.load(Ordering::Relaxed);
            // Cap to LATENCY_MAX_INTERVAL: the linear-fill assumption is only valid for that
            // window, and a stale poll_usec (e.g. after cork/uncork where timing_info blocks)
            // would otherwise keep inflating the interpolated latency up to the cap.
            let elapsed_since_poll = elapsed_usec
                .saturating_sub(poll_usec)
                .min(LATENCY_MAX_INTERVAL.as_micros() as u64);
            let latency = stored_latency.saturating_add(elapsed_since_poll);

            let capture_time = elapsed
                .checked_sub(Duration::from_micros(latency))
                .unwrap_or_default();

            let timestamp = InputStreamTimestamp {
                callback: StreamInstant::new(elapsed.as_secs(), elapsed.subsec_nanos()),
                capture: StreamInstant::new(capture_time.as_secs(), capture_time.subsec_nanos()),
            };

            let bps = sample_spec.format.bytes_per_sample();
            let n_samples = buf.len() / bps;

            // SAFETY: we calculated the number of samples based on
            // `sample_spec.format`, and `format` is directly derived from (and
            // equivalent to) `sample_spec.format`. The pointer is cast from
            // *const to *mut, but cpal's Data type for input streams only
            // exposes shared references (&[T]), so no mutation occurs.
            let data = unsafe { Data::from_parts(buf.as_ptr() as *mut _, n_samples, format) };

            data_callback(&data, &InputCallbackInfo { timestamp });

            // Notify the latency thread that audio was read, so it updates timing info.
            let (lock, cvar) = &*update_callback;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cvar.notify_one();
        };

        let stream = block_on_until(
            client.create_record_stream(params, callback),
            Some(create_timeout),
            || false,
        )
        .ok_or_else(stream_creation_timed_out)?
        .map_err(Error::from)?;

        // Spawn a thread to monitor the stream's latency in a loop.
        let cancel_thread = handle.cancel.clone();
        let update_thread = handle.update.clone();
        let stream_clone = stream.clone();
        let latency_clone = current_latency_micros.clone();
        let poll_clone = last_poll_micros.clone();

        // The latch is released just before the `Stream` is returned so the latency thread cannot
        // fire any callbacks before the caller has the handle.
        let mut latch = Latch::new();
        let waiter_latency = latch.waiter();

        let latency_handle = std::thread::spawn(move || {
            waiter_latency.wait();
            loop {
                if cancel_thread.load(Ordering::Relaxed) {
                    break;
                }

                // audioplay patch: bounded and cancellable, as for playback.
                let timing_info = match block_on_until(
                    stream_clone.timing_info(),
                    Some(super::ROUNDTRIP_TIMEOUT),
                    || cancel_thread.load(Ordering::Relaxed),
                ) {
                    Some(Ok(timing_info)) => timing_info,
                    Some(Err(e)) => {
                        error_callback(Error::from(e));
                        break;
                    }
                    None => continue,
                };

                let poll_since_epoch =
                    poll_sampled_at(timing_info.local_time, timing_info.remote_time, start);
                poll_clone.store(poll_since_epoch, Ordering::Relaxed);

                store_latency(
                    &latency_clone,
                    sample_spec,
                    timing_info.source_usec,
                    timing_info.write_offset,
                    timing_info.read_offset,
                );

                // Wait until woken by a read/play/pause/drop event or until LATENCY_MAX_INTERVAL.
                let (lock, cvar) = &*update_thread;
                let Ok(guard) = lock.lock() else { break };
                let (mut guard, _) = cvar
                    .wait_timeout_while(guard, LATENCY_MAX_INTERVAL, |notified| !*notified)
                    .unwrap_or_else(|e| e.into_inner());
                *guard = false;
            }
        });

        latch.add_thread(latency_handle.thread().clone());
        Ok(Self {
            inner: StreamInner::Record(stream, start, handle),
            workers: vec![latency_handle],
            latch,
            rewritable: false,
        })
    }

    /// audioplay patch: for a playback stream, the handle that asks for a rewrite of what
    /// the server holds (`Playback::rewrite`); None for a record stream.
    pub fn rewriter(&self) -> Option<pulseaudio::RewriteRequester> {
        match &self.inner {
            StreamInner::Playback(stream, _, _) if self.rewritable => {
                Some(stream.rewrite_requester())
            }
            _ => None,
        }
    }

    /// audioplay patch: for a playback stream, where the server has moved it (see
    /// `pulseaudio::StreamRoute`); None for a record stream.
    pub fn route(&self) -> Option<std::sync::Arc<pulseaudio::StreamRoute>> {
        match &self.inner {
            StreamInner::Playback(stream, _, _) => Some(stream.route()),
            _ => None,
        }
    }

    /// audioplay patch: whether `rewriter` offers a rewrite (the host decides, after
    /// creation).
    pub(crate) fn set_rewritable(&mut self, yes: bool) {
        self.rewritable = yes;
    }

    /// Releases the latch so the worker thread can begin processing audio callbacks.
    pub(crate) fn signal_ready(&self) {
        self.latch.release();
    }
}

/// audioplay patch: what stream creation reports when the server did not answer in time.
fn stream_creation_timed_out() -> Error {
    Error::with_message(ErrorKind::DeviceNotAvailable, "Stream creation timed out")
}

/// audioplay patch: a playback stream's timing, written by the latency thread at each poll
/// and by the callback as it hands over audio; read by the callback.
#[derive(Default)]
struct PlaybackTiming {
    /// Bytes the callback has handed to the server: the stream's write index.
    written: AtomicU64,
    /// At the last poll: when it was answered (us since the stream started), the server's
    /// read index, the device latency (us) and whether the stream was playing.
    poll_usec: AtomicU64,
    read_offset: AtomicU64,
    sink_usec: AtomicU64,
    playing: AtomicBool,
}

impl PlaybackTiming {
    fn store_poll(&self, poll_usec: u64, sink_usec: u64, read_offset: i64, playing: bool) {
        self.read_offset
            .store(read_offset.max(0) as u64, Ordering::Relaxed);
        self.sink_usec.store(sink_usec, Ordering::Relaxed);
        self.playing.store(playing, Ordering::Relaxed);
        self.poll_usec.store(poll_usec, Ordering::Release);
    }

    /// How long until the next byte written is played: what is queued at the server (written
    /// minus read, the read index advancing in real time since the poll while the stream
    /// plays) plus the device latency.
    fn latency(&self, spec: protocol::SampleSpec, elapsed: Duration) -> Duration {
        let poll_usec = self.poll_usec.load(Ordering::Acquire);
        let since = (elapsed.as_micros() as u64)
            .saturating_sub(poll_usec)
            .min(LATENCY_MAX_INTERVAL.as_micros() as u64 * 4);
        let frame = (spec.format.bytes_per_sample() * spec.channels as usize) as u64;
        let drained = if self.playing.load(Ordering::Relaxed) {
            since * spec.sample_rate as u64 / 1_000_000 * frame
        } else {
            0
        };
        let read = self.read_offset.load(Ordering::Relaxed) + drained;
        let queued = self.written.load(Ordering::Relaxed).saturating_sub(read);
        Duration::from_micros(self.sink_usec.load(Ordering::Relaxed))
            + spec.bytes_to_duration(queued as usize)
    }
}

/// audioplay patch: when the server sampled a timing reply's read index, in microseconds
/// since `start`, by libpulse's rule: the server's own timestamp when its clock agrees with
/// ours (`local <= remote <= now`, one machine), else the midpoint of the round trip. Taking
/// the reply's arrival instead made the read index seem sampled later than it was by however
/// long this thread took to run after the reply: under load the estimate of what the server
/// had mixed then lagged by more than a rewrite's margin, and a flush's fade started on
/// frames already heard (heard over 4.5 ms instead of 7-8, a loaded CI run).
fn poll_sampled_at(local: SystemTime, remote: SystemTime, start: Instant) -> u64 {
    let wall = SystemTime::now();
    let elapsed = Instant::now().saturating_duration_since(start);
    let age = if local <= remote && remote <= wall {
        wall.duration_since(remote).unwrap_or_default()
    } else {
        wall.duration_since(local).unwrap_or_default() / 2
    };
    elapsed.saturating_sub(age).as_micros() as u64
}

fn store_latency(
    latency_micros: &AtomicU64,
    sample_spec: protocol::SampleSpec,
    device_latency_usec: u64,
    write_offset: i64,
    read_offset: i64,
) {
    let offset = (write_offset - read_offset).max(0) as u64;

    let latency =
        Duration::from_micros(device_latency_usec) + sample_spec.bytes_to_duration(offset as usize);

    latency_micros.store(
        latency.as_micros().try_into().unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// audioplay patch: how much of what a playback stream handed over it keeps, the most a
/// rewrite can replace (170 ms of 48 kHz stereo f32; the client's own limit).
const RECENT_BYTES: usize = 64 * 1024;

/// audioplay patch: from the frame playing now, how far back a rewrite starts: those bytes
/// go back unchanged, so an estimate of the playing frame that is late by up to this much
/// still joins the rewrite to what was heard without a seam.
const REWRITE_HOLD: Duration = Duration::from_millis(2);

/// audioplay patch: the data callback as the client's playback source: `poll_read` is
/// upstream's callback wrapper; it also keeps the last `RECENT_BYTES` handed over, which
/// `rewrite` gives back to the data callback to be replaced where the server holds them.
struct Playback<D> {
    data_callback: D,
    timing: Arc<PlaybackTiming>,
    sample_spec: protocol::SampleSpec,
    format: SampleFormat,
    silence_byte: u8,
    start: Instant,
    /// A ring of the last bytes handed over, ending at `recent_head`.
    recent: Box<[u8]>,
    recent_head: usize,
    /// The latest playback instant a fill reported (upstream's `monotonic_output_callback`).
    floor: u64,
}

impl<D> Playback<D>
where
    D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
{
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        let latency = self.timing.latency(self.sample_spec, elapsed);

        let playback_time = elapsed + latency;

        let playback = StreamInstant::new(playback_time.as_secs(), playback_time.subsec_nanos());
        let timestamp = OutputStreamTimestamp {
            callback: StreamInstant::new(elapsed.as_secs(), elapsed.subsec_nanos()),
            playback: crate::host::non_decreasing(&mut self.floor, playback),
        };

        // Preemptively fill the buffer with silence in case the user
        // callback doesn't fill it completely (cpal's API doesn't allow
        // short writes).
        buf.fill(self.silence_byte);
        self.call(buf, timestamp);

        // The reactor writes the whole buffer (it was sized to the request).
        self.timing
            .written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.keep(buf);

        // We always consider the full buffer filled, because cpal's
        // user-facing API doesn't allow short writes.
        buf.len()
    }

    fn call(&mut self, buf: &mut [u8], timestamp: OutputStreamTimestamp) {
        let n_samples = buf.len() / self.sample_spec.format.bytes_per_sample();
        // SAFETY: we calculated the number of samples based on
        // `sample_spec.format`, and `format` is directly derived from (and
        // equivalent to) `sample_spec.format`.
        let mut data =
            unsafe { Data::from_parts(buf.as_mut_ptr().cast(), n_samples, self.format) };
        (self.data_callback)(&mut data, &OutputCallbackInfo { timestamp });
    }

    /// Copies `buf` over the kept bytes from `back` bytes before the head on.
    fn keep_at(&mut self, buf: &[u8], back: usize) {
        let cap = self.recent.len();
        let buf = &buf[buf.len().saturating_sub(cap)..];
        let at = (self.recent_head + cap - back.min(cap)) % cap;
        let first = buf.len().min(cap - at);
        self.recent[at..at + first].copy_from_slice(&buf[..first]);
        self.recent[..buf.len() - first].copy_from_slice(&buf[first..]);
    }

    fn keep(&mut self, buf: &[u8]) {
        let cap = self.recent.len();
        let n = buf.len().min(cap);
        self.recent_head = (self.recent_head + n) % cap;
        self.keep_at(&buf[buf.len() - n..], n);
    }

    /// Gives the data callback back what was handed over from `REWRITE_HOLD` before the
    /// frame playing now to the end, in the buffer as it was written, with a playback
    /// instant *earlier* than the callback instant (which a fill never has): what the
    /// callback leaves there replaces those bytes at the server. 0 (nothing rewritten) if
    /// that span is not all kept or the stream has not played that long.
    fn rewrite(&mut self, buf: &mut [u8]) -> usize {
        let spec = self.sample_spec;
        let frame = spec.format.bytes_per_sample() * spec.channels as usize;
        let elapsed = Instant::now().saturating_duration_since(self.start);
        // Only what the server still queues for the stream can be replaced: what its sink has
        // already mixed (the device latency) plays as it is on a sink that cannot rewind
        // (pipe and Bluetooth sinks; a fade started there was heard from its middle: a cut,
        // 0.9 to 0.1 in 2-4 ms). So the span given back starts `REWRITE_HOLD` before the
        // server's read index, reported as if it were the frame playing now: the fade then
        // always starts on bytes the server has not mixed, at the cost of the device latency
        // still playing before it on sinks that could have rewound.
        let latency = self.timing.latency(spec, elapsed);
        let sink = Duration::from_micros(self.timing.sink_usec.load(Ordering::Relaxed));
        let back = latency.saturating_sub(sink) + REWRITE_HOLD;
        let n = (back.as_micros() as u64 * spec.sample_rate as u64 / 1_000_000) as usize * frame;
        let written = self.timing.written.load(Ordering::Relaxed) as usize;
        if frame == 0 || n == 0 || n > written || n > buf.len() || n > self.recent.len() {
            return 0;
        }
        let Some(first_played) = elapsed.checked_sub(REWRITE_HOLD) else {
            return 0;
        };
        let buf = &mut buf[..n];
        let cap = self.recent.len();
        let from = (self.recent_head + cap - n) % cap;
        let first = n.min(cap - from);
        buf[..first].copy_from_slice(&self.recent[from..from + first]);
        buf[first..].copy_from_slice(&self.recent[..n - first]);
        let timestamp = OutputStreamTimestamp {
            callback: StreamInstant::new(elapsed.as_secs(), elapsed.subsec_nanos()),
            playback: StreamInstant::new(first_played.as_secs(), first_played.subsec_nanos()),
        };
        self.call(buf, timestamp);
        self.keep_at(buf, n);
        n
    }
}

impl<D> PlaybackSource for Playback<D>
where
    D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
{
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut futures::task::Context<'_>,
        buf: &mut [u8],
    ) -> futures::task::Poll<usize> {
        // SAFETY: nothing is moved out of the pinned value (as upstream's wrapper).
        futures::task::Poll::Ready(unsafe { self.get_unchecked_mut() }.fill(buf))
    }

    fn rewrite(self: std::pin::Pin<&mut Self>, buf: &mut [u8]) -> usize {
        // SAFETY: as above.
        unsafe { self.get_unchecked_mut() }.rewrite(buf)
    }
}
