//! The C ABI's contract: argument checks, error codes, handle safety, struct layout as a C
//! compiler sees it, the committed header, and the exported symbols.

mod common;

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::process::Command;
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use audioplay::ffi::config::*;
use audioplay::ffi::devices::ApDeviceInfo;
use audioplay::ffi::events::ApEvent;
use audioplay::ffi::handle::{register, ApPlayer};
use audioplay::ffi::metrics::{ap_metrics, ap_snapshot_state, ApMetrics, ApStreamState};
use audioplay::ffi::player::*;
use audioplay::ffi::status::{ap_strerror, ApStatus, ApStatus::*};
use audioplay::ffi::version::ap_version;
use audioplay::virtual_device::VirtualHost;
use audioplay::{Config, Player};
use common::serial;
use common::virtual_host::{one_device, render, render_blocks};

fn default_config() -> ApConfig {
    // SAFETY: ApConfig is plain data; ap_config_init overwrites every field.
    let mut c: ApConfig = unsafe { std::mem::zeroed() };
    assert_eq!(ap_config_init(&mut c), AP_OK);
    c
}

/// A C handle on a virtual-device player (the C ABI over the same core `ap_create` builds).
fn virtual_handle(cfg: Config) -> (*mut ApPlayer, VirtualHost) {
    let h = one_device(48000, 2, cpal::SampleFormat::F32);
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    (register(p), h)
}

fn last_error(p: *const ApPlayer) -> String {
    let mut buf = [0 as c_char; 256];
    assert_eq!(ap_last_error(p, buf.as_mut_ptr(), buf.len()), AP_OK);
    // SAFETY: ap_last_error NUL-terminates within the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn null_pointers_are_rejected_everywhere() {
    let cfg = default_config();
    let mut out: *mut ApPlayer = null_mut();
    let mut n = 0usize;
    assert_eq!(ap_config_init(null_mut()), AP_ERR_NULL);
    assert_eq!(ap_create(null(), &mut out), AP_ERR_NULL);
    assert_eq!(ap_create(&cfg, null_mut()), AP_ERR_NULL);
    assert_eq!(ap_write(null_mut(), null(), 0, &mut n), AP_ERR_NULL);
    assert_eq!(ap_drain(null_mut(), 0), AP_ERR_NULL);
    assert_eq!(ap_metrics(null_mut(), null_mut()), AP_ERR_NULL);
    assert_eq!(ap_last_error(null(), null_mut(), 0), AP_ERR_NULL);
    assert_eq!(ap_destroy(null_mut()), AP_OK, "destroy(NULL) is a no-op");
    assert!(out.is_null(), "outputs are written only on success");
}

#[test]
fn config_struct_size_and_enums_are_checked() {
    let mut out: *mut ApPlayer = null_mut();
    for size in [0u32, 4, std::mem::size_of::<ApConfig>() as u32 + 8] {
        let mut c = default_config();
        c.struct_size = size;
        assert_eq!(
            ap_create(&c, &mut out),
            AP_ERR_STRUCT_SIZE,
            "struct_size {size}"
        );
    }
    type Mutate = fn(&mut ApConfig);
    let cases: [(Mutate, &str); 10] = [
        (|c| c.input_format = 99, "input_format 99"),
        (|c| c.prefer_stream_rate = -1, "prefer_stream_rate -1"),
        (|c| c.resample_mode = 0, "resample_mode 0"),
        (|c| c.log_level = 9, "log_level 9"),
        (|c| c.input_channels = 0, "input_channels 0"),
        (|c| c.input_channels = 1 << 20, "input_channels 1048576"),
        (|c| c.input_rate = 10, "input_rate 10"),
        (|c| c.target_latency_ms = 0, "target_latency_ms 0"),
        (
            |c| c.ring_capacity_ms = u32::MAX,
            "ring_capacity_ms 4294967295",
        ),
        (
            |c| c.write_timeout_ms = 600_001,
            "write_timeout_ms 600001 out of range 0..=600000",
        ),
    ];
    static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
    unsafe extern "C" fn log(_: *mut c_void, level: i32, msg: *const c_char) {
        assert_eq!(level, AP_LOG_ERROR);
        // SAFETY: the library passes a NUL-terminated message valid for this call.
        LOG.lock().unwrap().push(
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    for (mutate, what) in cases {
        let mut c = default_config();
        c.log_fn = Some(log);
        mutate(&mut c);
        assert_eq!(ap_create(&c, &mut out), AP_ERR_INVALID_ARG, "{what}");
        let last = LOG.lock().unwrap().pop().unwrap_or_default();
        assert!(last.contains(what), "log for {what}: {last}");
    }
    let bad = [0xffu8, 0xfe, 0];
    let mut c = default_config();
    c.device_id = bad.as_ptr().cast();
    assert_eq!(
        ap_create(&c, &mut out),
        AP_ERR_INVALID_ARG,
        "non-UTF-8 device id"
    );
    assert!(out.is_null());
}

#[test]
fn forged_and_stale_handles_are_rejected_without_a_crash() {
    let _s = serial();
    let mut n = 0usize;
    let forged = 0x1000 as *mut ApPlayer;
    assert_eq!(
        ap_write(forged, [0u8; 2].as_ptr().cast(), 1, &mut n),
        AP_ERR_BAD_HANDLE
    );
    assert_eq!(ap_destroy(forged), AP_ERR_BAD_HANDLE);
    let (p, _h) = virtual_handle(Config::default());
    assert_eq!(ap_destroy(p), AP_OK);
    assert_eq!(
        ap_write(p, [0u8; 2].as_ptr().cast(), 1, &mut n),
        AP_ERR_BAD_HANDLE
    );
    let mut m = ApMetrics {
        struct_size: std::mem::size_of::<ApMetrics>() as u32,
        ..Default::default()
    };
    assert_eq!(ap_metrics(p, &mut m), AP_ERR_BAD_HANDLE);
    assert_eq!(
        ap_destroy(p),
        AP_ERR_BAD_HANDLE,
        "double destroy is detected"
    );
}

#[test]
fn write_metrics_and_last_error_on_a_live_handle() {
    let _s = serial();
    let cfg = Config {
        input_rate: 48000,
        ring_capacity_ms: 100,
        write_timeout_ms: 0,
        ..Config::default()
    };
    let (p, h) = virtual_handle(cfg);
    let pcm = vec![100i16; 10_000];
    let mut n = 99usize;
    assert_eq!(ap_write(p, pcm.as_ptr().cast(), 0, &mut n), AP_OK);
    assert_eq!(n, 0);
    assert_eq!(ap_write(p, null(), 5, &mut n), AP_ERR_NULL);
    assert!(
        last_error(p).contains("frames is NULL"),
        "{}",
        last_error(p)
    );
    assert_eq!(ap_write(p, pcm.as_ptr().cast(), 5, null_mut()), AP_ERR_NULL);
    assert_eq!(
        ap_write(p, pcm.as_ptr().cast(), usize::MAX, &mut n),
        AP_ERR_INVALID_ARG
    );
    assert!(last_error(p).contains("overflows"), "{}", last_error(p));
    assert_eq!(ap_write(p, pcm.as_ptr().cast(), pcm.len(), &mut n), AP_OK);
    assert_eq!(
        n, 4800,
        "partial write when the 100 ms ring is full (timeout 0)"
    );

    let mut m = ApMetrics {
        struct_size: 8,
        ..Default::default()
    };
    assert_eq!(ap_metrics(p, &mut m), AP_ERR_STRUCT_SIZE);
    assert_eq!(m.frames_written, 0, "untouched on error");
    m.struct_size = std::mem::size_of::<ApMetrics>() as u32;
    render(&h.stream("v").unwrap(), 480);
    assert_eq!(ap_metrics(p, &mut m), AP_OK);
    assert_eq!(
        (m.frames_written, m.frames_played, m.frames_queued),
        (4800, 480, 4320)
    );
    assert_eq!(
        (
            m.stream_rate,
            m.device_rate,
            m.content_rate,
            m.output_channels
        ),
        (48000, 48000, 48000, 2)
    );
    assert_eq!(
        (m.needs_resample, m.recreating, m.stream_generation),
        (0, 0, 1)
    );

    assert!(
        m.device_id.starts_with(&[b'v' as c_char, 0]),
        "device id copied"
    );
    assert_eq!(m.last_recreate_reason, 1, "initial");
    assert_eq!(m.last_route_gap_ms, -1.0);

    // SAFETY: plain data; the fields are overwritten by ap_snapshot_state.
    let mut st: ApStreamState = unsafe { std::mem::zeroed() };
    assert_eq!(ap_snapshot_state(p, &mut st), AP_ERR_STRUCT_SIZE);
    st.struct_size = std::mem::size_of::<ApStreamState>() as u32;
    assert_eq!(ap_snapshot_state(p, &mut st), AP_OK);
    assert_eq!(
        (st.started, st.generation, st.stream_rate, st.recreating),
        (1, 1, 48000, 0)
    );
    assert!(
        st.device_name
            .starts_with(&[b'V' as c_char, b'i' as c_char]),
        "Virtual v"
    );

    let mut tiny = [0x7f as c_char; 4];
    assert_eq!(ap_last_error(p, tiny.as_mut_ptr(), 4), AP_OK);
    assert_eq!(tiny[3], 0, "truncated and terminated");
    assert_eq!(
        ap_last_error(p, tiny.as_mut_ptr(), 0),
        AP_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        ap_drain(p, 10),
        AP_ERR_TIMEOUT,
        "nothing renders: the drain times out"
    );
    assert_eq!(ap_destroy(p), AP_OK);
}

#[test]
fn destroy_while_a_writer_is_blocked() {
    let _s = serial();
    let cfg = Config {
        input_rate: 48000,
        ring_capacity_ms: 100,
        write_timeout_ms: 10_000,
        ..Config::default()
    };
    let (p, _h) = virtual_handle(cfg);
    let addr = p as usize;
    let writer = std::thread::spawn(move || {
        let pcm = vec![1i16; 20_000];
        let mut n = 0usize;
        ap_write(
            addr as *mut ApPlayer,
            pcm.as_ptr().cast(),
            pcm.len(),
            &mut n,
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let t0 = std::time::Instant::now();
    assert_eq!(ap_destroy(p), AP_OK);
    assert_eq!(writer.join().unwrap(), AP_ERR_CLOSED);
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn speech_control_entry_points_check_their_arguments() {
    use audioplay::ffi::control::*;
    use audioplay::ffi::devices::*;
    use audioplay::ffi::events::*;
    let _s = serial();
    let forged = 0x1000 as *mut ApPlayer;
    for bad in [null_mut(), forged] {
        let want = if bad.is_null() {
            AP_ERR_NULL
        } else {
            AP_ERR_BAD_HANDLE
        };
        assert_eq!(ap_end_utterance(bad), want);
        assert_eq!(ap_mark(bad, 1), want);
        assert_eq!(ap_flush(bad, 5, null_mut()), want);
        assert_eq!(ap_pause(bad, 5), want);
        assert_eq!(ap_resume(bad, 5), want);
        assert_eq!(ap_set_volume(bad, 0.5, 5), want);
        assert_eq!(ap_set_input_format(bad, AP_FORMAT_S16, 1, 16000), want);
        assert_eq!(ap_set_device(bad, null()), want);
        assert_eq!(ap_position(bad, null_mut(), null_mut(), null_mut()), want);
        let mut e = ApEvent {
            struct_size: std::mem::size_of::<ApEvent>() as u32,
            ..Default::default()
        };
        let mut n = 0usize;
        assert_eq!(ap_poll_event(bad, &mut e, &mut n), want);
    }
    let (p, h) = virtual_handle(Config {
        input_rate: 48000,
        ..Config::default()
    });
    assert_eq!(ap_set_volume(p, f32::NAN, 0), AP_ERR_INVALID_ARG);
    assert!(last_error(p).contains("volume"), "{}", last_error(p));
    assert_eq!(ap_set_volume(p, 5.0, 0), AP_ERR_INVALID_ARG);
    assert_eq!(ap_set_input_format(p, 7, 1, 16000), AP_ERR_INVALID_ARG);
    assert_eq!(
        ap_set_input_format(p, AP_FORMAT_F32, 0, 16000),
        AP_ERR_INVALID_ARG
    );
    assert_eq!(
        ap_set_input_format(p, AP_FORMAT_F32, 1, 5),
        AP_ERR_INVALID_ARG
    );
    let bad_utf8 = [0xffu8, 0];
    assert_eq!(
        ap_set_device(p, bad_utf8.as_ptr().cast()),
        AP_ERR_INVALID_ARG
    );
    let nope = c"nope";
    assert_eq!(ap_set_device(p, nope.as_ptr()), AP_ERR_NO_DEVICE);
    let mut e = ApEvent::default();
    let mut n = 7usize;
    assert_eq!(ap_poll_event(p, &mut e, &mut n), AP_ERR_STRUCT_SIZE);
    assert_eq!(ap_poll_event(p, &mut e, null_mut()), AP_ERR_NULL);
    e.struct_size = std::mem::size_of::<ApEvent>() as u32;
    // A full flow through the C ABI: mark, write, end, render, poll.
    assert_eq!(ap_mark(p, 42), AP_OK);
    let pcm = vec![1000i16; 4800];
    let mut w = 0usize;
    assert_eq!(ap_write(p, pcm.as_ptr().cast(), pcm.len(), &mut w), AP_OK);
    assert_eq!(ap_end_utterance(p), AP_OK);
    render_blocks(&h.stream("v").unwrap(), 4800, 4800);
    let mut kinds = Vec::new();
    let t0 = std::time::Instant::now();
    while kinds.len() < 3 && t0.elapsed() < std::time::Duration::from_secs(2) {
        assert_eq!(ap_poll_event(p, &mut e, &mut n), AP_OK);
        if n == 1 {
            kinds.push((e.kind, e.id, e.frame));
        } else {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    assert_eq!(
        kinds,
        vec![
            (AP_EVENT_UTTERANCE_START, 0, 0),
            (AP_EVENT_MARKER, 42, 0),
            (AP_EVENT_UTTERANCE_END, 0, 4800)
        ]
    );
    let (mut heard, mut queued, mut lat) = (0u64, 9u64, -1.0f64);
    assert_eq!(ap_position(p, &mut heard, &mut queued, &mut lat), AP_OK);
    assert_eq!((heard, queued, lat), (4800, 0, 0.0));
    let mut at = u64::MAX;
    assert_eq!(ap_flush(p, 0, &mut at), AP_OK);
    assert_eq!(at, 4800);
    assert_eq!(ap_pause(p, 5), AP_OK);
    assert_eq!(ap_resume(p, 5), AP_OK);
    assert_eq!(ap_set_input_format(p, AP_FORMAT_F32, 2, 24000), AP_OK);
    let mut count = 0usize;
    assert_eq!(ap_list_devices(null_mut(), 3, &mut count), AP_ERR_NULL);
    assert_eq!(ap_list_devices(null_mut(), 0, null_mut()), AP_ERR_NULL);
    assert_eq!(ap_destroy(p), AP_OK);
}

#[test]
fn strerror_and_version() {
    for code in [0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, 12345, i32::MIN] {
        // SAFETY: ap_strerror returns static NUL-terminated text.
        let s = unsafe { CStr::from_ptr(ap_strerror(code)) }
            .to_str()
            .unwrap();
        assert!(!s.is_empty());
        if code == 12345 {
            assert_eq!(s, "unknown status code");
        }
    }
    // SAFETY: static NUL-terminated text.
    let v = unsafe { CStr::from_ptr(ap_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    let header = audioplay::GENERATED_HEADER;
    assert!(header.contains(&format!(
        "#define AP_VERSION_MAJOR {}",
        env!("CARGO_PKG_VERSION_MAJOR")
    )));
    assert!(header.contains(&format!(
        "#define AP_VERSION_MINOR {}",
        env!("CARGO_PKG_VERSION_MINOR")
    )));
    assert!(header.contains(&format!(
        "#define AP_VERSION_PATCH {}",
        env!("CARGO_PKG_VERSION_PATCH")
    )));
    let _ = ApStatus::AP_OK;
}

#[test]
fn committed_header_matches_the_generated_one() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/audioplay.h"))
            .unwrap();
    assert!(
        committed == audioplay::GENERATED_HEADER,
        "include/audioplay.h is stale: run scripts/regen-header.sh and commit it"
    );
}

#[test]
fn struct_layout_matches_what_a_c_compiler_sees() {
    use std::mem::{offset_of, size_of};
    macro_rules! fields {
        ($t:ty: $($f:ident),*) => { vec![$((stringify!($f), offset_of!($t, $f))),*] };
    }
    let config = fields!(ApConfig: struct_size, input_format, input_channels, input_rate, device_id,
        target_latency_ms, ring_capacity_ms, write_timeout_ms, prefer_stream_rate, resample_mode,
        log_level, log_fn, log_user, device_poll_ms, device_query_cooldown_ms,
        max_recreate_per_minute, debounce_ms, max_replay_ms, recreate_warn_ms, start_threshold_ms,
        idle_suspend_ms, event_fn, event_user, resample_quality, resample_p95_limit_us,
        audio_thread_priority, trim_threshold, trim_keep_ms);
    let event = fields!(ApEvent: struct_size, kind, id, frame, heard_ms);
    let device = fields!(ApDeviceInfo: struct_size, rate, channels, is_default, id, name);
    let metrics = fields!(ApMetrics: struct_size, output_channels, frames_written, frames_played,
        frames_queued, frames_dropped, underruns, generation_mismatches, shape_mismatches,
        callback_errors, resample_errors, callbacks, stream_errors, stream_generation,
        callback_us_p50, callback_us_p95, callback_us_p99, callback_us_max, resample_us_p50,
        resample_us_p95, resample_us_p99, resample_us_max, output_latency_ms, stream_rate,
        device_rate, content_rate, device_format, needs_resample, recreating, last_recreate_reason,
        frames_replayed, recreates, recreate_failures, recreates_refused, device_query_failures,
        last_route_gap_ms, recreate_ms_p50, recreate_ms_p95, recreate_ms_max, device_id, device_name,
        frames_flushed, frames_heard, markers_flushed, events_dropped, last_wake_ms, suspended,
        late_callbacks, resample_fallback, output_lost, outages, last_outage_ms, server_reconnects,
        server_underflows, trimmed_ms, flushes_rewritten, server_moves);
    let state = fields!(ApStreamState: struct_size, started, generation, stream_rate, device_rate,
        content_rate, output_channels, recreating, device_format, device_id, device_name);
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"audioplay.h\"\nint main(void){\n",
    );
    let mut want = String::new();
    for (ty, size, fields) in [
        ("ApConfig", size_of::<ApConfig>(), &config),
        ("ApMetrics", size_of::<ApMetrics>(), &metrics),
        ("ApStreamState", size_of::<ApStreamState>(), &state),
        ("ApEvent", size_of::<ApEvent>(), &event),
        ("ApDeviceInfo", size_of::<ApDeviceInfo>(), &device),
    ] {
        c += &format!("printf(\"{ty} %zu\\n\", sizeof({ty}));\n");
        want += &format!("{ty} {size}\n");
        for (f, off) in fields.iter() {
            c += &format!("printf(\"{ty}.{f} %zu\\n\", offsetof({ty}, {f}));\n");
            want += &format!("{ty}.{f} {off}\n");
        }
    }
    c += "return 0;}\n";
    let dir = std::env::temp_dir().join(format!("audioplay-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("layout.c"), c).unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let cc = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror", "-I", include, "-o"])
        .arg(dir.join("layout"))
        .arg(dir.join("layout.c"))
        .output()
        .expect("a C compiler (cc)");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let got = Command::new(dir.join("layout")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), want);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn only_ap_symbols_are_exported() {
    // The test binary lives in target/<profile>/deps; the cdylib one level up.
    let exe = std::env::current_exe().unwrap();
    let so = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libaudioplay.so");
    assert!(so.exists(), "{} not built", so.display());
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let syms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(
        syms.contains(&"ap_create") && syms.contains(&"ap_write"),
        "{syms:?}"
    );
    let foreign: Vec<_> = syms.iter().filter(|s| !s.starts_with("ap_")).collect();
    assert!(foreign.is_empty(), "exported non-ap_ symbols: {foreign:?}");
}
