//! TTS control on real audio (issue 4 acceptance): barge-in, drain, markers, pause, voice
//! changes and an event-queue-only flow, on a private PulseAudio server. Each scenario runs
//! in a child process (this binary, re-executed with the server's environment from birth)
//! that reports its own timings as JSON; the parent records the sink and checks what was
//! heard against them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audioplay::{Config, Event, EventKind, InputFormat, Player};
use common::accounting::accounting_holds;
use common::analysis::{sine, sine_max_step, tone_stats, ToneStats};
use common::pulse::{per_server, starved, PulseServer, S48};
use common::{json_num, rerun_if_starved, serial};

/// Runs `scenario` in a child process while recording s48; returns (child JSON, samples).
fn run(scenario: &str) -> (String, Vec<f32>) {
    let _g = serial();
    let server = PulseServer::start(&[S48]);
    let rec = server.record("s48", 48000);
    let out = server
        .child_test("scenario_child")
        .env("AUDIOPLAY_SCENARIO", scenario)
        .output()
        .unwrap();
    let heard = rec.stop();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{scenario} child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest may print "test scenario_child ... " before the output on the same line.
    let json = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, j)| j.to_string()))
        .expect("no RESULT line");
    eprintln!("{scenario}: {json}");
    (json, heard)
}

/// `run`, for the checks a starved machine can break: a click, or a sound longer than what
/// was written, can also be the server playing silence because a period came late, which
/// the player counts (`late_callbacks`, `server_underflows`). `fine` says what is wrong with
/// a run, if anything; `common::rerun_if_starved` decides what a failing run means. `None`:
/// every run was starved (inconclusive), the test's other checks are skipped.
fn run_unstarved_for(
    scenario: &str,
    fine: impl Fn(&ToneStats, &[f32], &str) -> Result<(), String>,
) -> Option<(String, Vec<f32>, ToneStats)> {
    rerun_if_starved(scenario, || {
        let (j, heard) = run(scenario);
        let s = tone_stats(&heard, 48000).expect("nothing heard");
        let starved = starved(
            json_num(&j, "late_callbacks"),
            json_num(&j, "server_underflows"),
        );
        match fine(&s, &heard, &j) {
            Ok(()) => Ok((j, heard, s)),
            Err(why) => Err((format!("{why}; {s:?}; {j}"), starved)),
        }
    })
}

/// Whether `heard` lasts `want` seconds, within `tol`.
fn lasts(want: f64, tol: f64) -> impl Fn(&ToneStats, &[f32], &str) -> Result<(), String> {
    move |s, _, _| {
        if (s.duration - want).abs() < tol {
            Ok(())
        } else {
            Err(format!("heard {:.4} s of {want} s", s.duration))
        }
    }
}

/// `run_unstarved_for` the click checks.
fn run_unstarved(scenario: &str) -> Option<(String, Vec<f32>, ToneStats)> {
    run_unstarved_for(scenario, |s, heard, j| {
        if scenario == "flush" {
            flush_timing(s, heard, j)?;
        }
        let limit = sine_max_step(440.0, s.peak, 48000) * 1.2 + 2.0 / 32768.0;
        if s.max_step <= limit {
            Ok(())
        } else {
            Err(format!("click: step {:.4} > {limit:.4}", s.max_step))
        }
    })
}

/// The flush scenario's timing (issue 14 §6): silence within fade + 3 ms of the frame `flush`
/// reported as heard, and the fade heard as a fade. A starved machine can delay the rewrite,
/// so this is one of the checks `run_unstarved` reruns.
fn flush_timing(s: &ToneStats, heard: &[f32], j: &str) -> Result<(), String> {
    // Against the frame `flush` returned as heard at the call (the stream clock, read in the
    // call itself), not against the UtteranceStart event's arrival, whose clock was set by
    // the stream's first, prebuffering callbacks and is off by several ms either way.
    let heard_at = json_num(j, "heard_at_flush_ms") / 1000.0;
    let flush_after = json_num(j, "flush_after_start_ms") / 1000.0;
    let fade = 0.010f64;
    let slack = per_server(FLUSH_SLACK_PULSEAUDIO, FLUSH_SLACK_PIPEWIRE);
    let late = s.duration - heard_at;
    // The fade as heard: from the last sample at 90% of the tone's peak to silence.
    let end = (((s.onset + s.duration) * 48000.0) as usize).min(heard.len());
    let full = heard[..end]
        .iter()
        .rposition(|v| v.abs() >= 0.9 * s.peak as f32)
        .unwrap_or(end);
    let fade_heard = (end - full) as f64 / 48000.0;
    eprintln!(
        "heard {:.4} s; flush asked with {:.4} s heard ({:.4} s by the event clock): silent \
         {:.1} ms after ({:.1} by the event clock), the fade heard over {:.1} ms",
        s.duration,
        heard_at,
        flush_after,
        late * 1e3,
        (s.duration - flush_after) * 1e3,
        fade_heard * 1e3,
    );
    if late > fade + slack {
        return Err(format!("silence {:.1} ms after the flush", late * 1e3));
    }
    // A fade, not a cut: a cut leaves ~0 ms here. A linear 10 ms fade measures 6.9-7.9 ms:
    // its last 2% are below the silence threshold, and the 90% point is taken at the tone's
    // peaks, up to half a period (1.1 ms) early.
    if fade_heard < 0.5 * fade {
        return Err(format!(
            "the fade was heard over {:.1} ms",
            fade_heard * 1e3
        ));
    }
    Ok(())
}

/// How long past the fade a flush may take to reach silence at the sink. PulseAudio: 3 ms
/// (the library rewrites what the server holds, so the fade starts on the frame playing at the
/// call). PipeWire: pipewire-pulse has no rewrite (the library asks for it only from a server
/// named "pulseaudio"), so what the server holds plays first, then the fade: measured on
/// PipeWire 0.3.65 with a 10 ms fade, silence 29.1-36.1 ms after the frame `flush` reported
/// heard over 8 runs (19.1-26.1 ms past the fade; output latency 15.6-18.7 ms).
const FLUSH_SLACK_PULSEAUDIO: f64 = 0.003;
const FLUSH_SLACK_PIPEWIRE: f64 = 0.030;

/// How far from the last frame heard `drain` may return. PipeWire: measured 37.7-42.1 ms
/// late over 6 runs on PipeWire 0.3.65 (the drain scenario's 2 s tone), 50.3 ms on a loaded
/// CI run (two busy loops): its heard clock runs about 35 ms behind what is heard, and the
/// rest is scheduling. The bound there catches a drain that waits for nothing or for the
/// timeout, not its precision, which is a benchmark's (open: the heard clock on PipeWire).
const DRAIN_SLACK_PULSEAUDIO: f64 = 0.030;
const DRAIN_SLACK_PIPEWIRE: f64 = 0.100;

/// Runs of |x| < 1% of full scale, in seconds, in order: the silences in a recording.
fn silences(x: &[f32], rate: u32, min_s: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, v) in x.iter().enumerate() {
        match (v.abs() < 0.01, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if (i - s) as f64 / rate as f64 >= min_s {
                    out.push((s as f64 / rate as f64, i as f64 / rate as f64));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Issue 14 §6: on PulseAudio a flush rewrites what the server holds, so the fade starts on
/// the frame playing at the call: silence at the sink within fade + 3 ms of the frame
/// `flush` reported as heard, the fade heard as a fade (no step larger than the tone's own),
/// and every frame accounted for. Measured with a 10 ms fade: 8.8-10.0 ms; the code before
/// the rewrite (which waited for the next period and played what the server held first)
/// measured 18.9-26.3 ms here (16.6-17.5 ms by the event clock this test used to use).
/// On PipeWire, which has no rewrite: within fade + `FLUSH_SLACK_PIPEWIRE`, none counted.
#[test]
fn barge_in_reaches_silence_within_fade_plus_3_ms_without_a_click() {
    let Some((j, heard, s)) = run_unstarved("flush") else {
        return;
    };
    flush_timing(&s, &heard, &j).unwrap();
    let latency = json_num(&j, "output_latency_ms") / 1000.0;
    assert!(
        latency > 0.0 && latency < 0.030,
        "reported latency {latency}"
    );
    let limit = sine_max_step(440.0, s.peak, 48000) * 1.2 + 2.0 / 32768.0;
    assert!(
        s.max_step <= limit,
        "click: step {:.4} > {:.4}",
        s.max_step,
        limit
    );
    assert!(json_num(&j, "writer_returned_ms") < 100.0, "{j}");
    assert!(json_num(&j, "frames_flushed") > 0.0);
    // PipeWire: no rewrite is asked for (see FLUSH_SLACK_PIPEWIRE), and none is counted.
    assert_eq!(
        json_num(&j, "flushes_rewritten"),
        per_server(1.0, 0.0),
        "the flush was a rewrite on PulseAudio, not on PipeWire: {j}"
    );
    assert_eq!(json_num(&j, "accounting_ok"), 1.0, "{j}");
    assert_eq!(json_num(&j, "underruns"), 0.0, "{j}");
}

#[test]
fn drain_returns_when_the_last_frame_is_heard() {
    let Some((j, _, s)) = run_unstarved_for("drain", lasts(2.0, 0.02)) else {
        return;
    };
    let returned = json_num(&j, "drain_after_start_ms") / 1000.0;
    eprintln!(
        "heard {:.4} s; drain returned {:.4} s after the first frame was heard",
        s.duration, returned
    );
    assert!(
        (returned - s.duration).abs() <= per_server(DRAIN_SLACK_PULSEAUDIO, DRAIN_SLACK_PIPEWIRE),
        "drain returned {:.1} ms off the end",
        (returned - s.duration) * 1e3
    );
    assert!(
        (s.duration - 2.0).abs() < 0.02,
        "heard {:.4} s of 2 s: {j}",
        s.duration
    );
    assert_eq!(json_num(&j, "timeout_honoured"), 1.0, "{j}");
}

/// Correctness: every marker, in order, never before its frame can be heard (20 ms for the
/// latency estimate's error). How late the event thread gets to run is scheduling, not
/// correctness (issue 12: a loaded machine made it 35 ms once): a 250 ms bound catches only a
/// broken clock; the timing itself is printed here (5-13 ms measured unloaded).
#[test]
fn markers_fire_in_order_never_before_they_are_heard() {
    let Some((j, _, s)) = run_unstarved_for("markers", lasts(5.0, 0.05)) else {
        return;
    };
    assert!(
        (s.duration - 5.0).abs() < 0.05,
        "heard {:.4} s of 5 s: {j}",
        s.duration
    );
    assert_eq!(json_num(&j, "markers"), 50.0, "{j}");
    assert_eq!(json_num(&j, "in_order"), 1.0, "{j}");
    let early = json_num(&j, "worst_early_ms");
    assert!(
        early <= 20.0,
        "a marker fired {early} ms before its frame was heard"
    );
    let late = json_num(&j, "worst_late_ms");
    assert!(
        late <= 250.0,
        "a marker fired {late} ms after its frame was heard"
    );
}

#[test]
fn pause_holds_without_underrun_or_click_and_volume_ramps() {
    let Some((j, heard, s)) = run_unstarved("pause") else {
        return;
    };
    let gaps = silences(&heard, 48000, 0.5);
    let (at, _) = heard
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, (w[1] - w[0]).abs()))
        .fold((0, 0.0f32), |a, b| if b.1 > a.1 { b } else { a });
    eprintln!(
        "{s:?} silences {gaps:?}; largest step at {:.4} s: {:?}",
        at as f64 / 48000.0,
        &heard[at.saturating_sub(3)..at + 4]
    );
    assert_eq!(
        gaps.iter()
            .filter(|g| g.0 > s.onset && g.1 < s.onset + s.duration)
            .count(),
        1,
        "one pause: {gaps:?}"
    );
    let pause = gaps.iter().find(|g| g.0 > s.onset).unwrap();
    assert!(
        (pause.1 - pause.0 - 1.0).abs() < 0.05,
        "paused {:.3} s",
        pause.1 - pause.0
    );
    let limit = sine_max_step(440.0, s.peak, 48000) * 1.2 + 2.0 / 32768.0;
    assert!(
        s.max_step <= limit,
        "click: step {:.4} > {:.4}",
        s.max_step,
        limit
    );
    assert_eq!(json_num(&j, "underruns"), 0.0, "{j}");
    assert_eq!(json_num(&j, "position_frozen"), 1.0, "{j}");
    // 1 s before + 3 s after the pause = 4 s of content, all heard.
    assert!(
        (s.duration - pause.1 + pause.0 - 4.0).abs() < 0.05,
        "{}",
        s.duration
    );
}

#[test]
fn voice_changes_play_each_part_at_its_pitch_without_a_recreate() {
    // The length and each part's pitch: a starved server's silence can stretch the one
    // and shift the parts under the other.
    let Some((j, _, _)) = run_unstarved_for("voice", |s, heard, _| {
        lasts(3.0, 0.03)(s, heard, "")?;
        let start = (s.onset * 48000.0) as usize;
        for (k, want) in [440.0, 660.0, 880.0].iter().enumerate() {
            let part = &heard[start + k * 48000 + 4800..start + (k + 1) * 48000 - 4800];
            let f = tone_stats(part, 48000).map_or(0.0, |t| t.freq);
            if (f - want).abs() > 1.0 {
                return Err(format!("part {k}: {f:.2} Hz, want {want}"));
            }
        }
        Ok(())
    }) else {
        return;
    };
    assert_eq!(json_num(&j, "recreates"), 1.0, "{j}");
}

#[test]
fn idle_suspend_engages_and_the_next_utterance_is_heard_within_100_ms() {
    let (j, heard) = run("idle");
    assert!(tone_stats(&heard, 48000).is_some());
    assert_eq!(json_num(&j, "suspended"), 1.0, "{j}");
    let wake = json_num(&j, "write_to_heard_ms");
    assert!(wake <= 100.0, "first audio {wake} ms after the write");
    let reported = json_num(&j, "last_wake_ms");
    assert!(reported > 0.0 && reported <= 100.0, "{j}");
}

#[test]
fn event_queue_only_flow_go_style() {
    let (j, heard) = run("poll");
    assert!(tone_stats(&heard, 48000).is_some());
    assert_eq!(json_num(&j, "ok"), 1.0, "{j}");
}

/// Events with the wall time the sink delivered them.
type Log = Arc<Mutex<Vec<(Event, Instant)>>>;

fn player_with_log(tweak: impl FnOnce(&mut Config)) -> (Arc<Player>, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let mut cfg = Config {
        input_format: InputFormat::F32,
        input_rate: 24000,
        write_timeout_ms: 10_000,
        event_sink: Some(Arc::new(move |e: &Event| {
            l.lock().unwrap().push((*e, Instant::now()))
        })),
        ..Config::default()
    };
    tweak(&mut cfg);
    (Arc::new(Player::new(cfg).expect("player")), log)
}

fn wait_event(log: &Log, kind: EventKind) -> Instant {
    let t0 = Instant::now();
    loop {
        if let Some((_, t)) = log.lock().unwrap().iter().find(|(e, _)| e.kind == kind) {
            return *t;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no {kind:?} event");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The scenarios, run by the tests above in a child process.
#[test]
#[ignore = "run by the tests in this file in a child process"]
fn scenario_child() {
    let scenario = std::env::var("AUDIOPLAY_SCENARIO").expect("run by the pulse_speech tests");
    let result = match scenario.as_str() {
        "flush" => {
            let (p, log) = player_with_log(|_| {});
            let w = {
                let p = p.clone();
                // 5 s into a 2 s ring: this writer blocks for space.
                std::thread::spawn(move || {
                    let n = p.write_f32(&sine(440.0, 24000, 5 * 24000, 0.5)).unwrap();
                    (n, Instant::now())
                })
            };
            let start = wait_event(&log, EventKind::UtteranceStart);
            std::thread::sleep(Duration::from_millis(1000));
            let t = Instant::now();
            let heard = p.flush(10).unwrap();
            let (_, returned) = w.join().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let m = p.metrics();
            format!(
                "{{\"flush_after_start_ms\":{:.2},\"heard_at_flush_ms\":{:.3},\"writer_returned_ms\":{:.2},\"frames_flushed\":{},\"underruns\":{},\"accounting_ok\":{},\"output_latency_ms\":{:.2},\"late_callbacks\":{},\"server_underflows\":{},\"flushes_rewritten\":{}}}",
                (t - start).as_secs_f64() * 1e3,
                heard as f64 / 24.0,
                returned.saturating_duration_since(t).as_secs_f64() * 1e3,
                m.frames_flushed,
                m.underruns,
                accounting_holds(&m) as u32,
                m.output_latency_ns as f64 / 1e6,
                m.late_callbacks,
                m.server_underflows,
                m.flushes_rewritten
            )
        }
        "drain" => {
            let (p, log) = player_with_log(|_| {});
            p.write_f32(&sine(440.0, 24000, 2 * 24000, 0.5)).unwrap();
            let t = Instant::now();
            assert!(
                !p.drain(Duration::from_millis(100)).unwrap(),
                "a 100 ms drain of 2 s must time out"
            );
            // It returned before the end (it said false); how soon after its 100 ms is
            // scheduling, so only a bound far from both is checked.
            let timeout_ok = t.elapsed() < Duration::from_millis(1000);
            assert!(p.drain(Duration::from_secs(10)).unwrap());
            let done = Instant::now();
            let start = wait_event(&log, EventKind::UtteranceStart);
            let m = p.metrics();
            format!(
                "{{\"drain_after_start_ms\":{:.2},\"timeout_honoured\":{},\"late_callbacks\":{},\"server_underflows\":{}}}",
                (done - start).as_secs_f64() * 1e3,
                timeout_ok as u32,
                m.late_callbacks,
                m.server_underflows
            )
        }
        "markers" => {
            let (p, log) = player_with_log(|_| {});
            let t = sine(440.0, 24000, 5 * 24000, 0.5);
            for (k, chunk) in t.chunks(2400).enumerate() {
                p.mark(k as u64).unwrap();
                p.write_f32(chunk).unwrap();
            }
            assert!(p.drain(Duration::from_secs(10)).unwrap());
            std::thread::sleep(Duration::from_millis(50));
            let log = log.lock().unwrap();
            let start = log
                .iter()
                .find(|(e, _)| e.kind == EventKind::UtteranceStart)
                .unwrap()
                .1;
            let marks: Vec<&(Event, Instant)> = log
                .iter()
                .filter(|(e, _)| e.kind == EventKind::Marker)
                .collect();
            let in_order = marks.iter().enumerate().all(|(k, (e, _))| e.id == k as u64);
            // Marker k's frame is heard k * 100 ms after the first frame.
            let off: Vec<f64> = marks
                .iter()
                .map(|(e, t)| ((*t - start).as_secs_f64() - e.id as f64 * 0.1) * 1e3)
                .collect();
            let early = off.iter().fold(0.0f64, |m, &d| m.max(-d));
            let late = off.iter().fold(0.0f64, |m, &d| m.max(d));
            let m = p.metrics();
            format!(
                "{{\"markers\":{},\"in_order\":{},\"worst_early_ms\":{early:.2},\"worst_late_ms\":{late:.2},\"late_callbacks\":{},\"server_underflows\":{}}}",
                marks.len(),
                in_order as u32,
                m.late_callbacks,
                m.server_underflows
            )
        }
        "pause" => {
            let (p, log) = player_with_log(|_| {});
            let w = {
                let p = p.clone();
                std::thread::spawn(move || {
                    p.write_f32(&sine(440.0, 24000, 4 * 24000, 0.5)).unwrap();
                    p.end_utterance().unwrap(); // the engine has written it all
                })
            };
            wait_event(&log, EventKind::UtteranceStart);
            std::thread::sleep(Duration::from_millis(1000));
            p.pause(10);
            std::thread::sleep(Duration::from_millis(200));
            let a = p.metrics().frames_played;
            std::thread::sleep(Duration::from_millis(600));
            let b = p.metrics().frames_played;
            std::thread::sleep(Duration::from_millis(200));
            p.resume(10);
            // A volume ramp mid-tone: must not step.
            std::thread::sleep(Duration::from_millis(500));
            p.set_volume(0.5, 50).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            p.set_volume(1.0, 50).unwrap();
            w.join().unwrap();
            assert!(p.drain(Duration::from_secs(10)).unwrap());
            let m = p.metrics();
            format!(
                "{{\"underruns\":{},\"position_frozen\":{},\"late_callbacks\":{},\"server_underflows\":{}}}",
                m.underruns,
                (a == b) as u32,
                m.late_callbacks,
                m.server_underflows
            )
        }
        "voice" => {
            let (p, _) = player_with_log(|c| {
                c.input_format = InputFormat::S16;
                c.input_rate = 22050;
                c.start_threshold_ms = 200;
            });
            let s16 = |x: Vec<f32>| {
                x.iter()
                    .map(|&v| (v * 32767.0) as i16)
                    .collect::<Vec<i16>>()
            };
            p.write_i16(&s16(sine(440.0, 22050, 22050, 0.5))).unwrap();
            p.set_input_format(InputFormat::F32, 2, 24000).unwrap();
            p.write_f32(
                &sine(660.0, 24000, 24000, 0.5)
                    .iter()
                    .flat_map(|&v| [v, v])
                    .collect::<Vec<f32>>(),
            )
            .unwrap();
            p.set_input_format(InputFormat::S16, 1, 16000).unwrap();
            p.write_i16(&s16(sine(880.0, 16000, 16000, 0.5))).unwrap();
            assert!(p.drain(Duration::from_secs(10)).unwrap());
            let m = p.metrics();
            format!(
                "{{\"recreates\":{},\"underruns\":{},\"late_callbacks\":{},\"server_underflows\":{}}}",
                m.recreates, m.underruns, m.late_callbacks, m.server_underflows
            )
        }
        "idle" => {
            let (p, log) = player_with_log(|c| c.idle_suspend_ms = 200);
            p.write_f32(&sine(440.0, 24000, 12000, 0.5)).unwrap();
            assert!(p.drain(Duration::from_secs(5)).unwrap());
            std::thread::sleep(Duration::from_millis(800));
            let suspended = p.metrics().suspended;
            log.lock().unwrap().clear();
            let t = Instant::now();
            p.write_f32(&sine(440.0, 24000, 12000, 0.5)).unwrap();
            p.end_utterance().unwrap();
            let heard = wait_event(&log, EventKind::UtteranceStart);
            assert!(p.drain(Duration::from_secs(5)).unwrap());
            std::thread::sleep(Duration::from_millis(50));
            format!(
                "{{\"suspended\":{},\"write_to_heard_ms\":{:.2},\"last_wake_ms\":{:.2}}}",
                suspended as u32,
                (heard - t).as_secs_f64() * 1e3,
                p.metrics().last_wake_ms.unwrap_or(-1.0)
            )
        }
        "poll" => {
            // Go-style: no callbacks at all, only the event queue.
            let p = Player::new(Config {
                input_format: InputFormat::F32,
                input_rate: 24000,
                ..Config::default()
            })
            .unwrap();
            let t = sine(440.0, 24000, 24000, 0.5);
            p.mark(1).unwrap();
            p.write_f32(&t[..12000]).unwrap();
            p.mark(2).unwrap();
            p.write_f32(&t[12000..]).unwrap();
            p.end_utterance().unwrap();
            let mut seen = Vec::new();
            let t0 = Instant::now();
            while !seen.contains(&EventKind::UtteranceEnd) && t0.elapsed() < Duration::from_secs(5)
            {
                match p.poll_event() {
                    Some(e) => seen.push(e.kind),
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            let want = [
                EventKind::UtteranceStart,
                EventKind::Marker,
                EventKind::Marker,
                EventKind::UtteranceEnd,
            ];
            p.write_f32(&t).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            p.flush(5).unwrap();
            let t1 = Instant::now();
            let mut flushed = false;
            while !flushed && t1.elapsed() < Duration::from_secs(2) {
                match p.poll_event() {
                    Some(e) => flushed = e.kind == EventKind::Flushed,
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            format!(
                "{{\"ok\":{},\"events\":\"{seen:?}\"}}",
                (seen == want && flushed) as u32
            )
        }
        s => panic!("unknown scenario {s}"),
    };
    println!("RESULT {result}");
}
