//! SPEC C2/A5: the audio callback allocates and frees nothing — counted, not claimed. A
//! counting global allocator counts every allocation, reallocation and free made while the
//! device clock (this test's thread) is inside a callback, from the very first one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::time::Duration;

use audioplay::virtual_device::{VirtualDeviceSpec, VirtualHost};
use audioplay::{Config, InputFormat, Player, ResampleQuality};
use common::accounting::assert_accounting;
use common::virtual_host::{device, render, wait_on_device};
use cpal::SampleFormat;

struct Counting;

thread_local! {
    // const-initialised and without destructors: using them never allocates. Per thread, so
    // tests running in parallel do not see each other's events.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    static EVENTS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if IN_CALLBACK.with(|c| c.get()) {
        EVENTS.with(|e| e.set(e.get() + 1));
    }
}

fn events() -> u64 {
    EVENTS.with(|e| e.get())
}

fn reset_events() {
    EVENTS.with(|e| e.set(0));
}

/// Runs `f` as the device's callback: what it allocates or frees is counted.
fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    IN_CALLBACK.with(|c| c.set(true));
    let r = f();
    IN_CALLBACK.with(|c| c.set(false));
    r
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note();
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `callbacks` device callbacks of `block` frames with resampling and channel mapping
/// active, topping the ring up between callbacks (outside the counted region).
fn run(
    device: VirtualDeviceSpec,
    input: InputFormat,
    in_ch: u16,
    in_rate: u32,
    block: usize,
    callbacks: usize,
    quality: ResampleQuality,
) {
    run_with(device, input, in_ch, in_rate, block, callbacks, |c| {
        c.resample_quality = quality
    });
}

fn run_with(
    device: VirtualDeviceSpec,
    input: InputFormat,
    in_ch: u16,
    in_rate: u32,
    block: usize,
    callbacks: usize,
    tweak: impl FnOnce(&mut Config),
) {
    let (out_rate, out_ch, fmt) = (device.rate, device.channels as usize, device.format);
    let h = VirtualHost::new(vec![device]);
    let mut cfg = Config {
        input_format: input,
        input_channels: in_ch,
        input_rate: in_rate,
        write_timeout_ms: 0,
        ..Config::default()
    };
    tweak(&mut cfg);
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    let s = h.stream("v").unwrap();
    let fb = p.frame_bytes();
    let chunk = vec![0x11u8; fb * (block * in_rate as usize / out_rate as usize + 2)];
    p.write_bytes(&vec![0x11u8; fb * in_rate as usize / 2])
        .unwrap();
    let mut out = vec![0u64; block * out_ch * fmt.sample_size() / 8 + 1];
    // SAFETY: a u64 buffer is aligned for every sample type; we view its first bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            out.as_mut_ptr().cast::<u8>(),
            block * out_ch * fmt.sample_size(),
        )
    };
    reset_events();
    for _ in 0..callbacks {
        p.write_bytes(&chunk).unwrap();
        let ok = in_callback(|| s.render(block, bytes));
        assert!(ok);
    }
    let m = p.metrics();
    assert_eq!(m.callbacks as usize, callbacks);
    assert_eq!(m.underruns, 0, "the ring was kept full");
    assert!(m.frames_played > (callbacks * block) as u64 * in_rate as u64 / out_rate as u64 - 2);
    assert_eq!(events(), 0, "allocations or frees on the audio thread");
}

#[test]
fn no_allocation_resampling_mono_to_stereo_f32() {
    run(
        device("v", 48000, 2, SampleFormat::F32),
        InputFormat::S16,
        1,
        22050,
        480,
        10_000,
        ResampleQuality::Linear,
    );
}

#[test]
fn no_allocation_high_quality_resampling() {
    run(
        device("v", 48000, 2, SampleFormat::F32),
        InputFormat::S16,
        1,
        22050,
        480,
        10_000,
        ResampleQuality::High,
    );
}

#[test]
fn no_allocation_stereo_to_mono_i16_device_and_large_blocks() {
    run(
        device("v", 16000, 1, SampleFormat::I16),
        InputFormat::F32,
        2,
        24000,
        4096,
        2_000,
        ResampleQuality::High,
    );
}

#[test]
fn no_allocation_producer_resampling_high_quality() {
    run_with(
        device("v", 48000, 2, SampleFormat::F32),
        InputFormat::S16,
        1,
        22050,
        480,
        5_000,
        |c| {
            c.resample_mode = audioplay::ResampleMode::Producer;
            c.resample_quality = ResampleQuality::High;
        },
    );
}

/// SPEC S3 switching mid-run (a limit of 0 trips at the first window): the switch travels in
/// band and the callback allocates nothing on either side of it.
#[test]
fn no_allocation_across_the_s3_fallback() {
    run_with(
        device("v", 48000, 2, SampleFormat::F32),
        InputFormat::S16,
        1,
        22050,
        480,
        5_000,
        |c| {
            c.resample_p95_limit_us = 0;
            c.device_poll_ms = 10;
        },
    );
}

#[test]
fn no_allocation_six_channel_i32_device() {
    run(
        device("v", 44100, 6, SampleFormat::I32),
        InputFormat::S16,
        1,
        22050,
        441,
        10_000,
        ResampleQuality::Linear,
    );
}

#[test]
fn the_counter_does_see_allocations() {
    // Guards the guard: the same mechanism must count a real allocation.
    reset_events();
    in_callback(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(events(), 2);
}

/// A voice change swaps in decode scratch and a resampler the writer prepared; the callback
/// retires the old ones to the service thread instead of freeing them.
#[test]
fn no_allocation_across_voice_changes_high_quality() {
    let h = VirtualHost::new(vec![device("v", 48000, 2, SampleFormat::F32)]);
    let cfg = Config {
        input_rate: 22050,
        write_timeout_ms: 0,
        resample_quality: ResampleQuality::High,
        ..Config::default()
    };
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    let s = h.stream("v").unwrap();
    let mut out = vec![0.0f32; 960];
    reset_events();
    for (i, rate) in [16000u32, 24000, 22050, 44100]
        .into_iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        p.set_input_format(InputFormat::S16, 1 + (i % 2) as u16, rate)
            .unwrap();
        p.write_i16(&vec![1000i16; rate as usize / 50 * (1 + i % 2)])
            .unwrap();
        for _ in 0..3 {
            let ok = in_callback(|| s.render_f32(480, &mut out));
            assert!(ok);
        }
    }
    let m = p.metrics();
    assert_eq!(m.callback_errors, 0);
    assert_eq!(m.resample_errors, 0);
    assert!(m.frames_played > 0);
    assert_eq!(events(), 0, "allocations or frees on the audio thread");
}

/// A voice change queued before a route change to another rate: the resampler the writer
/// prepared for the old rate cannot be used, and the callback must hand it (with its period
/// tables) to the service thread rather than free it.
#[test]
fn no_free_when_a_queued_voice_change_outlives_its_device_rate() {
    let h = VirtualHost::new(vec![
        device("v", 48000, 2, SampleFormat::F32),
        device("b", 44100, 2, SampleFormat::F32),
    ]);
    let cfg = Config {
        input_rate: 22050,
        write_timeout_ms: 0,
        ..Config::default()
    };
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    p.write_i16(&[1000i16; 2205]).unwrap();
    render(&h.stream("v").unwrap(), 480);
    // Prepared for 48 kHz, still queued when the stream moves to 44.1 kHz.
    p.set_input_format(InputFormat::S16, 1, 16000).unwrap();
    p.write_i16(&[1000i16; 1600]).unwrap();
    h.set_default(Some("b"));
    wait_on_device(&p, "b", Duration::from_secs(5));
    let s = h.stream("b").unwrap();
    let mut out = vec![0.0f32; 882];
    reset_events();
    // 20 callbacks of 10 ms: past the old voice's 90 ms and into the new one.
    for _ in 0..20 {
        let ok = in_callback(|| s.render_f32(441, &mut out));
        assert!(ok);
    }
    let m = p.metrics();
    assert_eq!(m.resample_errors, 1, "the stale resampler path ran");
    assert!(m.frames_played > 2205);
    assert_eq!(events(), 0, "allocations or frees on the audio thread");
}

/// The wake from a suspend: the pre-roll of silence, then the first write, and the events the
/// callback holds back until its counters are published.
#[test]
fn no_allocation_waking_from_a_suspend_with_a_preroll() {
    let h = VirtualHost::new(vec![device("v", 48000, 2, SampleFormat::F32)]);
    let p = Player::with_host(
        Config {
            input_format: InputFormat::F32,
            input_channels: 1,
            input_rate: 22050,
            write_timeout_ms: 0,
            keep_awake_ms: 30,
            wake_preroll_ms: 50,
            ..Config::default()
        },
        h.cpal_host(),
    )
    .unwrap();
    let s = h.stream("v").unwrap();
    let mut out = vec![0f32; 480 * 2];
    p.write_f32(&vec![0.1; 2205]).unwrap();
    for _ in 0..30 {
        assert!(s.render_f32(480, &mut out));
    }
    let t0 = std::time::Instant::now();
    while s.is_playing() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(3),
            "never suspended"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    p.write_f32(&vec![0.1; 22050]).unwrap();
    p.mark(7).unwrap();
    while !s.is_playing() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(6),
            "never woke"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    reset_events();
    for _ in 0..150 {
        assert!(in_callback(|| s.render_f32(480, &mut out)));
    }
    assert_eq!(events(), 0, "allocations or frees on the audio thread");
    assert_eq!(p.metrics().frames_played, 2205 + 22050);
}

/// Issue 16 in the callback: gain and pan ramps (utterance-scoped and until changed, so the
/// revert at an utterance start runs too), the limiter engaged above unity, on a stereo
/// device with resampling; the writer trims each utterance's leading silence meanwhile.
#[test]
fn no_allocation_with_gain_pan_ramps_the_limiter_and_trim() {
    use audioplay::GainScope;
    let h = VirtualHost::new(vec![device("v", 48000, 2, SampleFormat::F32)]);
    let p = Player::with_host(
        Config {
            input_format: InputFormat::F32,
            input_channels: 1,
            input_rate: 22050,
            write_timeout_ms: 0,
            trim_threshold: 0.01,
            trim_keep_ms: 5,
            ..Config::default()
        },
        h.cpal_host(),
    )
    .unwrap();
    let s = h.stream("v").unwrap();
    let mut out = vec![0f32; 480 * 2];
    let silence = vec![0.0f32; 2205];
    let loud: Vec<f32> = (0..2205).map(|i| 0.9 * (i as f32 * 0.06).sin()).collect();
    let mut seen = 0;
    for k in 0..200 {
        // Outside the counted region: a new utterance every 10 callbacks, led by silence
        // to trim, with a scoped boost (limited) or an until-changed pan, both ramped.
        if k % 10 == 0 {
            p.end_utterance().unwrap();
            p.write_f32(&silence).unwrap();
            let (gain, pan, scope) = if k % 20 == 0 {
                (3.0, -0.7, GainScope::Utterance)
            } else {
                (0.6, 0.4, GainScope::UntilChanged)
            };
            p.set_gain_pan(gain, pan, 5, scope).unwrap();
        }
        p.write_f32(&loud[..240]).unwrap();
        reset_events();
        assert!(in_callback(|| s.render_f32(480, &mut out)));
        seen += events();
        assert!(out.iter().all(|v| v.abs() < 1.0), "limited");
    }
    assert_eq!(seen, 0, "allocations or frees on the audio thread");
    let m = p.metrics();
    assert!(m.trimmed_ms > 1000.0, "trimmed {} ms", m.trimmed_ms);
    assert_eq!(m.underruns, 0);
}

/// Issue 16 §1: speed without pitch change is done on the writing thread; the callback
/// playing stretched audio (and speed changes, and the return to the bypass) allocates
/// nothing. int16 at 22050 Hz into a 48 kHz device, so the callback resamples the stretched
/// frames too.
#[test]
fn no_allocation_while_stretching_and_changing_speed() {
    let h = VirtualHost::new(vec![device("v", 48000, 2, SampleFormat::F32)]);
    let p = Player::with_host(
        Config {
            input_format: InputFormat::S16,
            input_channels: 1,
            input_rate: 22050,
            write_timeout_ms: 0,
            ..Config::default()
        },
        h.cpal_host(),
    )
    .unwrap();
    let s = h.stream("v").unwrap();
    let mut out = vec![0f32; 480 * 2];
    let voice: Vec<i16> = (0..22050)
        .map(|i| (9000.0 * (i as f32 * 0.05).sin() * (1.0 + (i as f32 * 0.001).sin())) as i16)
        .collect();
    let speeds = [1.5f32, 2.5, 0.5, 4.0, 1.0];
    let mut seen = 0;
    let mut at = 0;
    for k in 0..300 {
        // Outside the counted region: a speed change every 20 callbacks, an utterance end
        // (the stretch's tail) every 50, writes enough to keep the ring full at 4x.
        if k % 20 == 0 {
            p.set_speed(speeds[(k / 20) % speeds.len()]).unwrap();
        }
        if k % 50 == 49 {
            p.end_utterance().unwrap();
        }
        let n = 900;
        let end = (at + n).min(voice.len());
        p.write_i16(&voice[at..end]).unwrap();
        at = if end == voice.len() { 0 } else { end };
        reset_events();
        assert!(in_callback(|| s.render_f32(480, &mut out)));
        seen += events();
    }
    assert_eq!(seen, 0, "allocations or frees on the audio thread");
    let m = p.metrics();
    assert!(m.frames_played > 50_000, "played {}", m.frames_played);
}

/// Issue 14 §6: a flush rewritten into what the device holds (PulseAudio's rewrite: the fade
/// from the frame playing now, silence after it, in the device's own format) allocates and
/// frees nothing either, nor do the callbacks that discard the flushed audio after it; and
/// what it silenced is counted flushed, not played.
#[test]
fn no_allocation_in_a_flush_rewrite() {
    for fmt in [SampleFormat::I16, SampleFormat::F32, SampleFormat::U8] {
        let h = VirtualHost::new(vec![device("v", 48000, 2, fmt)]);
        let cfg = Config {
            input_format: InputFormat::F32,
            input_channels: 1,
            input_rate: 24000,
            write_timeout_ms: 0,
            ..Config::default()
        };
        let p = Player::with_host(cfg, h.cpal_host()).unwrap();
        wait_on_device(&p, "v", Duration::from_secs(5));
        let s = h.stream("v").unwrap();
        let tone: Vec<f32> = (0..24000).map(|i| (i as f32 * 0.1).sin() * 0.5).collect();
        p.write_f32(&tone).unwrap();
        let block = 960;
        let size = fmt.sample_size();
        let mut out = vec![0u64; block * 2 * size / 8 + 1];
        // SAFETY: a u64 buffer is aligned for every sample type; we view its first bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), block * 2 * size)
        };
        for _ in 0..10 {
            assert!(s.render(block, bytes));
        }
        let before = p.metrics();
        p.flush(10).unwrap();
        reset_events();
        // The last block again, its first frame heard 2 ms ago: faded from 3 ms in, silent
        // after 13 ms (of 20).
        let (t0, _) = p.render_clock();
        assert!(in_callback(|| s.rewrite(block, bytes, 2_000_000)));
        let (t1, _) = p.render_clock();
        let after_rewrite = p.metrics();
        assert_eq!(after_rewrite.flushes_rewritten, 1, "{fmt:?}: counted");
        for _ in 0..5 {
            assert!(in_callback(|| s.render(block, bytes)));
        }
        assert_eq!(
            events(),
            0,
            "allocations or frees on the audio thread ({fmt:?})"
        );
        let m = p.metrics();
        assert_accounting(&m);
        // 7 ms of 48 kHz device frames silenced: 168 content frames at 24 kHz.
        assert_eq!(
            after_rewrite.frames_flushed - before.frames_flushed,
            (960 - 624) / 2,
            "{fmt:?}: {after_rewrite:?}"
        );
        assert_eq!(
            before.frames_played - after_rewrite.frames_played,
            (960 - 624) / 2
        );
        // The Flushed event says the silence is heard where the rewrite's fade lands (13 ms
        // after the buffer's first frame, 11 ms from the rewrite), not behind the device's
        // queue.
        let t = std::time::Instant::now();
        let flushed = loop {
            match p.poll_event() {
                Some(e) if e.kind == audioplay::EventKind::Flushed => break e,
                Some(_) => {}
                None => {
                    assert!(t.elapsed() < Duration::from_secs(5), "no Flushed event");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        // The callback's clock is the TSC scaled by a calibration the service thread
        // refreshes, the bracket's is clock_gettime: a loaded CI run put them 0.97 ms apart,
        // hence the 2 ms either way. Behind the device's queue would be 20 ms later.
        let lands = |t: u64| t - 2_000_000 + 13_000_000;
        let slack = 2_000_000;
        assert!(
            flushed.heard_ns + slack >= lands(t0) && flushed.heard_ns <= lands(t1) + slack,
            "{fmt:?}: Flushed heard at {} ns, the fade lands at {}..{}",
            flushed.heard_ns,
            lands(t0),
            lands(t1)
        );
    }
}
