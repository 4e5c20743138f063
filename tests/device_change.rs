//! Output-device changes on the virtual device, with faults injected (issue 3; SPEC V1, V2,
//! R1-R3, P1-P3, C1). Every frame is accounted for; with replay off, the content heard across
//! a switch is exactly the content written.

mod common;

use std::time::{Duration, Instant};

use audioplay::virtual_device::VirtualHost;
use audioplay::Reason;
use audioplay::{Config, InputFormat, Player};
use common::accounting::assert_accounting_unflushed;
use common::virtual_host::{device, f32_device, on_device, render, wait_on_device, wait_until};
use cpal::SampleFormat;

fn cfg() -> Config {
    Config {
        input_format: InputFormat::F32,
        input_channels: 1,
        input_rate: 48000,
        ring_capacity_ms: 2000,
        write_timeout_ms: 0,
        device_poll_ms: 10,
        debounce_ms: 0,
        max_replay_ms: 0,
        device_query_cooldown_ms: 50,
        ..Config::default()
    }
}

/// Content frame i is (i + 1) / 2^20: exact in f32 and never zero.
fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i + 1) as f32 / 1048576.0).collect()
}

fn index_of(v: f32) -> i64 {
    (v * 1048576.0).round() as i64 - 1
}

#[test]
fn follows_the_default_device_and_loses_nothing() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 48000, 1)]);
    let p = Player::with_host(cfg(), h.cpal_host()).unwrap();
    let content = ramp(20_000);
    assert_eq!(p.write_f32(&content).unwrap(), content.len());
    let mut heard = render(&h.stream("A").unwrap(), 2400);
    h.set_default(Some("B"));
    wait_on_device(&p, "B", Duration::from_secs(2));
    assert!(h.stream("A").is_none(), "the old stream was closed");
    let b = h.stream("B").unwrap();
    p.end_utterance().unwrap(); // the ring running dry at the end is the end of speech, not an underrun
    while p.metrics().frames_queued > 0 {
        heard.extend(render(&b, 480));
    }
    heard.retain(|&v| v != 0.0);
    assert!(
        heard == content,
        "content across the switch is exactly what was written"
    );
    let m = p.metrics();
    assert_accounting_unflushed(&m);
    assert_eq!((m.recreates, m.recreate_failures, m.underruns), (2, 0, 0));
    assert_eq!(m.last_recreate_reason, Some(Reason::DeviceChanged));
    assert_eq!(m.state.generation, 2);
    assert!(m.generation_mismatches == 0 || m.render_contended == 0);
}

#[test]
fn a_device_back_at_another_rate_gets_a_new_stream() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2)]);
    let p = Player::with_host(cfg(), h.cpal_host()).unwrap();
    h.remove_device("A");
    wait_until("a failed query", Duration::from_secs(2), || {
        p.metrics().device_query_failures > 0
    });
    assert!(
        on_device(&p, "A"),
        "while queries fail, the cached device stands (V2)"
    );
    h.add_device(device("A", 16000, 1, SampleFormat::I16));
    wait_until("a 16 kHz stream", Duration::from_secs(2), || {
        p.snapshot().stream_rate == 16000 && !p.recreating()
    });
    let m = p.metrics();
    assert_eq!(m.last_recreate_reason, Some(Reason::FormatChanged));
    assert_eq!(
        (m.state.channels, m.state.format),
        (1, Some(SampleFormat::I16))
    );
}

#[test]
fn a_pinned_device_falls_back_to_the_default_and_comes_back() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 44100, 2)]);
    let p = Player::with_host(
        Config {
            device_id: Some("B".into()),
            ..cfg()
        },
        h.cpal_host(),
    )
    .unwrap();
    assert!(on_device(&p, "B"));
    h.remove_device("B");
    wait_on_device(&p, "A", Duration::from_secs(2)); // fell back to the default
    h.add_device(f32_device("B", 44100, 2));
    wait_on_device(&p, "B", Duration::from_secs(2)); // back on the pinned device
    assert_eq!(p.metrics().recreates, 3);
}

#[test]
fn a_pinned_device_that_does_not_exist_is_an_error_at_creation() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2)]);
    let e = Player::with_host(
        Config {
            device_id: Some("nope".into()),
            ..cfg()
        },
        h.cpal_host(),
    )
    .err();
    assert!(matches!(e, Some(audioplay::Error::NoDevice(_))), "{e:?}");
}

#[test]
fn failing_opens_are_retried_until_one_succeeds() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 48000, 2)]);
    let p = Player::with_host(cfg(), h.cpal_host()).unwrap();
    p.write_f32(&ramp(1000)).unwrap();
    h.fail_next_opens(2);
    h.set_default(Some("B"));
    wait_on_device(&p, "B", Duration::from_secs(3));
    let m = p.metrics();
    assert_eq!(m.recreate_failures, 2);
    assert_eq!(m.recreates, 4, "initial, two failures, one success");
    assert_eq!(m.last_recreate_reason, Some(Reason::Retry));
    assert!(!m.recreating);
    assert_accounting_unflushed(&m);
    assert_eq!(
        m.frames_queued, 1000,
        "queued audio waited for the new stream"
    );
}

#[test]
fn failing_queries_back_off_and_use_the_cached_device() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2)]);
    let c = Config {
        device_query_cooldown_ms: 300,
        ..cfg()
    };
    let p = Player::with_host(c, h.cpal_host()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = h.queries();
    h.fail_next_queries(1_000_000);
    std::thread::sleep(Duration::from_millis(1000));
    let during = h.queries() - before;
    // Polling every 10 ms would be ~100 queries; the cooldown allows about 1 per 300 ms.
    assert!(
        (2..=6).contains(&during),
        "{during} queries in 1 s of failures"
    );
    let m = p.metrics();
    assert_eq!(m.device_query_failures, during);
    assert_eq!(m.recreates, 1, "no recreate while the cached device stands");
    // A successful query is acted on at once: the first one after the cooldown that sees a
    // new device moves the stream, with no further delay.
    h.add_device(f32_device("B", 48000, 2));
    h.set_default(Some("B"));
    h.fail_next_queries(0);
    let t0 = Instant::now();
    wait_on_device(&p, "B", Duration::from_secs(2));
    assert!(
        t0.elapsed() < Duration::from_millis(450),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_hung_open_is_abandoned_after_5_s_and_a_later_recreate_succeeds() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 48000, 2)]);
    let p = Player::with_host(cfg(), h.cpal_host()).unwrap();
    h.hang_next_open(Duration::from_secs(7));
    let t0 = Instant::now();
    h.set_default(Some("B"));
    wait_until("the recreate", Duration::from_secs(1), || p.recreating());
    wait_until("recreating to clear", Duration::from_secs(6), || {
        !p.recreating()
    });
    let cleared = t0.elapsed();
    assert!(
        cleared >= Duration::from_millis(4900) && cleared < Duration::from_millis(5800),
        "{cleared:?}"
    );
    wait_on_device(&p, "B", Duration::from_secs(2));
    let m = p.metrics();
    assert_eq!(m.recreate_failures, 1);
    assert!(
        m.recreate_ms.2 >= 5000.0,
        "the timed-out recreate is in the history: {:?}",
        m.recreate_ms
    );
    // The abandoned open finishes later; its stream must not take over.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(on_device(&p, "B"));
    assert_eq!(
        h.streams("B").len(),
        1,
        "the abandoned attempt's stream was dropped"
    );
    assert_eq!(p.snapshot().generation, 3);
}

#[test]
fn a_flapping_route_causes_one_recreate() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 48000, 2)]);
    let p = Player::with_host(
        Config {
            debounce_ms: 100,
            ..cfg()
        },
        h.cpal_host(),
    )
    .unwrap();
    for i in 0..20 {
        h.set_default(Some(if i % 2 == 0 { "B" } else { "A" }));
        std::thread::sleep(Duration::from_millis(20));
    }
    h.set_default(Some("B"));
    wait_on_device(&p, "B", Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        p.metrics().recreates,
        2,
        "initial + one after the route settled"
    );
}

#[test]
fn recreates_per_minute_are_capped() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 48000, 2)]);
    let p = Player::with_host(
        Config {
            max_recreate_per_minute: 3,
            ..cfg()
        },
        h.cpal_host(),
    )
    .unwrap();
    for i in 0..25 {
        h.set_default(Some(if i % 2 == 0 { "B" } else { "A" }));
        std::thread::sleep(Duration::from_millis(60));
    }
    let m = p.metrics();
    assert_eq!(m.recreates, 4, "the initial open plus 3 in the minute");
    assert!(m.recreates_refused > 0);
    assert!(!m.recreating);
}

#[test]
fn audio_the_old_device_never_played_is_replayed_on_the_new_one() {
    let h = VirtualHost::new(vec![f32_device("A", 48000, 1), f32_device("B", 48000, 1)]);
    h.set_latency(Duration::from_millis(50));
    let p = Player::with_host(
        Config {
            max_replay_ms: 200,
            ..cfg()
        },
        h.cpal_host(),
    )
    .unwrap();
    let content = ramp(20_000);
    p.write_f32(&content).unwrap();
    let before = render(&h.stream("A").unwrap(), 4800);
    h.set_default(Some("B"));
    wait_on_device(&p, "B", Duration::from_secs(2));
    let m = p.metrics();
    let replayed = m.frames_replayed; // counted when rendered, so 0 until B renders
    assert_eq!(replayed, 0);
    let b = h.stream("B").unwrap();
    let mut after = Vec::new();
    while p.metrics().frames_queued > 0 || after.len() < 100 {
        after.extend(render(&b, 480));
    }
    after.retain(|&v| v != 0.0);
    let m = p.metrics();
    let replayed = m.frames_replayed as i64;
    // Unheard at the stop = 50 ms latency + the last 10 ms buffer - the time from the last
    // callback to the stop (one 10 ms poll plus processing, < 25 ms): 35..60 ms of content.
    assert!(
        (1680..=2880).contains(&replayed),
        "{replayed} frames replayed"
    );
    assert_eq!(index_of(before[4799]), 4799);
    assert_eq!(
        index_of(after[0]),
        4800 - replayed,
        "the new device starts where hearing stopped"
    );
    for w in after.windows(2) {
        assert_eq!(
            index_of(w[1]) - index_of(w[0]),
            1,
            "contiguous after the splice"
        );
    }
    assert_eq!(index_of(*after.last().unwrap()), 19_999);
    assert_accounting_unflushed(&m);
    assert_eq!(
        m.frames_played, 20_000,
        "replayed frames are not counted as played twice"
    );
}

#[test]
fn prefer_content_rate_uses_it_where_the_device_can_and_falls_back_where_not_a2() {
    use audioplay::PreferStreamRate;
    let h = VirtualHost::new(vec![f32_device("A", 48000, 2), f32_device("B", 22050, 2)]);
    let c = Config {
        input_rate: 22050,
        prefer_stream_rate: PreferStreamRate::Content,
        ..cfg()
    };
    let p = Player::with_host(c, h.cpal_host()).unwrap();
    let m = p.metrics();
    assert_eq!(
        m.state.stream_rate, 48000,
        "A runs only at 48 kHz: fall back and resample"
    );
    assert!(m.needs_resample());
    h.set_default(Some("B"));
    wait_on_device(&p, "B", Duration::from_secs(2));
    let m = p.metrics();
    assert_eq!(
        m.state.stream_rate, 22050,
        "B runs at the content rate: no resampling"
    );
    assert!(!m.needs_resample());
}
