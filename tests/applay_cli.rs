//! applay, the command line (issues 6, 17): --virtual renders the whole pipeline into a WAV
//! that matches the input resampled and mapped; several files play in order; input that is
//! not WAV is refused unless --raw; Ctrl-C fades out, prints the summary and exits 130; bad
//! options give a clear message and exit code.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn applay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_applay"))
}

fn read_wav_s16(path: &std::path::Path) -> (u32, u16, Vec<i16>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    let channels = u16::from_le_bytes([b[22], b[23]]);
    let rate = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    let data = &b[44..];
    (
        rate,
        channels,
        data.chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

#[test]
fn virtual_output_is_the_input_resampled_and_mapped() {
    let dir = std::env::temp_dir().join(format!("applay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input: Vec<i16> = (0..22050)
        .map(|i| (12000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 22050.0).sin()) as i16)
        .collect();
    audioplay::internals::wav::write_s16(&dir.join("in.wav"), 22050, 1, &input).unwrap();
    let out = applay()
        .args(["--quiet", "--fast"])
        .arg(format!("--virtual={}", dir.join("out.wav").display()))
        .arg(dir.join("in.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stereo_48k_is_resampled(&dir.join("out.wav"), &input, 48000.0 / 22050.0);
    let _ = std::fs::remove_dir_all(dir);
}

/// The virtual device's recording at `out` is 48 kHz stereo and both channels are `input`
/// (mono s16) resampled linearly by `ratio`, to 1 LSB, with round(len * ratio) frames (S1).
fn assert_stereo_48k_is_resampled(out: &std::path::Path, input: &[i16], ratio: f64) {
    let (rate, channels, got) = read_wav_s16(out);
    assert_eq!((rate, channels), (48000, 2));
    let want = audioplay::internals::resample::resample_linear_s16(input, ratio);
    assert_eq!(got.len() / 2, want.len(), "round(len * ratio) frames (S1)");
    for (j, w) in want.iter().enumerate() {
        let w = audioplay::internals::convert::f32_to_s16(*w) as i32;
        for c in 0..2 {
            let g = got[2 * j + c] as i32;
            assert!((g - w).abs() <= 1, "frame {j} ch {c}: {g} vs {w}");
        }
    }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("applay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sine_s16(hz: f64, rate: u32, frames: usize) -> Vec<i16> {
    (0..frames)
        .map(|i| {
            (12000.0 * (i as f64 * 2.0 * std::f64::consts::PI * hz / rate as f64).sin()) as i16
        })
        .collect()
}

/// Runs applay, killing it if it has not exited after `limit` (a hang fails, not blocks).
fn run_bounded(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = applay()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "applay {args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn mono(x: &[i16], channels: usize) -> Vec<f32> {
    x.chunks_exact(channels)
        .map(|f| f[0] as f32 / 32768.0)
        .collect()
}

#[test]
fn bad_input_gives_a_clear_message_and_exit_code() {
    let cases: [(&[&str], i32, &str); 12] = [
        (&["--bogus"], 2, "unexpected argument '--bogus'"),
        (
            &["--format", "u8", "--tone", "440"],
            2,
            "invalid value 'u8' for '--format <FORMAT>'",
        ),
        (&["--tone", "x"], 2, "'x' is not a number"),
        (&[], 2, "nothing to play"),
        (
            &["--virtual", "/tmp/x.wav", "/nonexistent/file.wav"],
            4,
            "cannot open /nonexistent/file.wav",
        ),
        // Each of these once panicked, spun or aborted (issue 17).
        (
            &[
                "--tone",
                "440",
                "--virtual",
                "/tmp/x.wav",
                "--virtual-rate",
                "0",
            ],
            2,
            "invalid value '0' for '--virtual-rate <HZ>': must be from 1000 to 384000 Hz",
        ),
        (
            &[
                "--tone",
                "440",
                "--virtual",
                "/tmp/x.wav",
                "--virtual-channels=0",
            ],
            2,
            "invalid value '0' for '--virtual-channels <N>': must be from 1 to 32",
        ),
        (
            &["--tone", "440", "--seconds", "1e12"],
            2,
            "invalid value '1e12' for '--seconds <S>': must be from 0 to 3600 seconds",
        ),
        (
            &["--tone", "440", "--seconds", "0"],
            2,
            "must be more than 0 seconds",
        ),
        (
            &["--tone", "440", "--seconds", "NaN"],
            2,
            "must be from 0 to 3600 seconds",
        ),
        (
            &["--tone", "440", "--rate", "0"],
            2,
            "must be from 1000 to 384000 Hz",
        ),
        (&["--fast", "--tone", "440"], 2, "--virtual <OUT.wav>"),
    ];
    for (args, code, msg) in cases {
        let out = run_bounded(args, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    for flag in ["--help", "-h"] {
        let out = applay().arg(flag).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(
            text.contains("Usage: applay [OPTIONS] [FILE]..."),
            "{flag}: {text}"
        );
        assert!(text.contains("--raw"), "{flag}: {text}");
        assert!(
            out.stderr.is_empty(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = applay().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("applay {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn input_that_is_not_wav_is_refused() {
    let d = dir("notwav");
    let mut random = vec![0u8; 8192];
    let mut x = 0x2545_f491_u32;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut flac = b"fLaC\0\0\0\x22".to_vec();
    flac.extend_from_slice(&random[..1000]);
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "text.txt",
            b"hello, this is not audio\n",
            "it has no RIFF/WAVE header",
        ),
        ("random.bin", &random, "it has no RIFF/WAVE header"),
        ("speech.flac", &flac, "it is FLAC"),
        ("empty.wav", b"", "it is empty"),
    ];
    let out_wav = d.join("out.wav");
    for (name, bytes, why) in cases {
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = applay()
            .args(["--fast", "--virtual"])
            .arg(&out_wav)
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{name}: {err}");
        assert!(err.contains("is not a WAV file"), "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
        assert!(
            err.contains("--raw"),
            "{name}: says how to play raw PCM: {err}"
        );
        assert!(!out_wav.exists(), "{name}: nothing was played");
    }
    // A bad file after a good one: refused before anything plays.
    let good = d.join("good.wav");
    audioplay::internals::wav::write_s16(&good, 22050, 1, &sine_s16(440.0, 22050, 2205)).unwrap();
    let out = applay()
        .args(["--fast", "--virtual"])
        .arg(&out_wav)
        .arg(&good)
        .arg(d.join("text.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(!out_wav.exists());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn raw_pcm_plays_with_format_flags() {
    let d = dir("raw");
    let input = sine_s16(300.0, 16000, 8000);
    let bytes: Vec<u8> = input.iter().flat_map(|s| s.to_ne_bytes()).collect();
    std::fs::write(d.join("in.pcm"), &bytes).unwrap();
    let out = applay()
        .args([
            "--quiet",
            "--fast",
            "--raw",
            "--format",
            "s16",
            "--rate=16000",
            "--channels",
            "1",
        ])
        .arg("--virtual")
        .arg(d.join("out.wav"))
        .arg(d.join("in.pcm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stereo_48k_is_resampled(&d.join("out.wav"), &input, 3.0);
    // The same bytes without --raw are refused.
    let out = applay()
        .args(["--fast", "--virtual"])
        .arg(d.join("out2.wav"))
        .arg(d.join("in.pcm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn several_files_play_in_order() {
    let d = dir("order");
    // Different rates and channel counts: each file is its own voice.
    let files = [
        (440.0, 22050u32, 1u16, 11025usize),
        (880.0, 16000, 2, 8000),
        (660.0, 22050, 1, 11025),
    ];
    let mut want_frames = 0;
    for (i, &(hz, rate, ch, frames)) in files.iter().enumerate() {
        let m = sine_s16(hz, rate, frames);
        let data: Vec<i16> = m
            .iter()
            .flat_map(|&s| std::iter::repeat_n(s, ch as usize))
            .collect();
        audioplay::internals::wav::write_s16(&d.join(format!("{i}.wav")), rate, ch, &data).unwrap();
        want_frames += (2 * frames * 48000 + rate as usize) / (2 * rate as usize);
    }
    let out = applay()
        .args(["--quiet", "--fast", "--virtual"])
        .arg(d.join("out.wav"))
        .args((0..files.len()).map(|i| d.join(format!("{i}.wav"))))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rate, channels, got) = read_wav_s16(&d.join("out.wav"));
    assert_eq!((rate, channels), (48000, 2));
    assert_eq!(
        got.len() / 2,
        want_frames,
        "each file round(len * ratio) frames (S1)"
    );
    let x = mono(&got, 2);
    // Each file's span, 50 ms in from either edge, has that file's pitch.
    let mut at = 0;
    for &(hz, rate, _, frames) in &files {
        let len = (2 * frames * 48000 + rate as usize) / (2 * rate as usize);
        let part = &x[at + 2400..at + len - 2400];
        let st = common::analysis::tone_stats(part, 48000).expect("a tone");
        assert!(
            (st.freq - hz).abs() < 2.0,
            "expected {hz} Hz at frame {at}, got {}",
            st.freq
        );
        at += len;
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn default_output_is_plain_words_and_list_marks_the_default() {
    let d = dir("plain");
    let out = applay()
        .args(["--tone", "440", "--seconds", "0.2", "--fast", "--virtual"])
        .arg(d.join("out.wav"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("applay: played 0.20 s in "), "{err}");
    assert!(
        err.contains("on 'virtual' (48000 Hz, 2 ch); no underruns"),
        "{err}"
    );
    assert!(!err.contains("generation"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // -v shows what the player did.
    let out = applay()
        .args([
            "-v",
            "--tone",
            "440",
            "--seconds",
            "0.2",
            "--fast",
            "--virtual",
        ])
        .arg(d.join("out.wav"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("applay: info: recreate (initial)"));

    let out = applay()
        .args(["--list", "--virtual", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "* virtual\t48000 Hz\t2 ch\tVirtual virtual\n"
    );
    let out = applay()
        .args([
            "--list",
            "--json",
            "--virtual",
            "-",
            "--virtual-rate",
            "22050",
            "--virtual-channels",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[{"id":"virtual","name":"Virtual virtual","rate":22050,"channels":1,"default":true}]"#
    );
    let _ = std::fs::remove_dir_all(d);
}

/// Starts a 5 s tone on the virtual device in real time, sends SIGINT once audio has played
/// for a while, and returns the output, the exit code and the rendered file.
fn interrupt(extra: &[&str]) -> (std::process::Output, (u32, u16, Vec<i16>)) {
    let d = dir(&format!("sigint{}", extra.len()));
    let out_wav = d.join("out.wav");
    let child = applay()
        .args(["--tone", "440", "--seconds", "5", "--virtual"])
        .arg(&out_wav)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "exited {:?} after SIGINT",
        start.elapsed()
    );
    let wav = read_wav_s16(&out_wav);
    let _ = std::fs::remove_dir_all(d);
    (out, wav)
}

#[test]
fn ctrl_c_fades_out_prints_the_summary_and_exits_130() {
    let (out, (rate, ch, got)) = interrupt(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("applay: interrupted after playing "), "{err}");
    assert!(err.contains("on 'virtual'"), "{err}");
    // What was heard: part of the tone, not all of it, ending in a fade, not a cut.
    let x = mono(&got, ch as usize);
    let st = common::analysis::tone_stats(&x, rate).expect("the tone was heard");
    assert!((st.freq - 440.0).abs() < 2.0, "{st:?}");
    assert!(st.duration > 0.3 && st.duration < 4.0, "{st:?}");
    let last = x.iter().rposition(|v| v.abs() > 1e-3).unwrap();
    let fade = &x[last.saturating_sub(rate as usize / 100)..=last];
    let tail_peak = fade.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    assert!(
        tail_peak < 0.5 * st.peak,
        "the last 10 ms peak at {tail_peak:.3} of {:.3}: a cut, not a fade",
        st.peak
    );
}

#[test]
fn ctrl_c_with_json_prints_the_metrics() {
    let (out, _) = interrupt(&["--json"]);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.trim().starts_with('{') && json.trim().ends_with('}'),
        "{json}"
    );
    assert!(json.contains("\"interrupted\":true"), "{json}");
    let num = |key: &str| -> u64 {
        let at = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
        json[at..]
            .split([',', '}'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(num("frames_played") > 0, "{json}");
    assert!(num("frames_flushed") > 0, "the rest was flushed: {json}");
    assert_eq!(
        num("frames_written"),
        num("frames_played") + num("frames_flushed") + num("frames_dropped"),
        "{json}"
    );
}
