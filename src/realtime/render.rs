//! The audio callback (SPEC C1-C3, D1-D4, U1).
//!
//! One [`RenderCore`] per player holds the ring consumer, the command consumer, the
//! resampler, the gain ramps and preallocated scratch. It outlives device streams: every
//! stream generation's callback renders from the same core, so queued audio carries over a
//! recreate. Which callback may touch it is decided by [`Handoff`] (C1).
//!
//! Reading order: [`RenderCore::render`] is the callback, a short list of named steps; its
//! `fill` step loops over chunks, each passing a gate (flush, pause, pre-roll) and then
//! taken from one source (`take_tail`, `take_replay`, `take_ring`) and handed to the device
//! (`deliver`). The playback state machines are in `playback`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::realtime::clock::{Clock, Stamp};
use crate::thread_role::debug_assert_role;

use crate::data::config::ResampleQuality;
use crate::data::config::MAX_CHANNELS;
use crate::data::counters::{self as metrics, Counters};
use crate::data::events::{Event, EventKind};
use crate::dsp::convert;
use crate::dsp::gain::{self, ChannelGain, Ramp};
use crate::dsp::prefault;
use crate::dsp::resample::{LinearResampler, Resampler};
use crate::realtime::command::{Cmd, Garbage};
use crate::realtime::handoff::{Entry, Handoff, Token};
use crate::realtime::history::History;
use crate::realtime::playback::{Flow, Phase};
use crate::realtime::shape::{scratch_frames, InputShape, OutputShape, CHUNK_FRAMES};

/// The ends of the lock-free queues the callback uses, created with the player.
pub struct Queues {
    pub audio: rtrb::Consumer<u8>,
    pub commands: rtrb::Consumer<Cmd>,
    pub events: rtrb::Producer<Event>,
    /// Retired scratch goes back to the service thread to be freed there.
    pub garbage: rtrb::Producer<Garbage>,
}

/// Requests from other threads, read by the callback at its start (atomics only).
#[derive(Default)]
struct Controls {
    flush_seq: AtomicU64,
    flush_upto: AtomicU64,
    flush_fade_ms: AtomicU32,
    paused: AtomicBool,
    pause_ramp_ms: AtomicU32,
    volume_seq: AtomicU64,
    volume_bits: AtomicU32,
    volume_ramp_ms: AtomicU32,
    /// Utterance ends written; the callback compares with those it consumed (pre-roll).
    ends_written: AtomicU64,
    /// The last `flush_seq` whose flush has finished (its `Flushed` event is queued).
    flush_done: AtomicU64,
    /// A wake from suspend: silence to play before anything else (`wake_preroll_ms`), so a
    /// sink that wakes slowly (Bluetooth) does not clip the first syllable. Bumped by the
    /// service thread with the frames in `wake_silence_ms`.
    wake_seq: AtomicU64,
    wake_silence_ms: AtomicU32,
    /// A flush will rewrite what the server holds (`RenderCore::rewrite`): until this time
    /// (clock ns) a regular callback leaves the flush to it. Bounded, so a rewrite that
    /// never comes delays the flush by at most `REWRITE_WAIT_NS`.
    rewrite_until_ns: AtomicU64,
}

/// How long a flush waits for its rewrite before the callbacks fade on their own (the rewrite
/// runs about 0.1 ms after the flush on an idle machine).
const REWRITE_WAIT_NS: u64 = 5_000_000;

/// After the frame playing at a rewrite, how far into its buffer the fade starts: the
/// server gets the rewrite a little later, and a fade that starts on a frame already heard
/// would jump (measured on PulseAudio 16.1, null sink: see vendor/cpal/AUDIOPLAY.md).
const REWRITE_MARGIN_NS: u64 = 1_000_000;

struct RenderState {
    q: Queues,
    history: History,
    input: InputShape,
    output: OutputShape,
    resampler: Box<Resampler>,
    quality: ResampleQuality,
    // The scratch a chunk travels through, in order; preallocated (C2).
    /// Content frames decoded to float, at the content rate and in its channels: the
    /// resampler's input.
    decoded: Vec<f32>,
    /// Frames at the device rate in the content's channels: the resampler's output (at
    /// equal rates, decoded straight here).
    resampled: Vec<f32>,
    /// Those frames in the device's channels with the gain applied, before conversion to
    /// the device's sample format (skipped when the map and conversion go straight into
    /// the device buffer).
    mapped: Vec<f32>,
    /// Output frames one step can make without overrunning `decoded`.
    step_frames: usize,
    /// Ring frames taken out of the ring in any way (played or flushed): command positions
    /// are in these units.
    pos: u64,
    /// Content frames taken out (played or flushed): what the public counters and events
    /// report. Equal to `pos`'s progress except in a resampled segment (U2), where it is
    /// interpolated between the writer's `Sync` points.
    content_pos: u64,
    /// The ring holds the writer's resampled output from the last `Format` on.
    resampled_ring: bool,
    /// The last `Sync` point applied (ring frame, content frame) in a resampled segment.
    sync_from: (u64, u64),
    /// The application's content rate of what plays now (the ring's rate, or the rate a
    /// `Sync` names in a resampled segment).
    content_rate: u32,
    /// Where the content consumed stands against its utterance boundaries (see `playback`
    /// for what stays a separate field and why).
    phase: Phase,
    /// Whether the callbacks keep the device fed (underrun accounting).
    flow: Flow,
    preroll_frames: u64,
    ends_seen: u64,
    volume: Ramp,
    fade: Ramp,
    /// Per-utterance gain and pan (issue 16), set in band by `Cmd::GainPan`.
    chan_gain: ChannelGain,
    /// The last until-changed gain and pan: where an utterance-scoped setting goes back to
    /// at the next utterance start, and the ramp it goes back with (ms).
    gain_base: (f32, f32),
    /// An utterance-scoped setting is in force (its ramp, ms).
    gain_scoped: Option<u32>,
    flush_seen: u64,
    /// `flush_seen` as last published in `Controls::flush_done`.
    flush_done: u64,
    volume_seen: u64,
    /// The application's pause, mirrored from `Controls`; its ramp is `fade`.
    paused: bool,
    /// Discarding up to this position once the fade-out is done.
    flushing: Option<u64>,
    /// Where the last fade-out ended (reported with the Flushed event).
    flush_stop: u64,
    /// When a rewrite's fade-out ends at the listener (clock ns; 0: no rewrite): the Flushed
    /// event's time, which the callback that discards later would otherwise put behind
    /// everything the server held.
    flush_heard_ns: u64,
    /// Timing of the current callback, for event times.
    cb_ns: u64,
    latency_ns: u64,
    /// Generation whose shape `configure` last applied; an abandoned (timed-out) recreate
    /// finishing late must not overwrite a newer one's shape.
    configured_for: u64,
    /// When everything the last callback wrote will have played (0: it wrote no audio).
    audio_until_ns: u64,
    /// Events this callback made, handed to the host only after its counters and position
    /// are published (`release_events`): a host that reads the metrics on `Flushed`,
    /// `UtteranceEnd` or a marker finds those frames already counted. Pushed as they came, a
    /// callback preempted after its `Flushed` (seen under load) let applay print the flushed
    /// audio as still queued. Fixed size (C2); past it, events go out at once, in order.
    held: [Event; HELD_EVENTS],
    held_len: usize,
    /// `Controls::wake_seq` last seen, and the wake silence still to play (device frames).
    wake_seen: u64,
    wake_silence: usize,
}

/// Events one callback holds back (a marker per word of a long callback fits).
const HELD_EVENTS: usize = 32;

pub struct RenderCore {
    /// C1: the token and the generation whose callbacks may render. The generation is a plain
    /// atomic mirror of the arc-swap-published stream state, so the callback never touches
    /// arc-swap's per-thread debt list (its first use on a new thread allocates).
    handoff: Handoff,
    state: UnsafeCell<RenderState>,
    controls: Controls,
    pub counters: Arc<Counters>,
    /// Wall-clock origin for the timing atomics below, and the callback's cheap reading of it.
    clock: Clock,
    /// The latest callback that rendered audio: when it ran (ns since `epoch`), the device
    /// latency it was given, and how long its buffer plays. Enough to tell, when a stream is
    /// stopped, how much of what it was handed had not been heard yet.
    last_audio_cb_ns: AtomicU64,
    last_audio_latency_ns: AtomicU64,
    last_audio_len_ns: AtomicU64,
    /// Ring position (`pos`) at the end of the last callback and the ring's rate then.
    pos_published: AtomicU64,
    ring_rate: AtomicU32,
    /// Content position (`content_pos`) at the end of the last callback and the content
    /// rate then.
    content_published: AtomicU64,
    content_rate: AtomicU32,
    /// Heard position, kept monotonic for readers.
    heard_max: AtomicU64,
    /// Set at a route change; the first callback that renders audio afterwards records when
    /// that audio reaches the listener (`first_audio_ns`, ns since `epoch`).
    await_first_audio: AtomicBool,
    first_audio_ns: AtomicU64,
}

// SAFETY: `state` is only accessed through a `TokenGuard`, which holds the handoff token
// (acquire/release pairs), serialising all access across threads; every other field is atomic or Sync.
unsafe impl Sync for RenderCore {}
// SAFETY: all fields are Send; the UnsafeCell content is moved, not shared, when sent.
unsafe impl Send for RenderCore {}

/// Exclusive access to the render state, released on drop.
struct TokenGuard<'a> {
    core: &'a RenderCore,
    _token: Token<'a>,
}

impl TokenGuard<'_> {
    fn state(&mut self) -> &mut RenderState {
        // SAFETY: a TokenGuard exists only while the handoff token is held by this thread, so no other
        // reference to the state exists; `&mut self` prevents aliasing through this guard.
        unsafe { &mut *self.core.state.get() }
    }
}

fn ms_to_frames(ms: u32, rate: u32) -> u32 {
    (ms as u64 * rate as u64 / 1000) as u32
}

impl RenderCore {
    /// `history_frames`: how much consumed content is kept for replay after a device loss;
    /// `preroll_frames`: how much of an utterance is queued before it starts playing.
    pub fn new(
        q: Queues,
        input: InputShape,
        output: OutputShape,
        counters: Arc<Counters>,
        history_frames: usize,
        preroll_frames: u64,
    ) -> Self {
        crate::dsp::simd::detect();
        let n_in = scratch_frames(input, output);
        let mut st = RenderState {
            q,
            history: History::new(history_frames * input.frame_bytes()),
            input,
            output,
            resampler: Box::new(Resampler::new(
                ResampleQuality::Linear,
                input.rate,
                output.rate,
                input.channels,
            )),
            quality: ResampleQuality::Linear,
            decoded: prefault::zeroed(n_in * input.channels),
            // Sized for any channel count: a voice change may bring more channels.
            resampled: prefault::zeroed(CHUNK_FRAMES * MAX_CHANNELS),
            mapped: prefault::zeroed(CHUNK_FRAMES * output.channels),
            step_frames: CHUNK_FRAMES,
            pos: 0,
            content_pos: 0,
            resampled_ring: false,
            sync_from: (0, 0),
            content_rate: input.rate,
            phase: Phase::Idle,
            flow: Flow::Dry,
            preroll_frames,
            ends_seen: 0,
            volume: Ramp::new(1.0),
            fade: Ramp::new(1.0),
            chan_gain: ChannelGain::new(),
            gain_base: (1.0, 0.0),
            gain_scoped: None,
            flush_seen: 0,
            flush_done: 0,
            volume_seen: 0,
            paused: false,
            flushing: None,
            flush_stop: 0,
            flush_heard_ns: 0,
            cb_ns: 0,
            latency_ns: 0,
            configured_for: 0,
            audio_until_ns: 0,
            held: [Event {
                kind: EventKind::Marker,
                id: 0,
                frame: 0,
                heard_ns: 0,
            }; HELD_EVENTS],
            held_len: 0,
            wake_seen: 0,
            wake_silence: 0,
        };
        st.update_step_frames();
        let controls = Controls::default();
        controls
            .volume_bits
            .store(1.0f32.to_bits(), Ordering::Relaxed);
        RenderCore {
            handoff: Handoff::default(),
            state: UnsafeCell::new(st),
            controls,
            counters,
            clock: Clock::new(Instant::now()),
            last_audio_cb_ns: AtomicU64::new(0),
            last_audio_latency_ns: AtomicU64::new(0),
            last_audio_len_ns: AtomicU64::new(0),
            pos_published: AtomicU64::new(0),
            ring_rate: AtomicU32::new(input.rate),
            content_published: AtomicU64::new(0),
            content_rate: AtomicU32::new(input.rate),
            heard_max: AtomicU64::new(0),
            await_first_audio: AtomicBool::new(false),
            first_audio_ns: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since this core's epoch (the clock the timing atomics and events use).
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Refreshes the callback clock's calibration (the service thread, every tick).
    pub fn calibrate_clock(&self) {
        self.clock.calibrate();
    }

    pub fn clock_calibrated(&self) -> bool {
        self.clock.calibrated()
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

    /// When (ns on `now_ns`'s clock) the latest callback that rendered audio started; 0 if
    /// none yet. For latency measurements.
    pub fn last_audio_cb_ns(&self) -> u64 {
        self.last_audio_cb_ns.load(Ordering::Acquire)
    }

    /// The content frame the listener hears now (monotonic): frames handed to the device
    /// minus what is still in its buffer.
    pub fn heard_frames(&self) -> u64 {
        let pos = self.content_published.load(Ordering::Acquire);
        let rate = self.content_rate.load(Ordering::Relaxed) as u128;
        let unheard = (self.unheard_ns(self.now_ns()) as u128 * rate / 1_000_000_000) as u64;
        let heard = pos.saturating_sub(unheard);
        self.heard_max.fetch_max(heard, Ordering::AcqRel).max(heard)
    }

    /// When the callbacks stopped, if they did: the end of the period the last callback that
    /// rendered audio was called for (the next one never came). None if none rendered.
    pub fn callbacks_stopped_ns(&self) -> Option<u64> {
        match self.last_audio_cb_ns.load(Ordering::Acquire) {
            0 => None,
            cb => Some(cb + self.last_audio_len_ns.load(Ordering::Relaxed)),
        }
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

    /// Schedules the last `unheard_ns` of what was taken from the ring (at most what the
    /// history holds) to be played again before anything new: it went to a device that
    /// vanished before playing it. Service thread, between streams. Returns the ring frames
    /// scheduled.
    pub fn rewind(&self, unheard_ns: u64) -> u64 {
        let mut g = self.lock_blocking();
        let st = g.state();
        let fb = st.input.frame_bytes();
        // In the ring's units at its live rate (a voice change or producer resampling moves
        // it away from the configured one).
        let frames = unheard_ns as u128 * st.input.rate as u128 / 1_000_000_000;
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

    /// Service-thread side: waits for the token (a callback holds it for microseconds).
    fn lock_blocking(&self) -> TokenGuard<'_> {
        TokenGuard {
            core: self,
            _token: self.handoff.take(),
        }
    }

    /// Sets the resampling quality (issue 5); the resampler is rebuilt here, on the calling
    /// (service or constructing) thread.
    pub fn set_resample_quality(&self, quality: ResampleQuality) {
        let mut g = self.lock_blocking();
        let st = g.state();
        st.quality = quality;
        *st.resampler = Resampler::new(quality, st.input.rate, st.output.rate, st.input.channels);
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
        st.audio_until_ns = 0; // a new stream's first callback is not late
        if st.output == output {
            return;
        }
        if st.output.rate != output.rate {
            *st.resampler =
                Resampler::new(st.quality, st.input.rate, output.rate, st.input.channels);
        }
        st.output = output;
        st.decoded = prefault::zeroed(scratch_frames(st.input, output) * st.input.channels);
        st.mapped = prefault::zeroed(CHUNK_FRAMES * output.channels);
        st.update_step_frames();
    }

    /// C1 phase 3: only callbacks that captured `generation` render from now on.
    pub fn publish_generation(&self, generation: u64) {
        self.handoff.publish(generation);
    }

    pub fn current_generation(&self) -> u64 {
        self.handoff.current()
    }

    /// Barge-in: fade out over `fade_ms` from the next callback on, then discard everything
    /// written before content position `upto`.
    pub fn request_flush(&self, upto: u64, fade_ms: u32) {
        let c = &self.controls;
        c.flush_upto.store(upto, Ordering::Relaxed);
        c.flush_fade_ms.store(fade_ms, Ordering::Relaxed);
        c.flush_seq.fetch_add(1, Ordering::Release);
    }

    /// The next flush will be rewritten into what the server holds (`rewrite`): regular
    /// callbacks leave it to the rewrite for up to `REWRITE_WAIT_NS`. Called before
    /// `request_flush`.
    pub fn expect_rewrite(&self) {
        self.controls
            .rewrite_until_ns
            .store(self.now_ns() + REWRITE_WAIT_NS, Ordering::Release);
    }

    /// A rewrite of what the server already holds (`cpal::platform::OutputRewriter`), asked
    /// for by a flush: `data` holds what the callbacks wrote last, its first frame heard at
    /// `info`'s playback instant, before this call. The flush's fade starts on the frame
    /// heard `REWRITE_MARGIN_NS` from now instead of after everything queued; what follows
    /// the fade becomes silence and counts as flushed, not played. Anything else (no flush
    /// waiting, one a callback already started fading, another generation) leaves the
    /// buffer as written: the server gets the same bytes back. Hard realtime, as `render`.
    pub fn rewrite(&self, generation: u64, data: &mut cpal::Data, info: &cpal::OutputCallbackInfo) {
        debug_assert_role!(Audio);
        let c = &*self.counters;
        let Entry::Granted(token) = self.handoff.enter(generation) else {
            return;
        };
        let mut guard = TokenGuard {
            core: self,
            _token: token,
        };
        let st = guard.state();
        let ctl = &self.controls;
        ctl.rewrite_until_ns.store(0, Ordering::Relaxed);
        let Some(total) = st.frames_asked(data) else {
            return;
        };
        if ctl.flush_seq.load(Ordering::Acquire) == st.flush_seen {
            return;
        }
        let ts = info.timestamp();
        let Some(ahead) = ts.callback.checked_duration_since(ts.playback) else {
            return;
        };
        let rate = st.output.rate.max(1) as u64;
        let from = ((ahead.as_nanos() as u64 + REWRITE_MARGIN_NS) * rate / 1_000_000_000) as usize;
        let from = from.min(total);
        // A flush already fading (a regular callback's fade, or an earlier rewrite's, which
        // this buffer holds): this one only extends what is discarded. Fading again from
        // here would cut the running fade short (a speech-dispatcher stop flushes twice
        // within a millisecond: the fade fell from 0.9 to 0.1 in 4 ms instead of 9-10).
        let fading = st.flushing.is_some();
        st.read_controls(ctl, false);
        if fading {
            st.publish_flush_done(ctl);
            return;
        }
        c.flushes_rewritten.fetch_add(1, Ordering::Relaxed);
        let ch = st.output.channels;
        let end = from + convert::fade_device(data, from * ch, ch, &mut st.fade);
        if st.flushing.is_some() && st.fade.settled() && st.fade.value == 0.0 {
            convert::fill_silence(data, end * ch);
            // Those frames were counted played when they were written; now nobody hears them.
            let silenced = (total - end) as u64 * st.content_rate as u64 / rate;
            let silenced = silenced.min(c.frames_played.load(Ordering::Relaxed));
            metrics::add_exclusive(&c.frames_played, silenced.wrapping_neg());
            metrics::add_exclusive(&c.frames_flushed, silenced);
            st.flush_stop = st.flush_stop.saturating_sub(silenced);
            // The buffer's first frame was heard `ahead` before now; frame `end`, where the
            // fade lands, `end` frames after it.
            let first_ns = self
                .clock
                .stamp()
                .ns
                .saturating_sub(ahead.as_nanos() as u64);
            st.flush_heard_ns = (first_ns + end as u64 * 1_000_000_000 / rate).max(1);
        }
        st.publish_flush_done(ctl);
    }

    /// A flush was asked for and its `Flushed` event is not queued yet.
    pub fn flush_pending(&self) -> bool {
        let c = &self.controls;
        c.flush_seq.load(Ordering::Acquire) != c.flush_done.load(Ordering::Acquire)
    }

    /// Ring frames per second the callbacks consume (the ring's current rate).
    pub fn ring_rate(&self) -> u32 {
        self.ring_rate.load(Ordering::Relaxed)
    }

    /// The application's content rate of what plays now (follows voice changes).
    pub fn content_rate(&self) -> u32 {
        self.content_rate.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool, ramp_ms: u32) {
        self.controls
            .pause_ramp_ms
            .store(ramp_ms, Ordering::Relaxed);
        self.controls.paused.store(paused, Ordering::Release);
    }

    /// After a wake from suspend: the next callbacks play `ms` of silence before anything
    /// queued (0: none).
    pub fn request_wake_silence(&self, ms: u32) {
        if ms > 0 {
            let c = &self.controls;
            c.wake_silence_ms.store(ms, Ordering::Relaxed);
            c.wake_seq.fetch_add(1, Ordering::Release);
        }
    }

    pub fn set_volume(&self, gain: f32, ramp_ms: u32) {
        let c = &self.controls;
        c.volume_bits.store(gain.to_bits(), Ordering::Relaxed);
        c.volume_ramp_ms.store(ramp_ms, Ordering::Relaxed);
        c.volume_seq.fetch_add(1, Ordering::Release);
    }

    /// The writing side wrote an utterance end (lets a pre-rolling utterance start early).
    pub fn note_utterance_end_written(&self) {
        self.controls.ends_written.fetch_add(1, Ordering::Release);
    }

    /// Ring position reached by the callbacks (played + flushed), in the units of command
    /// positions and `Counters::ring_frames_written`.
    pub fn position(&self) -> u64 {
        self.pos_published.load(Ordering::Acquire)
    }

    /// Content frames the callbacks have taken out (played + flushed).
    pub fn content_position(&self) -> u64 {
        self.content_published.load(Ordering::Acquire)
    }

    /// The callback body. Hard realtime: atomics, arithmetic and preallocated scratch only
    /// (C2); every outcome is a counter or a queued event (C3).
    pub fn render(&self, generation: u64, data: &mut cpal::Data, info: &cpal::OutputCallbackInfo) {
        debug_assert_role!(Audio);
        let t0 = self.clock.stamp();
        let c = &*self.counters;
        c.callbacks.fetch_add(1, Ordering::Relaxed);
        let latency = output_latency_ns(info);
        c.output_latency_ns.store(latency, Ordering::Relaxed);
        // C1: only the current generation renders, one callback at a time.
        let token = match self.handoff.enter(generation) {
            Entry::Granted(token) => token,
            Entry::Stale => return silenced(data, &c.generation_mismatches),
            Entry::Busy => return silenced(data, &c.render_contended),
        };
        let mut guard = TokenGuard {
            core: self,
            _token: token,
        };
        let st = guard.state();
        let Some(total) = st.frames_asked(data) else {
            return silenced(data, &c.shape_mismatches);
        };
        let len = st.begin(t0.ns, latency, total, c);
        st.read_controls(&self.controls, true);
        let f = st.fill(data, total, &self.controls, c);
        // D1: what was not rendered is silence. Zeroing only the rest, not the whole buffer
        // first, saves a pass over it.
        convert::fill_silence(data, f.done * st.output.channels);
        st.count(&f, total, len, c);
        // The host sees an event only once what it reports is counted, and the event thread
        // finds it queued once the position it reads has passed it (see service::deliver).
        st.release_events(c);
        st.publish_flush_done(&self.controls);
        self.publish(st, &f, latency, len);
        st.account_underrun(f.done, total, f.held, c);
        st.release_events(c);
        // Recorded while the token is held: one writer at a time.
        self.record_time(&t0, f.resampled, c);
        drop(guard);
    }

    /// The callback's time into both histograms, from one clock read (each read costs
    /// ~20 ns, a tenth of a light callback). S3's resample time is the render work of a
    /// callback that resampled: decode, resample and map, an upper bound of the resampling
    /// alone.
    fn record_time(&self, t0: &Stamp, resampled: bool, c: &Counters) {
        let spent = self.clock.since_ns(t0);
        c.resample_time
            .record_exclusive(if resampled { spent } else { 0 });
        c.callback_time.record_exclusive(spent);
    }

    /// After the fill, what other threads read: positions, rates, and when the audio this
    /// callback handed over (if any) plays.
    fn publish(&self, st: &RenderState, f: &Filled, latency: u64, len: u64) {
        self.content_published
            .store(st.content_pos, Ordering::Release);
        self.content_rate.store(st.content_rate, Ordering::Relaxed);
        self.pos_published.store(st.pos, Ordering::Release);
        self.ring_rate.store(st.input.rate, Ordering::Relaxed);
        if f.done == 0 {
            return;
        }
        self.last_audio_latency_ns.store(latency, Ordering::Relaxed);
        self.last_audio_len_ns.store(len, Ordering::Relaxed);
        self.last_audio_cb_ns
            .store(st.cb_ns.max(1), Ordering::Release);
        // Load first: a locked swap on every callback costs more than it checks.
        if self.await_first_audio.load(Ordering::Relaxed)
            && self.await_first_audio.swap(false, Ordering::AcqRel)
        {
            self.first_audio_ns
                .store((st.cb_ns + latency).max(1), Ordering::Release);
        }
    }
}

/// A callback that may not render: its whole buffer is silence (D1), and why is counted.
fn silenced(data: &mut cpal::Data, why: &AtomicU64) {
    convert::fill_silence(data, 0);
    why.fetch_add(1, Ordering::Relaxed);
}

/// How far ahead of the callback its buffer is heard (ns; 0 if the host does not say).
fn output_latency_ns(info: &cpal::OutputCallbackInfo) -> u64 {
    let ts = info.timestamp();
    ts.playback
        .checked_duration_since(ts.callback)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Decodes the two halves of a ring or history read, one after the other, into `dst`.
/// Always inlined: as a call it cost ~10 instructions per callback (callgrind).
#[inline(always)]
fn decode_both(s16: bool, a: &[u8], b: &[u8], dst: &mut [f32]) {
    let na = convert::decode_into(s16, a, dst);
    convert::decode_into(s16, b, &mut dst[na..]);
}

/// Float frames from the two halves of a ring read, channel-mapped straight into the device
/// buffer from frame `at`. False (nothing usable written) if the bytes are not aligned
/// floats or the device format does not take them directly.
fn floats_into_device(
    a: &[u8],
    b: &[u8],
    in_ch: usize,
    data: &mut cpal::Data,
    at: usize,
    out_ch: usize,
) -> bool {
    let (Some(a), Some(b)) = (convert::f32_view(a), convert::f32_view(b)) else {
        return false;
    };
    let at = at * out_ch;
    convert::map_into_device(a, in_ch, data, at, out_ch)
        && convert::map_into_device(b, in_ch, data, at + a.len() / in_ch * out_ch, out_ch)
}

/// What one callback did.
#[derive(Default)]
struct Filled {
    done: usize,
    consumed: u64,
    replayed: u64,
    flushed: u64,
    /// A real resampler (rates differ) ran in this callback.
    resampled: bool,
    /// Silence on purpose (paused, pre-rolling, flushing): not an underrun.
    held: bool,
}

/// Whether a step of `fill` may render.
enum Gate {
    Open,
    /// Silence on purpose (paused, pre-rolling, a flush waiting for frames): stop here.
    Hold,
    /// A flush was just completed: start the step again.
    Again,
}

/// What one step of `fill` took from its source and made.
#[derive(Clone, Copy)]
struct Step {
    /// Input frames taken from the source (ring or replay window; none from the tail).
    taken: usize,
    /// Output frames made: in `resampled`, or already in the device buffer if `in_device`.
    made: usize,
    /// The frames went from the ring straight into the device buffer (float samples at
    /// equal rates and unity gain: no scratch).
    in_device: bool,
}

impl RenderState {
    fn update_step_frames(&mut self) {
        let decoded_frames = (self.decoded.len() / self.input.channels.max(1)) as u64;
        let per = (self.input.rate as u64)
            .div_ceil(self.output.rate.max(1) as u64)
            .max(1);
        self.step_frames =
            ((decoded_frames.saturating_sub(per + 4)) / per).clamp(1, CHUNK_FRAMES as u64) as usize;
    }

    /// Device frames this callback asks for, or None if the buffer does not have the shape
    /// `configure` prepared for.
    fn frames_asked(&self, data: &cpal::Data) -> Option<usize> {
        let out_ch = self.output.channels;
        if out_ch == 0
            || data.len() % out_ch != 0
            || !convert::device_format_supported(data.sample_format())
        {
            return None;
        }
        Some(data.len() / out_ch)
    }

    /// Stamps this callback (event times) and counts it late if it came after everything
    /// the previous one wrote had played. Returns how long its `total` frames play (ns).
    fn begin(&mut self, now_ns: u64, latency_ns: u64, total: usize, c: &Counters) -> u64 {
        self.cb_ns = now_ns;
        self.latency_ns = latency_ns;
        let len = total as u64 * 1_000_000_000 / self.output.rate.max(1) as u64;
        // Device starvation: arriving after everything the previous callback wrote has played
        // means the device ran dry, however full the ring is (issue 7 overload). One period of
        // slack absorbs the jitter of the server's latency reports.
        if self.audio_until_ns != 0 && self.cb_ns > self.audio_until_ns + len.max(5_000_000) {
            metrics::add_exclusive(&c.late_callbacks, 1);
        }
        len
    }

    /// Counts what the fill did, and notes until when this callback's audio plays (for the
    /// next one's lateness check).
    fn count(&mut self, f: &Filled, total: usize, len: u64, c: &Counters) {
        self.audio_until_ns = if f.done > 0 {
            self.cb_ns + self.latency_ns + len
        } else {
            0
        };
        // Counters only token holders write: no locked instructions (see add_exclusive).
        metrics::add_exclusive(&c.frames_played, f.consumed);
        metrics::add_exclusive(&c.frames_replayed, f.replayed);
        metrics::add_exclusive(&c.frames_flushed, f.flushed);
        metrics::add_exclusive(&c.device_frames, total as u64);
    }

    /// Tells the controlling side the flushes asked for so far are done, once no flush is
    /// pending here (their `Flushed` events are queued).
    fn publish_flush_done(&mut self, ctl: &Controls) {
        if self.flushing.is_none() && self.flush_done != self.flush_seen {
            self.flush_done = self.flush_seen;
            ctl.flush_done.store(self.flush_done, Ordering::Release);
        }
    }

    /// When content at device offset `done` of this callback reaches the listener.
    fn heard_at(&self, done: usize) -> u64 {
        self.cb_ns + self.latency_ns + done as u64 * 1_000_000_000 / self.output.rate.max(1) as u64
    }

    fn emit(&mut self, kind: EventKind, id: u64, frame: u64, done: usize, c: &Counters) {
        let heard_ns = self.heard_at(done);
        self.emit_at(kind, id, frame, heard_ns, c);
    }

    fn emit_at(&mut self, kind: EventKind, id: u64, frame: u64, heard_ns: u64, c: &Counters) {
        let e = Event {
            kind,
            id,
            frame,
            heard_ns,
        };
        if self.held_len == HELD_EVENTS {
            self.release_events(c);
        }
        self.held[self.held_len] = e;
        self.held_len += 1;
    }

    /// Hands the events this callback held back to the event thread, oldest first.
    fn release_events(&mut self, c: &Counters) {
        for &e in &self.held[..self.held_len] {
            if self.q.events.push(e).is_err() {
                c.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.held_len = 0;
    }

    /// `defer`: a flush waiting for its rewrite (`Controls::rewrite_until_ns`) is left to it.
    fn read_controls(&mut self, ctl: &Controls, defer: bool) {
        let rate = self.output.rate;
        let vseq = ctl.volume_seq.load(Ordering::Acquire);
        if vseq != self.volume_seen {
            self.volume_seen = vseq;
            let target = f32::from_bits(ctl.volume_bits.load(Ordering::Relaxed));
            self.volume.to(
                target,
                ms_to_frames(ctl.volume_ramp_ms.load(Ordering::Relaxed), rate),
            );
        }
        let paused = ctl.paused.load(Ordering::Acquire);
        if paused != self.paused {
            self.paused = paused;
            let ramp = ms_to_frames(ctl.pause_ramp_ms.load(Ordering::Relaxed), rate);
            if self.flushing.is_none() {
                self.fade.to(if paused { 0.0 } else { 1.0 }, ramp);
            }
        }
        let wseq = ctl.wake_seq.load(Ordering::Acquire);
        if wseq != self.wake_seen {
            self.wake_seen = wseq;
            let ms = ctl.wake_silence_ms.load(Ordering::Relaxed);
            self.wake_silence = ms_to_frames(ms, rate) as usize;
        }
        let fseq = ctl.flush_seq.load(Ordering::Acquire);
        if fseq != self.flush_seen
            && !(defer && self.cb_ns < ctl.rewrite_until_ns.load(Ordering::Acquire))
        {
            self.flush_seen = fseq;
            let upto = ctl.flush_upto.load(Ordering::Relaxed);
            if self.flushing.is_none() {
                // A flush with nothing to fade stops here (not where an earlier one did).
                self.flush_stop = self.content_pos;
            }
            self.flushing = Some(self.flushing.map_or(upto, |u| u.max(upto)));
            self.flush_heard_ns = 0;
            // Already silent (paused, idle) means nothing to fade.
            let frames = if self.flow.flowing() && self.fade.value > 0.0 {
                ms_to_frames(ctl.flush_fade_ms.load(Ordering::Relaxed), rate)
            } else {
                0
            };
            self.fade.to(0.0, frames);
        }
    }

    /// Applies every command due at the current position. Returns whether any was.
    fn apply_due(&mut self, done: usize, c: &Counters) -> bool {
        let mut any = false;
        while let Ok(cmd) = self.q.commands.peek() {
            if cmd.at() > self.pos {
                break;
            }
            let Ok(cmd) = self.q.commands.pop() else {
                break;
            };
            any = true;
            let flushing = self.flushing.is_some();
            match cmd {
                // Events carry content frames (`at` is a ring frame, equal to `pos` here).
                Cmd::UtteranceStart { .. } => {
                    // One at a flush's end starts the next utterance (see `discard`).
                    let flushing = self.flushing.is_some_and(|upto| self.pos < upto);
                    self.phase.start(self.preroll_frames > 0 && !flushing);
                    // An utterance-scoped gain or pan ends with its utterance.
                    if let Some(ramp_ms) = self.gain_scoped.take() {
                        let (g, p) = self.gain_base;
                        self.set_gain_pan(g, p, ramp_ms);
                    }
                    if !flushing {
                        self.emit(EventKind::UtteranceStart, 0, self.content_pos, done, c);
                    }
                }
                Cmd::UtteranceEnd { .. } => {
                    self.ends_seen += 1;
                    if self.phase.end(flushing) {
                        self.emit(EventKind::UtteranceEnd, 0, self.content_pos, done, c);
                    }
                }
                Cmd::Mark { id, .. } => {
                    if flushing {
                        c.markers_flushed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.emit(EventKind::Marker, id, self.content_pos, done, c);
                    }
                }
                Cmd::GainPan {
                    gain,
                    pan,
                    ramp_ms,
                    utterance,
                    ..
                } => {
                    if utterance {
                        self.gain_scoped = Some(ramp_ms);
                    } else {
                        self.gain_base = (gain, pan);
                        self.gain_scoped = None;
                    }
                    self.set_gain_pan(gain, pan, ramp_ms);
                }
                Cmd::Sync { at, content, rate } => {
                    self.sync_from = (at, content);
                    self.content_pos = self.content_pos.max(content);
                    self.content_rate = rate;
                }
                Cmd::Format {
                    shape,
                    xin,
                    resampler,
                    out_rate,
                    resampled,
                    ..
                } => self.switch_format(shape, xin, resampler, out_rate, resampled, c),
            }
        }
        any
    }

    /// A voice change reached: from here on the ring holds frames in `shape`. The writer's
    /// scratch and resampler are swapped in, the old ones retired (never freed here).
    fn switch_format(
        &mut self,
        shape: InputShape,
        mut decoded: Vec<f32>,
        mut resampler: Box<Resampler>,
        out_rate: u32,
        resampled: bool,
        c: &Counters,
    ) {
        std::mem::swap(&mut self.decoded, &mut decoded);
        self.retire(Garbage::Scratch(decoded), c);
        if out_rate != self.output.rate {
            // The stream moved to another rate after the writer prepared this one: play on
            // with linear (allocation-free) until the next configure; counted, not hidden.
            // The unusable one's memory is retired (tables and buffers alike), never freed
            // here.
            c.resample_errors.fetch_add(1, Ordering::Relaxed);
            for g in resampler.take_heap().into_iter().flatten() {
                self.retire(g.into(), c);
            }
            let linear = LinearResampler::new(shape.rate, self.output.rate, shape.channels);
            *resampler = Resampler::Linear(linear);
        }
        if shape == self.input && out_rate == self.output.rate && !self.resampler.is_identity() {
            // Only what the ring's frames mean changed (the writer's speed stretch going on or
            // off, issue 16): the running resampler plays on, so its state carries across
            // (a fresh one restarts from silence: a 0.29 step on a 440 Hz tone at 22050 ->
            // 48000). The prepared one is retired unused.
            self.retire(Garbage::Resampler(resampler), c);
        } else {
            std::mem::swap(&mut self.resampler, &mut resampler);
            self.retire(Garbage::Resampler(resampler), c);
        }
        self.input = shape;
        self.resampled_ring = resampled;
        self.sync_from = (self.pos, self.content_pos);
        if !resampled {
            self.content_rate = shape.rate;
        }
        self.history.clear();
        self.update_step_frames();
    }

    /// Takes `n` ring frames out; returns the content frames that covers. In a resampled
    /// segment (U2) the content position is interpolated towards the next `Sync` point, which
    /// the writer queues before the audio it ends, so it is exact at every point it names.
    fn advance(&mut self, n: u64) -> u64 {
        self.pos += n;
        let before = self.content_pos;
        if !self.resampled_ring {
            self.content_pos += n;
            return n;
        }
        // Sync points passed: applied here (they make no event), then towards the next one.
        while let Ok(&Cmd::Sync { at, content, rate }) = self.q.commands.peek() {
            if at > self.pos {
                let (r0, c0) = self.sync_from;
                // 64-bit arithmetic unless the product could overflow (a 128-bit division
                // is a library call, ~40 instructions, on every chunk).
                let (into, gained) = (self.pos.saturating_sub(r0), content.saturating_sub(c0));
                let target = match (into.checked_mul(gained), at.saturating_sub(r0)) {
                    (_, 0) => content,
                    (Some(p), span) => c0 + p / span,
                    (None, span) => c0 + (into as u128 * gained as u128 / span as u128) as u64,
                };
                self.content_pos = self.content_pos.max(target.min(content));
                break;
            }
            if self.q.commands.pop().is_err() {
                break;
            }
            self.sync_from = (at, content);
            self.content_pos = self.content_pos.max(content);
            self.content_rate = rate;
        }
        self.content_pos - before
    }

    /// Hands memory to the service thread to free (never freed on the audio thread).
    fn retire(&mut self, g: Garbage, c: &Counters) {
        if let Err(rtrb::PushError::Full(g)) = self.q.garbage.push(g) {
            // Leak rather than free here; counted.
            std::mem::forget(g);
            c.callback_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Where the next command that the audio must stop at sits: `Sync` points are passed
    /// over (`advance` applies them as it goes), so a resampled ring is read in whole
    /// callbacks, not split at every write (splitting cost 45% more instructions per frame).
    /// Only what lies before `horizon` (where the caller's read ends anyway) is looked at.
    fn next_cmd_at(&mut self, horizon: u64) -> Option<u64> {
        match self.q.commands.peek().ok()? {
            Cmd::Sync { .. } => {
                let n = self.q.commands.slots();
                let chunk = self.q.commands.read_chunk(n).ok()?;
                let (a, b) = chunk.as_slices();
                a.iter()
                    .chain(b)
                    .find(|c| !matches!(c, Cmd::Sync { .. }) || c.at() >= horizon)
                    .map(Cmd::at)
                // Not committed: the commands stay queued.
            }
            c => Some(c.at()),
        }
    }

    /// Discards what a flush covers, once the fade-out has finished. Returns frames
    /// discarded; leaves `flushing` set while frames it covers are still being committed.
    fn discard(&mut self, upto: u64, done: usize, c: &Counters) -> u64 {
        let mut flushed = 0;
        while self.pos < upto {
            self.apply_due(done, c);
            let fb = self.input.frame_bytes();
            let limit = self.next_cmd_at(upto).map_or(upto, |a| a.min(upto)) - self.pos;
            let n = (self.q.audio.slots() / fb).min(limit as usize);
            if n == 0 {
                return flushed;
            }
            if let Ok(chunk) = self.q.audio.read_chunk(n * fb) {
                chunk.commit_all();
            }
            flushed += self.advance(n as u64);
        }
        self.resampler.reset();
        self.history.clear();
        self.phase.flushed();
        self.fade.to(if self.paused { 0.0 } else { 1.0 }, 0);
        let stop = self.flush_stop;
        let heard_ns = match std::mem::take(&mut self.flush_heard_ns) {
            0 => self.heard_at(done),
            t => t,
        };
        self.emit_at(EventKind::Flushed, 0, stop, heard_ns, c);
        // Commands at the flush end come after it: the flushed utterance's end and markers at
        // its last frame (still discarded), or the next utterance's start, written after the
        // flush (barge-in: it begins, with its event, not inside the discarded phase).
        self.apply_due(done, c);
        self.flushing = None;
        flushed
    }

    /// Fills up to `total` device frames in steps of at most one chunk: the commands due
    /// are applied, the gate may hold the output (silence on purpose), then one chunk comes
    /// from its source (the resampler's owed tail, the replay window, or the ring) and goes
    /// to the device buffer.
    fn fill(
        &mut self,
        data: &mut cpal::Data,
        total: usize,
        ctl: &Controls,
        c: &Counters,
    ) -> Filled {
        let mut f = Filled::default();
        let content_before = self.content_pos;
        if self.wake_silence > 0 {
            // The wake pre-roll: silence first (zeroed here, content goes after it).
            let n = self.wake_silence.min(total);
            convert::fill_silence(data, 0);
            self.wake_silence -= n;
            f.done = n;
            f.held = true;
        }
        while f.done < total {
            let progressed = self.apply_due(f.done, c);
            match self.gate(ctl, &mut f, c) {
                Gate::Open => {}
                Gate::Again => continue,
                Gate::Hold => {
                    f.held = true;
                    break;
                }
            }
            let n = self.chunk_frames(total - f.done);
            f.resampled |= !self.resampler.is_identity();
            // The sources, in order: the tail owed at an utterance's end, the replay window
            // after a device loss, the ring.
            let step = match self.phase {
                Phase::Finishing => match self.take_tail(n) {
                    Some(step) => step,
                    None => continue, // the tail is played: on to the next source
                },
                _ if self.history.replay > 0 => self.take_replay(n, &mut f),
                _ => match self.take_ring(n, data, f.done) {
                    Some(step) => step,
                    None => break,
                },
            };
            f.done += self.deliver(step, data, f.done);
            // Stop when nothing moved: the ring is dry (or the next command waits for frames
            // that have not arrived).
            if step.made == 0 && step.taken == 0 && !progressed {
                break;
            }
        }
        // Commands due exactly where this callback ended (an utterance end, a marker) are
        // heard now, not one period later.
        self.apply_due(f.done, c);
        // Whatever content the callback took out and did not flush was played (a `Sync` point
        // may have moved the content position by itself).
        f.consumed = (self.content_pos - content_before).saturating_sub(f.flushed);
        f
    }

    /// Whether the next step may render. A flush whose fade-out has ended discards what it
    /// covers first (then the step starts again); a pause whose fade has ended, or an
    /// utterance still pre-rolling, holds the output.
    fn gate(&mut self, ctl: &Controls, f: &mut Filled, c: &Counters) -> Gate {
        if let Some(upto) = self.flushing {
            if self.fade.value == 0.0 {
                f.flushed += self.discard(upto, f.done, c);
                // Still set: waiting for the flushed frames still being committed.
                return if self.flushing.is_some() {
                    Gate::Hold
                } else {
                    Gate::Again
                };
            }
        }
        if self.paused && self.fade.value == 0.0 {
            return Gate::Hold;
        }
        // A flush left to its rewrite (`read_controls`): nothing written after the flush is
        // played before the rewrite has faded what the flush covers (it would be faded too).
        if ctl.flush_seq.load(Ordering::Acquire) != self.flush_seen
            && self.cb_ns < ctl.rewrite_until_ns.load(Ordering::Acquire)
            && self.pos >= ctl.flush_upto.load(Ordering::Relaxed)
        {
            return Gate::Hold;
        }
        if self.phase == Phase::Preroll {
            let queued = (self.q.audio.slots() / self.input.frame_bytes()) as u64;
            if queued < self.preroll_frames
                && ctl.ends_written.load(Ordering::Acquire) <= self.ends_seen
            {
                return Gate::Hold;
            }
            self.phase.preroll_met();
        }
        Gate::Open
    }

    /// Output frames the next step makes at most: what the device still wants, as much as
    /// the scratch holds, and no further than where a fade-out lands (content after it must
    /// not be consumed at zero gain: a pause would lose it; a flush would misreport).
    fn chunk_frames(&self, wanted: usize) -> usize {
        let n = wanted.min(self.step_frames);
        if self.fade.fading_out() {
            n.min(self.fade.frames_left())
        } else {
            n
        }
    }

    /// Input frames the resampler may take to make `n` output frames, within `decoded`.
    fn input_frames_for(&self, n: usize) -> usize {
        self.resampler
            .max_input_for(n)
            .min(self.decoded.len() / self.input.channels)
    }

    /// Source 1, after an utterance's end: the output frames the resampler still owes for
    /// the input it took, into `resampled`. None once it owes nothing (the phase moves on).
    fn take_tail(&mut self, n: usize) -> Option<Step> {
        let made = self
            .resampler
            .finish(&mut self.resampled[..n * self.input.channels]);
        if made == 0 {
            self.phase.tail_played();
            return None;
        }
        Some(Step {
            taken: 0,
            made,
            in_device: false,
        })
    }

    /// Source 2, after a device loss: content already taken from the ring that the lost
    /// device never played, decoded into `decoded` and resampled into `resampled`.
    fn take_replay(&mut self, n: usize, f: &mut Filled) -> Step {
        let (s16, in_ch, fb) = (
            self.input.s16,
            self.input.channels,
            self.input.frame_bytes(),
        );
        let (a, b) = self.history.replay_slices(self.input_frames_for(n) * fb);
        decode_both(s16, a, b, &mut self.decoded);
        let m = (a.len() + b.len()) / fb;
        let (taken, made) = self
            .resampler
            .process(&self.decoded[..m * in_ch], &mut self.resampled[..n * in_ch]);
        self.history.replay -= taken * fb;
        f.replayed += if self.resampled_ring {
            taken as u64 * self.content_rate as u64 / self.input.rate.max(1) as u64
        } else {
            taken as u64
        };
        Step {
            taken,
            made,
            in_device: false,
        }
    }

    /// Source 3, the ring, read up to the next command that must apply between frames.
    /// Float samples at equal rates and unity gain (producer mode, or float content at the
    /// device rate) go straight into the device buffer at frame `at`, sanitised there;
    /// anything else is decoded into `decoded` and resampled into `resampled` (at equal
    /// rates decoded straight into `resampled`: a copy saved). What is taken is kept in the
    /// replay window. None if the ring cannot be read.
    fn take_ring(&mut self, n: usize, data: &mut cpal::Data, at: usize) -> Option<Step> {
        let (s16, in_ch, fb) = (
            self.input.s16,
            self.input.channels,
            self.input.frame_bytes(),
        );
        let identity = self.resampler.is_identity();
        let m = self.ring_frames_for(n, identity);
        let chunk = self.q.audio.read_chunk(m * fb).ok()?;
        let (a, b) = chunk.as_slices();
        let in_device = identity
            && !s16
            && gain::is_unity(&self.volume, &self.fade)
            && self.chan_gain.is_unity()
            && floats_into_device(a, b, in_ch, data, at, self.output.channels);
        if !in_device {
            let dst = if identity {
                &mut self.resampled
            } else {
                &mut self.decoded
            };
            decode_both(s16, a, b, dst);
        }
        let (taken, made) = if identity {
            (m, m)
        } else {
            self.resampler
                .process(&self.decoded[..m * in_ch], &mut self.resampled[..n * in_ch])
        };
        let bytes = taken * fb;
        let ua = bytes.min(a.len());
        self.history.append(&a[..ua], &b[..bytes - ua]);
        chunk.commit(bytes);
        // The callback's played count is taken from the content position at its end.
        self.advance(taken as u64);
        Some(Step {
            taken,
            made,
            in_device,
        })
    }

    /// Ring frames the next step reads: what the ring holds, up to what makes `n` output
    /// frames, and no further than the next command that must apply between frames.
    fn ring_frames_for(&mut self, n: usize, identity: bool) -> usize {
        let most = if identity {
            n
        } else {
            self.input_frames_for(n)
        };
        let until_cmd = self
            .next_cmd_at(self.pos + most as u64)
            .map_or(u64::MAX, |a| a - self.pos);
        (self.q.audio.slots() / self.input.frame_bytes())
            .min(most)
            .min(until_cmd as usize)
    }

    /// Puts a step's output into the device buffer from frame `at` (unless it is there
    /// already): straight from `resampled` at unity gain when the device format allows,
    /// else channel-mapped into `mapped`, gained, and converted to the device format.
    /// Returns the frames delivered.
    fn deliver(&mut self, step: Step, data: &mut cpal::Data, at: usize) -> usize {
        let (in_ch, out_ch, made) = (self.input.channels, self.output.channels, step.made);
        if made == 0 {
            return 0;
        }
        let resampled = &self.resampled[..made * in_ch];
        let written = step.in_device
            || self.unity_gain()
                && convert::map_into_device(resampled, in_ch, data, at * out_ch, out_ch);
        if !written {
            let mapped = &mut self.mapped[..made * out_ch];
            if !convert::map_covers_all(in_ch, out_ch) {
                mapped.fill(0.0);
            }
            convert::map_channels(resampled, in_ch, mapped, out_ch);
            // The limiter runs only when some gain in this chunk exceeds 1 (issue 16): at or
            // below 1 the output stays bit-exact (the fade never exceeds 1).
            let peak = self.volume.top() * self.chan_gain.peak(out_ch);
            gain::apply(mapped, out_ch, &mut self.volume, &mut self.fade);
            self.chan_gain.apply(mapped, out_ch);
            if peak > 1.0 {
                gain::soft_limit(mapped);
            }
            convert::write_device(mapped, data, at * out_ch);
        }
        if self.flushing.is_some() {
            // Where the fade-out has got to (reported with the Flushed event).
            self.flush_stop = self.content_pos;
        }
        made
    }

    /// No gain stage would change a sample: volume, fade, gain and pan all settled at unity
    /// (the fast paths, which copy straight into the device buffer).
    #[inline]
    fn unity_gain(&self) -> bool {
        gain::is_unity(&self.volume, &self.fade) && self.chan_gain.is_unity()
    }

    /// Gain and pan from here on (a `Cmd::GainPan` reached, or an utterance-scoped one
    /// ending), ramped over `ramp_ms` at the device rate.
    fn set_gain_pan(&mut self, gain: f32, pan: f32, ramp_ms: u32) {
        let frames = ms_to_frames(ramp_ms, self.output.rate);
        self.chan_gain.to(gain, pan, frames);
    }

    /// Underruns mean something: one per dry spell inside an utterance, never for silence
    /// while idle, paused, pre-rolling or flushing.
    fn account_underrun(&mut self, done: usize, total: usize, held: bool, c: &Counters) {
        if done < total && !held {
            if self.flow.ran_short(self.phase.in_utterance(), done > 0) {
                c.underruns.fetch_add(1, Ordering::Relaxed);
                let pos = self.content_pos;
                self.emit(EventKind::UnderrunStart, 0, pos, done, c);
            }
        } else if done == total && self.flow.ran_full() {
            let pos = self.content_pos;
            self.emit(EventKind::UnderrunEnd, 0, pos, 0, c);
        }
    }
}
