//! The full render path on the virtual device, sample-exact (SPEC D3, D4, S1, U1, C1).

mod common;

use std::sync::Arc;
use std::time::Duration;

use audioplay::virtual_device::{VirtualHost, VirtualStreamHandle};
use audioplay::{Config, InputFormat, Player};
use common::accounting::{assert_accounting_unflushed, assert_all_played};
use common::virtual_host::{one_device, render, render_blocks};
use cpal::SampleFormat;

fn player(h: &VirtualHost, format: InputFormat, channels: u16, rate: u32, ring_ms: u32) -> Player {
    let cfg = Config {
        input_format: format,
        input_channels: channels,
        input_rate: rate,
        ring_capacity_ms: ring_ms,
        write_timeout_ms: 0,
        ..Config::default()
    };
    Player::with_host(cfg, h.cpal_host()).expect("player on the virtual device")
}

fn stream(h: &VirtualHost) -> VirtualStreamHandle {
    h.stream("v").expect("the player opened a stream")
}

#[test]
fn d4_channel_policies_through_the_callback() {
    // Every sample distinct and exactly representable, so comparisons are exact.
    let value = |frame: usize, ch: usize| ((frame * 8 + ch) as f32) / 65536.0;
    for (in_ch, out_ch) in [(1usize, 2usize), (2, 1), (6, 2), (2, 6), (1, 4), (3, 3)] {
        let h = one_device(48000, out_ch as u16, SampleFormat::F32);
        let p = player(&h, InputFormat::F32, in_ch as u16, 48000, 1000);
        let frames = 1000;
        let input: Vec<f32> = (0..frames)
            .flat_map(|f| (0..in_ch).map(move |c| value(f, c)))
            .collect();
        assert_eq!(p.write_f32(&input).unwrap(), frames);
        let s = stream(&h);
        let got = render_blocks(&s, frames, 480);
        for f in 0..frames {
            for c in 0..out_ch {
                let want = if in_ch == 1 && out_ch >= 2 {
                    if c < 2 {
                        value(f, 0)
                    } else {
                        0.0
                    }
                } else if in_ch >= 2 && out_ch == 1 {
                    0.5 * (value(f, 0) + value(f, 1))
                } else if c < in_ch.min(out_ch) {
                    value(f, c)
                } else {
                    0.0
                };
                assert_eq!(
                    got[f * out_ch + c],
                    want,
                    "{in_ch}->{out_ch} frame {f} ch {c}"
                );
            }
        }
        assert_eq!(p.metrics().underruns, 0);
    }
}

#[test]
fn d3_s16_passes_through_to_an_i16_device_bit_exact() {
    let h = one_device(22050, 1, SampleFormat::I16);
    let p = player(&h, InputFormat::S16, 1, 22050, 5000);
    let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    assert_eq!(p.write_i16(&all).unwrap(), all.len());
    let s = stream(&h);
    let mut got = vec![0i16; all.len()];
    for block in got.chunks_mut(512) {
        let n = block.len();
        // SAFETY: reinterpreting an i16 slice as bytes is always valid.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(block.as_mut_ptr().cast::<u8>(), n * 2) };
        assert!(s.render(n, bytes));
    }
    assert_eq!(got, all, "int16 -> float32 -> int16 must be lossless (D3)");
}

/// Renders everything queued after marking the end of speech; returns the frames rendered
/// before the output went silent for good.
fn render_to_end(p: &Player, s: &VirtualStreamHandle, block: usize) -> Vec<f32> {
    p.end_utterance().unwrap();
    let ch = s.channels() as usize;
    let mut out = Vec::new();
    let mut buf = vec![0.0f32; block * ch];
    let mut silent_blocks = 0;
    while silent_blocks < 3 {
        assert!(s.render_f32(block, &mut buf));
        out.extend_from_slice(&buf);
        let m = p.metrics();
        if m.frames_played == m.frames_written && buf.iter().all(|&v| v == 0.0) {
            silent_blocks += 1;
        }
    }
    let last = out
        .iter()
        .rposition(|&v| v != 0.0)
        .map_or(0, |i| i / ch + 1);
    out.truncate(last * ch);
    out
}

#[test]
fn sixty_seconds_22050_to_48000_is_round_len_times_ratio_s1() {
    let h = one_device(48000, 1, SampleFormat::F32);
    let p = player(&h, InputFormat::F32, 1, 22050, 60_000);
    let len = 60 * 22050;
    // A DC signal: every output frame is non-zero, so its length is measurable.
    assert_eq!(p.write_f32(&vec![0.25f32; len]).unwrap(), len);
    let out = render_to_end(&p, &stream(&h), 480);
    let want = (len as f64 * 48000.0 / 22050.0).round() as i64;
    assert!(
        (out.len() as i64 - want).abs() <= 1,
        "{} frames, want {want}",
        out.len()
    );
    assert!(out.iter().all(|&v| v == 0.25));
    assert_eq!(
        p.metrics().underruns,
        0,
        "the end of speech is not an underrun"
    );
}

#[test]
fn block_size_does_not_change_the_resampled_signal_u1() {
    let sine: Vec<f32> = (0..22050)
        .map(|i| 0.5 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 22050.0).sin() + 0.01)
        .collect();
    let mut reference: Option<Vec<f32>> = None;
    for block in [1usize, 7, 480, 4096] {
        let h = one_device(48000, 2, SampleFormat::F32);
        let p = player(&h, InputFormat::F32, 1, 22050, 2000);
        assert_eq!(p.write_f32(&sine).unwrap(), sine.len());
        let out = render_to_end(&p, &stream(&h), block);
        assert_eq!(out.len(), 2 * 48000, "block {block}");
        match &reference {
            None => reference = Some(out),
            Some(r) => assert!(r == &out, "block {block} differs from block 1"),
        }
    }
}

#[test]
fn devices_asking_for_more_than_the_scratch_get_every_frame() {
    // 16000 frames in one callback: far beyond the scratch's 1024-frame chunk.
    let h = one_device(48000, 2, SampleFormat::F32);
    let p = player(&h, InputFormat::S16, 1, 16000, 2000);
    let ramp: Vec<i16> = (0..8000).map(|i| (i % 2000 + 1) as i16).collect();
    p.write_i16(&ramp).unwrap();
    let s = stream(&h);
    let out = render_blocks(&s, 16000, 16000);
    assert!(
        out.iter().all(|&v| v != 0.0),
        "the 16000-frame callback was filled to the end"
    );
    assert_eq!(p.metrics().underruns, 0);
}

#[test]
fn write_with_timeout_zero_returns_a_partial_count_at_once() {
    let h = one_device(48000, 2, SampleFormat::F32);
    let p = player(&h, InputFormat::S16, 1, 48000, 100); // 4800 frames of room
    let t0 = std::time::Instant::now();
    let n = p.write_i16(&vec![1i16; 10_000]).unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(50),
        "non-blocking write blocked"
    );
    assert_eq!(n, 4800, "the ring holds 100 ms");
    assert_eq!(p.metrics().frames_queued, 4800);
}

#[test]
fn write_with_a_timeout_waits_for_space() {
    let h = one_device(48000, 2, SampleFormat::F32);
    let cfg = Config {
        input_rate: 48000,
        ring_capacity_ms: 100,
        write_timeout_ms: 5000,
        ..Config::default()
    };
    let p = Arc::new(Player::with_host(cfg, h.cpal_host()).unwrap());
    let s = stream(&h);
    let writer = {
        let p = p.clone();
        std::thread::spawn(move || p.write_i16(&vec![1i16; 20_000]).unwrap())
    };
    // The device clock frees space; the writer must wait for it rather than give up.
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(2));
        render(&s, 480);
        if writer.is_finished() {
            break;
        }
    }
    assert_eq!(writer.join().unwrap(), 20_000);
    let m = p.metrics();
    assert_eq!(m.frames_written, 20_000);
    assert_accounting_unflushed(&m);
}

#[test]
fn a_write_that_times_out_returns_what_it_queued() {
    let h = one_device(48000, 2, SampleFormat::F32);
    let cfg = Config {
        input_rate: 48000,
        ring_capacity_ms: 100,
        write_timeout_ms: 60,
        ..Config::default()
    };
    let p = Player::with_host(cfg, h.cpal_host()).unwrap();
    let t0 = std::time::Instant::now();
    let n = p.write_i16(&vec![1i16; 10_000]).unwrap();
    let waited = t0.elapsed();
    assert_eq!(n, 4800);
    assert!(
        waited >= Duration::from_millis(60) && waited < Duration::from_millis(500),
        "{waited:?}"
    );
}

#[test]
fn underruns_count_dry_spells_in_speech_not_idle_silence() {
    let h = one_device(48000, 1, SampleFormat::F32);
    let p = player(&h, InputFormat::F32, 1, 48000, 1000);
    let s = stream(&h);
    for _ in 0..10 {
        render(&s, 480); // idle: silence is not an underrun
    }
    assert_eq!(p.metrics().underruns, 0);
    p.write_f32(&vec![0.5; 700]).unwrap();
    render(&s, 480);
    render(&s, 480); // runs dry part-way: one underrun
    render(&s, 480); // still dry: the same spell
    assert_eq!(p.metrics().underruns, 1);
    p.write_f32(&vec![0.5; 700]).unwrap();
    p.end_utterance().unwrap();
    for _ in 0..4 {
        render(&s, 480); // dry after the declared end: not an underrun
    }
    assert_eq!(p.metrics().underruns, 1);
    let m = p.metrics();
    assert_eq!(m.frames_written, 1400);
    assert_all_played(&m);
}

#[test]
fn nan_and_infinite_input_never_reach_the_device() {
    let h = one_device(48000, 1, SampleFormat::F32);
    let p = player(&h, InputFormat::F32, 1, 48000, 1000);
    p.write_f32(&[
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3.0,
        -3.0,
        1e-40,
        0.5,
    ])
    .unwrap();
    let out = render_blocks(&stream(&h), 7, 7);
    assert_eq!(out, vec![0.0, 1.0, -1.0, 1.0, -1.0, 1e-40, 0.5]);
}

#[test]
fn stream_state_is_published_for_lock_free_readers_u3() {
    let h = one_device(44100, 2, SampleFormat::I16);
    let p = player(&h, InputFormat::S16, 1, 22050, 1000);
    let st = p.snapshot();
    assert_eq!(
        (
            st.device_id.as_str(),
            st.stream_rate,
            st.device_rate,
            st.content_rate,
            st.channels
        ),
        ("v", 44100, 44100, 22050, 2)
    );
    assert_eq!(st.generation, 1);
    assert!(st.started && !p.recreating());
    assert!(p.metrics().needs_resample());
}

#[test]
fn a_device_reporting_zero_hz_or_zero_channels_is_refused_with_a_clear_error() {
    for (rate, channels) in [(0u32, 2u16), (48000, 0), (0, 0)] {
        let h = one_device(rate, channels, SampleFormat::F32);
        let cfg = Config {
            input_rate: 22050,
            ..Config::default()
        };
        let err = match Player::with_host(cfg, h.cpal_host()) {
            Ok(_) => panic!("{rate} Hz, {channels} ch: the player opened"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!(
                "reports {rate} Hz and {channels} channel(s): refused"
            )),
            "{rate} Hz, {channels} ch: {err}"
        );
        assert!(h.stream("v").is_none(), "no stream was opened");
    }
}

#[test]
fn the_virtual_device_opens_no_stream_at_zero_hz_or_zero_channels() {
    use cpal::traits::{DeviceTrait, HostTrait};
    for (rate, channels) in [(0u32, 2u16), (48000, 0)] {
        let h = one_device(rate, channels, SampleFormat::F32);
        let host = h.cpal_host();
        let dev = host.default_output_device().expect("the device is listed");
        let cfg = cpal::StreamConfig {
            channels,
            sample_rate: rate,
            buffer_size: cpal::BufferSize::Default,
        };
        let r = dev.build_output_stream_raw(
            cfg,
            SampleFormat::F32,
            |_: &mut cpal::Data, _: &cpal::OutputCallbackInfo| {},
            |_| {},
            None,
        );
        let err = r.err().expect("no stream at a zero format").to_string();
        assert!(err.contains("no stream at"), "{err}");
    }
}

#[test]
fn resamplers_survive_a_zero_rate() {
    use audioplay::internals::resample::Resampler;
    use audioplay::ResampleQuality;
    for q in [ResampleQuality::Linear, ResampleQuality::High] {
        for (i, o) in [(22050, 0), (0, 48000), (0, 0)] {
            let mut r = Resampler::new(q, i, o, 1);
            let mut out = vec![0.0; 64];
            let (_, made) = r.process(&[0.25; 32], &mut out);
            assert!(made <= out.len(), "{q:?} {i}->{o}");
            assert!(out.iter().all(|v| v.is_finite()), "{q:?} {i}->{o}");
        }
    }
}
