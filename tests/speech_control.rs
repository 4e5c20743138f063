//! TTS control on the virtual device, sample-exact (issue 4): markers and utterance events,
//! barge-in with a click-free fade, pause and volume ramps, pre-roll, in-band voice changes,
//! device choice, and the whole flow driven through the event queue alone (Go-style).

mod common;

use std::time::{Duration, Instant};

use audioplay::virtual_device::VirtualHost;
use audioplay::{Config, InputFormat, Player};
use audioplay::{Event, EventKind};
use common::accounting::assert_accounting;
use common::analysis::sine;
use common::virtual_host::{events_until, f32_device, max_step, render, render_blocks};

const RATE: u32 = 48000;

fn host() -> VirtualHost {
    VirtualHost::new(vec![f32_device("v", RATE, 1), f32_device("w", RATE, 2)])
}

fn player(h: &VirtualHost, tweak: impl FnOnce(&mut Config)) -> Player {
    common::virtual_host::speech_player(h, tweak)
}

#[test]
fn markers_and_utterance_events_fire_in_order_at_their_frames_go_style() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, 4800, 0.5);
    for k in 0..10u64 {
        p.mark(100 + k).unwrap();
        p.write_f32(&tone[..480]).unwrap(); // 10 ms between markers
    }
    p.end_utterance().unwrap();
    render(&s, 9600);
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::UtteranceEnd));
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::UtteranceStart), "{ev:?}");
    assert_eq!(kinds.last(), Some(&EventKind::UtteranceEnd), "{ev:?}");
    let marks: Vec<&Event> = ev.iter().filter(|e| e.kind == EventKind::Marker).collect();
    assert_eq!(marks.len(), 10);
    for (k, m) in marks.iter().enumerate() {
        assert_eq!(
            (m.id, m.frame),
            (100 + k as u64, 480 * k as u64),
            "marker {k}"
        );
    }
    for w in ev.windows(2) {
        assert!(w[1].heard_ns >= w[0].heard_ns, "events in time order");
    }
    // (Heard times against real playback are checked on PulseAudio: this device renders
    // faster than real time.)
    assert_eq!(
        p.metrics().underruns,
        0,
        "the end of the utterance is not an underrun"
    );
}

#[test]
fn barge_in_fades_out_without_a_click_and_accounts_every_frame() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, RATE as usize, 0.5);
    p.write_f32(&tone).unwrap();
    p.mark(7).unwrap();
    p.write_f32(&tone[..4800]).unwrap();
    let before = render(&s, 4800);
    let heard = p.flush(10).unwrap();
    assert!(heard <= 4800, "heard frame {heard}");
    let after = render(&s, 4800);
    let fade = 480; // 10 ms at 48 kHz
    assert!(
        after[fade..].iter().all(|&v| v == 0.0),
        "silent after the fade"
    );
    assert!(
        after[..fade - 1].iter().any(|&v| v.abs() > 0.1),
        "the fade plays out the tone"
    );
    let mut joined = before.clone();
    joined.extend_from_slice(&after[..fade + 10]);
    let tone_step = max_step(&tone);
    assert!(
        max_step(&joined) <= tone_step * 1.001,
        "no click: {} > {tone_step}",
        max_step(&joined)
    );
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::Flushed));
    let f = ev.iter().find(|e| e.kind == EventKind::Flushed).unwrap();
    assert_eq!(
        f.frame,
        4800 + fade as u64,
        "the fade ended {fade} frames on"
    );
    assert!(
        !ev.iter().any(|e| e.kind == EventKind::Marker),
        "markers in flushed audio never fire"
    );
    let m = p.metrics();
    assert_accounting(&m);
    assert_eq!(m.frames_flushed, 48000 + 4800 - 4800 - fade as u64);
    assert_eq!((m.frames_queued, m.markers_flushed, m.underruns), (0, 1, 0));
    // The next utterance plays normally.
    p.write_f32(&tone[..960]).unwrap();
    let next = render(&s, 960);
    assert_eq!(&next[..], &tone[..960]);
}

#[test]
fn flush_releases_a_blocked_writer() {
    let h = host();
    let p = std::sync::Arc::new(player(&h, |c| {
        c.ring_capacity_ms = 100;
        c.write_timeout_ms = 10_000;
    }));
    let w = {
        let p = p.clone();
        std::thread::spawn(move || p.write_f32(&vec![0.1; 20_000]).unwrap())
    };
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    p.flush(0).unwrap();
    let queued = w.join().unwrap();
    assert_eq!(queued, 4800, "returned with what it queued");
    assert!(t0.elapsed() < Duration::from_millis(100));
}

#[test]
fn pause_fades_holds_position_and_counts_no_underrun() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, RATE as usize, 0.5);
    p.write_f32(&tone).unwrap();
    let a = render(&s, 4800);
    p.pause(5);
    let b = render(&s, 960);
    let pos = p.metrics().frames_played;
    let c = render(&s, 48000); // a second paused
    assert!(c.iter().all(|&v| v == 0.0));
    assert_eq!(
        p.metrics().frames_played,
        pos,
        "position frozen while paused"
    );
    p.resume(5);
    let d = render(&s, 4800);
    let mut all = a.clone();
    all.extend(&b);
    all.extend(&d);
    assert!(
        max_step(&all) <= max_step(&tone) * 1.001,
        "no click at pause or resume"
    );
    assert!(b[240..].iter().all(|&v| v == 0.0), "faded out within 5 ms");
    assert_eq!(p.metrics().underruns, 0);
    // The content continues where it paused: nothing skipped.
    assert_eq!(p.metrics().frames_played, pos + 4800);
}

#[test]
fn volume_ramps_without_a_step() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let dc = vec![0.5f32; 9600];
    p.write_f32(&dc).unwrap();
    render(&s, 480);
    p.set_volume(0.25, 10).unwrap();
    let out = render(&s, 960);
    assert!(
        (out[0] - 0.5).abs() < 1e-3 && (out[959] - 0.125).abs() < 1e-6,
        "{} {}",
        out[0],
        out[959]
    );
    let step = max_step(&out);
    assert!(
        step <= 0.375 / 480.0 * 1.01,
        "steps of at most 1/480 of the change: {step}"
    );
    assert!(p.set_volume(f32::NAN, 0).is_err() && p.set_volume(5.0, 0).is_err());
}

#[test]
fn pre_roll_holds_an_utterance_until_enough_is_queued() {
    let h = host();
    let p = player(&h, |c| c.start_threshold_ms = 100);
    let s = h.stream("v").unwrap();
    p.write_f32(&vec![0.5; 2400]).unwrap(); // 50 ms: below the threshold
    assert!(render(&s, 960).iter().all(|&v| v == 0.0), "held");
    p.write_f32(&vec![0.5; 2400]).unwrap(); // now 100 ms
    assert!(render(&s, 960).iter().all(|&v| v == 0.5), "playing");
    assert_eq!(
        p.metrics().underruns,
        0,
        "pre-roll silence is not an underrun"
    );
    // A short utterance that ends below the threshold still plays.
    render(&s, 4800);
    p.write_f32(&vec![0.25; 480]).unwrap();
    p.end_utterance().unwrap();
    assert!(render(&s, 480).iter().all(|&v| v == 0.25));
}

#[test]
fn voice_changes_in_band_play_each_part_at_its_rate_without_a_recreate() {
    let h = host();
    let p = player(&h, |c| {
        c.input_format = InputFormat::S16;
        c.input_rate = 22050;
        // Bytes sized for s16 mono; the f32 stereo part takes 4x the bytes per frame.
        c.ring_capacity_ms = 10_000;
    });
    let s = h.stream("v").unwrap();
    let s16 = |x: &[f32]| {
        x.iter()
            .map(|&v| (v * 32767.0) as i16)
            .collect::<Vec<i16>>()
    };
    p.write_i16(&s16(&sine(440.0, 22050, 22050, 0.5))).unwrap();
    p.set_input_format(InputFormat::F32, 2, 24000).unwrap();
    let st: Vec<f32> = sine(660.0, 24000, 24000, 0.5)
        .iter()
        .flat_map(|&v| [v, v])
        .collect();
    p.write_f32(&st).unwrap();
    p.set_input_format(InputFormat::S16, 1, 16000).unwrap();
    p.write_i16(&s16(&sine(880.0, 16000, 16000, 0.5))).unwrap();
    p.end_utterance().unwrap();
    let out = render(&s, 3 * 48000 + 4800);
    let freq = |x: &[f32]| {
        let z: Vec<usize> = (1..x.len())
            .filter(|&i| x[i - 1] < 0.0 && x[i] >= 0.0)
            .collect();
        (z.len() - 1) as f64 * RATE as f64 / (z[z.len() - 1] - z[0]) as f64
    };
    for (k, want) in [440.0, 660.0, 880.0].iter().enumerate() {
        let part = &out[k * 48000 + 2400..(k + 1) * 48000 - 2400];
        let f = freq(part);
        assert!((f - want).abs() < 1.0, "part {k}: {f} Hz, want {want}");
    }
    let heard = out.iter().rposition(|&v| v != 0.0).unwrap() + 1;
    assert!(
        (heard as i64 - 3 * 48000).abs() <= 3,
        "{heard} frames for 3 s"
    );
    let m = p.metrics();
    assert_eq!(m.recreates, 1, "no recreate");
    assert_eq!(m.frames_written, 22050 + 24000 + 16000);
    assert_accounting(&m);
}

#[test]
fn set_device_moves_playback_and_reports_it() {
    let h = host();
    let p = player(&h, |_| {});
    p.write_f32(&vec![0.5; 9600]).unwrap();
    render(&h.stream("v").unwrap(), 480);
    p.set_device(Some("w")).unwrap();
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::DeviceChanged));
    assert!(
        ev.iter()
            .any(|e| e.kind == EventKind::DeviceChanged && e.id == 2),
        "{ev:?}"
    );
    assert_eq!(p.snapshot().device_id, "w");
    assert!(
        render(&h.stream("w").unwrap(), 480)
            .iter()
            .all(|&v| v == 0.5),
        "queued audio continues"
    );
    assert!(matches!(
        p.set_device(Some("nope")),
        Err(audioplay::Error::NoDevice(_))
    ));
    assert_eq!(
        p.metrics().last_recreate_reason,
        Some(audioplay::Reason::Requested)
    );
}

#[test]
fn drain_honours_its_timeout() {
    let h = host();
    let p = player(&h, |_| {});
    p.write_f32(&vec![0.5; 4800]).unwrap();
    let t0 = Instant::now();
    assert!(
        !p.drain(Duration::from_millis(50)).unwrap(),
        "nothing renders: it cannot finish"
    );
    assert!(t0.elapsed() < Duration::from_millis(200));
}

#[test]
fn idle_suspend_pauses_the_stream_and_a_write_resumes_it() {
    let h = host();
    let p = player(&h, |c| c.idle_suspend_ms = 100);
    let s = h.stream("v").unwrap();
    p.write_f32(&vec![0.5; 480]).unwrap();
    p.end_utterance().unwrap();
    render(&s, 960);
    let t0 = Instant::now();
    while s.is_playing() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let slept = t0.elapsed();
    assert!(!s.is_playing() && p.metrics().suspended, "suspended");
    assert!(
        slept >= Duration::from_millis(80) && slept < Duration::from_millis(400),
        "{slept:?}"
    );
    p.write_f32(&vec![0.25; 480]).unwrap();
    let t1 = Instant::now();
    while !s.is_playing() && t1.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        t1.elapsed() < Duration::from_millis(50),
        "resumed in {:?}",
        t1.elapsed()
    );
    assert!(
        render(&s, 480).iter().all(|&v| v == 0.25),
        "the new utterance plays"
    );
    let t2 = Instant::now();
    while p.metrics().last_wake_ms.is_none() && t2.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        p.metrics().last_wake_ms.is_some_and(|ms| ms < 100.0),
        "{:?}",
        p.metrics().last_wake_ms
    );
    assert!(!p.metrics().suspended);
}

#[test]
fn producer_side_resampling_gives_the_callback_ready_frames_u2() {
    use audioplay::ResampleMode;
    let content: Vec<i16> = sine(440.0, 22050, 22050, 0.5)
        .iter()
        .map(|&v| (v * 32767.0) as i16)
        .collect();
    let mut outs = Vec::new();
    for mode in [ResampleMode::Callback, ResampleMode::Producer] {
        let h = VirtualHost::new(vec![f32_device("v", RATE, 2)]);
        let p = player(&h, |c| {
            c.input_format = InputFormat::S16;
            c.input_rate = 22050;
            c.resample_mode = mode;
        });
        assert_eq!(
            p.write_i16(&content).unwrap(),
            22050,
            "{mode:?} reports content frames"
        );
        p.end_utterance().unwrap();
        let out = render(&h.stream("v").unwrap(), 48000 + 960);
        let m = p.metrics();
        assert_accounting(&m);
        assert_eq!(m.underruns, 0);
        // Frame counters count content frames in every mode (issue 12).
        assert_eq!(m.frames_written, 22050, "{mode:?} {m:?}");
        assert_eq!(m.frames_played, 22050, "{mode:?} {m:?}");
        assert_eq!(m.frames_queued, 0, "{mode:?} {m:?}");
        if mode == ResampleMode::Producer {
            // The ring held stream-rate frames: the callback resampled nothing.
            assert!(m.resample_time.max_ns < 200_000, "{:?}", m.resample_time);
        }
        outs.push(out);
    }
    assert!(
        outs[0] == outs[1],
        "producer-side output equals callback-side output"
    );
}

/// Issue 12: with the writer resampling, positions, markers and counters are all in the
/// content frames the application wrote, at every point of playback, not in stream frames.
#[test]
fn producer_resampling_counts_content_frames_everywhere() {
    use audioplay::ResampleMode;
    let h = VirtualHost::new(vec![f32_device("v", RATE, 1)]);
    let p = player(&h, |c| {
        c.input_format = InputFormat::S16;
        c.input_rate = 16000;
        c.resample_mode = ResampleMode::Producer;
    });
    let s = h.stream("v").unwrap();
    let tone: Vec<i16> = sine(440.0, 16000, 1600, 0.5)
        .iter()
        .map(|&v| (v * 32767.0) as i16)
        .collect();
    // Ten writes of 100 ms with a marker after each.
    for i in 0..10u64 {
        assert_eq!(p.write_i16(&tone).unwrap(), 1600);
        p.mark(i).unwrap();
    }
    p.end_utterance().unwrap();
    assert_eq!(p.metrics().frames_written, 16000);
    let mut last = p.metrics();
    let mut markers = Vec::new();
    for _ in 0..110 {
        render(&s, 480); // 10 ms
        let m = p.metrics();
        assert_accounting(&m);
        assert!(m.frames_played >= last.frames_played && m.frames_heard >= last.frames_heard);
        // 10 ms of a 16 kHz voice is 160 content frames (a few more at a Sync point).
        assert!(
            m.frames_played - last.frames_played <= 160 + 16,
            "{last:?} -> {m:?}"
        );
        last = m;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while markers.len() < 10 && Instant::now() < deadline {
        match p.poll_event() {
            Some(e) if e.kind == EventKind::Marker => markers.push(e.frame),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    assert_eq!(last.frames_played, 16000, "{last:?}");
    assert_eq!(last.frames_queued, 0);
    assert_eq!(last.state.content_rate, 16000);
    let want: Vec<u64> = (1..=10).map(|i| i * 1600).collect();
    assert_eq!(markers, want, "marker frames are content frames");
}

/// A voice change without a stream recreate: the content rate that metrics, the lock-free
/// snapshot (`ap_snapshot_state`) and `needs_resample` report follows what is being heard.
#[test]
fn content_rate_follows_a_voice_change() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    p.write_f32(&sine(440.0, RATE, 4800, 0.5)).unwrap();
    p.set_input_format(InputFormat::F32, 1, 16000).unwrap();
    p.write_f32(&sine(440.0, 16000, 1600, 0.5)).unwrap();
    p.end_utterance().unwrap();
    let before = p.metrics();
    assert_eq!(before.state.content_rate, RATE);
    assert_eq!(p.snapshot().content_rate, RATE);
    assert!(!before.needs_resample(), "{before:?}");
    // 100 ms at 48 kHz plays the first voice out; the next 10 ms are the second.
    render(&s, 4800 + 480);
    let after = p.metrics();
    assert_eq!(after.state.content_rate, 16000, "{after:?}");
    assert_eq!(p.snapshot().content_rate, 16000);
    assert!(after.needs_resample(), "{after:?}");
    assert_eq!(
        after.state.stream_rate, RATE,
        "no recreate: the stream is the same"
    );
    assert_eq!(after.recreates, before.recreates);
    render(&s, 4800);
    let end = p.metrics();
    assert_eq!(end.frames_played, 4800 + 1600, "{end:?}");
}

/// Barge-in as a screen reader does it: flush, and write the next utterance at once, before
/// the callback has faded the old one out. The next utterance begins after the flush with its
/// own start and end events, and a second flush with nothing to fade reports where it
/// stopped, not where the first one did.
#[test]
fn the_utterance_written_right_after_a_flush_has_its_events() {
    let h = host();
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, RATE as usize, 0.5);
    p.write_f32(&tone[..9600]).unwrap();
    p.end_utterance().unwrap();
    render(&s, 960);
    p.flush(10).unwrap();
    p.write_f32(&tone[..4800]).unwrap();
    p.end_utterance().unwrap();
    render(&s, 9600);
    let ev = events_until(&p, |e| {
        e.iter()
            .filter(|e| e.kind == EventKind::UtteranceEnd)
            .count()
            >= 1
    });
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::UtteranceStart,
            EventKind::Flushed,
            EventKind::UtteranceStart,
            EventKind::UtteranceEnd
        ],
        "{ev:?}"
    );
    let (flushed_at, second_start, second_end) = (ev[1].frame, ev[2].frame, ev[3].frame);
    assert!((960..=960 + 480 + 480).contains(&flushed_at), "{ev:?}");
    assert_eq!(second_start, 9600, "content frames: after all of the first");
    assert_eq!(second_end, 9600 + 4800, "{ev:?}");
    let m = p.metrics();
    assert_eq!(m.frames_played + m.frames_flushed, 9600 + 4800, "{m:?}");
    assert_accounting(&m);
    // Idle now: a flush has nothing to fade, and stops where playback is.
    p.flush(10).unwrap();
    render(&s, 480);
    let again = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::Flushed));
    let f = again.iter().find(|e| e.kind == EventKind::Flushed).unwrap();
    assert_eq!(f.frame, 9600 + 4800, "{again:?}");
}

/// A host reading the metrics when an event arrives finds what the event reports already
/// counted: the frames a `Flushed` discarded are in `frames_flushed`, even while the callback
/// that discarded them is still rendering (here one long callback resampling what came after
/// the flush). Events pushed mid-callback let applay print flushed audio as queued.
#[test]
fn metrics_count_what_an_event_reports_before_it_arrives() {
    let h = host();
    let p = std::sync::Arc::new(player(&h, |c| {
        c.input_rate = 22050;
        c.resample_quality = audioplay::ResampleQuality::High;
        c.ring_capacity_ms = 30_000;
    }));
    let s = h.stream("v").unwrap();
    let before = sine(440.0, 22050, 11025, 0.5);
    p.write_f32(&before).unwrap();
    render(&s, 480);
    p.flush(0).unwrap();
    let after = sine(440.0, 22050, 22050 * 20, 0.5);
    p.write_f32(&after).unwrap();
    let watcher = {
        let p = p.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                match p.poll_event() {
                    Some(e) if e.kind == EventKind::Flushed => {
                        let m = p.metrics();
                        return Some((m.frames_flushed, m.frames_played));
                    }
                    Some(_) => {}
                    None => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            None
        })
    };
    let t0 = Instant::now();
    render_blocks(&s, 48000 * 20, 48000 * 20);
    let spent = t0.elapsed();
    let (flushed, played) = watcher.join().unwrap().expect("a Flushed event");
    let m = p.metrics();
    assert!(m.frames_flushed > 0, "{m:?}");
    assert_eq!(
        (flushed, played > 0),
        (m.frames_flushed, true),
        "at the Flushed event (the callback took {spent:?})"
    );
}

/// Past the keep-awake window the stream is suspended (the virtual stream paused); the next
/// write wakes it, and with `wake_preroll_ms` that much silence plays before the first frame
/// (for sinks that wake slowly), which then plays whole; without it, the first frame is first.
#[test]
fn a_suspended_stream_wakes_on_write_with_its_preroll_of_silence() {
    for preroll_ms in [0u32, 100] {
        let h = host();
        let p = player(&h, |c| {
            c.keep_awake_ms = 50;
            c.wake_preroll_ms = preroll_ms;
        });
        let s = h.stream("v").unwrap();
        p.write_f32(&vec![0.25; 480]).unwrap();
        render(&s, 960);
        let t0 = Instant::now();
        while s.is_playing() {
            assert!(t0.elapsed() < Duration::from_secs(3), "never suspended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(p.metrics().suspended);
        let speech = vec![0.5f32; 9600];
        p.write_f32(&speech).unwrap();
        let t0 = Instant::now();
        while !s.is_playing() {
            assert!(t0.elapsed() < Duration::from_secs(3), "never woke");
            std::thread::sleep(Duration::from_millis(1));
        }
        let out = render(&s, 48000);
        let first = out.iter().position(|v| v.abs() > 0.01).expect("heard");
        let want = (preroll_ms * RATE / 1000) as usize;
        assert_eq!(first, want, "wake pre-roll {preroll_ms} ms");
        let heard = out.iter().filter(|v| (*v - 0.5).abs() < 1e-6).count();
        assert_eq!(heard, speech.len(), "the first write after the wake, whole");
    }
}
