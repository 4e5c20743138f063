//! A virtual output device: a cpal custom host whose clock the caller drives.
//!
//! Tests (and `applay --virtual`) run the player's real callback path on it deterministically:
//! any block size, any device format, sample-exact output. Devices can be added, removed and
//! made default at run time, and opens can be made to fail, to exercise the device-change
//! paths without a sound server.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cpal::device_description::{DeviceDescriptionBuilder, DeviceDirection};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    Data, DeviceDescription, DeviceId, Error, ErrorKind, HostId, InputCallbackInfo,
    OutputCallbackInfo, OutputStreamTimestamp, SampleFormat, StreamConfig, StreamInstant,
    SupportedBufferSize, SupportedStreamConfig, SupportedStreamConfigRange,
};

/// One virtual output device: it runs only at its native rate, channels and format, like
/// real hardware without a mixing server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualDeviceSpec {
    /// The device id hosts and `Config::device_id` name it by.
    pub id: String,
    /// Native rate, Hz. 0 (or 0 channels) models a broken device: it is listed and reports
    /// that format, but no stream opens on it.
    pub rate: u32,
    /// Native channels.
    pub channels: u16,
    /// Native sample format.
    pub format: SampleFormat,
}

type OutputCallback = Box<dyn FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static>;

struct StreamCore {
    device_id: String,
    rate: u32,
    channels: u16,
    format: SampleFormat,
    callback: Mutex<OutputCallback>,
    playing: AtomicBool,
    frames: AtomicU64,
    latency_ns: u64,
}

#[derive(Default)]
struct HostInner {
    devices: Mutex<Vec<VirtualDeviceSpec>>,
    default: Mutex<Option<String>>,
    streams: Mutex<Vec<Weak<StreamCore>>>,
    /// The next N stream opens fail (fault injection).
    fail_opens: AtomicU32,
    /// The next N device queries (default device, device list) fail.
    fail_queries: AtomicU32,
    /// The next stream open blocks this long first (ms; fault injection).
    hang_open_ms: AtomicU64,
    /// Reported device latency: playback timestamp minus callback timestamp (ns).
    latency_ns: AtomicU64,
    /// Device queries answered (default device and device lists), for cooldown tests.
    queries: AtomicU64,
}

/// The host. Cheap to clone; all clones share devices and streams.
#[derive(Clone, Default)]
pub struct VirtualHost {
    inner: Arc<HostInner>,
}

impl VirtualHost {
    /// A host with these devices; the first is the default.
    pub fn new(devices: Vec<VirtualDeviceSpec>) -> Self {
        let h = VirtualHost::default();
        *h.inner.default.lock().unwrap() = devices.first().map(|d| d.id.clone());
        *h.inner.devices.lock().unwrap() = devices;
        h
    }

    /// Wraps this host as a `cpal::Host` for [`crate::Player::with_host`].
    pub fn cpal_host(&self) -> cpal::Host {
        cpal::Host::from(cpal::platform::CustomHost::from_host(self.clone()))
    }

    /// Plugs in a device.
    pub fn add_device(&self, spec: VirtualDeviceSpec) {
        self.inner.devices.lock().unwrap().push(spec);
    }

    /// Unplugs a device: its open streams report it gone.
    pub fn remove_device(&self, id: &str) {
        self.inner.devices.lock().unwrap().retain(|d| d.id != id);
    }

    /// Makes `id` the default output (`None`: no default).
    pub fn set_default(&self, id: Option<&str>) {
        *self.inner.default.lock().unwrap() = id.map(str::to_string);
    }

    /// Makes the next `n` stream opens fail.
    pub fn fail_next_opens(&self, n: u32) {
        self.inner.fail_opens.store(n, SeqCst);
    }

    /// The next `n` device queries fail (the default device is "not found", listing errors).
    pub fn fail_next_queries(&self, n: u32) {
        self.inner.fail_queries.store(n, SeqCst);
    }

    /// The next stream open blocks for `d` before it completes.
    pub fn hang_next_open(&self, d: Duration) {
        self.inner.hang_open_ms.store(d.as_millis() as u64, SeqCst);
    }

    /// The latency the device reports in its callbacks' timestamps.
    pub fn set_latency(&self, d: Duration) {
        self.inner.latency_ns.store(d.as_nanos() as u64, SeqCst);
    }

    /// Device queries answered or failed so far.
    pub fn queries(&self) -> u64 {
        self.inner.queries.load(SeqCst)
    }

    fn query_fails(&self) -> bool {
        self.inner.queries.fetch_add(1, SeqCst);
        self.inner
            .fail_queries
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Every live stream on a device, oldest first.
    pub fn streams(&self, device_id: &str) -> Vec<VirtualStreamHandle> {
        let mut v = self.inner.streams.lock().unwrap();
        v.retain(|w| w.strong_count() > 0);
        v.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.device_id == device_id)
            .map(|core| VirtualStreamHandle { core })
            .collect()
    }

    /// The newest live stream on a device.
    pub fn stream(&self, device_id: &str) -> Option<VirtualStreamHandle> {
        self.streams(device_id).pop()
    }

    fn spec(&self, id: &str) -> Option<VirtualDeviceSpec> {
        self.inner
            .devices
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.id == id)
            .cloned()
    }
}

/// The test's grip on a stream: it plays the role of the device clock.
#[derive(Clone)]
pub struct VirtualStreamHandle {
    core: Arc<StreamCore>,
}

impl VirtualStreamHandle {
    /// The stream's rate, Hz.
    pub fn rate(&self) -> u32 {
        self.core.rate
    }
    /// The stream's channels.
    pub fn channels(&self) -> u16 {
        self.core.channels
    }
    /// The stream's sample format.
    pub fn format(&self) -> SampleFormat {
        self.core.format
    }
    /// Whether the stream is playing (not paused).
    pub fn is_playing(&self) -> bool {
        self.core.playing.load(SeqCst)
    }

    /// Asks the stream's callback for `frames` frames into `out`, which must hold exactly
    /// `frames * channels * sample_size` bytes, aligned for the sample type. Allocates
    /// nothing. Returns false (and leaves `out` alone) when the stream is paused or `out` has
    /// the wrong size or alignment.
    pub fn render(&self, frames: usize, out: &mut [u8]) -> bool {
        let c = &*self.core;
        let samples = frames * c.channels as usize;
        let size = c.format.sample_size();
        if !c.playing.load(SeqCst)
            || out.len() != samples * size
            || (out.as_ptr() as usize) % size != 0
        {
            return false;
        }
        let done = c.frames.fetch_add(frames as u64, SeqCst);
        let t = Duration::from_nanos(done * 1_000_000_000 / c.rate as u64);
        let play = t + Duration::from_nanos(c.latency_ns);
        self.call(out, samples, t, play);
        true
    }

    /// Calls the stream's callback on `out` (`samples` samples of the device format, checked
    /// by the caller to be exactly that and aligned for it) with these instants.
    fn call(&self, out: &mut [u8], samples: usize, callback: Duration, playback: Duration) {
        let c = &*self.core;
        let info = OutputCallbackInfo::new(OutputStreamTimestamp {
            callback: StreamInstant::new(callback.as_secs(), callback.subsec_nanos()),
            playback: StreamInstant::new(playback.as_secs(), playback.subsec_nanos()),
        });
        debug_assert_eq!(out.len(), samples * c.format.sample_size());
        // SAFETY: `out` is exactly `samples` samples of `format`, aligned for it (both checked
        // by the caller), and outlives `data`.
        let mut data = unsafe { Data::from_parts(out.as_mut_ptr().cast(), samples, c.format) };
        let mut cb = c.callback.lock().unwrap_or_else(|e| e.into_inner());
        (cb)(&mut data, &info);
    }

    /// Calls the stream's callback as a rewrite of what the device holds (as PulseAudio's
    /// `cpal::platform::OutputRewriter` does): `out` holds the last `frames` frames the
    /// callbacks wrote, the first of them heard `ahead_ns` before now; the callback leaves
    /// in it what replaces them. The device clock does not move.
    pub fn rewrite(&self, frames: usize, out: &mut [u8], ahead_ns: u64) -> bool {
        let c = &*self.core;
        let samples = frames * c.channels as usize;
        let size = c.format.sample_size();
        if !c.playing.load(SeqCst)
            || out.len() != samples * size
            || (out.as_ptr() as usize) % size != 0
        {
            return false;
        }
        let done = c.frames.load(SeqCst);
        let t = Duration::from_nanos(done * 1_000_000_000 / c.rate as u64);
        let first = t.saturating_sub(Duration::from_nanos(ahead_ns.max(1)));
        self.call(out, samples, t, first);
        true
    }

    /// Renders float32 frames (the device format must be F32).
    pub fn render_f32(&self, frames: usize, out: &mut [f32]) -> bool {
        if self.core.format != SampleFormat::F32 {
            return false;
        }
        // SAFETY: reinterpreting an f32 slice as bytes is always valid and aligned.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                out.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(out),
            )
        };
        self.render(frames, bytes)
    }
}

/// A virtual output device of a [`VirtualHost`].
#[derive(Clone)]
pub struct VirtualDevice {
    host: VirtualHost,
    id: String,
}

impl PartialEq for VirtualDevice {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
    }
}
impl Eq for VirtualDevice {}
impl std::hash::Hash for VirtualDevice {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}
impl std::fmt::Debug for VirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VirtualDevice({})", self.id)
    }
}
impl std::fmt::Display for VirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

impl HostTrait for VirtualHost {
    type Devices = std::vec::IntoIter<VirtualDevice>;
    type Device = VirtualDevice;

    fn is_available() -> bool {
        true
    }

    fn devices(&self) -> Result<Self::Devices, Error> {
        if self.query_fails() {
            return Err(Error::with_message(
                ErrorKind::DeviceNotAvailable,
                "injected query failure",
            ));
        }
        let ids: Vec<String> = self
            .inner
            .devices
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.id.clone())
            .collect();
        Ok(ids
            .into_iter()
            .map(|id| VirtualDevice {
                host: self.clone(),
                id,
            })
            .collect::<Vec<_>>()
            .into_iter())
    }

    fn default_input_device(&self) -> Option<Self::Device> {
        None
    }

    fn default_output_device(&self) -> Option<Self::Device> {
        if self.query_fails() {
            return None;
        }
        let id = self.inner.default.lock().unwrap().clone()?;
        self.spec(&id)?;
        Some(VirtualDevice {
            host: self.clone(),
            id,
        })
    }
}

impl VirtualDevice {
    fn spec(&self) -> Result<VirtualDeviceSpec, Error> {
        self.host.spec(&self.id).ok_or_else(|| {
            Error::with_message(ErrorKind::DeviceNotAvailable, "virtual device is gone")
        })
    }
}

const BUFFER_RANGE: SupportedBufferSize = SupportedBufferSize::Range {
    min: 1,
    max: 1 << 20,
};

impl DeviceTrait for VirtualDevice {
    type SupportedInputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type SupportedOutputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type Stream = VirtualStream;

    fn description(&self) -> Result<DeviceDescription, Error> {
        Ok(
            DeviceDescriptionBuilder::new(format!("Virtual {}", self.id))
                .direction(DeviceDirection::Output)
                .build(),
        )
    }

    fn id(&self) -> Result<DeviceId, Error> {
        Ok(DeviceId::new(HostId::Custom, &self.id))
    }

    fn supported_input_configs(&self) -> Result<Self::SupportedInputConfigs, Error> {
        Ok(Vec::new().into_iter())
    }

    fn supported_output_configs(&self) -> Result<Self::SupportedOutputConfigs, Error> {
        let s = self.spec()?;
        Ok(vec![SupportedStreamConfigRange::new(
            s.channels,
            s.rate,
            s.rate,
            BUFFER_RANGE,
            s.format,
        )]
        .into_iter())
    }

    fn default_input_config(&self) -> Result<SupportedStreamConfig, Error> {
        Err(Error::new(ErrorKind::UnsupportedOperation))
    }

    fn default_output_config(&self) -> Result<SupportedStreamConfig, Error> {
        let s = self.spec()?;
        Ok(SupportedStreamConfig::new(
            s.channels,
            s.rate,
            BUFFER_RANGE,
            s.format,
        ))
    }

    fn build_input_stream_raw<D, E>(
        &self,
        _: StreamConfig,
        _: SampleFormat,
        _: D,
        _: E,
        _: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&Data, &InputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        Err(Error::new(ErrorKind::UnsupportedOperation))
    }

    fn build_output_stream_raw<D, E>(
        &self,
        config: StreamConfig,
        sample_format: SampleFormat,
        data_callback: D,
        _error_callback: E,
        _timeout: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        let s = self.spec()?;
        let hang = self.host.inner.hang_open_ms.swap(0, SeqCst);
        if hang > 0 {
            std::thread::sleep(Duration::from_millis(hang));
        }
        let fail = &self.host.inner.fail_opens;
        if fail
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::with_message(
                ErrorKind::DeviceBusy,
                "injected open failure",
            ));
        }
        // A broken device may report 0 Hz or 0 channels (the spec can say so, to test that
        // the player refuses it); no stream opens at that format.
        if config.sample_rate == 0 || config.channels == 0 {
            return Err(Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "virtual device {}: no stream at {} Hz, {} ch",
                    s.id, config.sample_rate, config.channels
                ),
            ));
        }
        if config.sample_rate != s.rate
            || config.channels != s.channels
            || sample_format != s.format
        {
            return Err(Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "virtual device {} runs only at {} Hz, {} ch, {}",
                    s.id, s.rate, s.channels, s.format
                ),
            ));
        }
        let core = Arc::new(StreamCore {
            device_id: s.id,
            rate: s.rate,
            channels: s.channels,
            format: s.format,
            callback: Mutex::new(Box::new(data_callback)),
            playing: AtomicBool::new(false),
            frames: AtomicU64::new(0),
            latency_ns: self.host.inner.latency_ns.load(SeqCst),
        });
        self.host
            .inner
            .streams
            .lock()
            .unwrap()
            .push(Arc::downgrade(&core));
        Ok(VirtualStream { core })
    }
}

/// A stream on a [`VirtualDevice`]; the test drives its callback.
pub struct VirtualStream {
    core: Arc<StreamCore>,
}

impl StreamTrait for VirtualStream {
    fn play(&self) -> Result<(), Error> {
        self.core.playing.store(true, SeqCst);
        Ok(())
    }
    fn pause(&self) -> Result<(), Error> {
        self.core.playing.store(false, SeqCst);
        Ok(())
    }
    fn buffer_size(&self) -> Result<cpal::FrameCount, Error> {
        Err(Error::new(ErrorKind::UnsupportedOperation))
    }
    fn now(&self) -> StreamInstant {
        let t = Duration::from_nanos(
            self.core.frames.load(SeqCst) * 1_000_000_000 / self.core.rate as u64,
        );
        StreamInstant::new(t.as_secs(), t.subsec_nanos())
    }
}
