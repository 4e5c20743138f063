//! The virtual device as the tests drive it: hosts with devices, the device clock (rendering
//! from a stream, as the device's callbacks would), and waiting for the player to settle.

use std::time::{Duration, Instant};

use audioplay::virtual_device::{VirtualDeviceSpec, VirtualHost, VirtualStreamHandle};
use audioplay::{Config, Event, InputFormat, Player};
use cpal::SampleFormat;

/// A device that runs only at this rate, channel count and sample format.
pub fn device(id: &str, rate: u32, channels: u16, format: SampleFormat) -> VirtualDeviceSpec {
    VirtualDeviceSpec {
        id: id.into(),
        rate,
        channels,
        format,
    }
}

/// A float32 device: what most tests render from.
pub fn f32_device(id: &str, rate: u32, channels: u16) -> VirtualDeviceSpec {
    device(id, rate, channels, SampleFormat::F32)
}

/// A host whose one device, `"v"`, is the default.
pub fn one_device(rate: u32, channels: u16, format: SampleFormat) -> VirtualHost {
    VirtualHost::new(vec![device("v", rate, channels, format)])
}

/// Renders `frames` float32 frames in blocks of `block` (the last may be shorter), as the
/// device's callbacks would; returns them interleaved. Panics if a block does not render (the
/// stream is paused or closed, or not float32).
pub fn render_blocks(s: &VirtualStreamHandle, frames: usize, block: usize) -> Vec<f32> {
    let ch = s.channels() as usize;
    let mut out = vec![0.0f32; frames * ch];
    for b in out.chunks_mut(block * ch) {
        assert!(s.render_f32(b.len() / ch, b), "the stream did not render");
    }
    out
}

/// Renders `frames` frames in 480-frame callbacks (10 ms at 48 kHz); returns channel 0.
pub fn render(s: &VirtualStreamHandle, frames: usize) -> Vec<f32> {
    let ch = s.channels() as usize;
    render_blocks(s, frames, 480)
        .into_iter()
        .step_by(ch)
        .collect()
}

/// Lets `frames` of device time pass in 480-frame callbacks, whatever state the stream is in:
/// a paused or closed stream renders nothing. For tests that drive a player they may have
/// destroyed meanwhile.
pub fn advance(s: &VirtualStreamHandle, frames: usize) {
    let ch = s.channels() as usize;
    let mut buf = vec![0.0f32; 480 * ch];
    let mut left = frames;
    while left > 0 {
        let n = left.min(480);
        s.render_f32(n, &mut buf[..n * ch]);
        left -= n;
    }
}

/// Waits up to `limit` for `f` to hold, polling every 2 ms; panics naming `what` if it never
/// does.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The player plays a started stream on device `id` and is not recreating it.
pub fn on_device(p: &Player, id: &str) -> bool {
    let s = p.snapshot();
    s.started && s.device_id == id && !p.recreating()
}

/// Waits up to `limit` for the player to settle on device `id` ([`on_device`]).
pub fn wait_on_device(p: &Player, id: &str, limit: Duration) {
    wait_until(&format!("a started stream on {id}"), limit, || {
        on_device(p, id)
    });
}

/// A speech player on `h` as the sample-exact tests use it: mono float32 at 48 kHz (no
/// resampling), writes that never block, a fast device watch, no debounce and no replay;
/// `tweak` changes the rest.
pub fn speech_player(h: &VirtualHost, tweak: impl FnOnce(&mut Config)) -> Player {
    let mut c = Config {
        input_format: InputFormat::F32,
        input_channels: 1,
        input_rate: 48000,
        write_timeout_ms: 0,
        device_poll_ms: 10,
        debounce_ms: 0,
        max_replay_ms: 0,
        ..Config::default()
    };
    tweak(&mut c);
    Player::with_host(c, h.cpal_host()).unwrap()
}

/// The largest sample-to-sample step (a click shows as one above the signal's own).
pub fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

/// Polls `p`'s events until `pred` holds for the list, or 2 s pass.
pub fn events_until(p: &Player, mut pred: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let mut got = Vec::new();
    let t0 = Instant::now();
    while !pred(&got) && t0.elapsed() < Duration::from_secs(2) {
        match p.poll_event() {
            Some(e) => got.push(e),
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    got
}
