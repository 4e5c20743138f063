//! The measuring tools themselves: the pitch, gap and click readings every audio test relies
//! on must read right on made-up signals whose answers are known, or those tests prove nothing.

mod common;

use common::analysis::tone_stats;

fn sine(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
    (0..(rate as f64 * seconds) as usize)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32)
        .collect()
}

#[test]
fn pitch_is_exact_on_a_clean_tone() {
    let s = tone_stats(&sine(440.0, 44100, 3.0), 44100).unwrap();
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
    let tone = sine(440.0, rate, 5.0);
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
    let x = sine(440.0 * 44100.0 / 48000.0, 48000, 3.0);
    let s = tone_stats(&x, 48000).unwrap();
    assert!((s.freq - 404.25).abs() < 0.2, "{s:?}");
    // A wrong rate over most of the sound wins the median.
    let mut y = sine(440.0, 48000, 1.0);
    y.extend(sine(404.25, 48000, 2.0));
    assert!((tone_stats(&y, 48000).unwrap().freq - 404.25).abs() < 0.5);
}
