//! Property test (issue 7): random sequences of API calls from several threads on the
//! virtual device: writes, markers, utterance ends, flushes, pauses, volume, voice changes,
//! device switches and metric reads, while a device thread renders random block sizes.
//! Invariants, checked continuously: frame accounting is exact, counters never go back,
//! `recreating` returns to false, markers fire at most once and in order, nothing panics.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audioplay::virtual_device::VirtualHost;
use audioplay::EventKind;
use audioplay::{Config, InputFormat, Player};
use common::accounting::assert_accounting;
use common::virtual_host::device;
use cpal::SampleFormat;

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn run(seed: u64, seconds: u64) {
    let h = VirtualHost::new(vec![
        device("A", 48000, 2, SampleFormat::F32),
        device("B", 44100, 1, SampleFormat::I16),
    ]);
    let p = Arc::new(
        Player::with_host(
            Config {
                input_rate: 22050,
                write_timeout_ms: 5,
                device_poll_ms: 10,
                debounce_ms: 0,
                max_recreate_per_minute: 600,
                max_replay_ms: 100,
                ..Config::default()
            },
            h.cpal_host(),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));

    // The device clock: renders random block sizes on whichever device is current.
    let device = {
        let (h, stop) = (h.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x51);
            let mut buf = vec![0u64; 8192];
            while !stop.load(SeqCst) {
                for id in ["A", "B"] {
                    if let Some(s) = h.stream(id) {
                        let frames = 1 + rng.next(2048) as usize;
                        let bytes = frames * s.channels() as usize * s.format().sample_size();
                        // SAFETY: a u64 buffer viewed as bytes; alignment suits every format.
                        let b = unsafe {
                            std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes)
                        };
                        s.render(frames, b);
                    }
                }
                std::thread::sleep(Duration::from_micros(500 + rng.next(3000)));
            }
        })
    };

    // Observers: metrics invariants and event order.
    let observer = {
        let (p, stop) = (p.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = p.metrics();
            let mut fired = HashSet::new();
            let mut last_marker = None;
            while !stop.load(SeqCst) {
                let m = p.metrics();
                assert_accounting(&m);
                for (a, b, what) in [
                    (last.frames_written, m.frames_written, "written"),
                    (last.frames_played, m.frames_played, "played"),
                    (last.frames_flushed, m.frames_flushed, "flushed"),
                    (last.frames_heard, m.frames_heard, "heard"),
                    (last.underruns, m.underruns, "underruns"),
                    (last.recreates, m.recreates, "recreates"),
                    (last.callbacks, m.callbacks, "callbacks"),
                ] {
                    assert!(b >= a, "{what} went back: {a} -> {b}");
                }
                while let Some(e) = p.poll_event() {
                    if e.kind == EventKind::Marker {
                        assert!(fired.insert(e.id), "marker {} fired twice", e.id);
                        assert!(
                            last_marker.is_none_or(|l| e.id > l),
                            "marker {} after {last_marker:?}",
                            e.id
                        );
                        last_marker = Some(e.id);
                    }
                }
                last = m;
                std::thread::sleep(Duration::from_millis(1));
            }
            fired.len()
        })
    };

    // The application: random calls from two threads.
    let apps: Vec<_> = (0..2)
        .map(|t| {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(t + 7) | 1);
                let mut marker = t * 1_000_000;
                while !stop.load(SeqCst) {
                    match rng.next(20) {
                        0..=8 => {
                            let frames = 1 + rng.next(3000) as usize;
                            let fb = p.frame_bytes();
                            let _ = p.write_bytes(&vec![0x20u8; frames * fb]);
                        }
                        9 => {
                            // Markers from one thread only, so "in order" is well defined.
                            if t == 0 {
                                marker += 1;
                                p.mark(marker).unwrap();
                            }
                        }
                        10 | 11 => p.end_utterance().unwrap(),
                        12 => {
                            p.flush(rng.next(20) as u32).unwrap();
                        }
                        13 => p.pause(rng.next(10) as u32),
                        14 => p.resume(rng.next(10) as u32),
                        15 => p
                            .set_volume(rng.next(200) as f32 / 100.0, rng.next(30) as u32)
                            .unwrap(),
                        16 => {
                            let (f, ch, rate) = [
                                (InputFormat::S16, 1, 22050),
                                (InputFormat::F32, 2, 24000),
                                (InputFormat::S16, 1, 16000),
                            ][rng.next(3) as usize];
                            p.set_input_format(f, ch, rate).unwrap();
                        }
                        17 => p
                            .set_device(Some(if rng.next(2) == 0 { "A" } else { "B" }))
                            .unwrap(),
                        18 => {
                            let _ = p.position();
                            let _ = p.snapshot();
                        }
                        _ => std::thread::sleep(Duration::from_millis(rng.next(5))),
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, SeqCst);
    for a in apps {
        a.join().expect("an application thread panicked");
    }
    device.join().expect("the device thread panicked");
    let markers = observer.join().expect("an invariant broke");
    let t0 = Instant::now();
    while p.recreating() {
        assert!(t0.elapsed() < Duration::from_secs(5), "recreating stuck");
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = p.metrics();
    assert_accounting(&m);
    eprintln!(
        "seed {seed}: {} written, {} played, {} flushed, {} recreates, {} markers fired, {} underruns",
        m.frames_written, m.frames_played, m.frames_flushed, m.recreates, markers, m.underruns
    );
    assert!(m.frames_played > 0 && m.recreates > 1);
}

#[test]
fn random_api_sequences_keep_every_invariant() {
    for seed in [1u64, 0x9e37_79b9, 0xdead_beef] {
        run(seed, 3);
    }
}
