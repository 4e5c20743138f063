//! Issue 14 §4 on a private PulseAudio server: the player's client and stream carry the
//! application's name and id, the stream's name and its media role, as `pactl` shows them;
//! by default the program's name, "Speech" and the accessibility role, and "none" removes
//! the role. Set through the C ABI (`ApConfig`), as a TTS engine would.
//!
//! The player runs in a child process with the server's environment (tests never change
//! their own environment); the parent reads the server's view while the child plays.

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use audioplay::ffi::config::{ap_config_init, ApConfig, AP_FORMAT_S16};
use audioplay::ffi::player::{ap_create_ex, ap_destroy, ap_drain, ap_write};
use audioplay::ffi::status::ApStatus::AP_OK;
use common::pulse::{PulseServer, S48};
use common::serial;

/// The child: plays 3 s of tone with the identity its environment names, then exits.
#[test]
#[ignore = "run by the tests below, in a child process with the server's environment"]
fn child_plays_with_identity() {
    let mode = std::env::var("AP_IDENTITY").unwrap();
    let strings: Vec<CString> = [
        "Test Reader",
        "org.example.TestReader",
        "Utterance 1",
        "event",
        "none",
    ]
    .iter()
    .map(|s| CString::new(*s).unwrap())
    .collect();
    // SAFETY: ApConfig is plain data; ap_config_init overwrites every field.
    let mut c: ApConfig = unsafe { std::mem::zeroed() };
    assert_eq!(ap_config_init(&mut c), AP_OK);
    c.input_format = AP_FORMAT_S16;
    c.input_rate = 22050;
    c.input_channels = 1;
    match mode.as_str() {
        "default" => {}
        "custom" => {
            c.application_name = strings[0].as_ptr();
            c.application_id = strings[1].as_ptr();
            c.stream_name = strings[2].as_ptr();
            c.media_role = strings[3].as_ptr();
        }
        "no-role" => c.media_role = strings[4].as_ptr(),
        m => panic!("unknown mode {m}"),
    }
    let mut p = null_mut();
    let mut why = [0 as std::os::raw::c_char; 256];
    let st = ap_create_ex(&c, &mut p, why.as_mut_ptr(), why.len());
    assert_eq!(st, AP_OK, "{:?}", unsafe {
        std::ffi::CStr::from_ptr(why.as_ptr())
    });
    let tone: Vec<i16> = (0..22050 * 3)
        .map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / 22050.0).sin()) as i16)
        .collect();
    let mut off = 0;
    while off < tone.len() {
        let mut n = 0usize;
        assert_eq!(
            ap_write(p, tone[off..].as_ptr().cast(), tone.len() - off, &mut n),
            AP_OK
        );
        off += n;
    }
    assert_eq!(ap_drain(p, 10_000), AP_OK);
    assert_eq!(ap_destroy(p), AP_OK);
    println!("child done");
}

/// Runs the child with `mode`; returns the properties of its sink input and of its client
/// as the server listed them while it played.
fn server_view(mode: &str) -> (HashMap<String, String>, HashMap<String, String>, String) {
    let _guard = serial();
    let server = PulseServer::start(&[S48]);
    let exe = std::env::current_exe().unwrap();
    let child = server
        .child_test("child_plays_with_identity")
        .env("AP_IDENTITY", mode)
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let t0 = Instant::now();
    let mut found = None;
    while found.is_none() && t0.elapsed() < Duration::from_secs(8) {
        let inputs =
            String::from_utf8_lossy(&server.pactl(&["list", "sink-inputs"]).stdout).into_owned();
        let clients =
            String::from_utf8_lossy(&server.pactl(&["list", "clients"]).stdout).into_owned();
        let of_child = |listing: &str| {
            blocks(listing)
                .into_iter()
                .find(|b| b.get("application.process.id") == Some(&pid))
        };
        if let (Some(i), Some(c)) = (of_child(&inputs), of_child(&clients)) {
            found = Some((i, c));
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child done"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (input, client) = found.expect("the child's stream was listed by the server");
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    (input, client, name)
}

/// `pactl list` output as one property map per block (`key = "value"` lines).
fn blocks(listing: &str) -> Vec<HashMap<String, String>> {
    listing
        .split("\n\n")
        .map(|b| {
            b.lines()
                .filter_map(|l| {
                    let (k, v) = l.trim().split_once(" = ")?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect()
        })
        .collect()
}

fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    m.get(k).map(String::as_str)
}

#[test]
fn by_default_the_stream_is_the_programs_speech_in_the_accessibility_role() {
    let (input, client, program) = server_view("default");
    assert_eq!(get(&input, "media.role"), Some("a11y"), "{input:?}");
    assert_eq!(get(&input, "media.name"), Some("Speech"), "{input:?}");
    assert_eq!(
        get(&input, "application.name"),
        Some(program.as_str()),
        "{input:?}"
    );
    assert_eq!(
        get(&client, "application.name"),
        Some(program.as_str()),
        "{client:?}"
    );
    assert!(
        !program.starts_with("cpal-pulseaudio"),
        "not cpal's default name"
    );
}

#[test]
fn the_application_names_itself_its_stream_and_its_role() {
    let (input, client, _) = server_view("custom");
    assert_eq!(
        get(&input, "application.name"),
        Some("Test Reader"),
        "{input:?}"
    );
    assert_eq!(
        get(&input, "application.id"),
        Some("org.example.TestReader"),
        "{input:?}"
    );
    assert_eq!(get(&input, "media.name"), Some("Utterance 1"), "{input:?}");
    assert_eq!(get(&input, "media.role"), Some("event"), "{input:?}");
    assert_eq!(
        get(&client, "application.name"),
        Some("Test Reader"),
        "{client:?}"
    );
    assert_eq!(
        get(&client, "application.id"),
        Some("org.example.TestReader"),
        "{client:?}"
    );
}

#[test]
fn role_none_sets_no_role() {
    let (input, _, program) = server_view("no-role");
    assert_eq!(get(&input, "media.role"), None, "{input:?}");
    assert_eq!(
        get(&input, "application.name"),
        Some(program.as_str()),
        "{input:?}"
    );
}
