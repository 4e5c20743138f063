//! Issue 12, the C ABI's lifecycle holes: handle values are never reused, nothing past a
//! rejected `struct_size` is read, `ap_destroy` from inside the library's own callbacks,
//! bounded teardown, control calls that never wait behind a blocked writer, and
//! `ap_drain` racing `ap_destroy`. Virtual-device players only: no sound server needed.

use std::collections::HashSet;
use std::os::raw::{c_char, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use audioplay::ffi::config::*;
use audioplay::ffi::control::*;
use audioplay::ffi::events::*;
use audioplay::ffi::handle::{register, ApPlayer};
use audioplay::ffi::metrics::{ap_metrics, ap_snapshot_state, ApMetrics, ApStreamState};
use audioplay::ffi::player::*;
use audioplay::ffi::status::ApStatus::{self, *};
use audioplay::virtual_device::{VirtualDeviceSpec, VirtualHost, VirtualStreamHandle};
use audioplay::{Config, Player};

/// One test at a time: some capture fd 2, and timing bounds are measured on a quiet process.
fn serial() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

fn host() -> VirtualHost {
    VirtualHost::new(vec![VirtualDeviceSpec {
        id: "v".into(),
        rate: 48000,
        channels: 1,
        format: cpal::SampleFormat::F32,
    }])
}

fn base() -> Config {
    Config {
        input_rate: 48000,
        ring_capacity_ms: 100,
        write_timeout_ms: 0,
        max_replay_ms: 0,
        device_poll_ms: 10,
        debounce_ms: 0,
        ..Config::default()
    }
}

fn handle_on(h: &VirtualHost, cfg: Config) -> *mut ApPlayer {
    register(Player::with_host(cfg, h.cpal_host()).unwrap())
}

fn sized<T>(size: u32) -> T {
    // SAFETY: the public structs are repr(C) plain data for which all-zero bytes are valid,
    // and each starts with `struct_size: u32`.
    unsafe {
        let mut v: T = std::mem::zeroed();
        *(&mut v as *mut T).cast::<u32>() = size;
        v
    }
}

fn metrics(p: *mut ApPlayer) -> ApMetrics {
    let mut m: ApMetrics = sized(std::mem::size_of::<ApMetrics>() as u32);
    assert_eq!(ap_metrics(p, &mut m), AP_OK);
    m
}

/// A raw pointer that may cross threads (the library's handles are thread-safe).
#[derive(Clone, Copy)]
struct P(usize);
impl P {
    fn get(self) -> *mut ApPlayer {
        self.0 as *mut ApPlayer
    }
}

#[test]
fn handle_values_are_never_reused() {
    let _s = serial();
    let h = host();
    let cfg = || Config {
        ring_capacity_ms: 10,
        ..base()
    };
    let mut seen = HashSet::new();
    let mut stale = Vec::new();
    let mut prev = handle_on(&h, cfg());
    seen.insert(prev as usize);
    let pcm = [0i16; 4];
    for _ in 0..10_000 {
        assert_eq!(ap_destroy(prev), AP_OK);
        stale.push(prev);
        let p = handle_on(&h, cfg());
        assert!(!p.is_null());
        assert!(
            seen.insert(p as usize),
            "handle value {p:?} handed out twice"
        );
        // The stale handle must not drive the new player.
        let mut n = 0usize;
        assert_eq!(ap_write(prev, pcm.as_ptr().cast(), 4, &mut n), AP_ERR_BAD_HANDLE);
        prev = p;
    }
    assert_eq!(metrics(prev).frames_written, 0, "no stale write reached a live player");
    for &s in &stale {
        let mut n = 0usize;
        assert_eq!(ap_write(s, pcm.as_ptr().cast(), 4, &mut n), AP_ERR_BAD_HANDLE);
        let mut m: ApMetrics = sized(std::mem::size_of::<ApMetrics>() as u32);
        assert_eq!(ap_metrics(s, &mut m), AP_ERR_BAD_HANDLE);
        assert_eq!(ap_destroy(s), AP_ERR_BAD_HANDLE);
    }
    assert_eq!(ap_destroy(prev), AP_OK);
}
