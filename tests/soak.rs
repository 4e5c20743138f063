//! Soak (SPEC A1, issue 7): speech-like production for a while on the system's output (the
//! PulseAudio harness scripts/reliability.sh starts): utterances of 50-300 ms chunks written
//! at irregular intervals, faster than real time on average, with pauses between them. Zero
//! underruns inside utterances, exact frame accounting, resident memory flat after warm-up.
//! Ignored by `cargo test`: it needs the server's environment from process start.

mod common;

use std::time::{Duration, Instant};

use audioplay::{Config, InputFormat, Player};
use common::accounting::{assert_accounting, assert_all_played};

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4
}

#[test]
#[ignore = "run by scripts/reliability.sh on the PulseAudio harness"]
fn soak() {
    let seconds: u64 = std::env::var("AUDIOPLAY_SOAK_SECONDS").map_or(30, |s| s.parse().unwrap());
    let p = Player::new(Config {
        input_format: InputFormat::S16,
        input_rate: 22050,
        start_threshold_ms: 100,
        ..Config::default()
    })
    .expect("player");
    let mut rng = 0x2545f4914f6cdd1du64;
    let mut next = move |lo: u64, hi: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        lo + rng % (hi - lo + 1)
    };
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(seconds);
    let (mut utterances, mut phase) = (0u64, 0.0f64);
    let mut rss_warm = None;
    while Instant::now() < end {
        let chunks = next(3, 12);
        for _ in 0..chunks {
            let ms = next(50, 300);
            let frames = (22050 * ms / 1000) as usize;
            let chunk: Vec<i16> = (0..frames)
                .map(|_| {
                    phase += 2.0 * std::f64::consts::PI * 220.0 / 22050.0;
                    (8000.0 * phase.sin()) as i16
                })
                .collect();
            assert_eq!(p.write_i16(&chunk).unwrap(), frames);
            // Faster than real time on average: 30-90% of the chunk's duration.
            std::thread::sleep(Duration::from_millis(ms * next(30, 90) / 100));
        }
        p.end_utterance().unwrap();
        utterances += 1;
        std::thread::sleep(Duration::from_millis(next(100, 800)));
        if rss_warm.is_none() && t0.elapsed() > Duration::from_secs(seconds / 4) {
            rss_warm = Some(rss_kib());
        }
        assert_accounting(&p.metrics());
    }
    assert!(p.drain(Duration::from_secs(10)).unwrap());
    let m = p.metrics();
    let rss_end = rss_kib();
    let rss_warm = rss_warm.unwrap_or(rss_end);
    println!(
        "SOAK {seconds} s: {utterances} utterances, {} frames, {} underruns, accounting exact, RSS {} KiB after warm-up -> {} KiB at end, callback p99 {:.1} us max {:.1} us",
        m.frames_played,
        m.underruns,
        rss_warm,
        rss_end,
        m.callback_time.p99_ns as f64 / 1e3,
        m.callback_time.max_ns as f64 / 1e3
    );
    assert_eq!(m.underruns, 0, "underruns inside utterances");
    assert_all_played(&m);
    assert!(
        rss_end <= rss_warm + 1024,
        "RSS grew {} KiB after warm-up",
        rss_end - rss_warm
    );
}
