//! Issue 7, the bad-input table: every C entry point fed NULL handles and pointers, zero and
//! huge counts, invalid enums, bad `struct_size`, non-UTF-8 ids, stale handles and hostile
//! float samples. Each case must return its documented code; afterwards the same player must
//! still play every frame it accepted (nothing lost). The table is written to
//! `target/tmp/bad_input.md` for scripts/reliability.sh to put in docs/RELIABILITY.md.

mod common;

use std::os::raw::c_char;
use std::ptr::{null, null_mut};

use audioplay::ffi::config::*;
use audioplay::ffi::control::*;
use audioplay::ffi::devices::*;
use audioplay::ffi::events::*;
use audioplay::ffi::handle::{register, ApPlayer};
use audioplay::ffi::metrics::{ap_metrics, ap_snapshot_state, ApMetrics, ApStreamState};
use audioplay::ffi::player::*;
use audioplay::ffi::status::{ApStatus, ApStatus::*};
use audioplay::{Config, InputFormat, Player};
use common::accounting::assert_all_played;
use common::virtual_host::{one_device, render_blocks};

struct Case {
    entry: &'static str,
    input: &'static str,
    want: ApStatus,
    got: ApStatus,
}

struct Table(Vec<Case>);

impl Table {
    fn check(&mut self, entry: &'static str, input: &'static str, want: ApStatus, got: ApStatus) {
        self.0.push(Case {
            entry,
            input,
            want,
            got,
        });
    }
}

/// A zeroed public struct with `struct_size` set.
fn sized<T: Copy>(size: u32) -> T {
    // SAFETY: the public structs are repr(C) plain data (integers, floats, char arrays) for
    // which all-zero bytes are valid, and each starts with `struct_size: u32`.
    unsafe {
        let mut v: T = std::mem::zeroed();
        *(&mut v as *mut T).cast::<u32>() = size;
        v
    }
}

fn config() -> ApConfig {
    // SAFETY: ApConfig is plain data; ap_config_init overwrites every field.
    let mut c: ApConfig = unsafe { std::mem::zeroed() };
    assert_eq!(ap_config_init(&mut c), AP_OK);
    c
}

/// NULL, a forged address and a destroyed player's address: the three handles that are not
/// live. One entry point each row, so the table says what each does.
fn dead_handles(t: &mut Table, stale: *mut ApPlayer) {
    let forged = 0x1000 as *mut ApPlayer;
    let mut e: ApEvent = sized(std::mem::size_of::<ApEvent>() as u32);
    let mut m: ApMetrics = sized(std::mem::size_of::<ApMetrics>() as u32);
    let mut s: ApStreamState = sized(std::mem::size_of::<ApStreamState>() as u32);
    let pcm = [0i16; 16];
    for (h, what, want) in [
        (null_mut(), "NULL handle", AP_ERR_NULL),
        (forged, "forged handle", AP_ERR_BAD_HANDLE),
        (stale, "destroyed (stale) handle", AP_ERR_BAD_HANDLE),
    ] {
        let mut n = 0usize;
        t.check(
            "ap_write",
            what,
            want,
            ap_write(h, pcm.as_ptr().cast(), 16, &mut n),
        );
        t.check("ap_drain", what, want, ap_drain(h, 10));
        t.check("ap_end_utterance", what, want, ap_end_utterance(h));
        t.check("ap_mark", what, want, ap_mark(h, 1));
        t.check("ap_flush", what, want, ap_flush(h, 5, null_mut()));
        t.check("ap_pause", what, want, ap_pause(h, 5));
        t.check("ap_resume", what, want, ap_resume(h, 5));
        t.check("ap_set_volume", what, want, ap_set_volume(h, 0.5, 5));
        t.check(
            "ap_set_gain_pan",
            what,
            want,
            ap_set_gain_pan(h, 0.5, 0.0, 5, AP_GAIN_UTTERANCE),
        );
        t.check(
            "ap_set_input_format",
            what,
            want,
            ap_set_input_format(h, AP_FORMAT_S16, 1, 16000),
        );
        t.check("ap_set_speed", what, want, ap_set_speed(h, 1.5));
        t.check("ap_set_device", what, want, ap_set_device(h, null()));
        t.check(
            "ap_poll_event",
            what,
            want,
            ap_poll_event(h, &mut e, &mut n),
        );
        t.check(
            "ap_position",
            what,
            want,
            ap_position(h, null_mut(), null_mut(), null_mut()),
        );
        t.check("ap_metrics", what, want, ap_metrics(h, &mut m));
        t.check(
            "ap_snapshot_state",
            what,
            want,
            ap_snapshot_state(h, &mut s),
        );
        let mut buf = [0 as c_char; 64];
        if !h.is_null() {
            t.check(
                "ap_last_error",
                what,
                want,
                ap_last_error(h, buf.as_mut_ptr(), buf.len()),
            );
        }
        let destroy_want = if h.is_null() { AP_OK } else { want };
        t.check("ap_destroy", what, destroy_want, ap_destroy(h));
    }
}

/// An identity string past the 256-byte limit.
const LONG_NAME: &std::ffi::CStr = c"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn create_cases(t: &mut Table) {
    let mut out = null_mut();
    t.check(
        "ap_config_init",
        "NULL config",
        AP_ERR_NULL,
        ap_config_init(null_mut()),
    );
    t.check(
        "ap_create",
        "NULL config",
        AP_ERR_NULL,
        ap_create(null(), &mut out),
    );
    let c = config();
    t.check(
        "ap_create",
        "NULL out_player",
        AP_ERR_NULL,
        ap_create(&c, null_mut()),
    );
    let size = std::mem::size_of::<ApConfig>() as u32;
    for (s, what) in [
        (0, "struct_size 0"),
        (size - 4, "struct_size too small"),
        (size + 8, "struct_size too large"),
    ] {
        let mut c = config();
        c.struct_size = s;
        t.check(
            "ap_create",
            what,
            AP_ERR_STRUCT_SIZE,
            ap_create(&c, &mut out),
        );
    }
    type Mutate = fn(&mut ApConfig);
    let bad: [(&'static str, Mutate); 15] = [
        ("trim_threshold NaN", |c| c.trim_threshold = f32::NAN),
        ("trim_threshold 2 (above full scale)", |c| {
            c.trim_threshold = 2.0
        }),
        ("trim_keep_ms 5000", |c| c.trim_keep_ms = 5000),
        ("input_format 99 (invalid enum)", |c| c.input_format = 99),
        ("input_channels 0", |c| c.input_channels = 0),
        ("input_channels 4096 (huge)", |c| c.input_channels = 4096),
        ("input_rate 0", |c| c.input_rate = 0),
        ("input_rate u32::MAX", |c| c.input_rate = u32::MAX),
        ("prefer_stream_rate 7 (invalid enum)", |c| {
            c.prefer_stream_rate = 7
        }),
        ("resample_mode -1 (invalid enum)", |c| c.resample_mode = -1),
        ("ring_capacity_ms 0", |c| c.ring_capacity_ms = 0),
        ("device_id not UTF-8", |c| {
            c.device_id = c"\xff\xfe".as_ptr()
        }),
        ("media_role not UTF-8", |c| c.media_role = c"\xff".as_ptr()),
        ("stream_name empty", |c| c.stream_name = c"".as_ptr()),
        ("application_name 300 bytes", |c| {
            c.application_name = LONG_NAME.as_ptr()
        }),
    ];
    for (what, f) in bad {
        let mut c = config();
        f(&mut c);
        t.check(
            "ap_create",
            what,
            AP_ERR_INVALID_ARG,
            ap_create(&c, &mut out),
        );
    }
    let mut n = 0usize;
    t.check(
        "ap_list_devices",
        "NULL count",
        AP_ERR_NULL,
        ap_list_devices(null_mut(), 0, null_mut()),
    );
    t.check(
        "ap_list_devices",
        "NULL out with capacity 4",
        AP_ERR_NULL,
        ap_list_devices(null_mut(), 4, &mut n),
    );
    t.check(
        "ap_last_error",
        "NULL player",
        AP_ERR_NULL,
        ap_last_error(null(), [0 as c_char; 8].as_mut_ptr(), 8),
    );
}

/// Bad arguments to a live player. Returns the frames it accepted along the way.
fn live_cases(t: &mut Table, p: *mut ApPlayer) -> u64 {
    let mut n = 0usize;
    let pcm = [100i16; 4800];
    t.check(
        "ap_write",
        "NULL frames",
        AP_ERR_NULL,
        ap_write(p, null(), 10, &mut n),
    );
    t.check(
        "ap_write",
        "NULL frames, 0 frames",
        AP_OK,
        ap_write(p, null(), 0, &mut n),
    );
    t.check(
        "ap_write",
        "frame_count usize::MAX (size overflow)",
        AP_ERR_INVALID_ARG,
        ap_write(p, pcm.as_ptr().cast(), usize::MAX, &mut n),
    );
    t.check(
        "ap_write",
        "NULL frames_written",
        AP_ERR_NULL,
        ap_write(p, pcm.as_ptr().cast(), pcm.len(), null_mut()),
    );
    t.check(
        "ap_write",
        "4800 s16 frames (valid, for the accounting below)",
        AP_OK,
        ap_write(p, pcm.as_ptr().cast(), pcm.len(), &mut n),
    );
    let mut accepted = n as u64;
    t.check(
        "ap_set_volume",
        "gain NaN",
        AP_ERR_INVALID_ARG,
        ap_set_volume(p, f32::NAN, 0),
    );
    t.check(
        "ap_set_volume",
        "gain +Inf",
        AP_ERR_INVALID_ARG,
        ap_set_volume(p, f32::INFINITY, 0),
    );
    t.check(
        "ap_set_volume",
        "gain -1",
        AP_ERR_INVALID_ARG,
        ap_set_volume(p, -1.0, 0),
    );
    t.check(
        "ap_set_volume",
        "ramp_ms u32::MAX (clamped to 10 s)",
        AP_OK,
        ap_set_volume(p, 1.0, u32::MAX),
    );
    type GainPan = (&'static str, f32, f32, u32, ApStatus);
    let gain_pan: [GainPan; 8] = [
        (
            "gain NaN",
            f32::NAN,
            0.0,
            AP_GAIN_UTTERANCE,
            AP_ERR_INVALID_ARG,
        ),
        (
            "gain +Inf",
            f32::INFINITY,
            0.0,
            AP_GAIN_UTTERANCE,
            AP_ERR_INVALID_ARG,
        ),
        (
            "gain -0.5",
            -0.5,
            0.0,
            AP_GAIN_UNTIL_CHANGED,
            AP_ERR_INVALID_ARG,
        ),
        (
            "gain 4.5",
            4.5,
            0.0,
            AP_GAIN_UNTIL_CHANGED,
            AP_ERR_INVALID_ARG,
        ),
        (
            "pan NaN",
            1.0,
            f32::NAN,
            AP_GAIN_UTTERANCE,
            AP_ERR_INVALID_ARG,
        ),
        (
            "pan -Inf",
            1.0,
            f32::NEG_INFINITY,
            AP_GAIN_UTTERANCE,
            AP_ERR_INVALID_ARG,
        ),
        ("scope 7 (invalid enum)", 1.0, 0.0, 7, AP_ERR_INVALID_ARG),
        (
            "gain 1, pan 0, until changed (valid)",
            1.0,
            0.0,
            AP_GAIN_UNTIL_CHANGED,
            AP_OK,
        ),
    ];
    for (what, speed, want) in [
        ("speed NaN", f32::NAN, AP_ERR_INVALID_ARG),
        ("speed 0.49 (below 0.5)", 0.49, AP_ERR_INVALID_ARG),
        ("speed 4.01 (above 4)", 4.01, AP_ERR_INVALID_ARG),
        ("speed +Inf", f32::INFINITY, AP_ERR_INVALID_ARG),
        ("speed 2.5 (valid)", 2.5, AP_OK),
        ("speed 1 (valid, the bypass)", 1.0, AP_OK),
    ] {
        t.check("ap_set_speed", what, want, ap_set_speed(p, speed));
    }
    for (what, gain, pan, scope, want) in gain_pan {
        t.check(
            "ap_set_gain_pan",
            what,
            want,
            ap_set_gain_pan(p, gain, pan, u32::MAX, scope),
        );
    }
    let mut msg = [0 as c_char; 256];
    assert_eq!(
        ap_set_gain_pan(p, 1.0, 1.5, 0, AP_GAIN_UTTERANCE),
        AP_ERR_INVALID_ARG
    );
    assert_eq!(ap_last_error(p, msg.as_mut_ptr(), msg.len()), AP_OK);
    // SAFETY: ap_last_error NUL-terminates within the buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
    assert_eq!(
        msg.to_str().unwrap(),
        "ap_set_gain_pan: invalid argument: pan 1.5 out of range -1..=1"
    );
    // Ramps are clamped to 10 s (documented); a paused player keeps what it holds.
    t.check(
        "ap_pause",
        "ramp_ms u32::MAX (clamped to 10 s)",
        AP_OK,
        ap_pause(p, u32::MAX),
    );
    t.check(
        "ap_resume",
        "ramp_ms u32::MAX (clamped to 10 s)",
        AP_OK,
        ap_resume(p, 0),
    );
    t.check(
        "ap_set_input_format",
        "format 7 (invalid enum)",
        AP_ERR_INVALID_ARG,
        ap_set_input_format(p, 7, 1, 16000),
    );
    t.check(
        "ap_set_input_format",
        "channels 0",
        AP_ERR_INVALID_ARG,
        ap_set_input_format(p, AP_FORMAT_S16, 0, 16000),
    );
    t.check(
        "ap_set_input_format",
        "rate 5",
        AP_ERR_INVALID_ARG,
        ap_set_input_format(p, AP_FORMAT_S16, 1, 5),
    );
    t.check(
        "ap_set_device",
        "id not UTF-8",
        AP_ERR_INVALID_ARG,
        ap_set_device(p, c"\xc3\x28".as_ptr()),
    );
    t.check(
        "ap_set_device",
        "id of a device that is not there",
        AP_ERR_NO_DEVICE,
        ap_set_device(p, c"no-such-device".as_ptr()),
    );
    t.check(
        "ap_poll_event",
        "NULL event",
        AP_ERR_NULL,
        ap_poll_event(p, null_mut(), &mut n),
    );
    t.check("ap_poll_event", "NULL n_events", AP_ERR_NULL, {
        let mut e: ApEvent = sized(std::mem::size_of::<ApEvent>() as u32);
        ap_poll_event(p, &mut e, null_mut())
    });
    for (s, what) in [
        (0, "struct_size 0"),
        (4, "struct_size too small"),
        (4096, "struct_size too large"),
    ] {
        let mut e: ApEvent = sized(s);
        t.check(
            "ap_poll_event",
            what,
            AP_ERR_STRUCT_SIZE,
            ap_poll_event(p, &mut e, &mut n),
        );
        let mut m: ApMetrics = sized(s);
        t.check(
            "ap_metrics",
            what,
            AP_ERR_STRUCT_SIZE,
            ap_metrics(p, &mut m),
        );
        let mut st: ApStreamState = sized(s);
        t.check(
            "ap_snapshot_state",
            what,
            AP_ERR_STRUCT_SIZE,
            ap_snapshot_state(p, &mut st),
        );
    }
    t.check(
        "ap_metrics",
        "NULL out",
        AP_ERR_NULL,
        ap_metrics(p, null_mut()),
    );
    t.check(
        "ap_snapshot_state",
        "NULL out",
        AP_ERR_NULL,
        ap_snapshot_state(p, null_mut()),
    );
    t.check(
        "ap_position",
        "all outputs NULL (each optional)",
        AP_OK,
        ap_position(p, null_mut(), null_mut(), null_mut()),
    );
    t.check(
        "ap_last_error",
        "NULL buf",
        AP_ERR_NULL,
        ap_last_error(p, null_mut(), 16),
    );
    t.check(
        "ap_last_error",
        "buf_len 0",
        AP_ERR_BUFFER_TOO_SMALL,
        ap_last_error(p, [0 as c_char; 1].as_mut_ptr(), 0),
    );
    t.check(
        "ap_drain",
        "timeout 0 with audio queued",
        AP_ERR_TIMEOUT,
        ap_drain(p, 0),
    );
    t.check("ap_mark", "id u64::MAX", AP_OK, ap_mark(p, u64::MAX));
    t.check("ap_end_utterance", "twice in a row", AP_OK, {
        ap_end_utterance(p);
        ap_end_utterance(p)
    });
    // Hostile samples: accepted, and sanitised before the device (checked by the caller).
    assert_eq!(ap_set_input_format(p, AP_FORMAT_F32, 1, 48000), AP_OK);
    let hostile = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        -1e-42,
        4.0,
        -4.0,
        0.5,
    ];
    let hostile: Vec<f32> = hostile.iter().copied().cycle().take(4800).collect();
    t.check(
        "ap_write",
        "f32 NaN, +-Inf, denormals, +-4.0",
        AP_OK,
        ap_write(p, hostile.as_ptr().cast(), hostile.len(), &mut n),
    );
    accepted += n as u64;
    accepted
}

#[test]
fn every_entry_point_rejects_bad_input_and_loses_nothing() {
    let mut t = Table(Vec::new());
    create_cases(&mut t);
    let h = one_device(48000, 2, cpal::SampleFormat::F32);
    let cfg = Config {
        input_format: InputFormat::S16,
        input_rate: 48000,
        write_timeout_ms: 0,
        ..Config::default()
    };
    let p = register(Player::with_host(cfg, h.cpal_host()).unwrap());
    let accepted = live_cases(&mut t, p);
    // Nothing accepted is lost and nothing hostile reaches the device.
    let out = render_blocks(&h.stream("v").unwrap(), 40 * 480, 480);
    let non_finite = out.iter().filter(|v| !v.is_finite()).count();
    let too_loud = out.iter().filter(|v| v.abs() > 1.0).count();
    let wrong: Vec<String> =
        t.0.iter()
            .filter(|c| c.got != c.want)
            .map(|c| format!("{} {}: {:?}, want {:?}", c.entry, c.input, c.got, c.want))
            .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let mut m: ApMetrics = sized(std::mem::size_of::<ApMetrics>() as u32);
    assert_eq!(ap_metrics(p, &mut m), AP_OK);
    assert_eq!(m.frames_written, accepted);
    assert_all_played(&m); // accepted audio is never lost
    assert_eq!(non_finite, 0, "NaN/Inf reached the device");
    assert_eq!(too_loud, 0, "samples beyond full scale reached the device");
    // Barge-in with a huge fade: clamped, and only what was queued is flushed (counted).
    t.check(
        "ap_flush",
        "fade_ms u32::MAX (clamped to 10 s)",
        AP_OK,
        ap_flush(p, u32::MAX, null_mut()),
    );
    assert_eq!(ap_destroy(p), AP_OK);
    // A destroyed player's address, while nothing else has been created since.
    dead_handles(&mut t, p);

    let mut md = String::from("| entry point | input | returns |\n|---|---|---|\n");
    let mut wrong = Vec::new();
    for c in &t.0 {
        md += &format!("| `{}` | {} | `{:?}` |\n", c.entry, c.input, c.got);
        if c.got != c.want {
            wrong.push(format!(
                "{} {}: {:?}, want {:?}",
                c.entry, c.input, c.got, c.want
            ));
        }
    }
    md += &format!(
        "\n{} cases; afterwards the player played all {accepted} accepted frames, 0 dropped, \
         0 non-finite or out-of-range samples reached the device.\n",
        t.0.len()
    );
    std::fs::write(concat!(env!("CARGO_TARGET_TMPDIR"), "/bad_input.md"), md).unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `ap_create_ex` returns create's reason with no log callback: each refused config names the
/// field and the value, the buffer is always NUL-terminated (truncated when short), and a
/// successful create leaves it empty.
#[test]
fn create_ex_returns_the_reason_without_a_log_callback() {
    fn reason_of(c: &ApConfig, len: usize) -> (ApStatus, String, *mut ApPlayer) {
        let mut out = null_mut();
        let mut buf = vec![b'x' as c_char; len];
        let st = ap_create_ex(c, &mut out, buf.as_mut_ptr(), len);
        let bytes: Vec<u8> = buf.iter().map(|&b| b as u8).collect();
        let nul = bytes
            .iter()
            .position(|&b| b == 0)
            .expect("reason is NUL-terminated");
        (st, String::from_utf8(bytes[..nul].to_vec()).unwrap(), out)
    }
    let mut c = config();
    c.input_rate = 5;
    let (st, why, out) = reason_of(&c, 256);
    assert_eq!(st, AP_ERR_INVALID_ARG);
    assert!(out.is_null(), "outputs only on success");
    assert!(why.contains("input_rate") && why.contains('5'), "{why:?}");
    let (_, short, _) = reason_of(&c, 6);
    assert_eq!(short.len(), 5, "truncated to the buffer: {short:?}");
    assert!(why.starts_with(&short));

    let mut c = config();
    c.input_channels = 0;
    let (st, why, _) = reason_of(&c, 256);
    assert_eq!(st, AP_ERR_INVALID_ARG);
    assert!(why.contains("input_channels"), "{why:?}");

    let mut c = config();
    c.struct_size = 12;
    let (st, why, _) = reason_of(&c, 256);
    assert_eq!(st, AP_ERR_STRUCT_SIZE);
    assert!(why.contains("struct_size"), "{why:?}");

    let mut out = null_mut();
    let mut buf = [b'x' as c_char; 64];
    assert_eq!(
        ap_create_ex(null(), &mut out, buf.as_mut_ptr(), 64),
        AP_ERR_NULL
    );
    assert!(buf[..64].contains(&0));
    // NULL reason (or length 0) is allowed and writes nothing.
    let c = config();
    assert_eq!(
        ap_create_ex(&c, null_mut(), null_mut(), 0),
        AP_ERR_NULL,
        "NULL out_player"
    );
    let mut c = config();
    c.input_rate = 5;
    buf[0] = b'x' as c_char;
    assert_eq!(
        ap_create_ex(&c, &mut out, buf.as_mut_ptr(), 0),
        AP_ERR_INVALID_ARG
    );
    assert_eq!(buf[0], b'x' as c_char, "reason_len 0 writes nothing");
}
