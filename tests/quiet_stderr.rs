//! Issue 12: a library never writes to its host's stderr. With no sound server the library
//! falls back to cpal's ALSA host, whose enumeration opens ALSA's JACK plugin
//! (libasound2-plugins), and libjack prints "Cannot connect to server socket" and friends to
//! fd 2 itself. Every path that can reach ALSA or JACK runs here in a child process with a
//! clean environment: an empty `XDG_RUNTIME_DIR` (no server), a fresh `HOME`, nothing else
//! but `PATH`. (scripts/deps.sh installs libasound2-plugins so the JACK plugin is present.)

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Tells a re-executed test binary that it is the child that makes the C ABI calls.
const CHILD_ENV: &str = "AUDIOPLAY_QUIET_STDERR_CHILD";
const CHILD_TEST: &str = "child_calls_the_c_abi";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "audioplay-quiet-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `program` with only PATH, HOME (fresh) and, if given, XDG_RUNTIME_DIR (an empty dir).
fn no_server(program: impl AsRef<OsStr>, tag: &str, runtime_dir: bool) -> (Command, PathBuf) {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"));
    if runtime_dir {
        c.env("XDG_RUNTIME_DIR", dir.join("run"));
    }
    (c, dir)
}

fn run(mut c: Command, dir: PathBuf) -> Output {
    let out = c.output().expect("start the child");
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(String::from)
        .collect()
}

fn applay(args: &[&str], runtime_dir: bool) -> Output {
    let (mut c, dir) = no_server(env!("CARGO_BIN_EXE_applay"), "applay", runtime_dir);
    c.args(args);
    run(c, dir)
}

#[test]
fn applay_list_prints_nothing_on_stderr() {
    for runtime_dir in [true, false] {
        let out = applay(&["--list"], runtime_dir);
        let err = lines(&out.stderr);
        assert!(
            out.status.success() && err.is_empty(),
            "XDG_RUNTIME_DIR set: {runtime_dir}; {}; {} stderr lines:\n{}",
            out.status,
            err.len(),
            err.join("\n")
        );
    }
}

/// With no device the tone fails (exit 3) and applay prints its own one-line reason; with
/// `--quiet` that line, starting "applay: ", is all there may be. If the machine does have
/// a device, success with an empty stderr passes too.
#[test]
fn applay_tone_prints_only_its_own_error_line() {
    for runtime_dir in [true, false] {
        let out = applay(
            &["--tone", "440", "--seconds", "0.3", "--quiet"],
            runtime_dir,
        );
        let err = lines(&out.stderr);
        let foreign: Vec<&String> = err.iter().filter(|l| !l.starts_with("applay: ")).collect();
        assert!(
            foreign.is_empty(),
            "XDG_RUNTIME_DIR set: {runtime_dir}; {}; {} lines not from applay:\n{}",
            out.status,
            foreign.len(),
            err.join("\n")
        );
        if out.status.success() {
            assert!(err.is_empty(), "{}", err.join("\n"));
        } else {
            assert_eq!(out.status.code(), Some(3), "{}", err.join("\n"));
            assert_eq!(err.len(), 1, "one reason line:\n{}", err.join("\n"));
        }
    }
}

/// Runs the test `name` of this binary in a child with no server (its environment set by the
/// parent and never changed by the child); returns its stderr lines once it has passed.
/// libtest writes its own report to stdout, and a passing child writes nothing to stderr; a
/// failing child's panic message lands in stderr and is shown.
fn child(name: &str, runtime_dir: bool) -> Vec<String> {
    let (mut c, dir) = no_server(std::env::current_exe().unwrap(), "child", runtime_dir);
    // A short argv[0]: see `long_process_names_get_nothing_from_the_jack_plugin`.
    c.arg0("quiet-child").env(CHILD_ENV, name).args([
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
    ]);
    let out = run(c, dir);
    let err = lines(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child {name} failed ({}):\n{stdout}\n{}",
        out.status,
        err.join("\n")
    );
    err
}

/// Whether this process is the child running test `name`.
fn is_child(name: &str) -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|v| v == name)
}

/// The C ABI in a child: stderr must stay empty.
#[test]
fn c_abi_calls_print_nothing_on_stderr() {
    for runtime_dir in [true, false] {
        let err = child(CHILD_TEST, runtime_dir);
        assert!(
            err.is_empty(),
            "XDG_RUNTIME_DIR set: {runtime_dir}; {} stderr lines from 200 ap_list_devices and \
             20 ap_create/ap_destroy:\n{}",
            err.len(),
            err.join("\n")
        );
    }
}

/// The child's part of `c_abi_calls_print_nothing_on_stderr`; does nothing when run directly.
#[test]
fn child_calls_the_c_abi() {
    use audioplay::ffi::config::{ap_config_init, ApConfig};
    use audioplay::ffi::devices::{ap_list_devices, ApDeviceInfo};
    use audioplay::ffi::player::{ap_create, ap_destroy};
    use audioplay::ffi::status::ApStatus::*;

    if !is_child(CHILD_TEST) {
        return;
    }
    for _ in 0..200 {
        // SAFETY: plain data; ap_list_devices writes the fields.
        let mut infos: [ApDeviceInfo; 8] = unsafe { std::mem::zeroed() };
        let mut n = 0usize;
        let s = ap_list_devices(infos.as_mut_ptr(), infos.len(), &mut n);
        assert!(
            matches!(s, AP_OK | AP_ERR_NO_DEVICE | AP_ERR_DEVICE),
            "ap_list_devices: {s:?}"
        );
    }
    for _ in 0..20 {
        // SAFETY: plain data; ap_config_init overwrites every field.
        let mut cfg: ApConfig = unsafe { std::mem::zeroed() };
        assert_eq!(ap_config_init(&mut cfg), AP_OK);
        let mut p = std::ptr::null_mut();
        if ap_create(&cfg, &mut p) == AP_OK {
            assert_eq!(ap_destroy(p), AP_OK);
        }
    }
}

/// ALSA's JACK plugin itself (not libjack) `fprintf`s "snd_pcm_jack_open: WARNING: JACK
/// client name '...' truncated to 31 characters" to stderr when it opens a JACK PCM in a
/// process whose `program_invocation_short_name` (argv[0]'s basename) is longer than about
/// 20 characters: the client name is "NAME.P.PID.N" in a 32-byte buffer. No handler reaches
/// it, so the library does not open (or list) the JACK PCM while no JACK server runs
/// (`device::list_outputs`).
#[test]
fn long_process_names_get_nothing_from_the_jack_plugin() {
    let (mut c, dir) = no_server(env!("CARGO_BIN_EXE_applay"), "longname", true);
    c.arg0("a-host-with-a-long-process-name").arg("--list");
    let out = run(c, dir);
    let err = lines(&out.stderr);
    assert!(err.is_empty(), "{} lines:\n{}", err.len(), err.join("\n"));
}

/// A host that uses JACK itself and installed its own error handler keeps it: the library
/// silences libjack only while libjack's printing default is in place.
#[test]
fn a_hosts_own_jack_error_handler_is_kept() {
    let err = child("child_with_its_own_jack_handler", true);
    assert!(err.is_empty(), "{}", err.join("\n"));
}

#[test]
fn child_with_its_own_jack_handler() {
    use std::os::raw::c_char;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count(_: *const c_char) {
        SEEN.fetch_add(1, Ordering::SeqCst);
    }
    if !is_child("child_with_its_own_jack_handler") {
        return;
    }
    // SAFETY: dlopen/dlsym with NUL-terminated names; jack_set_error_function has this type.
    unsafe {
        let lib = libc::dlopen(c"libjack.so.0".as_ptr(), libc::RTLD_LAZY);
        if lib.is_null() {
            return; // no libjack: nothing can print, nothing to keep
        }
        let set = libc::dlsym(lib, c"jack_set_error_function".as_ptr());
        assert!(!set.is_null());
        let set: unsafe extern "C" fn(Option<unsafe extern "C" fn(*const c_char)>) =
            std::mem::transmute(set);
        set(Some(count));
    }
    // Asking for the JACK PCM by name opens it (listing skips it while no JACK server runs).
    let mut cfg = std::mem::MaybeUninit::uninit();
    audioplay::ffi::config::ap_config_init(cfg.as_mut_ptr());
    // SAFETY: ap_config_init filled it.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.device_id = c"jack".as_ptr();
    let mut p = std::ptr::null_mut();
    let s = audioplay::ffi::player::ap_create(&cfg, &mut p);
    assert_ne!(
        s,
        audioplay::ffi::status::ApStatus::AP_OK,
        "no JACK server runs"
    );
    // With the stock pcm.jack and no JACK server, libjack reports its failure to connect.
    if std::path::Path::new("/usr/share/alsa/alsa.conf.d/50-jack.conf").exists() {
        assert!(
            SEEN.load(Ordering::SeqCst) > 0,
            "the host's handler saw nothing"
        );
    }
}
