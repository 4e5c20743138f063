//! Issue 16 parts 2 and 3 on the virtual device, sample-exact: in-band gain and pan
//! (equal-power, ramped, per utterance or until changed), the soft limiter above unity, and
//! the leading-silence trim with markers kept on their words.

mod common;

use audioplay::virtual_device::VirtualHost;
use audioplay::EventKind;
use audioplay::{Config, GainScope, InputFormat, Player};
use common::accounting::assert_accounting;
use common::analysis::sine;
use common::virtual_host::{events_until, f32_device, max_step, render, render_blocks};

const RATE: u32 = 48000;
use GainScope::{UntilChanged, Utterance};

/// A host whose one device, "v", has `channels` channels at 48 kHz float32.
fn host(channels: u16) -> VirtualHost {
    VirtualHost::new(vec![f32_device("v", RATE, channels)])
}

fn player(h: &VirtualHost, tweak: impl FnOnce(&mut Config)) -> Player {
    common::virtual_host::speech_player(h, tweak)
}

/// Channel `c` of interleaved stereo.
fn chan(x: &[f32], c: usize) -> Vec<f32> {
    x.iter().skip(c).step_by(2).copied().collect()
}

#[test]
fn gain_applies_at_its_content_frame_sample_exact_and_gain_1_is_bit_exact() {
    let h = host(1);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, 2400, 0.5);
    // Odd positions, not on a callback boundary (callbacks are 480 frames).
    p.write_f32(&tone[..1001]).unwrap();
    p.set_gain_pan(0.5, 0.0, 0, UntilChanged).unwrap();
    p.write_f32(&tone[1001..1700]).unwrap();
    p.set_gain_pan(1.0, 0.0, 0, UntilChanged).unwrap();
    p.write_f32(&tone[1700..]).unwrap();
    let out = render(&s, 2400);
    assert_eq!(
        &out[..1001],
        &tone[..1001],
        "gain 1 before the change: bit-exact"
    );
    for i in 1001..1700 {
        assert_eq!(out[i], tone[i] * 0.5, "frame {i} at gain 0.5");
    }
    assert_eq!(&out[1700..], &tone[1700..], "back at gain 1: bit-exact");
    assert_accounting(&p.metrics());
}

#[test]
fn pan_is_equal_power_on_stereo_and_ignored_on_mono() {
    let tone = sine(440.0, RATE, 4800, 0.5);
    let pans = [-1.0f32, -0.5, 0.0, 0.3, 1.0];
    let h = host(2);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    for (k, &pan) in pans.iter().enumerate() {
        p.set_gain_pan(1.0, pan, 0, UntilChanged).unwrap();
        p.write_f32(&tone[k * 960..(k + 1) * 960]).unwrap();
    }
    let out = render_blocks(&s, 4800, 480);
    let (l, r) = (chan(&out, 0), chan(&out, 1));
    for (k, &pan) in pans.iter().enumerate() {
        for i in k * 960..(k + 1) * 960 {
            let x = tone[i];
            // Normalised equal power: L² + R² = 2x² at every pan (1 + 1 at the centre).
            let power = l[i] * l[i] + r[i] * r[i];
            assert!(
                (power - 2.0 * x * x).abs() <= 1e-6,
                "pan {pan} frame {i}: L {} R {} x {x}",
                l[i],
                r[i]
            );
        }
        // A frame where the tone is near its peak.
        let seg = (k * 960..(k + 1) * 960)
            .max_by(|&a, &b| tone[a].abs().total_cmp(&tone[b].abs()))
            .unwrap();
        match pan {
            p if p < 0.0 => assert!(l[seg].abs() > r[seg].abs(), "pan {pan} leans left"),
            p if p > 0.0 => assert!(r[seg].abs() > l[seg].abs(), "pan {pan} leans right"),
            _ => assert_eq!((l[seg], r[seg]), (tone[seg], tone[seg]), "centre is unity"),
        }
    }
    // Hard right: the left channel is silent.
    assert!(l[4 * 960..].iter().all(|&v| v == 0.0));
    // A mono device ignores pan: the audio is bit-exact.
    let h = host(1);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    p.set_gain_pan(1.0, -1.0, 0, UntilChanged).unwrap();
    p.write_f32(&tone).unwrap();
    assert_eq!(render(&s, 4800), tone, "pan ignored on mono");
}

#[test]
fn gain_and_pan_ramps_have_no_step_above_the_signals_own() {
    let tone = sine(440.0, RATE, 9600, 0.5);
    let own = max_step(&tone);
    let h = host(1);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    p.write_f32(&tone[..2000]).unwrap();
    p.set_gain_pan(0.25, 0.0, 10, UntilChanged).unwrap();
    p.write_f32(&tone[2000..]).unwrap();
    let out = render(&s, 9600);
    assert_eq!(&out[..2000], &tone[..2000]);
    assert!(max_step(&out) <= own * 1.001, "{} > {own}", max_step(&out));
    // The 10 ms ramp (480 frames) lands exactly on the target.
    for i in 2480..9600 {
        assert_eq!(out[i], tone[i] * 0.25, "frame {i}");
    }
    assert!((out[2240] / tone[2240] - 0.625).abs() < 0.01, "half-way");
    // A pan sweep on stereo, hard left over 20 ms: each side moves no faster than the tone
    // at its largest gain (√2 on the left).
    let h = host(2);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    p.write_f32(&tone[..2000]).unwrap();
    p.set_gain_pan(1.0, -1.0, 20, UntilChanged).unwrap();
    p.write_f32(&tone[2000..]).unwrap();
    let out = render_blocks(&s, 9600, 480);
    let (l, r) = (chan(&out, 0), chan(&out, 1));
    assert!(max_step(&l) <= own * std::f32::consts::SQRT_2 * 1.001);
    assert!(max_step(&r) <= own * 1.001);
    assert!(
        r[2960..].iter().all(|&v| v == 0.0),
        "right silent after the ramp"
    );
}

#[test]
fn the_limiter_stops_clipping_above_unity_and_leaves_quiet_audio_alone() {
    let h = host(1);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, 9600, 0.5);
    p.set_gain_pan(4.0, 0.0, 0, UntilChanged).unwrap();
    p.write_f32(&tone[..4800]).unwrap();
    // Gain 2 on a 0.25 sine peaks at 0.5: under the threshold, bit-exact though limited.
    p.set_gain_pan(2.0, 0.0, 0, UntilChanged).unwrap();
    let quiet: Vec<f32> = tone[4800..].iter().map(|v| v * 0.5).collect();
    p.write_f32(&quiet).unwrap();
    let out = render(&s, 9600);
    let loud = &out[..4800];
    let peak = loud.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak < 1.0 && peak > 0.99, "peak {peak}");
    // No hard clip: no two neighbouring samples sit at the same value near full scale.
    let flat = loud
        .windows(2)
        .filter(|w| w[0].abs() > 0.95 && w[0] == w[1])
        .count();
    assert_eq!(flat, 0, "flat tops");
    // Below the threshold (-1 dBFS) the limiter passes the gained samples unchanged.
    let t = audioplay::internals::gain::LIMIT_THRESHOLD;
    for i in 0..4800 {
        let g = tone[i] * 4.0;
        if g.abs() <= t {
            assert_eq!(loud[i], g, "frame {i} below the threshold");
        } else {
            assert!(loud[i].abs() < g.abs() && loud[i].abs() > t, "frame {i}");
        }
    }
    for i in 0..4800 {
        assert_eq!(out[4800 + i], quiet[i] * 2.0, "quiet frame {i}");
    }
}

#[test]
fn an_utterance_scoped_gain_reverts_at_the_next_utterance() {
    let h = host(2);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, RATE, 2880, 0.5);
    p.set_gain_pan(0.8, 0.0, 0, UntilChanged).unwrap();
    p.write_f32(&tone[..960]).unwrap();
    p.end_utterance().unwrap();
    // Made between utterances: for the next one only, with the pan.
    p.set_gain_pan(0.5, 1.0, 0, Utterance).unwrap();
    p.write_f32(&tone[960..1920]).unwrap();
    p.end_utterance().unwrap();
    p.write_f32(&tone[1920..]).unwrap();
    p.end_utterance().unwrap();
    let out = render_blocks(&s, 2880, 480);
    let (l, r) = (chan(&out, 0), chan(&out, 1));
    let (_, right) = audioplay::internals::gain::pan_gains(0.5, 1.0);
    for i in 0..2880 {
        let (wl, wr) = match i {
            0..960 => (tone[i] * 0.8, tone[i] * 0.8),
            960..1920 => (0.0, tone[i] * right),
            _ => (tone[i] * 0.8, tone[i] * 0.8),
        };
        assert_eq!((l[i], r[i]), (wl, wr), "frame {i}");
    }
    let ev = events_until(&p, |e| {
        e.iter()
            .filter(|e| e.kind == EventKind::UtteranceEnd)
            .count()
            == 3
    });
    let starts: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == EventKind::UtteranceStart)
        .map(|e| e.frame)
        .collect();
    assert_eq!(starts, [0, 960, 1920]);
}

#[test]
fn leading_silence_is_trimmed_and_markers_stay_on_their_words() {
    let h = host(1);
    let p = player(&h, |c| {
        c.trim_threshold = 0.001;
        c.trim_keep_ms = 10;
    });
    let s = h.stream("v").unwrap();
    // Its first frame is sound (a sine's frame 0 is 0, which the trim would count as silence).
    let tone = sine(440.0, RATE, 4801, 0.5)[1..].to_vec();
    // 300 ms of near-silence (dither below the threshold) in three writes, a marker at its
    // start, one inside the part that is dropped, one at the tone's first frame.
    let hiss: Vec<f32> = (0..14400)
        .map(|i| if i % 2 == 0 { 0.0005 } else { -0.0005 })
        .collect();
    p.mark(1).unwrap();
    p.write_f32(&hiss[..4800]).unwrap();
    p.mark(2).unwrap();
    assert_eq!(p.write_f32(&hiss[4800..9600]).unwrap(), 4800);
    p.write_f32(&hiss[9600..]).unwrap();
    p.mark(3).unwrap();
    p.write_f32(&tone).unwrap();
    p.mark(4).unwrap();
    p.end_utterance().unwrap();
    let out = render(&s, 9600);
    // The kept 10 ms (480 frames) of the silence, then the tone, bit-exact.
    assert_eq!(&out[..480], &hiss[14400 - 480..], "the kept silence");
    let first = out.iter().position(|v| v.abs() >= 0.001).unwrap();
    assert_eq!(first, 480, "the tone starts after keep_ms");
    assert_eq!(&out[480..480 + 4800], &tone[..]);
    assert!(out[5280..].iter().all(|&v| v == 0.0));
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::UtteranceEnd));
    let marks: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| e.kind == EventKind::Marker)
        .map(|e| (e.id, e.frame))
        .collect();
    // Markers in the dropped silence count it as played at once; the one placed at the
    // tone fires at the tone's first frame.
    assert_eq!(marks, [(1, 0), (2, 0), (3, 480), (4, 5280)]);
    let m = p.metrics();
    assert_eq!(m.trimmed_ms, 290.0);
    assert_eq!(m.frames_written, 5280, "trimmed frames are not queued");
    assert_accounting(&m);
    // The next utterance is trimmed again; off, nothing is.
    p.write_f32(&hiss[..960]).unwrap();
    p.write_f32(&tone[..480]).unwrap();
    let out = render(&s, 960);
    assert_eq!(&out[..480], &hiss[480..960]);
    assert_eq!(&out[480..], &tone[..480]);
    assert_eq!(p.metrics().trimmed_ms, 300.0);

    let h = host(1);
    let p = player(&h, |_| {});
    let s = h.stream("v").unwrap();
    p.write_f32(&hiss).unwrap();
    p.write_f32(&tone).unwrap();
    let out = render(&s, 19200);
    assert_eq!(&out[..14400], &hiss[..], "trim is off by default");
    assert_eq!(p.metrics().trimmed_ms, 0.0);
}

#[test]
fn trim_works_on_int16_and_an_all_silent_utterance_plays_nothing() {
    let h = host(1);
    let p = player(&h, |c| {
        c.input_format = InputFormat::S16;
        c.trim_threshold = 0.01; // 327.68 in int16
        c.trim_keep_ms = 5;
    });
    let s = h.stream("v").unwrap();
    let mut pcm = vec![300i16; 4800];
    pcm.extend(std::iter::repeat_n(16384i16, 480));
    p.mark(9).unwrap();
    p.write_i16(&vec![0i16; 2400]).unwrap();
    p.end_utterance().unwrap(); // all silence: nothing queued, its marker fires at once
    p.write_i16(&pcm).unwrap();
    let out = render(&s, 960);
    assert!(
        out[..240].iter().all(|&v| v == 300.0 / 32768.0),
        "5 ms kept"
    );
    assert!(out[240..720].iter().all(|&v| v == 0.5), "the sound");
    let m = p.metrics();
    assert_eq!(m.trimmed_ms, 50.0 + 95.0);
    assert_eq!(m.frames_written, 720);
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::Marker));
    assert_eq!(
        ev.iter()
            .find(|e| e.kind == EventKind::Marker)
            .map(|e| (e.id, e.frame)),
        Some((9, 0))
    );
}

#[test]
fn gain_and_pan_work_on_a_six_channel_device() {
    let tone = sine(440.0, RATE, 1920, 0.5);
    let run = |gain: f32, pan: f32| {
        let h = host(6);
        let p = player(&h, |_| {});
        let s = h.stream("v").unwrap();
        p.set_gain_pan(gain, pan, 0, UntilChanged).unwrap();
        p.write_f32(&tone).unwrap();
        render_blocks(&s, 1920, 480)
    };
    let unity = run(1.0, 0.0);
    let out = run(0.5, -1.0);
    let (left, _) = audioplay::internals::gain::pan_gains(0.5, -1.0);
    for (i, (o, u)) in out.chunks(6).zip(unity.chunks(6)).enumerate() {
        assert_eq!(o[0], u[0] * left, "frame {i} front left");
        assert_eq!(o[1], 0.0, "frame {i} front right (hard left)");
        for c in 2..6 {
            assert_eq!(o[c], u[c] * 0.5, "frame {i} channel {c}: the gain, no pan");
        }
    }
    assert!(
        unity.chunks(6).any(|f| f[0] != 0.0),
        "the tone reached the device"
    );
}

#[test]
fn trim_in_producer_resampling_keeps_the_marker_on_the_tone() {
    // 24 kHz content, resampled by the writer to the 48 kHz stream (U2).
    let h = host(1);
    let p = player(&h, |c| {
        c.input_rate = 24000;
        c.resample_mode = audioplay::ResampleMode::Producer;
        c.trim_threshold = 0.01;
        c.trim_keep_ms = 10;
    });
    let s = h.stream("v").unwrap();
    let tone = sine(440.0, 24000, 2401, 0.5)[1..].to_vec();
    p.write_f32(&vec![0.0; 4800]).unwrap(); // 200 ms
    p.mark(5).unwrap();
    p.write_f32(&tone).unwrap();
    p.end_utterance().unwrap();
    let out = render(&s, 9600);
    let first = out.iter().position(|v| v.abs() >= 0.01).unwrap();
    // 10 ms kept (480 stream frames), then the tone (the resampler smears its edge by a frame or two).
    assert!((478..=482).contains(&first), "first sound at {first}");
    let ev = events_until(&p, |e| e.iter().any(|e| e.kind == EventKind::UtteranceEnd));
    let mark = ev.iter().find(|e| e.kind == EventKind::Marker).unwrap();
    assert_eq!(
        mark.frame, 240,
        "content frame of the tone's start (10 ms at 24 kHz)"
    );
    assert_eq!(p.metrics().trimmed_ms, 190.0);
}
