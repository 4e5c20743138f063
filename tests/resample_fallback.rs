//! SPEC S3 / issue 5: when the callback's resample time p95 crosses the configured limit,
//! resampling moves to the writing thread by itself, logged once (M2), and the audio carries
//! on at the right pitch without a gap.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audioplay::internals::quality::{measure, sine_s16};
use audioplay::{Config, InputFormat, Player};
use common::accounting::assert_all_played;
use common::virtual_host::one_device;

#[test]
fn callback_resampling_over_the_limit_moves_to_the_writer_once() {
    let h = one_device(48000, 2, cpal::SampleFormat::F32);
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = logs.clone();
    let cfg = Config {
        input_format: InputFormat::S16,
        input_rate: 22050,
        write_timeout_ms: 0,
        device_poll_ms: 10,
        // Any measurable resampling trips it.
        resample_p95_limit_us: 0,
        log_sink: Some(Arc::new(move |_, m: &str| {
            sink.lock().unwrap().push(m.to_string())
        })),
        ..Config::default()
    };
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    let s = h.stream("v").unwrap();
    let x = sine_s16(441.0, 22050, 6.0, 0.5);
    let mut out = vec![0.0f32; 960];
    let mut heard = Vec::new();
    let mut fed = 0;
    let t0 = Instant::now();
    // Feed 10 ms ahead of each callback, as an engine would, until the fallback happened and
    // a second more was played.
    let mut after = None;
    while fed + 2205 < x.len() && t0.elapsed() < Duration::from_secs(20) {
        // 20 ms per 10 ms callback: the ring fills and writes take what fits.
        fed += p.write_i16(&x[fed..fed + 441]).unwrap();
        assert!(s.render_f32(480, &mut out));
        heard.extend(out.chunks_exact(2).map(|f| f[0]));
        std::thread::sleep(Duration::from_millis(1));
        if after.is_none() && p.metrics().resample_fallback {
            after = Some(heard.len());
        }
        if after.is_some_and(|a| heard.len() > a + 48000) {
            break;
        }
    }
    let after = after.expect("the fallback never happened");
    let lines: Vec<String> = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("resample fallback"))
        .cloned()
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    // Continuous 441 Hz across the switch and after it: no gap, no pitch change.
    let w = &heard[after.saturating_sub(24000)..after + 24000];
    let m = measure(w, 48000, 441.0, 0.5);
    assert!(m.sinad_db > 40.0, "{m:?}");
    assert!(m.gain_db.abs() < 0.2, "{m:?}");
    assert_eq!(p.metrics().underruns, 0);
    // Counters stay in content frames across the switch (issue 12): everything written plays
    // and is counted as the application wrote it.
    p.end_utterance().unwrap();
    for _ in 0..400 {
        assert!(s.render_f32(480, &mut out));
    }
    let m = p.metrics();
    assert!(m.resample_fallback);
    assert_eq!(m.frames_written, fed as u64, "{m:?}");
    assert_all_played(&m);
}
