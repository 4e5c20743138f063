//! Output devices: which host, which device, which stream configuration (SPEC V1, V2, A2).
//! Everything here does I/O and runs with the stream-slot lock released (L2).

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize};

use crate::data::config::{Config, PreferStreamRate, ResampleMode, ResolvedIdentity};
use crate::dsp::convert;
use crate::thread_role::debug_assert_not_audio;

/// The name the PulseAudio client's socket thread (the audio thread) inherits (at most 15
/// bytes: the kernel's limit); `priority` finds the audio thread by it.
pub const AUDIO_THREAD_NAME: &str = "audioplay-audio";

/// How the player reconnects to its sound server when the connection dies, as whom.
pub type Connect = fn(&ResolvedIdentity) -> Result<cpal::Host, String>;

/// Picks the system's audio host: PulseAudio (or pipewire-pulse) when a server is reachable,
/// else cpal's default. ALSA's own stderr chatter is silenced first: a library must not
/// write to its host process's stderr. With a sound server, also returns how to connect to
/// it again (a server restart kills the connection; the player then builds a new one).
pub fn system_host(identity: &ResolvedIdentity) -> Result<(cpal::Host, Option<Connect>), String> {
    let identity = identity.clone();
    on_audio_thread(move || pick_host(&identity))
}

/// A new connection to the PulseAudio (or pipewire-pulse) server, or an error while none
/// accepts clients. Never falls back to another host: a player that was on the server
/// waits for it.
pub fn reconnect_pulse(identity: &ResolvedIdentity) -> Result<cpal::Host, String> {
    debug_assert_not_audio!();
    let identity = identity.clone();
    on_audio_thread(move || {
        #[cfg(target_os = "linux")]
        if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
            return pulse_host(&identity).map_err(|e| e.to_string());
        }
        Err("no PulseAudio server".to_string())
    })
}

/// A PulseAudio host whose client and streams carry the player's identity.
#[cfg(target_os = "linux")]
fn pulse_host(identity: &ResolvedIdentity) -> Result<cpal::Host, cpal::Error> {
    cpal::platform::pulseaudio_host_with_identity(cpal::platform::PulseAudioIdentity {
        application_name: identity.application_name.clone(),
        application_id: identity.application_id.clone(),
        stream_name: identity.stream_name.clone(),
        media_role: identity.media_role.clone(),
    })
}

/// The PulseAudio client's socket thread, which runs the audio callback, is started with
/// the host and inherits the name of the thread that creates it: create the host on a thread
/// named for it, so the service thread can find it (crate::control::priority) and it shows as what it
/// is in top and perf (not as the application's thread).
fn on_audio_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::Builder::new()
        .name(AUDIO_THREAD_NAME.into())
        .spawn(f)
        .map_err(|e| format!("cannot start a thread: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the audio host could not be created".into()))
}

fn pick_host(identity: &ResolvedIdentity) -> Result<(cpal::Host, Option<Connect>), String> {
    #[cfg(target_os = "linux")]
    {
        if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
            match pulse_host(identity) {
                Ok(h) => return Ok((h, Some(reconnect_pulse as Connect))),
                // A server is there but does not answer (frozen, hung): ALSA's default would
                // reach the same server through its pulse plugin and wait far longer (64 s
                // measured with a SIGSTOPped server, then JACK chatter on stderr), and cpal's
                // default host would first try PulseAudio again for another 2 s. Say so
                // instead. A server that refuses at once (a stale socket) still falls back.
                Err(e) if e.to_string().contains("timed out") => {
                    return Err(format!("the PulseAudio server is not answering: {e}"));
                }
                Err(_) => {}
            }
        }
        quiet_alsa();
        quiet_jack();
    }
    Ok((cpal::default_host(), None))
}

#[cfg(target_os = "linux")]
fn quiet_alsa() {
    use std::os::raw::{c_char, c_int};
    // ALSA declares the handler variadic; a non-variadic function that ignores its arguments
    // is safe to call through it on the SysV and AAPCS64 ABIs (the alsa crate does the same).
    unsafe extern "C" fn ignore(
        _: *const c_char,
        _: c_int,
        _: *const c_char,
        _: c_int,
        _: *const c_char,
    ) {
    }
    extern "C" {
        fn snd_lib_error_set_handler(
            h: Option<
                unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char),
            >,
        ) -> c_int;
    }
    // SAFETY: installs a process-wide handler that never touches its arguments; libasound is
    // linked by cpal's ALSA host.
    unsafe {
        snd_lib_error_set_handler(Some(ignore));
    }
}

/// Silences libjack, which ALSA's JACK plugin (libasound2-plugins: `pcm.jack`, and any PCM
/// of `type jack`) loads when cpal opens such a PCM to list it or play on it. With no JACK
/// server libjack prints "Cannot connect to server socket", "jack server is not running" and
/// two `JackShmReadWritePtr` lines to fd 2 itself, past `snd_lib_error_set_handler`: 5 lines
/// per `ap_list_devices` or `applay --list`, measured on Debian 12 (libjack-jackd2-0 1.9.21).
///
/// Done through libjack's own switch, `jack_set_error_function` / `jack_set_info_function`,
/// on the one libjack instance in the process: `dlopen("libjack.so.0")` finds it if it is
/// loaded already or loads it, and the plugin's `DT_NEEDED libjack.so.0` then binds to the
/// same object (the dynamic loader shares an object by soname). The handle is never closed,
/// so ALSA unloading and reloading the plugin cannot bring back a fresh libjack with the
/// default (printing) handlers. No libjack on the machine: nothing to do (the JACK plugin
/// cannot load without it either), and no link-time dependency on it.
///
/// Rejected: redirecting fd 2 around the calls (loses the host's own stderr writes and races
/// its other threads); `JACK_NO_START_SERVER` and the like (changes the host's environment,
/// and libjack prints "Cannot connect" regardless); filtering JACK PCMs out of cpal's ALSA
/// enumeration (drops working JACK devices when a server does run, and misses a user's
/// `pcm.!default` of type jack).
///
/// A host that uses JACK itself and installed its own handlers keeps them: the handler
/// slots (`jack_error_callback`, `jack_info_callback`, exported by jackd2 and jack1) are
/// replaced only while they still point into libjack, i.e. at its printing defaults.
#[cfg(target_os = "linux")]
fn quiet_jack() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: dlopen/dlsym/dladdr with NUL-terminated names; the symbols, if present,
        // have libjack's documented types (`void (*)(const char *)` setters and slots).
        unsafe { silence_libjack() }
    });
}

#[cfg(target_os = "linux")]
unsafe fn silence_libjack() {
    use std::os::raw::{c_char, c_void};
    type Handler = unsafe extern "C" fn(*const c_char);
    type Setter = unsafe extern "C" fn(Option<Handler>);
    unsafe extern "C" fn ignore(_: *const c_char) {}

    let lib = libc::dlopen(c"libjack.so.0".as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
    if lib.is_null() {
        return;
    }
    // The object a code address lies in (its load base), or null.
    let base_of = |p: *const c_void| {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if p.is_null() || libc::dladdr(p, &mut info) == 0 {
            std::ptr::null_mut()
        } else {
            info.dli_fbase
        }
    };
    for (setter, slot) in [
        (c"jack_set_error_function", c"jack_error_callback"),
        (c"jack_set_info_function", c"jack_info_callback"),
    ] {
        let set = libc::dlsym(lib, setter.as_ptr());
        if set.is_null() {
            continue;
        }
        let current = libc::dlsym(lib, slot.as_ptr()) as *const *const c_void;
        if !current.is_null() {
            let handler = std::ptr::read_volatile(current);
            if !handler.is_null() && base_of(handler) != base_of(set) {
                continue; // the host's own handler: leave it
            }
        }
        let set: Setter = std::mem::transmute::<*mut c_void, Setter>(set);
        set(Some(ignore));
    }
    // `lib` stays open for the life of the process (see quiet_jack).
}

/// What the library knows about one output device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// cpal's id string without the host prefix (`s48` for PulseAudio sink `s48`).
    pub id: String,
    pub name: String,
    pub rate: u32,
    pub channels: u16,
    pub format: SampleFormat,
}

pub fn device_id_string(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.id().to_string())
}

fn info_of(d: &cpal::Device) -> Result<DeviceInfo, String> {
    info_or_held(d, None)
}

/// What `d` is, from its default output configuration; or, if `d` is the device the player
/// holds (`held`) and answers that it is busy, the held device: an exclusive device (an
/// ALSA `hw` PCM, a plugin that opens one) refuses every other open while a stream has it,
/// queries included, and the one it is busy with is this player.
fn info_or_held(d: &cpal::Device, held: Option<&DeviceInfo>) -> Result<DeviceInfo, String> {
    let id = device_id_string(d).ok_or("device has no id")?;
    let cfg = match d.default_output_config() {
        Ok(c) => c,
        Err(e) => {
            return match held {
                Some(h) if h.id == id && e.kind() == cpal::ErrorKind::DeviceBusy => Ok(h.clone()),
                _ => Err(format!("device {id}: no output config: {e}")),
            }
        }
    };
    let name = d
        .description()
        .map(|x| x.name().to_string())
        .unwrap_or_else(|_| id.clone());
    Ok(DeviceInfo {
        id,
        name,
        rate: cfg.sample_rate(),
        channels: cfg.channels(),
        format: cfg.sample_format(),
    })
}

/// Matches `wanted` against a device id in either cpal form (`pulseaudio:s48`) or bare (`s48`).
fn id_matches(d: &cpal::Device, wanted: &str) -> bool {
    match d.id() {
        Ok(id) => id.id() == wanted || id.to_string() == wanted,
        Err(_) => false,
    }
}

/// Finds the output device: the pinned one, else the system default.
pub fn find_output(
    host: &cpal::Host,
    wanted: Option<&str>,
) -> Result<(cpal::Device, DeviceInfo), String> {
    let dev = find_device(host, wanted)?;
    let info = info_of(&dev)?;
    usable(&info)?;
    Ok((dev, info))
}

/// The device `wanted` names (None: the system default), not opened yet.
fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device, String> {
    let default = || {
        host.default_output_device()
            .ok_or("no default output device")
    };
    let Some(w) = wanted else {
        return Ok(default()?);
    };
    if let Some(d) = host
        .output_devices()
        .map_err(|e| format!("cannot list output devices: {e}"))?
        .find(|d| id_matches(d, w))
    {
        return Ok(d);
    }
    // The host's default is not always among the devices it lists: ALSA lists its name
    // hints, and a `default` that is a plain alias (`pcm.!default "hw:1"`, the stock
    // `cards.pcm.default`) has none. A stream opened on the default is then looked up by its
    // id ("default") at every recreate and query.
    match host.default_output_device() {
        Some(d) if id_matches(&d, w) => Ok(d),
        _ => Err(format!("output device '{w}' not found")),
    }
}

/// A device that reports no rate or no channels cannot be played to (every frame count
/// would divide by it): it is refused before a stream is planned.
fn usable(info: &DeviceInfo) -> Result<(), String> {
    if info.rate == 0 || info.channels == 0 {
        return Err(format!(
            "output device '{}' reports {} Hz and {} channel(s): refused (a device must report a nonzero rate and channel count)",
            info.id, info.rate, info.channels
        ));
    }
    Ok(())
}

/// The device the player should be on now: the pinned one while it is present, else the
/// system default (the pinned one is taken back as soon as it reappears). I/O; no locks.
pub fn query_target(host: &cpal::Host, pinned: Option<&str>) -> Result<DeviceInfo, String> {
    query_target_holding(host, pinned, None)
}

/// [`query_target`] by a player whose stream holds `held`: that device counts as present
/// while it answers busy (see [`info_or_held`]). Without it a player on an exclusive device
/// saw every query fail while it played: it never knew a good device to fall back on after
/// an unplug (and never recovered), and a pinned device looked gone, so the watcher moved to
/// the default and back, over and over.
pub fn query_target_holding(
    host: &cpal::Host,
    pinned: Option<&str>,
    held: Option<&DeviceInfo>,
) -> Result<DeviceInfo, String> {
    debug_assert_not_audio!();
    if let Some(id) = pinned {
        if let Ok(info) = find_device(host, Some(id)).and_then(|d| info_or_held(&d, held)) {
            return Ok(info);
        }
    }
    info_or_held(&find_device(host, None)?, held)
}

/// The device a running stream holds, as published (None when no stream runs).
pub fn held_device(state: &crate::data::state::StreamState) -> Option<DeviceInfo> {
    state.started.then(|| DeviceInfo {
        id: state.device_id.clone(),
        name: state.device_name.clone(),
        rate: state.device_rate,
        channels: state.channels,
        format: state.format.unwrap_or(SampleFormat::F32),
    })
}

/// V1: whether the output must change, as a pure function of the published stream state and
/// what the host reports. Reads `current` only to compare; returns
/// `(changed, device_id, device_rate)`. A device that comes back at another rate or channel
/// count is a change too.
pub fn detect_change(
    current: &crate::data::state::StreamState,
    observed: &DeviceInfo,
) -> (bool, String, u32) {
    let changed = !current.started
        || current.device_id != observed.id
        || current.device_rate != observed.rate
        || current.channels != observed.channels;
    (changed, observed.id.clone(), observed.rate)
}

/// Every output device the host lists.
pub fn list_outputs(host: &cpal::Host) -> Result<Vec<DeviceInfo>, String> {
    debug_assert_not_audio!();
    let jack_down = host.id() == cpal::HostId::Alsa && !jack_server_running();
    Ok(host
        .output_devices()
        .map_err(|e| format!("cannot list output devices: {e}"))?
        // Opening ALSA's JACK PCM with no JACK server to talk to only fails, and its plugin
        // prints a warning to stderr with a plain fprintf when the process name is long
        // (no handler reaches it): such a device is not listed while no server runs.
        .filter(|d| !(jack_down && device_id_string(d).as_deref() == Some("jack")))
        .filter_map(|d| info_of(&d).ok())
        .collect())
}

/// A JACK server of this user is up: JACK 2 listens on `/dev/shm/jack_<server>_<uid>_<n>`.
fn jack_server_running() -> bool {
    // SAFETY: getuid(2) has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mark = format!("_{uid}_");
    std::fs::read_dir("/dev/shm").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("jack_") && !name.starts_with("jack_sem") && name.contains(&mark)
        })
    })
}

/// The stream the library opens on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPlan {
    pub config: StreamConfig,
    pub format: SampleFormat,
}

fn device_accepts_rate(dev: &cpal::Device, info: &DeviceInfo, rate: u32) -> bool {
    dev.supported_output_configs().is_ok_and(|mut it| {
        it.any(|r| {
            r.channels() == info.channels
                && r.min_sample_rate() <= rate
                && rate <= r.max_sample_rate()
        })
    })
}

/// Chooses rate, channels, format and period for a device (A2, U4).
pub fn plan_stream(dev: &cpal::Device, info: &DeviceInfo, cfg: &Config) -> StreamPlan {
    let content = cfg.input_rate;
    let wants_content = cfg.resample_mode == ResampleMode::Off
        || cfg.prefer_stream_rate == PreferStreamRate::Content;
    let rate = if wants_content && device_accepts_rate(dev, info, content) {
        content
    } else {
        info.rate
    };
    let format = if convert::device_format_supported(info.format) {
        info.format
    } else {
        SampleFormat::F32
    };
    // A PulseAudio stream double-buffers, so one callback period is half the latency target.
    let mut period = (rate as u64 * cfg.target_latency_ms as u64 / 2000).max(16) as u32;
    if let Ok(cfgs) = dev.default_output_config() {
        if let SupportedBufferSize::Range { min, max } = cfgs.buffer_size() {
            period = period.clamp(*min, (*max).max(*min));
        }
    }
    StreamPlan {
        config: StreamConfig {
            channels: info.channels,
            sample_rate: rate,
            buffer_size: BufferSize::Fixed(period),
        },
        format,
    }
}

/// Asks the host's sound server to tell of its sink and default changes: `on_change` runs on
/// the server connection's thread (the audio thread, outside any callback) once per change,
/// so it must be quick. Returns whether the server will tell (PulseAudio and pipewire-pulse;
/// not ALSA or the virtual host, which are polled).
pub fn watch_server(host: &cpal::Host, on_change: impl Fn() + Send + 'static) -> bool {
    debug_assert_not_audio!();
    #[cfg(target_os = "linux")]
    {
        cpal::platform::watch_server_changes(host, on_change).unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (host, on_change);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::state::StreamState;

    #[test]
    fn the_held_device_is_what_the_running_stream_published() {
        let st = StreamState {
            generation: 2,
            started: true,
            device_id: "default".into(),
            device_name: "Default Audio Device".into(),
            device_rate: 48000,
            stream_rate: 48000,
            content_rate: 22050,
            channels: 2,
            format: Some(SampleFormat::I16),
        };
        assert_eq!(
            held_device(&st),
            Some(DeviceInfo {
                id: "default".into(),
                name: "Default Audio Device".into(),
                rate: 48000,
                channels: 2,
                format: SampleFormat::I16,
            })
        );
        // No stream running: nothing is held, a busy device is not this player's.
        let stopped = StreamState {
            started: false,
            ..st
        };
        assert_eq!(held_device(&stopped), None);
    }
}
