//! applay: play speech or a test tone through audioplay from a terminal or a script.
//!
//!   espeak-ng --stdout "hello" | applay -
//!   applay one.wav two.wav
//!   applay --tone 440 --seconds 2 --rate 22050 --format s16 --channels 1
//!   applay --raw --format s16 --rate 16000 --channels 1 speech.pcm
//!   applay --list
//!
//! Uses only the library's public API. Exit codes: 0 everything was heard, 2 bad usage,
//! 3 no device, 4 bad input file, 5 playback failed, 130 interrupted (Ctrl-C).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audioplay::config::{MAX_CHANNELS, MAX_RATE, MIN_RATE};
use audioplay::{
    Config, EventKind, InputFormat, LogLevel, Player, PreferStreamRate, ResampleMode,
    ResampleQuality,
};
use clap::{CommandFactory, Parser, ValueEnum};

/// Longest tone: the tone streams, but `--virtual` keeps what it renders in memory.
const MAX_TONE_SECONDS: f64 = 3600.0;
/// Fade applied to what is playing when Ctrl-C stops playback.
const INTERRUPT_FADE_MS: u32 = 30;

#[derive(Parser)]
#[command(
    name = "applay",
    version,
    about = "Play WAV files, raw PCM or a test tone through audioplay.",
    after_help = "Exit codes: 0 everything was heard, 2 bad usage, 3 no device, 4 bad input, \
                  5 playback failed, 130 interrupted (Ctrl-C: the audio fades out and the \
                  summary is printed)."
)]
struct Args {
    /// WAV files to play, in order ('-' = standard input). Other input is refused unless
    /// --raw is given.
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// Play a sine tone of this frequency instead of files.
    #[arg(long, value_name = "HZ", value_parser = tone_hz, conflicts_with_all = ["files", "raw"])]
    tone: Option<f64>,
    /// Tone length, seconds (at most 3600).
    #[arg(long, value_name = "S", default_value_t = 2.0, value_parser = seconds, requires = "tone")]
    seconds: f64,
    /// The files are headerless PCM in --format, --rate and --channels (not WAV).
    #[arg(long)]
    raw: bool,
    /// Sample rate of --raw input or the tone.
    #[arg(long, value_name = "HZ", default_value_t = 22050, value_parser = rate)]
    rate: u32,
    /// Channels of --raw input or the tone.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = channels)]
    channels: u16,
    /// Sample format of --raw input or the tone (native endian).
    #[arg(long, value_enum, default_value_t = Format::S16)]
    format: Format,
    /// Output device id (see --list; default: the system default).
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// Speed without pitch change, 0.5 to 4 (1 = as written).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = speed)]
    speed: f32,
    /// Device latency target, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    latency: u32,
    /// Stream rate policy.
    #[arg(long, value_enum, default_value_t = Prefer::Device)]
    prefer: Prefer,
    /// Where resampling happens.
    #[arg(long, value_enum, default_value_t = Resample::Callback)]
    resample: Resample,
    /// Resampler (high is transparent for int16).
    #[arg(long, value_enum, default_value_t = Quality::Linear)]
    quality: Quality,
    /// SCHED_FIFO priority asked for the audio thread, 0 = leave it.
    #[arg(long, value_name = "N", default_value_t = Config::default().audio_thread_priority)]
    rt_priority: u32,
    /// Give up (exit 5) after this long with no output at all, 0 = never.
    #[arg(long, value_name = "MS", default_value_t = Config::default().device_lost_timeout_ms)]
    lost_timeout: u32,
    /// List the output devices (the default one is marked with *).
    #[arg(long, conflicts_with_all = ["files", "tone"])]
    list: bool,
    /// Render through the whole pipeline into this WAV instead of a device (with --list:
    /// list the virtual device).
    #[arg(long = "virtual", value_name = "OUT.wav")]
    virtual_out: Option<String>,
    /// The virtual device's rate.
    #[arg(long, value_name = "HZ", default_value_t = 48000, value_parser = rate)]
    virtual_rate: u32,
    /// The virtual device's channels.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = channels)]
    virtual_channels: u16,
    /// With --virtual: render as fast as possible, not in real time.
    #[arg(long, requires = "virtual_out")]
    fast: bool,
    /// Print the final metrics (or, with --list, the devices) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No log lines and no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// More log lines: -v what the player did (device changes, recreates), -vv debugging.
    #[arg(long, short, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    S16,
    F32,
}
#[derive(Clone, Copy, ValueEnum)]
enum Prefer {
    Content,
    Device,
}
#[derive(Clone, Copy, ValueEnum)]
enum Resample {
    Callback,
    Producer,
    Off,
}
#[derive(Clone, Copy, ValueEnum)]
enum Quality {
    Linear,
    High,
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    s: &str,
    lo: T,
    hi: T,
    unit: &str,
) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        Ok(_) => Err(format!("must be from {lo} to {hi}{unit}")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}
fn rate(s: &str) -> Result<u32, String> {
    number(s, MIN_RATE, MAX_RATE, " Hz")
}
fn channels(s: &str) -> Result<u16, String> {
    number(s, 1, MAX_CHANNELS as u16, "")
}
fn tone_hz(s: &str) -> Result<f64, String> {
    number(s, 1.0, MAX_RATE as f64 / 2.0, " Hz")
}
fn speed(s: &str) -> Result<f32, String> {
    number(s, 0.5, 4.0, "")
}
fn seconds(s: &str) -> Result<f64, String> {
    let v = number(s, 0.0, MAX_TONE_SECONDS, " seconds")?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err("must be more than 0 seconds".into())
    }
}

impl Format {
    fn input(self) -> InputFormat {
        match self {
            Format::S16 => InputFormat::S16,
            Format::F32 => InputFormat::F32,
        }
    }
}

/// What one input plays as.
#[derive(Clone, Copy, PartialEq)]
struct Shape {
    format: InputFormat,
    channels: u16,
    rate: u32,
}

impl Shape {
    fn frame_bytes(self) -> usize {
        self.channels as usize
            * match self.format {
                InputFormat::S16 => 2,
                InputFormat::F32 => 4,
            }
    }
}

struct Input {
    name: String,
    shape: Shape,
    reader: Box<dyn Read>,
    /// Frames queued from it so far.
    written: u64,
}

/// Opens `path`: a WAV file (its header gives the format), or with `raw` headerless PCM in
/// `raw_shape`. Anything else is refused.
fn open_input(path: &str, raw: Option<Shape>) -> Result<Input, String> {
    let name = if path == "-" {
        "standard input".to_string()
    } else {
        path.to_string()
    };
    let mut r: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?)
    };
    if let Some(shape) = raw {
        return Ok(Input {
            name,
            shape,
            reader: r,
            written: 0,
        });
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < 12 {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {name}: {e}")),
        }
    }
    if got < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        let what = if got == 0 {
            "it is empty".to_string()
        } else if head.starts_with(b"fLaC") {
            "it is FLAC".to_string()
        } else {
            "it has no RIFF/WAVE header".to_string()
        };
        return Err(format!(
            "{name} is not a WAV file ({what}); applay plays 16-bit or float WAV, or \
             headerless PCM with --raw --format s16|f32 --rate HZ --channels N"
        ));
    }
    let f = audioplay::internals::wav::read_header_after_riff(&mut r)
        .map_err(|e| format!("{name}: {e}"))?;
    let shape = Shape {
        format: if f.float {
            InputFormat::F32
        } else {
            InputFormat::S16
        },
        channels: f.channels,
        rate: f.rate,
    };
    if !(MIN_RATE..=MAX_RATE).contains(&shape.rate)
        || !(1..=MAX_CHANNELS as u16).contains(&shape.channels)
    {
        return Err(format!(
            "{name}: a WAV at {} Hz with {} channel(s) cannot be played (rates {MIN_RATE} to \
             {MAX_RATE} Hz, 1 to {MAX_CHANNELS} channels)",
            shape.rate, shape.channels
        ));
    }
    Ok(Input {
        name,
        shape,
        reader: r,
        written: 0,
    })
}

/// A sine tone, generated a block at a time.
struct Tone {
    hz: f64,
    shape: Shape,
    frames: u64,
    next: u64,
}

impl Read for Tone {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let fb = self.shape.frame_bytes();
        let n = ((buf.len() / fb) as u64).min(self.frames - self.next) as usize;
        let rate = self.shape.rate as f64;
        for (i, frame) in buf[..n * fb].chunks_exact_mut(fb).enumerate() {
            let t = (self.next + i as u64) as f64;
            let x = 0.5 * (2.0 * std::f64::consts::PI * self.hz * t / rate).sin();
            for s in frame.chunks_exact_mut(fb / self.shape.channels as usize) {
                match self.shape.format {
                    InputFormat::S16 => s.copy_from_slice(
                        &audioplay::internals::convert::f32_to_s16(x as f32).to_ne_bytes(),
                    ),
                    InputFormat::F32 => s.copy_from_slice(&(x as f32).to_ne_bytes()),
                }
            }
        }
        self.next += n as u64;
        Ok(n * fb)
    }
}

/// Set by the first SIGINT; a second one exits at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTED.swap(true, SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Catches SIGINT without SA_RESTART, so a blocked read returns and sees the flag.
fn catch_sigint() {
    // SAFETY: the handler only touches an atomic (async-signal-safe); the struct is zeroed
    // and then filled as sigaction(2) requires.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(SeqCst)
}

/// stderr, shared by the status line and log lines so they never interleave: a log line
/// clears the status line first, and the status thread redraws it on its next tick.
#[derive(Default)]
struct Term {
    status_shown: Mutex<bool>,
}

impl Term {
    fn line(&self, msg: &str) {
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = std::io::stderr().lock();
        if *shown {
            let _ = write!(e, "\r\x1b[K");
            *shown = false;
        }
        let _ = writeln!(e, "{msg}");
    }
    fn status(&self, msg: &str) {
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{msg}\x1b[K");
        let _ = e.flush();
        *shown = true;
    }
    fn end_status(&self) {
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        if *shown {
            let _ = writeln!(std::io::stderr());
            *shown = false;
        }
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json(m: &audioplay::Metrics, interrupted: bool) -> String {
    format!(
        "{{\"frames_written\":{},\"frames_played\":{},\"frames_queued\":{},\"frames_dropped\":{},\"frames_flushed\":{},\"underruns\":{},\"generation_mismatches\":{},\"shape_mismatches\":{},\"callbacks\":{},\"stream_rate\":{},\"device_rate\":{},\"content_rate\":{},\"channels\":{},\"device\":{},\"callback_us_p50\":{:.2},\"callback_us_p99\":{:.2},\"callback_us_max\":{:.2},\"resample_us_p95\":{:.2},\"output_latency_ms\":{:.2},\"recreates\":{},\"recreate_failures\":{},\"frames_replayed\":{},\"last_route_gap_ms\":{:.2},\"recreate_ms_max\":{:.2},\"late_callbacks\":{},\"outages\":{},\"last_outage_ms\":{},\"server_reconnects\":{},\"server_underflows\":{},\"flushes_rewritten\":{},\"server_moves\":{},\"interrupted\":{}}}",
        m.frames_written, m.frames_played, m.frames_queued, m.frames_dropped, m.frames_flushed,
        m.underruns, m.generation_mismatches, m.shape_mismatches, m.callbacks,
        m.state.stream_rate, m.state.device_rate, m.state.content_rate, m.state.channels,
        json_str(&m.state.device_id),
        m.callback_time.p50_ns as f64 / 1e3, m.callback_time.p99_ns as f64 / 1e3,
        m.callback_time.max_ns as f64 / 1e3, m.resample_time.p95_ns as f64 / 1e3,
        m.output_latency_ns as f64 / 1e6,
        m.recreates, m.recreate_failures, m.frames_replayed,
        m.last_route_gap_ms.unwrap_or(-1.0), m.recreate_ms.2, m.late_callbacks,
        m.outages, m.last_outage_ms, m.server_reconnects, m.server_underflows,
        m.flushes_rewritten, m.server_moves, interrupted,
    )
}

fn virtual_host(a: &Args) -> audioplay::virtual_device::VirtualHost {
    audioplay::virtual_device::VirtualHost::new(vec![
        audioplay::virtual_device::VirtualDeviceSpec {
            id: "virtual".into(),
            rate: a.virtual_rate,
            channels: a.virtual_channels,
            format: cpal::SampleFormat::F32,
        },
    ])
}

fn list(a: &Args) -> Result<(), (u8, String)> {
    use cpal::traits::HostTrait;
    let host = match a.virtual_out {
        Some(_) => virtual_host(a).cpal_host(),
        None => {
            audioplay::internals::device::system_host(&audioplay::Identity::default().resolve())
                .map_err(|e| (3, e))?
                .0
        }
    };
    let default = host
        .default_output_device()
        .and_then(|d| audioplay::internals::device::device_id_string(&d));
    let devices = audioplay::internals::device::list_outputs(&host).map_err(|e| (3, e))?;
    if a.json {
        let items: Vec<String> = devices
            .iter()
            .map(|d| {
                format!(
                    "{{\"id\":{},\"name\":{},\"rate\":{},\"channels\":{},\"default\":{}}}",
                    json_str(&d.id),
                    json_str(&d.name),
                    d.rate,
                    d.channels,
                    default.as_deref() == Some(d.id.as_str())
                )
            })
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for d in &devices {
            let mark = if default.as_deref() == Some(d.id.as_str()) {
                "*"
            } else {
                " "
            };
            println!(
                "{mark} {}\t{} Hz\t{} ch\t{}",
                d.id, d.rate, d.channels, d.name
            );
        }
    }
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn run(a: Args) -> Result<(), (u8, String)> {
    if a.list {
        return list(&a);
    }
    if a.files.is_empty() && a.tone.is_none() {
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "nothing to play: give WAV files ('-' = standard input), --tone HZ or --list",
            )
            .exit();
    }
    catch_sigint();
    let term = Arc::new(Term::default());
    let given = Shape {
        format: a.format.input(),
        channels: a.channels,
        rate: a.rate,
    };
    // Every input is opened (and its header checked) before anything plays.
    let mut inputs: Vec<Input> = match a.tone {
        Some(hz) => vec![Input {
            name: format!("{hz} Hz tone"),
            shape: given,
            reader: Box::new(Tone {
                hz,
                shape: given,
                frames: (a.seconds * a.rate as f64).round() as u64,
                next: 0,
            }),
            written: 0,
        }],
        None => a
            .files
            .iter()
            .map(|f| open_input(f, a.raw.then_some(given)))
            .collect::<Result<_, _>>()
            .map_err(|e| (4, e))?,
    };
    let first = inputs[0].shape;
    let quiet = a.quiet;
    let level = match a.verbose {
        0 => LogLevel::Warn,
        1 => LogLevel::Info,
        _ => LogLevel::Debug,
    };
    let log_term = term.clone();
    let cfg = Config {
        input_format: first.format,
        input_channels: first.channels,
        input_rate: first.rate,
        device_id: a.device.clone(),
        target_latency_ms: a.latency,
        prefer_stream_rate: match a.prefer {
            Prefer::Content => PreferStreamRate::Content,
            Prefer::Device => PreferStreamRate::Device,
        },
        resample_mode: match a.resample {
            Resample::Callback => ResampleMode::Callback,
            Resample::Producer => ResampleMode::Producer,
            Resample::Off => ResampleMode::Off,
        },
        resample_quality: match a.quality {
            Quality::Linear => ResampleQuality::Linear,
            Quality::High => ResampleQuality::High,
        },
        audio_thread_priority: a.rt_priority,
        device_lost_timeout_ms: a.lost_timeout,
        // Writes return at least this often, so Ctrl-C is seen while the queue is full.
        write_timeout_ms: 100,
        log_level: level,
        log_sink: Some(Arc::new(move |lvl, msg: &str| {
            if !quiet {
                let lvl = match lvl {
                    LogLevel::Error => "error",
                    LogLevel::Warn => "warning",
                    LogLevel::Info => "info",
                    LogLevel::Debug => "debug",
                };
                log_term.line(&format!("applay: {lvl}: {msg}"));
            }
        })),
        ..Config::default()
    };
    let virt = a.virtual_out.as_ref().map(|_| virtual_host(&a));
    let player = Arc::new(
        match &virt {
            Some(h) => Player::with_host(cfg, h.cpal_host()),
            None => Player::new(cfg),
        }
        .map_err(|e| (3, e.to_string()))?,
    );
    if a.speed != 1.0 {
        player.set_speed(a.speed).map_err(|e| (2, e.to_string()))?;
    }
    let ended = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // Frames whose write has returned: certainly in the ring. (`frames_written` counts a
    // write's frames before they are copied in, so it can run ahead of the ring for the
    // length of a copy.)
    let committed = Arc::new(AtomicU64::new(0));
    let renderer = virt.as_ref().map(|h| {
        spawn_renderer(
            h.clone(),
            player.clone(),
            ended.clone(),
            stop.clone(),
            committed.clone(),
            a.fast,
            a.speed != 1.0,
        )
    });
    let status = (!a.quiet && !a.json && virt.is_none() && is_terminal())
        .then(|| spawn_status(player.clone(), stop.clone(), term.clone()));
    let started = Instant::now();
    let played = play_inputs(&player, &mut inputs, &committed);
    ended.store(true, SeqCst);
    let result = match played {
        Err(e) => Err(e),
        Ok(()) if interrupted() => Ok(()),
        Ok(()) => wait_heard(&player),
    };
    if interrupted() {
        fade_out(&player);
    }
    stop.store(true, SeqCst);
    if let Some(t) = status {
        let _ = t.join();
        term.end_status();
    }
    let m = player.metrics();
    if let (Some(r), Some(path)) = (renderer, a.virtual_out.as_ref()) {
        let mut samples = r
            .join()
            .map_err(|_| (5, "the virtual renderer failed".to_string()))?;
        if !interrupted() {
            // Each utterance resampled is exactly round(frames * out / in) long (S1); what
            // the last block rendered past that is the device's silence.
            let want: u64 = inputs
                .iter()
                .map(|i| {
                    (2 * i.written * a.virtual_rate as u64 + i.shape.rate as u64)
                        / (2 * i.shape.rate as u64)
                })
                .sum();
            samples.truncate((want as usize * a.virtual_channels as usize).min(samples.len()));
        }
        let s16: Vec<i16> = samples
            .iter()
            .map(|&v| audioplay::internals::convert::f32_to_s16(v))
            .collect();
        audioplay::internals::wav::write_s16(
            std::path::Path::new(path),
            a.virtual_rate,
            a.virtual_channels,
            &s16,
        )
        .map_err(|e| (4, format!("cannot write {path}: {e}")))?;
        if !a.quiet && a.verbose > 0 {
            term.line(&format!(
                "applay: wrote {} frames to {path}",
                s16.len() / a.virtual_channels as usize
            ));
        }
    }
    if a.json {
        println!("{}", json(&m, interrupted()));
    } else if !a.quiet {
        let rate = m.state.content_rate.max(1) as f64;
        let what = if interrupted() {
            "interrupted after playing"
        } else {
            "played"
        };
        let underruns = match m.underruns {
            0 => "no underruns".to_string(),
            n => plural(n, "underrun", "underruns"),
        };
        term.line(&format!(
            "applay: {what} {:.2} s in {:.2} s on '{}' ({} Hz, {} ch); {underruns}",
            m.frames_played as f64 / rate,
            started.elapsed().as_secs_f64(),
            m.state.device_id,
            m.state.stream_rate,
            m.state.channels,
        ));
    }
    result?;
    if interrupted() {
        return Err((130, String::new()));
    }
    Ok(())
}

/// Writes every input in turn, each its own utterance (a voice change between inputs of
/// different formats). Returns early, without error, on Ctrl-C.
fn play_inputs(
    player: &Player,
    inputs: &mut [Input],
    committed: &AtomicU64,
) -> Result<(), (u8, String)> {
    let mut shape = inputs[0].shape;
    for input in inputs.iter_mut() {
        if interrupted() {
            return Ok(());
        }
        if input.shape != shape {
            shape = input.shape;
            player
                .set_input_format(shape.format, shape.channels, shape.rate)
                .map_err(|e| (4, format!("{}: {e}", input.name)))?;
        }
        let fb = shape.frame_bytes();
        let mut buf = vec![0u8; fb * 2048];
        let mut pending = Vec::new();
        loop {
            let n = match input.reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    if interrupted() {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err((4, format!("cannot read {}: {e}", input.name))),
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            let whole = pending.len() / fb * fb;
            let mut off = 0;
            while off < whole {
                if interrupted() {
                    return Ok(());
                }
                let k = player
                    .write_bytes(&pending[off..whole])
                    .map_err(|e| (5, e.to_string()))?;
                committed.fetch_add(k as u64, SeqCst);
                input.written += k as u64;
                off += k * fb;
            }
            pending.drain(..whole);
        }
        player.end_utterance().map_err(|e| (5, e.to_string()))?;
    }
    Ok(())
}

/// Waits until everything written has been heard, or Ctrl-C.
fn wait_heard(player: &Player) -> Result<(), (u8, String)> {
    while !interrupted() {
        if player
            .drain(Duration::from_millis(100))
            .map_err(|e| (5, e.to_string()))?
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Ctrl-C: what is playing fades out; returns once the fade has been heard (or after 2 s).
fn fade_out(player: &Player) {
    if player.flush(INTERRUPT_FADE_MS).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match player.poll_event() {
            Some(e) if e.kind == EventKind::Flushed => {
                let latency = Duration::from_nanos(player.position().2);
                std::thread::sleep(latency.min(Duration::from_secs(1)));
                return;
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// Plays the device clock for `--virtual`: renders 10 ms blocks, in real time or as fast as
/// the queue allows, until everything written has been rendered (or `stop`, after Ctrl-C's
/// fade). Returns the samples. Follows the player's newest stream: the player may recreate
/// it (a stall under load reads as a lost stream), and the old one, paused, renders nothing;
/// a renderer left on it stalled the audio, and with it a Ctrl-C flush, for good.
fn spawn_renderer(
    host: audioplay::virtual_device::VirtualHost,
    player: Arc<Player>,
    ended: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    fast: bool,
    stretched: bool,
) -> std::thread::JoinHandle<Vec<f32>> {
    std::thread::spawn(move || {
        let mut stream = host
            .stream("virtual")
            .expect("the player opened the virtual stream");
        let ch = stream.channels() as usize;
        let block = stream.rate() as usize / 100;
        let mut buf = vec![0.0f32; block * ch];
        let mut out = Vec::new();
        let ready = || {
            let m = player.metrics();
            let gone = m.frames_played + m.frames_flushed + m.frames_dropped;
            let ready = committed.load(SeqCst).saturating_sub(gone);
            // Stretching, a returned write's last ~30 ms of output are still in the stretch, not the
            // ring: what is queued counts only what its output put in the ring.
            if stretched {
                ready.min(player.position().1)
            } else {
                ready
            }
        };
        // Nothing is rendered before the first write, so the file starts with the content.
        while committed.load(SeqCst) == 0 && !ended.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        loop {
            let done = ended.load(SeqCst);
            let (_, queued, _) = player.position();
            if stop.load(SeqCst) || (done && queued == 0 && !interrupted()) {
                // One more block carries the resampler's tail.
                if stream.render_f32(block, &mut buf) {
                    out.extend_from_slice(&buf);
                }
                break;
            }
            if fast {
                // Only render what is there: a renderer outrunning the writer would insert
                // underrun silence the input never had.
                if !done && !interrupted() && (ready() as usize) < block * 2 {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !stream.is_playing() {
                if let Some(newest) = host.stream("virtual") {
                    stream = newest;
                }
            }
            if stream.render_f32(block, &mut buf) {
                out.extend_from_slice(&buf);
            }
        }
        out
    })
}

/// The live status line on a terminal: position, queue, underruns, device, callback p95.
fn spawn_status(
    player: Arc<Player>,
    stop: Arc<AtomicBool>,
    term: Arc<Term>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(SeqCst) {
            let m = player.metrics();
            let rate = m.state.content_rate.max(1) as f64;
            term.status(&format!(
                "{:7.2} s heard | {:6.2} s queued | {} | {} @ {} Hz",
                m.frames_heard as f64 / rate,
                m.frames_queued as f64 / rate,
                plural(m.underruns, "underrun", "underruns"),
                m.state.device_id,
                m.state.stream_rate,
            ));
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            if !msg.is_empty() {
                eprintln!("applay: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
