//! applay, the command line (issue 6): --virtual renders the whole pipeline into a WAV that
//! matches the input resampled and mapped; bad input gives a clear message and exit code.

use std::process::Command;

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
        .args(["--quiet", "--fast", "--virtual"])
        .arg(dir.join("out.wav"))
        .arg(dir.join("in.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rate, channels, got) = read_wav_s16(&dir.join("out.wav"));
    assert_eq!((rate, channels), (48000, 2));
    let want = audioplay::internals::resample::resample_linear_s16(&input, 48000.0 / 22050.0);
    assert_eq!(got.len() / 2, want.len(), "round(len * ratio) frames (S1)");
    for (j, w) in want.iter().enumerate() {
        let w = audioplay::internals::convert::f32_to_s16(*w) as i32;
        for c in 0..2 {
            let g = got[2 * j + c] as i32;
            assert!((g - w).abs() <= 1, "frame {j} ch {c}: {g} vs {w}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_gives_a_clear_message_and_exit_code() {
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--bogus"], 2, "unknown option --bogus"),
        (
            &["--format", "u8", "--tone", "440"],
            2,
            "'u8' is not s16 or f32",
        ),
        (&["--tone", "x"], 2, "--tone: not a number"),
        (&[], 2, "nothing to play"),
        (
            &["--virtual", "/tmp/x.wav", "/nonexistent/file.wav"],
            4,
            "cannot open /nonexistent/file.wav",
        ),
    ];
    for (args, code, msg) in cases {
        let out = applay().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}
