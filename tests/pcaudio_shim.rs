//! espeak-ng without code changes (issue 15): bindings/pcaudio builds a libpcaudio.so.0 over
//! audioplay, and Debian's unmodified espeak-ng, put in front of it with LD_LIBRARY_PATH,
//! speaks through audioplay on a private PulseAudio server. What is heard is compared with
//! `espeak-ng -w` of the same text; a default-sink switch mid-sentence must lose nothing; a
//! libespeak-ng program (tests/pcaudio/espeak_events.c) cancels mid-sentence; espeak-ng's own
//! word events are timed against what is heard, through the shim and through Debian's
//! libpcaudio side by side.
//!
//! The shim is built here with cc against this build's libaudioplay (the cdylib next to the
//! test binary), so `cargo test --test pcaudio_shim` works alone. Needs espeak-ng and
//! libespeak-ng-dev (scripts/deps.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::analysis::locate;
use common::pulse::{PulseServer, Sink, S44, S48};
use common::speech::{
    across_switch, blockwise, build_shim, espeak_reference, extent, fade_ramp_ms, median, run_ok,
    secs, starved_in, within_fade_plus_5, StopTimeline,
};
use common::{rerun_if_starved, serial, Starvable};

const TEXT: &str = "The quick brown fox jumps over the lazy dog. \
                    Pack my box with five dozen liquor jugs.";
/// espeak-ng's own rate for its default voice.
const RATE: u32 = 22050;
const FADE_MS: f64 = 10.0;

struct Built {
    dir: PathBuf,
    events: PathBuf,
    api: PathBuf,
}

/// The shim (and the two test programs), built once per test run.
fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let dir = build_shim("pcaudio", "building the shim");
        let root = env!("CARGO_MANIFEST_DIR");
        let events = dir.join("espeak_events");
        run_ok(
            Command::new("cc")
                .args(["-O2", "-Wall", "-Werror", "-o"])
                .arg(&events)
                .arg(format!("{root}/tests/pcaudio/espeak_events.c"))
                .arg("-lespeak-ng"),
            "building espeak_events (libespeak-ng-dev)",
        );
        let api = dir.join("api_check");
        run_ok(
            Command::new("cc")
                .args(["-O2", "-Wall", "-Werror", "-o"])
                .arg(&api)
                .arg(format!("{root}/tests/pcaudio/api_check.c"))
                .arg(format!("-L{}", dir.display()))
                .arg("-l:libpcaudio.so.0")
                .arg(format!("-Wl,-rpath,{}", dir.display())),
            "building api_check",
        );
        Built { dir, events, api }
    })
}

/// A command on `server` that loads the shim instead of the system's libpcaudio.
fn via_shim(server: &PulseServer, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = server.command(program);
    c.env("LD_LIBRARY_PATH", &built().dir);
    c
}

/// What espeak-ng -w writes for `text`: the reference.
fn reference(text: &str) -> Vec<f32> {
    espeak_reference(&built().dir, text, RATE)
}

#[test]
fn espeak_ng_speaks_through_the_shim_as_espeak_ng_w_writes_it() {
    let _g = serial();
    let want = reference(TEXT);
    // The shim's queue is 60 ms deep (word events run that far ahead of the listener), so a
    // loaded machine that keeps espeak-ng off a core that long inserts a gap: a CI run heard
    // 6 of 44 blocks out of place. Such a run, as the player counts it, is run again.
    rerun_if_starved("espeak-ng through the shim", || speak_once(&want));
}

/// One run of espeak-ng through the shim, heard against `want` (what `espeak-ng -w` wrote).
fn speak_once(want: &[f32]) -> Starvable<()> {
    let server = PulseServer::start(&[S48]);
    // Recorded at espeak-ng's rate (the server resamples the monitor), to compare as is.
    let rec = server.record("s48", RATE);
    let trace = built().dir.join("trace-speak");
    let _ = std::fs::remove_file(&trace);
    let o = run_ok(
        via_shim(&server, "espeak-ng")
            .arg(TEXT)
            .env("AUDIOPLAY_PCAUDIO_TRACE", &trace),
        "espeak-ng via the shim",
    );
    let heard = rec.stop();
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tr = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(tr.contains("drain "), "espeak-ng never drained: {tr}");
    let starved = starved_in(&tr, "drain ");
    let (w0, w1) = extent(want).expect("espeak-ng -w wrote silence");
    let (h0, h1) = extent(&heard).expect("nothing was heard");
    let (lw, lh) = (secs(w1 - w0, RATE), secs(h1 - h0, RATE));
    // The whole utterance at one lag (1.0 only if nothing was inserted or lost anywhere),
    // and block by block (what each part of it sounded like).
    let (_, whole) = locate(&want[w0..=w1], &heard, h0, RATE as usize / 50);
    let (rs, slip) = blockwise(want, &heard, w0, h0, RATE);
    let low = rs.iter().filter(|&&r| r < 0.9).count();
    eprintln!(
        "espeak-ng -w: {lw:.3} s of speech; heard through the shim: {lh:.3} s; \
         correlation: whole {whole:.4}, 100 ms blocks median {:.4}, {low} of {} below 0.9; \
         the end moved {:+.1} ms against the start",
        median(&rs),
        rs.len(),
        slip as f64 * 1e3 / RATE as f64
    );
    if (lh - lw).abs() > 0.1 {
        return Err((
            format!("heard {lh:.3} s, espeak-ng -w {lw:.3} s\n{tr}"),
            starved,
        ));
    }
    if median(&rs) < 0.95 || low * 10 > rs.len() {
        return Err((
            format!("what was heard is not what espeak-ng -w wrote: {rs:.3?}\n{tr}"),
            starved,
        ));
    }
    Ok(())
}

#[test]
fn a_default_sink_switch_mid_sentence_loses_nothing() {
    let _g = serial();
    let want = reference(TEXT);
    // A starved run (the shim's trace says so) may hear a part out of place and is run again;
    // speech lost is never the machine's doing (starving plays silence, it drops nothing) and
    // fails at once.
    rerun_if_starved("a default switch through the shim", || switch_once(&want));
}

/// One run of `a_default_sink_switch_mid_sentence_loses_nothing`.
fn switch_once(want: &[f32]) -> Starvable<()> {
    let server = PulseServer::start(&[S48, S44]);
    let (rec_a, rec_b) = (server.record("s48", RATE), server.record("s44", RATE));
    let trace = built().dir.join("trace-switch");
    let _ = std::fs::remove_file(&trace);
    let child = via_shim(&server, "espeak-ng")
        .arg(TEXT)
        .env("AUDIOPLAY_PCAUDIO_TRACE", &trace)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    server.set_default("s44");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (rec_a.stop(), rec_b.stop());
    let tr = std::fs::read_to_string(&trace).unwrap_or_default();
    let heard = across_switch(want, &a, &b, RATE);
    eprintln!("{}", heard.report);
    if let Some(why) = heard.lost {
        panic!("{why}\n{}\n{tr}", heard.report);
    }
    match heard.misplaced {
        Some(why) => Err((format!("{why}\n{tr}"), starved_in(&tr, "drain "))),
        None => Ok(()),
    }
}

/// Lines of tests/pcaudio/espeak_events' output: a key and its numbers.
type Lines = Vec<(String, Vec<f64>)>;

/// What a run of tests/pcaudio/espeak_events printed: (key, numbers) lines.
fn parse_lines(out: &[u8]) -> Lines {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?.to_string();
            Some((k, it.filter_map(|v| v.parse().ok()).collect()))
        })
        .collect()
}

/// Runs espeak_events (through the shim or, `shim` false, Debian's libpcaudio) on a clocked
/// sink that is the default; returns its lines, what was played, when each sample was played
/// (CLOCK_MONOTONIC ms), and the shim's trace.
fn events_run(
    server: &PulseServer,
    shim: bool,
    args: &[&str],
) -> (Lines, Vec<f32>, Vec<f64>, String) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("hw{}", N.fetch_add(1, Ordering::SeqCst));
    let clocked = server.add_clocked_sink(&name, 48000);
    server.set_default(&name);
    let trace = built().dir.join(format!("trace-{name}"));
    let _ = std::fs::remove_file(&trace);
    let mut c = if shim {
        via_shim(server, &built().events)
    } else {
        server.command(&built().events)
    };
    let o = run_ok(
        c.args(args).env("AUDIOPLAY_PCAUDIO_TRACE", &trace),
        "espeak_events",
    );
    let (heard, times) = clocked.stop_timed();
    let tr = std::fs::read_to_string(&trace).unwrap_or_default();
    (parse_lines(&o.stdout), heard, times, tr)
}

/// A server whose only null sink is a spare: the clocked sinks added later are the devices.
fn spare_server() -> PulseServer {
    PulseServer::start(&[Sink {
        name: "spare",
        rate: 48000,
        channels: 2,
    }])
}

/// Word events' drift: each event's delivery time minus when its first sample was heard
/// (negative: espeak-ng announced the word before the listener heard it), in ms.
fn word_drift(
    lines: &[(String, Vec<f64>)],
    heard: &[f32],
    times: &[f64],
    want: &[f32],
) -> Vec<f64> {
    let (w0, w1) = extent(want).unwrap();
    let (h0, h1) = extent(heard).expect("nothing was heard");
    eprintln!(
        "speech: reference {:.3} s, heard {:.3} s of samples over {:.3} s of clock",
        secs(w1 - w0, RATE),
        (h1 - h0) as f64 / 48000.0,
        (times[h1] - times[h0]) / 1e3
    );
    // Where each word's first sample is in what was heard (the content plays without gaps:
    // the first test checks that), and when the device played it. The clocked sink's pace is
    // the reader's, not exactly 48 kHz, so the time comes from its clock, sample by sample.
    lines
        .iter()
        .filter(|(k, v)| k == "WORD" && v.len() == 2)
        .map(|(_, v)| {
            let content_s = v[1] / 1e3 - w0 as f64 / RATE as f64;
            let i = (h0 as f64 + content_s * 48000.0).round().max(0.0) as usize;
            v[0] - times[i.min(times.len() - 1)]
        })
        .collect()
}

fn stats(d: &[f64]) -> (f64, f64, f64) {
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let min = d.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (mean, min, max)
}

#[test]
fn word_events_stay_in_step_with_what_is_heard() {
    let _g = serial();
    let want = reference(TEXT);
    // The drift is read on the content's timeline as heard, which a gap would shift: a run
    // the player reports starved (a loaded CI machine gave drift growing 100-170 ms a word
    // after the ninth) is run again.
    rerun_if_starved("word events through the shim", || words_once(&want));
}

/// One run of `word_events_stay_in_step_with_what_is_heard`.
fn words_once(want: &[f32]) -> Starvable<()> {
    let server = spare_server();
    let (lines, heard, times, trace) = events_run(&server, true, &[TEXT]);
    let shim = word_drift(&lines, &heard, &times, want);
    eprintln!("shim trace:\n{trace}");
    let (lines, heard, times, _) = events_run(&server, false, &[TEXT]);
    let real = word_drift(&lines, &heard, &times, want);
    let (sm, smin, smax) = stats(&shim);
    let (rm, rmin, rmax) = stats(&real);
    eprintln!(
        "word event minus heard, ms (negative = announced before heard), {} words:\n  \
         audioplay shim:     mean {sm:+.1}, min {smin:+.1}, max {smax:+.1}\n  \
         Debian libpcaudio:  mean {rm:+.1}, min {rmin:+.1}, max {rmax:+.1}\n  \
         shim {shim:.0?}\n  pcaudiolib {real:.0?}",
        shim.len()
    );
    assert!(shim.len() >= 14, "{} word events", shim.len());
    // The queue is 60 ms and the device ~20 ms: events run at most ~100 ms ahead.
    if smin < -120.0 || smax > 40.0 {
        return Err((
            format!("word events drift {smin:+.1}..{smax:+.1} ms through the shim: {shim:.0?}"),
            starved_in(&trace, "drain "),
        ));
    }
    Ok(())
}

#[test]
fn cancel_mid_sentence_is_silent_after_the_fade() {
    let _g = serial();
    let want = reference(TEXT);
    rerun_if_starved("espeak_Cancel through the shim", || cancel_once(&want));
}

/// One cancel mid-sentence through libespeak-ng and the shim, heard against `want`.
fn cancel_once(want: &[f32]) -> Starvable<()> {
    // The null sink can rewind what it has mixed, as a hardware sink under PulseAudio's timer
    // scheduling can: the fade is heard from the frame playing at the flush.
    let server = PulseServer::start(&[S48]);
    let rec = server.record("s48", 48000);
    let trace_path = built().dir.join("trace-cancel");
    let _ = std::fs::remove_file(&trace_path);
    let o = run_ok(
        via_shim(&server, &built().events)
            .args([TEXT, "1500"])
            .env("AUDIOPLAY_PCAUDIO_TRACE", &trace_path),
        "espeak_events",
    );
    let heard = rec.stop();
    let lines = parse_lines(&o.stdout);
    let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
    let cancel = lines
        .iter()
        .find(|(k, _)| k == "CANCEL")
        .map(|(_, v)| (v[0], v[1]))
        .expect("no CANCEL line");
    // The first flush the shim was asked for (espeak-ng flushes from its synthesis thread
    // once that has stopped, then again in espeak_Cancel): when, the content frame being
    // heard then (audioplay's own estimate) and the device latency it reported.
    let field = |l: &str, k: &str| -> f64 {
        l.split(k)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {l}"))
    };
    let flush = trace
        .lines()
        .find(|l| l.contains(" flush "))
        .unwrap_or_else(|| panic!("no flush in the trace:\n{trace}"));
    let t_flush: f64 = flush.split_whitespace().next().unwrap().parse().unwrap();
    let heard_frame = field(flush, "heard_frame=");
    let latency = field(flush, "latency_ms=");
    let (w0, _) = extent(want).unwrap();
    let (h0, h1) = extent(&heard).expect("nothing was heard");
    // The last content frame heard, on espeak-ng's 22.05 kHz timeline: from where the speech
    // just before the fade sits in the reference (a server underflow earlier played a gap,
    // which counting from the first sound would add to it).
    let tl = StopTimeline::new(want, &heard, w0, h0, h1, RATE);
    let last_content = tl.content(h1);
    let after_ms = (last_content - heard_frame) * 1e3 / RATE as f64;
    // Click-free: the gain against the reference falls over the fade, not within 1 ms.
    let ramp = fade_ramp_ms(want, &heard, &tl, heard_frame);
    eprintln!(
        "espeak_Cancel called at +0; the flush reached the shim at +{:.1} ms (espeak-ng waits \
         for its synthesis thread), espeak_Cancel returned at +{:.1} ms; speech heard for \
         {after_ms:.1} ms of content past the frame heard at the flush (fade {FADE_MS} ms, \
         device latency {latency:.1} ms); gain against the reference from full to gone in \
         {ramp:?} ms; the end located at correlation {:.3}, {:.1} ms of gaps before it",
        t_flush - cancel.0,
        cancel.1 - cancel.0,
        tl.r,
        tl.shift * 1e3 / RATE as f64,
    );
    // From the frame audioplay says was being heard when the flush was asked: the fade, and
    // silence within 5 ms after it, the fade written into what the server holds
    // (`flushes_rewritten`, traced once the player's fade is over). tests/pulse_speech.rs
    // holds the library to making the rewrite.
    let rewritten = trace
        .lines()
        .find(|l| l.contains(" closed ") && l.contains("flushes_rewritten="))
        .map_or(0.0, |l| field(l, "flushes_rewritten="));
    let starved = starved_in(&trace, "drain ");
    within_fade_plus_5(after_ms, FADE_MS, rewritten, starved, "flush")?;
    if after_ms < 0.0 {
        return Err((
            format!("audio stopped before the flush: {after_ms:.1} ms"),
            starved,
        ));
    }
    match ramp {
        Some(ramp) if ramp < 5.0 => Err((
            format!("a cut, not a fade: the gain fell from 0.9 to 0.1 within {ramp:.0} ms"),
            starved,
        )),
        _ => Ok(()),
    }
}

#[test]
fn symbols_soname_and_errors_match_pcaudiolib() {
    let b = built();
    let so = b.dir.join("libpcaudio.so.0");
    let syms = |p: &Path| -> Vec<String> {
        let o = run_ok(
            Command::new("nm").args(["-D", "--defined-only"]).arg(p),
            "nm",
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let ours = syms(&so);
    let system = Path::new("/usr/lib/x86_64-linux-gnu/libpcaudio.so.0");
    if system.exists() {
        assert_eq!(
            ours,
            syms(system),
            "exported symbols differ from Debian's libpcaudio"
        );
    }
    for s in [
        "create_audio_device_object",
        "audio_object_open",
        "audio_object_write",
        "audio_object_drain",
        "audio_object_flush",
        "audio_object_close",
        "audio_object_destroy",
        "audio_object_strerror",
    ] {
        assert!(ours.iter().any(|o| o == s), "{s} not exported");
    }
    let o = run_ok(Command::new("objdump").arg("-p").arg(&so), "objdump");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("SONAME               libpcaudio.so.0"),
        "soname"
    );
    // Bad input: clear errors, no crash, nothing on stderr (no server needed).
    let o = Command::new(&b.api).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("S24LE") && out.contains("not supported"),
        "{out}"
    );
    assert!(out.contains("0 channels"), "{out}");
    assert!(out.contains("not open"), "{out}");
    assert!(out.contains("input_rate 5"), "{out}");
}
