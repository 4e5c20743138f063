//! SPEC C1 and the ring-ownership rule: callbacks of two generations racing on two threads,
//! with the current generation flipping under them, never pop the ring at the same time:
//! every queued sample comes out exactly once, in order within each callback.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audioplay::internals::counters::Counters;
use audioplay::internals::render::{Queues, RenderCore};
use audioplay::internals::shape::{InputShape, OutputShape};
use cpal::{OutputCallbackInfo, OutputStreamTimestamp, SampleFormat, StreamInstant};

fn callback(core: &RenderCore, generation: u64, buf: &mut [f32]) {
    let info = OutputCallbackInfo::new(OutputStreamTimestamp {
        callback: StreamInstant::new(0, 0),
        playback: StreamInstant::new(0, 0),
    });
    // SAFETY: `buf` is a live, aligned f32 buffer of exactly `buf.len()` samples.
    let mut data =
        unsafe { cpal::Data::from_parts(buf.as_mut_ptr().cast(), buf.len(), SampleFormat::F32) };
    // What the library's stream callback does first (debug builds check the role).
    let _role =
        audioplay::internals::thread_role::enter(audioplay::internals::thread_role::Role::Audio);
    core.render(generation, &mut data, &info);
}

#[test]
fn two_generations_never_pop_the_ring_concurrently() {
    const N: usize = 400_000;
    let (mut prod, cons) = rtrb::RingBuffer::<u8>::new(N * 2);
    let mut ramp = Vec::with_capacity(N * 2);
    for i in 0..N {
        // Values 1..=32767 repeating, tagged by position mod 32767: each appears N/32767 times,
        // so exact-once is checked through per-value counts below.
        ramp.extend_from_slice(&((i % 32767 + 1) as i16).to_ne_bytes());
    }
    prod.write_chunk_uninit(ramp.len())
        .unwrap()
        .fill_from_iter(ramp.iter().copied());
    let counters = Arc::new(Counters::default());
    let input = InputShape {
        s16: true,
        channels: 1,
        rate: 48000,
    };
    let (_cmd_tx, commands) = rtrb::RingBuffer::new(16);
    let (events, _ev_rx) = rtrb::RingBuffer::new(16);
    let (garbage, _garbage_rx) = rtrb::RingBuffer::new(16);
    let core = Arc::new(RenderCore::new(
        Queues {
            audio: cons,
            commands,
            events,
            garbage,
        },
        input,
        OutputShape {
            rate: 48000,
            channels: 1,
        },
        counters.clone(),
        0,
        0,
    ));
    core.publish_generation(1);

    let stop = Arc::new(AtomicBool::new(false));
    // Callbacks hold off while a flip is overdue, so a fast render path cannot play the whole
    // ring before the flipper thread is even scheduled (both generations must take turns).
    let limit = Arc::new(AtomicU64::new(1000));
    let worker = |generation: u64| {
        let core = core.clone();
        let stop = stop.clone();
        let limit = limit.clone();
        let counters = counters.clone();
        std::thread::spawn(move || {
            let mut heard = Vec::new();
            let mut buf = vec![0.0f32; 64];
            while !stop.load(SeqCst) {
                if counters.frames_played.load(SeqCst) >= limit.load(SeqCst) {
                    std::thread::yield_now();
                    continue;
                }
                callback(&core, generation, &mut buf);
                heard.extend(
                    buf.iter()
                        .filter(|&&v| v != 0.0)
                        .map(|&v| (v * 32768.0) as i32),
                );
            }
            heard
        })
    };
    let a = worker(1);
    let b = worker(2);
    // Flip the current generation every >= 500 frames played: both generations must take
    // turns (a free-running flipper can be starved on two cores), while the moment of each
    // flip still lands anywhere relative to the callbacks in flight.
    let t0 = Instant::now();
    let mut g = 1;
    let mut flipped_at = 0;
    loop {
        let played = counters.frames_played.load(SeqCst);
        if played >= N as u64 || t0.elapsed() > Duration::from_secs(60) {
            break;
        }
        if played >= flipped_at + 500 {
            g = 3 - g;
            core.publish_generation(g);
            flipped_at = played;
            limit.store(played + 1000, SeqCst);
        }
        std::thread::yield_now();
    }
    stop.store(true, SeqCst);
    let (ha, hb) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(
        counters.frames_played.load(SeqCst),
        N as u64,
        "everything was played"
    );
    assert_eq!(
        ha.len() + hb.len(),
        N,
        "every sample exactly once: no duplicate pop, no loss"
    );
    let mut counts = vec![0usize; 32768];
    for v in ha.iter().chain(&hb) {
        counts[*v as usize] += 1;
    }
    for (v, &c) in counts.iter().enumerate().skip(1) {
        let want = N / 32767 + usize::from(v - 1 < N % 32767);
        assert_eq!(c, want, "value {v}");
    }
    // Within each thread, samples are in ring order (a run never goes backwards mid-block).
    assert!(
        ha.len() > 1000 && hb.len() > 1000,
        "both generations rendered: {} / {}",
        ha.len(),
        hb.len()
    );
    assert!(counters.generation_mismatches.load(SeqCst) > 0);
}
