//! The measuring tools themselves: the pitch, gap and click readings and the frame-accounting
//! check every audio test relies on must read right on made-up inputs whose answers are known,
//! or those tests prove nothing.

mod common;

use common::accounting::{
    accounting_holds, assert_accounting, assert_accounting_unflushed, assert_all_played,
};
use common::analysis::{sine, tone_stats};

#[test]
fn pitch_is_exact_on_a_clean_tone() {
    let s = tone_stats(&sine(440.0, 44100, 3 * 44100, 0.5), 44100).unwrap();
    assert!((s.freq - 440.0).abs() < 0.05, "{s:?}");
    assert!(s.longest_gap < 0.001, "{s:?}");
}

#[test]
fn short_silences_from_a_starved_stream_do_not_pull_the_pitch() {
    // What a server inserts when a client underflows: 1.5 ms of silence every 100 ms. Windows
    // holding them read 0.6% low; the pitch must still read right, and the gap be seen.
    let rate = 44100;
    // The silence delays what follows (the tone resumes where it stopped), it does not
    // overwrite it.
    let tone = sine(440.0, rate, 5 * rate as usize, 0.5);
    let gap = (rate as f64 * 0.0015) as usize;
    let mut x = Vec::new();
    for chunk in tone.chunks(rate as usize / 10) {
        x.extend_from_slice(chunk);
        x.extend(std::iter::repeat_n(0.0, gap));
    }
    let s = tone_stats(&x, rate).unwrap();
    assert!((s.freq - 440.0).abs() < 0.2, "{s:?}");
    assert!(s.longest_gap >= 0.0014, "{s:?}");
}

#[test]
fn a_wrong_rate_is_still_caught() {
    // A 440 Hz tone played at 44.1 kHz into a 48 kHz sink reads 404 Hz everywhere.
    let x = sine(440.0 * 44100.0 / 48000.0, 48000, 3 * 48000, 0.5);
    let s = tone_stats(&x, 48000).unwrap();
    assert!((s.freq - 404.25).abs() < 0.2, "{s:?}");
    // A wrong rate over most of the sound wins the median.
    let mut y = sine(440.0, 48000, 48000, 0.5);
    y.extend(sine(404.25, 48000, 2 * 48000, 0.5));
    assert!((tone_stats(&y, 48000).unwrap().freq - 404.25).abs() < 0.5);
}

/// An applay metrics line with these counters (written, played, queued, dropped).
fn line(w: u64, p: u64, q: u64, d: u64) -> String {
    format!(
        "{{\"frames_written\":{w},\"frames_played\":{p},\"frames_queued\":{q},\"frames_dropped\":{d},\"underruns\":0}}"
    )
}

fn fails(check: impl FnOnce() + std::panic::UnwindSafe) -> bool {
    std::panic::catch_unwind(check).is_err()
}

#[test]
fn accounting_catches_a_frame_lost_or_invented_or_left_unplayed() {
    assert!(accounting_holds(&line(100, 60, 30, 10)));
    assert!(!accounting_holds(&line(100, 60, 30, 9)), "one frame lost");
    assert!(
        !accounting_holds(&line(100, 61, 30, 10)),
        "one frame invented"
    );
    assert!(fails(|| assert_accounting(&line(100, 60, 30, 9))));
    assert_all_played(&line(100, 100, 0, 0));
    assert!(
        fails(|| assert_all_played(&line(100, 99, 1, 0))),
        "one still queued"
    );
    assert!(
        fails(|| assert_all_played(&line(100, 99, 0, 0))),
        "one lost"
    );
    // A line that reports flushes counts them; a run that never flushed must show none.
    let flushed = r#"{"frames_written":100,"frames_played":90,"frames_queued":0,"frames_flushed":10,"frames_dropped":0}"#;
    assert_accounting(flushed);
    assert!(fails(|| assert_accounting_unflushed(flushed)));
    assert_accounting_unflushed(&line(100, 60, 30, 10));
}
