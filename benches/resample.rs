//! The render-path benchmark (issue 5): our modes and the Rust references (rubato) on the
//! same workload, the whole callback path per 10 ms block: int16 mono content -> float32
//! stereo device frames (decode, resample, channel map, device write). Prints one TSV row per
//! candidate and rate pair; scripts/bench.sh runs it in several processes, interleaved with
//! the C and numpy references, and aggregates.
//!
//!   resample SPEECH.wav CANDIDATE...     (candidates: linear high producer producer-high
//!                                         linear-gainpan linear-limiter rubato-fft
//!                                         rubato-sinc)
//!
//! linear-gainpan and linear-limiter are linear with issue 16's in-band stages on: gain 0.7
//! and pan 0.4 (equal-power, until changed), and gain 2.5 (the soft limiter engaged); their
//! cost against plain linear is what those stages add to the callback.
//!
//! Columns: candidate, pair, ns/frame (median block), ns/frame (mean), p99 ns/block,
//! SINAD 1 kHz, SINAD 9 kHz, gain 1 kHz dB, gain 9 kHz dB, latency ms, drift ms/min.

use std::collections::VecDeque;
use std::time::Instant;

use audioadapter_buffers::direct::InterleavedSlice;
use audioplay::internals::quality::{measure, sine_s16};
use audioplay::virtual_device::{VirtualDeviceSpec, VirtualHost, VirtualStreamHandle};
use audioplay::{Config, GainScope, InputFormat, Player, ResampleMode, ResampleQuality};
use rubato::{
    Async, FixedAsync, FixedSync, Indexing, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

const PAIRS: [(u32, u32); 3] = [(22050, 48000), (24000, 48000), (16000, 44100)];
const AMP: f64 = 0.9;

/// One way of turning int16 mono content into float32 stereo device blocks.
trait Path {
    /// Queues content (untimed: the engine's side).
    fn push(&mut self, x: &[i16]);
    /// The callback: fills `out` (`n` stereo frames). Timed.
    fn block(&mut self, out: &mut [f32], n: usize);
    /// Content is over: what is left should come out (untimed).
    fn end(&mut self);
    /// Output frames by which the content is delayed.
    fn delay(&self) -> usize;
    /// Content frames taken so far (for the lookahead: taken beyond what was output).
    fn consumed(&self) -> u64;
}

struct Ours {
    player: Player,
    /// Ring frames per content frame: producer mode queues frames at the device rate.
    ring_per_content: f64,
    stream: VirtualStreamHandle,
    _host: VirtualHost,
}

impl Ours {
    fn new(in_rate: u32, out_rate: u32, quality: ResampleQuality, mode: ResampleMode) -> Self {
        Self::with(in_rate, out_rate, quality, mode, None)
    }

    /// With an in-band gain and pan (issue 16 §2) set before any audio.
    fn with(
        in_rate: u32,
        out_rate: u32,
        quality: ResampleQuality,
        mode: ResampleMode,
        gain_pan: Option<(f32, f32)>,
    ) -> Self {
        let host = VirtualHost::new(vec![VirtualDeviceSpec {
            id: "v".into(),
            rate: out_rate,
            channels: 2,
            format: cpal::SampleFormat::F32,
        }]);
        let cfg = Config {
            input_format: InputFormat::S16,
            input_rate: in_rate,
            ring_capacity_ms: 4000,
            write_timeout_ms: 0,
            resample_quality: quality,
            resample_mode: mode,
            ..Config::default()
        };
        let player = Player::with_host(cfg, host.cpal_host()).unwrap();
        if let Some((gain, pan)) = gain_pan {
            player
                .set_gain_pan(gain, pan, 0, GainScope::UntilChanged)
                .unwrap();
        }
        let stream = host.stream("v").unwrap();
        // Render 60 s of speech takes tens of milliseconds here, so let the player settle
        // first as any real one has by its second callback: its service thread calibrates
        // the callback clock within ~5 ms of starting (src/clock.rs).
        std::thread::sleep(std::time::Duration::from_millis(30));
        let ring_per_content = if mode == ResampleMode::Producer {
            out_rate as f64 / in_rate as f64
        } else {
            1.0
        };
        Ours {
            player,
            ring_per_content,
            stream,
            _host: host,
        }
    }
}

impl Path for Ours {
    fn push(&mut self, x: &[i16]) {
        let n = self.player.write_i16(x).unwrap();
        assert_eq!(n, x.len(), "ring full");
    }
    fn block(&mut self, out: &mut [f32], n: usize) {
        assert!(self.stream.render_f32(n, out));
    }
    fn end(&mut self) {
        self.player.end_utterance().unwrap();
    }
    fn delay(&self) -> usize {
        0
    }
    fn consumed(&self) -> u64 {
        (self.player.metrics().frames_played as f64 / self.ring_per_content) as u64
    }
}

/// rubato driven as a callback would: each block asks for exactly `n` output frames.
struct Rubato {
    r: Box<dyn Resampler<f32>>,
    taken: u64,
    pending: VecDeque<i16>,
    xin: Vec<f32>,
    yout: Vec<f32>,
    ended: bool,
}

impl Rubato {
    fn new(in_rate: u32, out_rate: u32, block: usize, sinc: bool) -> Self {
        let r: Box<dyn Resampler<f32>> = if sinc {
            let params = SincInterpolationParameters::new(256, WindowFunction::BlackmanHarris2)
                .oversampling_factor(256)
                .interpolation(SincInterpolationType::Linear);
            Box::new(
                Async::<f32>::new_sinc(
                    out_rate as f64 / in_rate as f64,
                    1.0,
                    &params,
                    block,
                    1,
                    FixedAsync::Output,
                )
                .unwrap(),
            )
        } else {
            Box::new(
                rubato::Fft::<f32>::new(
                    in_rate as usize,
                    out_rate as usize,
                    block,
                    1,
                    FixedSync::Output,
                )
                .unwrap(),
            )
        };
        let max_in = r.input_frames_max();
        Rubato {
            r,
            taken: 0,
            pending: VecDeque::new(),
            xin: vec![0.0; max_in],
            yout: vec![0.0; block],
            ended: false,
        }
    }
}

impl Path for Rubato {
    fn push(&mut self, x: &[i16]) {
        self.pending.extend(x);
    }
    fn block(&mut self, out: &mut [f32], n: usize) {
        let need = self.r.input_frames_next();
        self.taken += need as u64;
        for v in &mut self.xin[..need] {
            // After the end the resampler is flushed with silence.
            let s = self.pending.pop_front().unwrap_or(0);
            debug_assert!(self.ended || !self.pending.is_empty() || s == 0);
            *v = s as f32 / 32768.0;
        }
        let input = InterleavedSlice::new(&self.xin[..need], 1, need).unwrap();
        let mut output = InterleavedSlice::new_mut(&mut self.yout[..n], 1, n).unwrap();
        let idx = Indexing::new();
        let (_, produced) = self
            .r
            .process_into_buffer(&input, &mut output, Some(&idx))
            .unwrap();
        for (o, &y) in out.chunks_exact_mut(2).zip(&self.yout[..produced]) {
            o[0] = y;
            o[1] = y;
        }
    }
    fn end(&mut self) {
        self.ended = true;
    }
    fn delay(&self) -> usize {
        self.r.output_delay()
    }
    fn consumed(&self) -> u64 {
        self.taken
    }
}

fn make(name: &str, in_rate: u32, out_rate: u32, block: usize) -> Box<dyn Path> {
    use ResampleMode::*;
    use ResampleQuality::*;
    match name {
        "linear" => Box::new(Ours::new(in_rate, out_rate, Linear, Callback)),
        "high" => Box::new(Ours::new(in_rate, out_rate, High, Callback)),
        "producer" => Box::new(Ours::new(in_rate, out_rate, Linear, Producer)),
        "producer-high" => Box::new(Ours::new(in_rate, out_rate, High, Producer)),
        "linear-gainpan" => Box::new(Ours::with(
            in_rate,
            out_rate,
            Linear,
            Callback,
            Some((0.7, 0.4)),
        )),
        "linear-limiter" => Box::new(Ours::with(
            in_rate,
            out_rate,
            Linear,
            Callback,
            Some((2.5, 0.0)),
        )),
        "rubato-fft" => Box::new(Rubato::new(in_rate, out_rate, block, false)),
        "rubato-sinc" => Box::new(Rubato::new(in_rate, out_rate, block, true)),
        _ => panic!("unknown candidate {name}"),
    }
}

fn read_wav_s16(path: &str) -> Vec<i16> {
    audioplay::internals::wav::read_s16_mono(std::path::Path::new(path))
        .expect("speech WAV")
        .1
}

/// Timer overhead per block (a pair of `Instant::now`), subtracted from block times.
fn timer_overhead_ns() -> f64 {
    let mut v: Vec<u64> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(0);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// Speed: `speech` played through `path` as content at `in_rate`, 10 ms blocks.
/// Returns (median ns/frame, mean ns/frame, p99 ns/block, lookahead ms).
fn speed(
    name: &str,
    speech: &[i16],
    in_rate: u32,
    out_rate: u32,
    overhead: f64,
) -> (f64, f64, f64, f64) {
    let block = (out_rate / 100) as usize;
    let mut p = make(name, in_rate, out_rate, block);
    let mut out = vec![0.0f32; block * 2];
    let in_per_block = (block as u64 * in_rate as u64).div_ceil(out_rate as u64) as usize + 1;
    let blocks = (speech.len() as u64 * out_rate as u64 / in_rate as u64) as usize / block - 2;
    // Keep ~100 ms queued ahead, like an engine writing ahead of playback.
    let mut fed = 0;
    let ahead = in_rate as usize / 10;
    p.push(&speech[..ahead]);
    fed += ahead;
    let mut times = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let add = in_per_block.min(speech.len() - fed);
        p.push(&speech[fed..fed + add]);
        fed += add;
        let t = Instant::now();
        p.block(&mut out, block);
        times.push(t.elapsed().as_nanos() as f64 - overhead);
        std::hint::black_box(&out);
    }
    let ahead_ms =
        (p.consumed() as f64 / in_rate as f64 - (blocks * block) as f64 / out_rate as f64) * 1000.0;
    // The first blocks warm caches and the branch predictor.
    let times = &mut times[10..];
    let mean = times.iter().sum::<f64>() / times.len() as f64 / block as f64;
    times.sort_by(|a, b| a.total_cmp(b));
    let med = times[times.len() / 2] / block as f64;
    let p99 = times[times.len() * 99 / 100];
    (med, mean, p99, ahead_ms)
}

/// Quality: a 2 s sine through `path`; SINAD and gain (over the middle), latency, and drift
/// (the delay at the end minus at the start, per minute).
fn quality(name: &str, in_rate: u32, out_rate: u32, freq: f64) -> (f64, f64, f64, f64) {
    let block = (out_rate / 100) as usize;
    let mut p = make(name, in_rate, out_rate, block);
    let x = sine_s16(freq, in_rate, 2.0, AMP);
    p.push(&x);
    p.end();
    let want = (x.len() as f64 * out_rate as f64 / in_rate as f64).round() as usize;
    let d = p.delay();
    let mut y = Vec::new();
    let mut out = vec![0.0f32; block * 2];
    while y.len() < want + d + block {
        p.block(&mut out, block);
        y.extend(out.chunks_exact(2).map(|f| f[0]));
    }
    let y = &y[d..d + want];
    let skip = out_rate as usize / 10;
    let m = measure(&y[skip..want - skip], out_rate, freq, AMP);
    let half = (want - 2 * skip) / 2;
    let first = measure(&y[skip..skip + half], out_rate, freq, AMP);
    let second = measure(&y[skip + half..want - skip], out_rate, freq, AMP);
    // The second window starts `half` frames later: its phase reference moves with it.
    let period = out_rate as f64 / freq;
    let mut dd = second.delay_frames - first.delay_frames + half as f64;
    dd -= (dd / period).round() * period;
    let secs = half as f64 / out_rate as f64;
    (
        m.sinad_db,
        m.gain_db,
        d as f64 * 1000.0 / out_rate as f64,
        dd / secs * 60.0 / out_rate as f64 * 1000.0,
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        // `cargo test --all-targets` runs benchmarks without arguments: nothing to measure.
        eprintln!("usage: resample SPEECH.wav CANDIDATE... (run by scripts/bench.sh)");
        return;
    }
    let speech = read_wav_s16(&args[0]);
    let overhead = timer_overhead_ns();
    for name in &args[1..] {
        for (a, b) in PAIRS {
            let (med, mean, p99, ahead) = speed(name, &speech, a, b, overhead);
            let (s1, g1, delay, drift) = quality(name, a, b, 1000.0);
            let lat = delay + ahead;
            let (s9, g9, _, _) = quality(name, a, b, 9000.0f64.min(a as f64 * 0.41));
            println!(
                "{name}\t{a}->{b}\t{med:.3}\t{mean:.3}\t{p99:.0}\t{s1:.1}\t{s9:.1}\t{g1:.3}\t{g9:.3}\t{lat:.2}\t{drift:.2}"
            );
        }
    }
}
