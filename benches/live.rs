//! Live figures (issue 5, targets 4 and 5) on a real PulseAudio server, from the library's
//! own metrics. scripts/bench.sh starts the private server and runs each section in its own
//! process (the host reads XDG_RUNTIME_DIR when created).
//!
//!   live stream SPEECH.wav SECONDS HIST.tsv  callback time, CPU of library threads
//!   live players N SPEECH.wav                RSS per extra player; N players at once
//!   live latency                             write-on-idle -> first callback; flush -> silence
//!
//! Prints `key<TAB>value` lines.

use std::time::{Duration, Instant};

use audioplay::EventKind;
use audioplay::{Config, InputFormat, Player};

fn speech(path: &str) -> Vec<i16> {
    audioplay::internals::wav::read_s16_mono(std::path::Path::new(path))
        .expect("speech WAV")
        .1
}

fn player() -> Player {
    Player::new(Config {
        input_format: InputFormat::S16,
        input_rate: 22050,
        ..Config::default()
    })
    .expect("player on the PulseAudio server")
}

/// CPU time per thread of this process other than the calling one (the engine), ns, by
/// thread name (schedstat).
fn other_threads_cpu_ns() -> std::collections::BTreeMap<String, u64> {
    // SAFETY: gettid has no arguments and cannot fail.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    let mut by = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let tid: u64 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if tid == me {
            continue;
        }
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            let ns = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            *by.entry(format!("{}#{tid}", name.trim())).or_insert(0) += ns;
        }
    }
    by
}

/// CPU time of the calling thread, ns (schedstat).
fn own_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Writes speech the way an engine does: 100 ms chunks, as fast as the ring takes them.
fn stream(p: &Player, x: &[i16], secs: f64) {
    let n = ((secs * 22050.0) as usize).min(x.len());
    for c in x[..n].chunks(2205) {
        p.write_i16(c).unwrap();
    }
    p.end_utterance().unwrap();
    p.drain(Duration::from_secs(30)).unwrap();
}

fn section_stream(path: &str, secs: f64, hist: &str) {
    let x = speech(path);
    let p = player();
    std::thread::sleep(Duration::from_millis(300));
    let counts0 = p.callback_counts();
    let cpu0 = other_threads_cpu_ns();
    let me0 = own_cpu_ns();
    let t0 = Instant::now();
    stream(&p, &x, secs);
    let wall = t0.elapsed().as_nanos() as f64;
    let cpu1 = other_threads_cpu_ns();
    // The engine's thread does nothing here but write (and wait inside the write for room):
    // all of its time is the library's too.
    let writer = own_cpu_ns() - me0;
    println!("writer_thread_cpu_pct\t{:.3}", writer as f64 / wall * 100.0);
    let mut cpu = 0;
    // By thread name (threads that share one are summed).
    let mut by_name = std::collections::BTreeMap::new();
    for (name, ns) in &cpu1 {
        let d = ns - cpu0.get(name).copied().unwrap_or(0);
        cpu += d;
        let name = name.split('#').next().unwrap_or("").to_owned();
        *by_name.entry(name).or_insert(0) += d;
    }
    for (name, d) in by_name {
        println!("thread_cpu_pct {name}\t{:.3}", d as f64 / wall * 100.0);
    }
    let m = p.metrics();
    println!("stream_seconds\t{:.2}", wall / 1e9);
    println!("callbacks\t{}", m.callbacks);
    println!(
        "callback_us_p50\t{:.2}",
        m.callback_time.p50_ns as f64 / 1e3
    );
    println!(
        "callback_us_p99\t{:.2}",
        m.callback_time.p99_ns as f64 / 1e3
    );
    println!(
        "callback_us_max\t{:.2}",
        m.callback_time.max_ns as f64 / 1e3
    );
    println!(
        "period_ms\t{:.2}",
        Config::default().target_latency_ms as f64 / 2.0
    );
    println!("underruns\t{}", m.underruns);
    println!("library_threads_cpu_pct\t{:.3}", cpu as f64 / wall * 100.0);
    // The callbacks while speech streamed (the idle ones before, the stream's first included,
    // are left out): bucket upper bounds, so p99 and max are at most that.
    let during: Vec<u64> = p
        .callback_counts()
        .iter()
        .zip(&counts0)
        .map(|(c, c0)| c - c0)
        .collect();
    let n: u64 = during.iter().sum();
    let upto = |q: f64| audioplay::internals::counters::percentile_of(&during, q);
    println!("streaming_callbacks\t{n}");
    println!("streaming_callback_us_p99\t{:.2}", upto(0.99) as f64 / 1e3);
    println!("streaming_callback_us_max\t{:.2}", upto(1.0) as f64 / 1e3);
    let mut out = String::from("upper_ns\tcount\n");
    for (i, &c) in during.iter().enumerate().filter(|b| *b.1 > 0) {
        out += &format!("{}\t{c}\n", audioplay::internals::counters::bucket_upper(i));
    }
    std::fs::write(hist, out).unwrap();
}

fn section_players(n: usize, path: &str) {
    let x = speech(path);
    let base = rss_kib();
    let first = player();
    std::thread::sleep(Duration::from_millis(500));
    let one = rss_kib();
    let mut ps = vec![first];
    for _ in 1..n {
        ps.push(player());
    }
    std::thread::sleep(Duration::from_millis(500));
    // All of them speaking at once, each from its own thread.
    std::thread::scope(|s| {
        for p in &ps {
            let x = &x;
            s.spawn(move || stream(p, x, 5.0));
        }
    });
    let all = rss_kib();
    let underruns: u64 = ps.iter().map(|p| p.metrics().underruns).sum();
    let late: u64 = ps.iter().map(|p| p.metrics().late_callbacks).sum();
    let played: u64 = ps.iter().map(|p| p.metrics().frames_played).sum();
    println!("rss_kib_before\t{base}");
    println!("rss_kib_one_player\t{one}");
    println!("rss_kib_{n}_players\t{all}");
    println!(
        "rss_kib_per_extra_player\t{:.0}",
        (all.saturating_sub(one)) as f64 / (n - 1) as f64
    );
    println!("players\t{n}");
    println!("frames_played_all\t{played}");
    println!("underruns_all\t{underruns}");
    println!("late_callbacks_all\t{late}");
}

fn section_latency() {
    let p = player();
    let tone: Vec<i16> = (0..22050)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 22050.0).sin() * 8000.0) as i16)
        .collect();
    // Warm up: the stream runs, idle, between trials.
    p.write_i16(&tone[..2205]).unwrap();
    p.drain(Duration::from_secs(2)).unwrap();
    let mut wake = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        let (t_write, _) = p.render_clock();
        p.write_i16(&tone[..1102]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let (_, cb) = p.render_clock();
            if cb > t_write {
                wake.push((cb - t_write) as f64 / 1e6);
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        p.drain(Duration::from_secs(1)).unwrap();
    }
    // Flush while a tone plays, 10 ms fade: when the callback finished the fade (the Flushed
    // event's heard time minus the device latency), from the ap_flush call.
    // And when the library says the listener hears the silence (the Flushed event's heard
    // time; on PulseAudio the flush rewrites what the server holds, issue 14 §6).
    let mut flush = Vec::new();
    let mut heard = Vec::new();
    while p.poll_event().is_some() {}
    for _ in 0..10 {
        p.write_i16(&tone).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (t_flush, _) = p.render_clock();
        p.flush(10).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Some(e) = p.poll_event() {
                if e.kind == EventKind::Flushed {
                    let lat = p.metrics().output_latency_ns;
                    flush.push((e.heard_ns.saturating_sub(lat) as f64 - t_flush as f64) / 1e6);
                    heard.push((e.heard_ns as f64 - t_flush as f64) / 1e6);
                    break;
                }
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let m = p.metrics();
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (w50, wmax) = stat(&mut wake);
    let (f50, fmax) = stat(&mut flush);
    let (h50, hmax) = stat(&mut heard);
    println!(
        "period_ms\t{:.2}",
        Config::default().target_latency_ms as f64 / 2.0
    );
    println!("write_to_first_callback_ms_p50\t{w50:.2}");
    println!("write_to_first_callback_ms_max\t{wmax:.2}");
    println!("flush_to_silence_ms_p50\t{f50:.2}");
    println!("flush_to_silence_ms_max\t{fmax:.2}");
    println!("flush_heard_silence_ms_p50\t{h50:.2}");
    println!("flush_heard_silence_ms_max\t{hmax:.2}");
    println!("flush_fade_ms\t10");
    println!("device_latency_ms\t{:.2}", m.output_latency_ns as f64 / 1e6);
}

/// Context switches (wakeups and preemptions) and CPU ns of every thread but the caller's.
fn other_threads_switches_and_cpu() -> (u64, u64) {
    // SAFETY: gettid has no arguments and cannot fail.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    let (mut sw, mut cpu) = (0, 0);
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let tid: u64 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if tid == me {
            continue;
        }
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        sw += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
        cpu += std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    (sw, cpu)
}

/// Issue 14 §5: an idle player past its keep-awake window against the same player kept
/// awake (keep_awake_ms 0, how every idle player ran before); the first frame after a wake;
/// a default change followed on the server's event with a 10 s poll.
fn section_idle() {
    let tone: Vec<i16> = (0..22050)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 22050.0).sin() * 8000.0) as i16)
        .collect();
    let window = Duration::from_secs(10);
    for (label, keep_awake_ms) in [("suspended", 1000u32), ("awake", 0)] {
        let p = Player::new(Config {
            input_format: InputFormat::S16,
            input_rate: 22050,
            keep_awake_ms,
            ..Config::default()
        })
        .expect("player on the PulseAudio server");
        p.write_i16(&tone[..11025]).unwrap();
        p.drain(Duration::from_secs(3)).unwrap();
        std::thread::sleep(Duration::from_millis(2000));
        let (s0, c0) = other_threads_switches_and_cpu();
        let t0 = Instant::now();
        std::thread::sleep(window);
        let (s1, c1) = other_threads_switches_and_cpu();
        let secs = t0.elapsed().as_secs_f64();
        println!("idle_{label}_wakeups_per_s\t{:.2}", (s1 - s0) as f64 / secs);
        println!(
            "idle_{label}_cpu_pct\t{:.4}",
            (c1 - c0) as f64 / 1e9 / secs * 100.0
        );
        if label == "suspended" {
            assert!(p.metrics().suspended, "the player did not suspend");
            let mut wake = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                while !p.metrics().suspended && t.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                p.write_i16(&tone[..4410]).unwrap();
                p.drain(Duration::from_secs(3)).unwrap();
                if let Some(ms) = p.metrics().last_wake_ms {
                    wake.push(ms);
                }
            }
            wake.sort_by(f64::total_cmp);
            println!("wake_to_first_frame_ms_p50\t{:.1}", wake[wake.len() / 2]);
            println!("wake_to_first_frame_ms_max\t{:.1}", wake[wake.len() - 1]);
        }
    }
    let p = Player::new(Config {
        input_format: InputFormat::S16,
        input_rate: 22050,
        device_poll_ms: 10_000,
        debounce_ms: 0,
        ..Config::default()
    })
    .expect("player on the PulseAudio server");
    let mut moved = Vec::new();
    for target in ["s44", "s48", "s44", "s48", "s44", "s48"] {
        p.write_i16(&tone).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let ok = std::process::Command::new("pactl")
            .args(["set-default-sink", target])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pactl set-default-sink {target}");
        while p.metrics().state.device_id != target && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_micros(500));
        }
        moved.push(t.elapsed().as_secs_f64() * 1000.0);
        p.flush(0).unwrap();
    }
    moved.sort_by(f64::total_cmp);
    println!(
        "default_change_followed_ms_p50\t{:.1}",
        moved[moved.len() / 2]
    );
    println!(
        "default_change_followed_ms_max\t{:.1}",
        moved[moved.len() - 1]
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        // `cargo test --all-targets` runs benchmarks without arguments: nothing to measure.
        eprintln!("usage: live stream|players|latency ... (run by scripts/bench.sh)");
        return;
    }
    match args[0].as_str() {
        "stream" => section_stream(&args[1], args[2].parse().unwrap(), &args[3]),
        "players" => section_players(args[1].parse().unwrap(), &args[2]),
        "latency" => section_latency(),
        "idle" => section_idle(),
        s => panic!("unknown section {s}"),
    }
}
