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

/// Two pages, the second PROT_NONE: `at_boundary(k)` is a pointer to the last `k` readable
/// bytes, so reading or writing one byte past them faults.
struct GuardPage {
    base: *mut u8,
    page: usize,
}

impl GuardPage {
    fn new() -> Self {
        // SAFETY: plain libc calls on a private anonymous mapping we own.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let base = libc::mmap(
                null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            let base = base.cast::<u8>();
            assert_eq!(
                libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE),
                0
            );
            // Garbage everywhere before the boundary (a log_fn read from it would jump there).
            std::ptr::write_bytes(base, 0xa5, page);
            GuardPage { base, page }
        }
    }

    /// The last `k` readable bytes, starting with a `struct_size` of `size`.
    fn at_boundary(&self, k: usize, size: u32) -> *mut u8 {
        assert!(k >= 4 && k <= self.page);
        // SAFETY: inside the readable first page.
        unsafe {
            let p = self.base.add(self.page - k);
            p.cast::<u32>().write_unaligned(size);
            p
        }
    }
}

impl Drop for GuardPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), 2 * self.page) };
    }
}

#[test]
fn nothing_past_a_rejected_struct_size_is_touched() {
    let _s = serial();
    let g = GuardPage::new();
    let cfg_size = std::mem::size_of::<ApConfig>();
    let mut out: *mut ApPlayer = null_mut();
    // A struct that ends at the guard page: a 4-, 8- or 16-byte prefix, garbage after the
    // size (it would be the rest of the config, log_fn included, if it were read).
    for (k, size) in [(4, 0u32), (4, 4), (8, 0), (8, 8), (16, 0), (16, 8), (16, 16)] {
        let p = g.at_boundary(k, size);
        assert_eq!(
            ap_create(p as *const ApConfig, &mut out),
            AP_ERR_STRUCT_SIZE,
            "ApConfig prefix of {k} bytes, struct_size {size}"
        );
        assert!(out.is_null());
    }
    // Too large: a whole config (initialised, log_fn set) placed at the boundary but
    // claiming to be bigger than this library's.
    unsafe extern "C" fn never(_: *mut c_void, _: i32, _: *const c_char) {
        panic!("log_fn called for a rejected struct_size");
    }
    let p = g.at_boundary(cfg_size, 0).cast::<ApConfig>();
    // SAFETY: `p` has cfg_size readable bytes; ap_config_init writes exactly one ApConfig.
    // Page-end minus the struct's size keeps 8-byte alignment (both are multiples of 8).
    assert_eq!(p as usize % std::mem::align_of::<ApConfig>(), 0);
    assert_eq!(ap_config_init(p), AP_OK);
    unsafe {
        (*p).log_fn = Some(never);
        (*p).struct_size = cfg_size as u32 + 8;
    }
    assert_eq!(ap_create(p, &mut out), AP_ERR_STRUCT_SIZE);
    assert!(out.is_null());

    // Output structs: a wrong size is rejected before anything is written, and nothing
    // past it is read.
    let h = host();
    let player = handle_on(&h, base());
    for (k, size) in [(4, 0u32), (8, 8), (16, 16)] {
        let p = g.at_boundary(k, size);
        assert_eq!(ap_metrics(player, p.cast()), AP_ERR_STRUCT_SIZE, "ApMetrics {k}");
        assert_eq!(
            ap_snapshot_state(player, p.cast()),
            AP_ERR_STRUCT_SIZE,
            "ApStreamState {k}"
        );
        let mut n = 7usize;
        assert_eq!(
            ap_poll_event(player, p.cast(), &mut n),
            AP_ERR_STRUCT_SIZE,
            "ApEvent {k}"
        );
        assert_eq!(n, 7, "untouched on error");
        // SAFETY: readable; the size is what we wrote, untouched.
        assert_eq!(unsafe { p.cast::<u32>().read_unaligned() }, size);
    }
    let too_big = std::mem::size_of::<ApMetrics>() as u32 + 8;
    let p = g.at_boundary(std::mem::size_of::<ApMetrics>(), too_big);
    assert_eq!(ap_metrics(player, p.cast()), AP_ERR_STRUCT_SIZE);
    // A correct size at the boundary still works: exactly that much is written.
    let m = std::mem::size_of::<ApMetrics>();
    let p = g.at_boundary(m, m as u32);
    assert_eq!(p as usize % std::mem::align_of::<ApMetrics>(), 0);
    assert_eq!(ap_metrics(player, p.cast()), AP_OK);
    let s = std::mem::size_of::<ApStreamState>();
    let p = g.at_boundary(s, s as u32);
    assert_eq!(ap_snapshot_state(player, p.cast()), AP_OK);
    let e = std::mem::size_of::<ApEvent>();
    let p = g.at_boundary(e, e as u32);
    let mut n = 7usize;
    assert_eq!(ap_poll_event(player, p.cast(), &mut n), AP_OK);
    assert_eq!(ap_destroy(player), AP_OK);
}
