//! The audio callback (SPEC C1-C3, D1-D4, U1).
//!
//! One [`RenderCore`] per player holds the ring consumer, the resampler and preallocated
//! scratch. It outlives device streams: every stream generation's callback renders from the
//! same core, so queued audio carries over a recreate. A callback may touch the core only
//! while it holds the `token` (a try-lock that never blocks: a loser outputs silence) *and*
//! its captured generation is the current one, so two callbacks of different generations can
//! never pop the ring at the same time.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::convert;
use crate::metrics::Counters;
use crate::resample::LinearResampler;

/// Output frames rendered per inner step. Devices asking for more are served in several
/// steps, never with silence (the scratch is sized for this, not for the device's request).
pub const CHUNK_FRAMES: usize = 1024;

/// What the render path needs to know about the stream it feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputShape {
    pub rate: u32,
    pub channels: usize,
}

/// Content description: the format of the bytes in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    pub s16: bool,
    pub channels: usize,
    pub rate: u32,
}

impl InputShape {
    pub fn frame_bytes(&self) -> usize {
        self.channels * if self.s16 { 2 } else { 4 }
    }
}

/// The last content consumed, kept so audio a vanished device never played can be played
/// again on the next one. A window onto the content stream: replay moves a cursor back into
/// it; new frames are appended only when the cursor is at the head.
struct History {
    buf: Vec<u8>,
    head: usize,
    len: usize,
    /// Bytes behind the head still to be replayed.
    replay: usize,
}

impl History {
    fn append(&mut self, mut a: &[u8], mut b: &[u8]) {
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
            let first = part.len().min(cap - self.head);
            self.buf[self.head..self.head + first].copy_from_slice(&part[..first]);
            self.buf[..part.len() - first].copy_from_slice(&part[first..]);
            self.head = (self.head + part.len()) % cap;
            self.len = (self.len + part.len()).min(cap);
        }
    }

    /// The bytes to replay next, as up to two slices, at most `max` bytes.
    fn replay_slices(&self, max: usize) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        let n = self.replay.min(max);
        let start = (self.head + cap - self.replay) % cap;
        let first = n.min(cap - start);
        (&self.buf[start..start + first], &self.buf[..n - first])
    }
}

struct RenderState {
    consumer: rtrb::Consumer<u8>,
    history: History,
    input: InputShape,
    output: OutputShape,
    resampler: LinearResampler,
    /// Decoded input frames (input channels).
    xin: Vec<f32>,
    /// Resampled frames (input channels).
    yres: Vec<f32>,
    /// Channel-mapped frames (output channels).
    ymap: Vec<f32>,
    /// A callback has been producing audio and has not run dry since.
    playing: bool,
    /// Generation whose shape `configure` last applied; an abandoned (timed-out) recreate
    /// finishing late must not overwrite a newer one's shape.
    configured_for: u64,
}

pub struct RenderCore {
    token: AtomicBool,
    state: UnsafeCell<RenderState>,
    /// C1: the generation whose callbacks may render. A plain atomic mirror of the
    /// arc-swap-published stream state, so the callback never touches arc-swap's per-thread
    /// debt list (its first use on a new thread allocates).
    current_generation: AtomicU64,
    /// Set by drain: the ring running dry now is the end of speech, not an underrun.
    draining: AtomicBool,
    pub counters: Arc<Counters>,
    /// Wall-clock origin for the timing atomics below.
    epoch: Instant,
    /// The latest callback that rendered audio: when it ran (ns since `epoch`), the device
    /// latency it was given, and how long its buffer plays. Enough to tell, when a stream is
    /// stopped, how much of what it was handed had not been heard yet.
    last_audio_cb_ns: AtomicU64,
    last_audio_latency_ns: AtomicU64,
    last_audio_len_ns: AtomicU64,
    /// Set at a route change; the first callback that renders audio afterwards records when
    /// that audio reaches the listener (`first_audio_ns`, ns since `epoch`).
    await_first_audio: AtomicBool,
    first_audio_ns: AtomicU64,
}

// SAFETY: `state` is only accessed by whoever holds `token` (acquire/release pairs), which
// serialises all access across threads; every other field is atomic or Sync.
unsafe impl Sync for RenderCore {}
// SAFETY: all fields are Send; the UnsafeCell content is moved, not shared, when sent.
unsafe impl Send for RenderCore {}

/// Exclusive access to the render state, released on drop.
struct TokenGuard<'a> {
    core: &'a RenderCore,
}

impl Drop for TokenGuard<'_> {
    fn drop(&mut self) {
        self.core.token.store(false, Ordering::Release);
    }
}

impl TokenGuard<'_> {
    fn state(&mut self) -> &mut RenderState {
        // SAFETY: a TokenGuard exists only while `token` is held by this thread, so no other
        // reference to the state exists; `&mut self` prevents aliasing through this guard.
        unsafe { &mut *self.core.state.get() }
    }
}

fn scratch_frames(input: InputShape, output: OutputShape) -> usize {
    let in_per_out = (input.rate as usize).div_ceil(output.rate.max(1) as usize);
    CHUNK_FRAMES * in_per_out.max(1) + in_per_out + 4
}

impl RenderCore {
    /// `history_frames`: how much consumed content is kept for replay after a device loss.
    pub fn new(
        consumer: rtrb::Consumer<u8>,
        input: InputShape,
        output: OutputShape,
        counters: Arc<Counters>,
        history_frames: usize,
    ) -> Self {
        let n_in = scratch_frames(input, output);
        RenderCore {
            token: AtomicBool::new(false),
            state: UnsafeCell::new(RenderState {
                consumer,
                history: History {
                    buf: vec![0; history_frames * input.frame_bytes()],
                    head: 0,
                    len: 0,
                    replay: 0,
                },
                input,
                output,
                resampler: LinearResampler::new(input.rate, output.rate, input.channels),
                xin: vec![0.0; n_in * input.channels],
                yres: vec![0.0; CHUNK_FRAMES * input.channels],
                ymap: vec![0.0; CHUNK_FRAMES * output.channels],
                playing: false,
                configured_for: 0,
            }),
            current_generation: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            counters,
            epoch: Instant::now(),
            last_audio_cb_ns: AtomicU64::new(0),
            last_audio_latency_ns: AtomicU64::new(0),
            last_audio_len_ns: AtomicU64::new(0),
            await_first_audio: AtomicBool::new(false),
            first_audio_ns: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since this core's epoch (the clock the timing atomics use).
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// How long the audio handed to the device by the last rendering callback goes on
    /// playing after `at_ns`: what a stream stopped at `at_ns` never played.
    pub fn unheard_ns(&self, at_ns: u64) -> u64 {
        let cb = self.last_audio_cb_ns.load(Ordering::Acquire);
        if cb == 0 {
            return 0;
        }
        let end = cb
            + self.last_audio_latency_ns.load(Ordering::Relaxed)
            + self.last_audio_len_ns.load(Ordering::Relaxed);
        end.saturating_sub(at_ns)
    }

    /// Arms the route-change clock: the next callback that renders audio records when it
    /// will be heard.
    pub fn await_first_audio(&self) {
        self.first_audio_ns.store(0, Ordering::Relaxed);
        self.await_first_audio.store(true, Ordering::Release);
    }

    /// When the first audio after `await_first_audio` reaches the listener (ns since the
    /// epoch), once a callback has rendered it.
    pub fn first_audio_ns(&self) -> Option<u64> {
        match self.first_audio_ns.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// Schedules the last `frames` content frames (at most what the history holds) to be
    /// played again before anything new: they went to a device that vanished before playing
    /// them. Service thread, between streams. Returns the frames scheduled.
    pub fn rewind(&self, frames: u64) -> u64 {
        let mut g = self.lock_blocking();
        let st = g.state();
        let fb = st.input.frame_bytes();
        let want = (frames as usize).saturating_mul(fb);
        let h = &mut st.history;
        let add = want.min(h.len - h.replay);
        h.replay += add;
        if add > 0 {
            // The content position jumped back: interpolation starts afresh there.
            st.resampler.reset();
        }
        (add / fb) as u64
    }

    fn try_lock(&self) -> Option<TokenGuard<'_>> {
        self.token
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| TokenGuard { core: self })
    }

    /// Service-thread side: waits for the token (a callback holds it for microseconds).
    fn lock_blocking(&self) -> TokenGuard<'_> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            std::thread::yield_now();
        }
    }

    /// Prepares the render state for a new stream shape. Runs on the service thread with no
    /// callback rendering; scratch is (re)allocated and old buffers freed here, never on the
    /// audio thread. The resampler keeps its phase when the rates do not change (U1).
    pub fn configure(&self, output: OutputShape, generation: u64) {
        let mut g = self.lock_blocking();
        let st = g.state();
        if generation < st.configured_for {
            return;
        }
        st.configured_for = generation;
        if st.output == output {
            return;
        }
        let n_in = scratch_frames(st.input, output);
        if st.output.rate != output.rate {
            st.resampler = LinearResampler::new(st.input.rate, output.rate, st.input.channels);
        }
        st.output = output;
        st.xin = vec![0.0; n_in * st.input.channels];
        st.ymap = vec![0.0; CHUNK_FRAMES * output.channels];
    }

    pub fn output_shape(&self) -> OutputShape {
        let mut g = self.lock_blocking();
        g.state().output
    }

    /// C1 phase 3: only callbacks that captured `generation` render from now on.
    pub fn publish_generation(&self, generation: u64) {
        self.current_generation.store(generation, Ordering::Release);
    }

    pub fn current_generation(&self) -> u64 {
        self.current_generation.load(Ordering::Acquire)
    }

    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Release);
    }

    /// Frames in the ring not yet taken by a callback.
    pub fn queued_frames(&self) -> u64 {
        let mut g = self.lock_blocking();
        let st = g.state();
        (st.consumer.slots() / st.input.frame_bytes()) as u64
    }

    /// The callback body. Hard realtime: atomics, arithmetic and preallocated scratch only
    /// (C2); every outcome is a counter (C3).
    pub fn render(&self, generation: u64, data: &mut cpal::Data, info: &cpal::OutputCallbackInfo) {
        let t0 = Instant::now();
        let c = &*self.counters;
        convert::fill_silence(data); // D1
        c.callbacks.fetch_add(1, Ordering::Relaxed);
        let ts = info.timestamp();
        if let Some(lat) = ts.playback.checked_duration_since(ts.callback) {
            c.output_latency_ns
                .store(lat.as_nanos() as u64, Ordering::Relaxed);
        }
        if self.current_generation.load(Ordering::Acquire) != generation {
            c.generation_mismatches.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(mut guard) = self.try_lock() else {
            c.render_contended.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // A recreate may have published a new generation between the check and the token.
        if self.current_generation.load(Ordering::Acquire) != generation {
            c.generation_mismatches.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let draining = self.draining.load(Ordering::Acquire);
        let st = guard.state();
        let out_ch = st.output.channels;
        if out_ch == 0
            || data.len() % out_ch != 0
            || !convert::device_format_supported(data.sample_format())
        {
            c.shape_mismatches.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let total = data.len() / out_ch;
        let (done, consumed, replayed, resample_ns) = st.fill(data, total, draining);
        c.frames_played
            .fetch_add(consumed as u64, Ordering::Relaxed);
        c.frames_replayed
            .fetch_add(replayed as u64, Ordering::Relaxed);
        if done > 0 {
            let now = t0.duration_since(self.epoch).as_nanos() as u64;
            let latency = c.output_latency_ns.load(Ordering::Relaxed);
            let len = total as u64 * 1_000_000_000 / st.output.rate.max(1) as u64;
            self.last_audio_latency_ns.store(latency, Ordering::Relaxed);
            self.last_audio_len_ns.store(len, Ordering::Relaxed);
            self.last_audio_cb_ns.store(now.max(1), Ordering::Release);
            if self.await_first_audio.swap(false, Ordering::AcqRel) {
                self.first_audio_ns
                    .store((now + latency).max(1), Ordering::Release);
            }
        }
        c.device_frames.fetch_add(total as u64, Ordering::Relaxed);
        // Underruns mean something: one per dry spell that interrupts playing audio, none for
        // silence while idle or once a drain has declared the end of speech.
        if done < total {
            if (st.playing || done > 0) && !draining {
                c.underruns.fetch_add(1, Ordering::Relaxed);
            }
            st.playing = false;
        } else {
            st.playing = true;
        }
        drop(guard);
        c.resample_time.record(resample_ns);
        c.callback_time.record(t0.elapsed().as_nanos() as u64);
    }
}

impl RenderState {
    /// Fills up to `total` device frames. Returns (frames filled, content frames consumed
    /// from the ring, content frames replayed from the history, nanoseconds spent
    /// resampling). When the ring runs dry at the declared end of speech (`ending`), the
    /// resampler's tail is emitted so the output is `round(len * ratio)` long (S1).
    fn fill(
        &mut self,
        data: &mut cpal::Data,
        total: usize,
        ending: bool,
    ) -> (usize, usize, usize, u64) {
        let fb = self.input.frame_bytes();
        let in_ch = self.input.channels;
        let out_ch = self.output.channels;
        let xin_frames = self.xin.len() / in_ch;
        let mut done = 0;
        let mut consumed = 0;
        let mut replayed = 0;
        let mut resample_ns = 0u64;
        while done < total {
            let n = (total - done).min(CHUNK_FRAMES);
            let limit = self.resampler.max_input_for(n).min(xin_frames);
            let replaying = self.history.replay > 0;
            // Decode up to `limit` frames from the replay window, else from the ring.
            let (m, chunk) = if replaying {
                let (a, b) = self.history.replay_slices(limit * fb);
                let na = convert::decode_into(self.input.s16, a, &mut self.xin);
                convert::decode_into(self.input.s16, b, &mut self.xin[na..]);
                ((a.len() + b.len()) / fb, None)
            } else {
                let m = (self.consumer.slots() / fb).min(limit);
                let Ok(chunk) = self.consumer.read_chunk(m * fb) else {
                    break;
                };
                let (a, b) = chunk.as_slices();
                let na = convert::decode_into(self.input.s16, a, &mut self.xin);
                convert::decode_into(self.input.s16, b, &mut self.xin[na..]);
                (m, Some(chunk))
            };

            let t = Instant::now();
            let (c, mut p) = self
                .resampler
                .process(&self.xin[..m * in_ch], &mut self.yres[..n * in_ch]);
            match chunk {
                Some(chunk) => {
                    let (a, b) = chunk.as_slices();
                    let used = c * fb;
                    let ua = used.min(a.len());
                    self.history.append(&a[..ua], &b[..used - ua]);
                    chunk.commit(used);
                    consumed += c;
                }
                None => {
                    self.history.replay -= c * fb;
                    replayed += c;
                }
            }
            let dry = p < n && c == m && !replaying;
            if dry && ending {
                p += self.resampler.finish(&mut self.yres[p * in_ch..n * in_ch]);
            }
            resample_ns += t.elapsed().as_nanos() as u64;

            let ymap = &mut self.ymap[..p * out_ch];
            ymap.fill(0.0);
            convert::map_channels(&self.yres[..p * in_ch], in_ch, ymap, out_ch);
            convert::write_device(ymap, data, done * out_ch);
            done += p;
            if p < n && !replaying {
                break; // the ring ran dry
            }
        }
        (done, consumed, replayed, resample_ns)
    }
}
