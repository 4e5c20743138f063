//! applay: play speech or a test tone through audioplay from a terminal or a script.
//!
//!   espeak-ng --stdout "hello" | applay -
//!   applay --tone 440 --seconds 2 --rate 22050 --format s16 --channels 1
//!   applay --list
//!
//! Uses only the library's public API. Exits 0 after everything has been heard.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use audioplay::{Config, InputFormat, Player, PreferStreamRate, ResampleMode, ResampleQuality};

struct Args {
    input: Option<String>,
    tone: Option<f64>,
    seconds: f64,
    rate: u32,
    channels: u16,
    format: InputFormat,
    device: Option<String>,
    latency_ms: u32,
    prefer: PreferStreamRate,
    resample: ResampleMode,
    quality: ResampleQuality,
    rt_priority: u32,
    lost_timeout_ms: u32,
    list: bool,
    json: bool,
    quiet: bool,
    /// Render into this WAV through the whole pipeline instead of a device.
    virtual_out: Option<String>,
    virtual_rate: u32,
    virtual_channels: u16,
    fast: bool,
}

const USAGE: &str = "usage: applay [options] [FILE|-]
  FILE|-             WAV or raw PCM to play ('-' = stdin); WAV headers set the format
  --tone HZ          play a sine tone instead of a file
  --seconds S        tone length (default 2)
  --rate HZ          raw/tone sample rate (default 22050)
  --channels N       raw/tone channels (default 1)
  --format s16|f32   raw/tone sample format (default s16)
  --device ID        output device id (default: system default)
  --latency MS       device latency target (default 20)
  --prefer content|device   stream rate policy (default device)
  --resample callback|producer|off   where resampling happens (default callback)
  --quality linear|high      resampler (default linear; high is transparent for int16)
  --rt-priority N    SCHED_FIFO priority asked for the audio thread, 0 = leave it (default 10)
  --lost-timeout MS  give up (exit 5) after this long with no output at all, 0 = never
                     (default 10000)
  --list             list output devices
  --virtual OUT.wav  render through the whole pipeline into a WAV instead of a device
  --virtual-rate HZ, --virtual-channels N   the virtual device's format (48000, 2)
  --fast             with --virtual: render as fast as possible, not in real time
  --json             print the final metrics as JSON
  --quiet            no log lines on stderr";

fn parse() -> Result<Args, String> {
    let mut a = Args {
        input: None,
        tone: None,
        seconds: 2.0,
        rate: 22050,
        channels: 1,
        format: InputFormat::S16,
        device: None,
        latency_ms: 20,
        prefer: PreferStreamRate::Device,
        resample: ResampleMode::Callback,
        quality: ResampleQuality::Linear,
        rt_priority: Config::default().audio_thread_priority,
        lost_timeout_ms: Config::default().device_lost_timeout_ms,
        list: false,
        json: false,
        quiet: false,
        virtual_out: None,
        virtual_rate: 48000,
        virtual_channels: 2,
        fast: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--tone" => a.tone = Some(val("--tone")?.parse().map_err(|_| "--tone: not a number")?),
            "--seconds" => {
                a.seconds = val("--seconds")?
                    .parse()
                    .map_err(|_| "--seconds: not a number")?
            }
            "--rate" => a.rate = val("--rate")?.parse().map_err(|_| "--rate: not a number")?,
            "--channels" => {
                a.channels = val("--channels")?
                    .parse()
                    .map_err(|_| "--channels: not a number")?
            }
            "--format" => {
                a.format = match val("--format")?.as_str() {
                    "s16" => InputFormat::S16,
                    "f32" => InputFormat::F32,
                    f => return Err(format!("--format: '{f}' is not s16 or f32")),
                }
            }
            "--device" => a.device = Some(val("--device")?),
            "--latency" => {
                a.latency_ms = val("--latency")?
                    .parse()
                    .map_err(|_| "--latency: not a number")?
            }
            "--prefer" => {
                a.prefer = match val("--prefer")?.as_str() {
                    "content" => PreferStreamRate::Content,
                    "device" => PreferStreamRate::Device,
                    p => return Err(format!("--prefer: '{p}' is not content or device")),
                }
            }
            "--resample" => {
                a.resample = match val("--resample")?.as_str() {
                    "callback" => ResampleMode::Callback,
                    "producer" => ResampleMode::Producer,
                    "off" => ResampleMode::Off,
                    p => {
                        return Err(format!(
                            "--resample: '{p}' is not callback, producer or off"
                        ))
                    }
                }
            }
            "--quality" => {
                a.quality = match val("--quality")?.as_str() {
                    "linear" => ResampleQuality::Linear,
                    "high" => ResampleQuality::High,
                    q => return Err(format!("--quality: '{q}' is not linear or high")),
                }
            }
            "--rt-priority" => {
                a.rt_priority = val("--rt-priority")?
                    .parse()
                    .map_err(|_| "--rt-priority: not a number".to_string())?
            }
            "--lost-timeout" => {
                a.lost_timeout_ms = val("--lost-timeout")?
                    .parse()
                    .map_err(|_| "--lost-timeout: not a number".to_string())?
            }
            "--list" => a.list = true,
            "--virtual" => a.virtual_out = Some(val("--virtual")?),
            "--virtual-rate" => {
                a.virtual_rate = val("--virtual-rate")?
                    .parse()
                    .map_err(|_| "--virtual-rate: not a number")?
            }
            "--virtual-channels" => {
                a.virtual_channels = val("--virtual-channels")?
                    .parse()
                    .map_err(|_| "--virtual-channels: not a number")?
            }
            "--fast" => a.fast = true,
            "--json" => a.json = true,
            "--quiet" => a.quiet = true,
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            s => a.input = Some(s.to_string()),
        }
    }
    if a.input.is_none() && a.tone.is_none() && !a.list {
        return Err(format!("nothing to play\n{USAGE}"));
    }
    Ok(a)
}

fn tone_bytes(a: &Args, hz: f64) -> Vec<u8> {
    let frames = (a.seconds * a.rate as f64).round() as usize;
    let mut out = Vec::with_capacity(frames * a.channels as usize * 4);
    for i in 0..frames {
        let x = 0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / a.rate as f64).sin();
        for _ in 0..a.channels {
            match a.format {
                InputFormat::S16 => out.extend_from_slice(
                    &audioplay::internals::convert::f32_to_s16(x as f32).to_ne_bytes(),
                ),
                InputFormat::F32 => out.extend_from_slice(&(x as f32).to_ne_bytes()),
            }
        }
    }
    out
}

fn open_input(a: &mut Args) -> Result<Box<dyn Read>, String> {
    let path = a.input.clone().unwrap_or_default();
    let mut r: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?)
    };
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < 12 {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("cannot read {path}: {e}")),
        }
    }
    if got == 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        let f = audioplay::internals::wav::read_header_after_riff(&mut r)?;
        a.rate = f.rate;
        a.channels = f.channels;
        a.format = if f.float {
            InputFormat::F32
        } else {
            InputFormat::S16
        };
        Ok(r)
    } else {
        Ok(Box::new(
            std::io::Cursor::new(head[..got].to_vec()).chain(r),
        ))
    }
}

fn json(m: &audioplay::Metrics) -> String {
    format!(
        "{{\"frames_written\":{},\"frames_played\":{},\"frames_queued\":{},\"frames_dropped\":{},\"underruns\":{},\"generation_mismatches\":{},\"shape_mismatches\":{},\"callbacks\":{},\"stream_rate\":{},\"device_rate\":{},\"content_rate\":{},\"channels\":{},\"device\":\"{}\",\"callback_us_p50\":{:.2},\"callback_us_p99\":{:.2},\"callback_us_max\":{:.2},\"resample_us_p95\":{:.2},\"output_latency_ms\":{:.2},\"recreates\":{},\"recreate_failures\":{},\"frames_replayed\":{},\"last_route_gap_ms\":{:.2},\"recreate_ms_max\":{:.2},\"late_callbacks\":{},\"outages\":{},\"last_outage_ms\":{},\"server_reconnects\":{},\"server_underflows\":{}}}",
        m.frames_written, m.frames_played, m.frames_queued, m.frames_dropped, m.underruns,
        m.generation_mismatches, m.shape_mismatches, m.callbacks, m.state.stream_rate,
        m.state.device_rate, m.state.content_rate, m.state.channels,
        m.state.device_id.replace('"', "'"),
        m.callback_time.p50_ns as f64 / 1e3, m.callback_time.p99_ns as f64 / 1e3,
        m.callback_time.max_ns as f64 / 1e3, m.resample_time.p95_ns as f64 / 1e3,
        m.output_latency_ns as f64 / 1e6,
        m.recreates, m.recreate_failures, m.frames_replayed,
        m.last_route_gap_ms.unwrap_or(-1.0), m.recreate_ms.2, m.late_callbacks,
        m.outages, m.last_outage_ms, m.server_reconnects, m.server_underflows,
    )
}

fn run() -> Result<(), (u8, String)> {
    let mut a = parse().map_err(|e| (2, e))?;
    if a.list {
        let (host, _) = audioplay::internals::device::system_host().map_err(|e| (3, e))?;
        for d in audioplay::internals::device::list_outputs(&host).map_err(|e| (3, e))? {
            println!("{}\t{} Hz\t{} ch\t{}", d.id, d.rate, d.channels, d.name);
        }
        return Ok(());
    }
    let mut reader = match a.tone {
        Some(_) => None,
        None => Some(open_input(&mut a).map_err(|e| (4, e))?),
    };
    let quiet = a.quiet;
    let cfg = Config {
        input_format: a.format,
        input_channels: a.channels,
        input_rate: a.rate,
        device_id: a.device.clone(),
        target_latency_ms: a.latency_ms,
        prefer_stream_rate: a.prefer,
        resample_mode: a.resample,
        resample_quality: a.quality,
        audio_thread_priority: a.rt_priority,
        device_lost_timeout_ms: a.lost_timeout_ms,
        log_sink: Some(std::sync::Arc::new(move |lvl, msg: &str| {
            if !quiet {
                eprintln!("applay: [{lvl:?}] {msg}");
            }
        })),
        ..Config::default()
    };
    let virt = a.virtual_out.as_ref().map(|_| {
        audioplay::virtual_device::VirtualHost::new(vec![
            audioplay::virtual_device::VirtualDeviceSpec {
                id: "virtual".into(),
                rate: a.virtual_rate,
                channels: a.virtual_channels,
                format: cpal::SampleFormat::F32,
            },
        ])
    });
    let player = std::sync::Arc::new(
        match &virt {
            Some(h) => Player::with_host(cfg, h.cpal_host()),
            None => Player::new(cfg),
        }
        .map_err(|e| (3, e.to_string()))?,
    );
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Frames whose write has returned: certainly in the ring. (`frames_written` counts a
    // write's frames before they are copied in, so it can run ahead of the ring for the
    // length of a copy.)
    let committed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let renderer = virt.as_ref().map(|h| {
        let stream = h
            .stream("virtual")
            .expect("the player opened the virtual stream");
        spawn_renderer(
            stream,
            player.clone(),
            ended.clone(),
            committed.clone(),
            a.fast,
        )
    });
    let status = (!a.quiet && !a.json && virt.is_none() && is_terminal())
        .then(|| spawn_status(player.clone(), ended.clone()));
    let fb = player.frame_bytes();
    let write_all = |bytes: &[u8]| -> Result<(), (u8, String)> {
        let mut off = 0;
        while off < bytes.len() {
            let n = player
                .write_bytes(&bytes[off..])
                .map_err(|e| (5, e.to_string()))?;
            committed.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            off += n * fb;
        }
        Ok(())
    };
    match (a.tone, reader.as_mut()) {
        (Some(hz), _) => write_all(&tone_bytes(&a, hz))?,
        (None, Some(r)) => {
            let mut buf = vec![0u8; fb * 1024];
            let mut pending = Vec::new();
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| (4, format!("read error: {e}")))?;
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                let whole = pending.len() / fb * fb;
                write_all(&pending[..whole])?;
                pending.drain(..whole);
            }
        }
        _ => unreachable!("parse() requires an input or a tone"),
    }
    player.end_utterance().map_err(|e| (5, e.to_string()))?;
    ended.store(true, std::sync::atomic::Ordering::SeqCst);
    let heard = player
        .drain(Duration::from_secs(3600))
        .map_err(|e| (5, e.to_string()))?;
    let m = player.metrics();
    if let Some(t) = status {
        let _ = t.join();
        eprintln!();
    }
    if let (Some(r), Some(path)) = (renderer, a.virtual_out.as_ref()) {
        let samples = r
            .join()
            .map_err(|_| (5, "the virtual renderer failed".to_string()))?;
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
        if !a.quiet {
            eprintln!(
                "applay: wrote {} frames to {path}",
                s16.len() / a.virtual_channels as usize
            );
        }
    }
    if a.json {
        println!("{}", json(&m));
    } else if !a.quiet {
        eprintln!(
            "applay: {} frames played on '{}' at {} Hz (content {} Hz), {} underruns, callback p99 {:.1} us",
            m.frames_played, m.state.device_id, m.state.stream_rate, m.state.content_rate,
            m.underruns, m.callback_time.p99_ns as f64 / 1e3
        );
    }
    if !heard {
        return Err((5, "timed out waiting for playback to finish".into()));
    }
    Ok(())
}

fn is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// Plays the device clock for `--virtual`: renders 10 ms blocks, in real time or as fast as
/// the queue allows, until everything written has been rendered. Returns the samples.
fn spawn_renderer(
    stream: audioplay::virtual_device::VirtualStreamHandle,
    player: std::sync::Arc<Player>,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
    committed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    fast: bool,
) -> std::thread::JoinHandle<Vec<f32>> {
    std::thread::spawn(move || {
        let ch = stream.channels() as usize;
        let block = stream.rate() as usize / 100;
        let mut buf = vec![0.0f32; block * ch];
        let mut out = Vec::new();
        let ready = || {
            let m = player.metrics();
            let gone = m.frames_played + m.frames_flushed + m.frames_dropped;
            committed
                .load(std::sync::atomic::Ordering::SeqCst)
                .saturating_sub(gone)
        };
        // Nothing is rendered before the first write, so the file starts with the content.
        while committed.load(std::sync::atomic::Ordering::SeqCst) == 0
            && !ended.load(std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        loop {
            let done = ended.load(std::sync::atomic::Ordering::SeqCst);
            let (_, queued, _) = player.position();
            if done && queued == 0 {
                // One more block carries the resampler's tail.
                if stream.render_f32(block, &mut buf) {
                    out.extend_from_slice(&buf);
                }
                break;
            }
            if fast {
                // Only render what is there: a renderer outrunning the writer would insert
                // underrun silence the input never had.
                if !done && (ready() as usize) < block * 2 {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            if stream.render_f32(block, &mut buf) {
                out.extend_from_slice(&buf);
            }
        }
        // The content resampled is exactly round(frames * out / in) long (S1); what the last
        // block rendered past that is the device's silence.
        let m = player.metrics();
        let want = (m.frames_written as u128 * stream.rate() as u128 * 2
            + m.state.content_rate as u128)
            / (2 * m.state.content_rate.max(1) as u128);
        out.truncate((want as usize * ch).min(out.len()));
        out
    })
}

/// The live status line on a terminal: position, queue, underruns, device, callback p95.
fn spawn_status(
    player: std::sync::Arc<Player>,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || loop {
        let m = player.metrics();
        let rate = m.state.content_rate.max(1) as f64;
        eprint!(
            "\r{:7.2} s heard | {:6.2} s queued | {} underruns | {} @ {} Hz | callback p95 {:.1} us   ",
            m.frames_heard as f64 / rate,
            m.frames_queued as f64 / rate,
            m.underruns,
            m.state.device_id,
            m.state.stream_rate,
            m.callback_time.p95_ns as f64 / 1e3
        );
        if ended.load(std::sync::atomic::Ordering::SeqCst) && m.frames_queued == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("applay: {msg}");
            ExitCode::from(code)
        }
    }
}
