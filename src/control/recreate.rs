//! Opening and replacing the device stream in three phases (SPEC L1-L3, R1-R3, C1, P2).
//!
//! The stream slot has one lock that guards only the slot (L1). Helpers that run "locked"
//! take `&mut StreamSlot`, which can only be borrowed from the held guard: the compiler
//! enforces L3. All I/O (closing, querying, opening) happens in phase 2 with the lock
//! released (L2), on a worker thread the caller waits for at most [`RECREATE_TIMEOUT`], so
//! `recreating` can never stay set (P2): a stuck attempt is abandoned and its stream, if it
//! ever appears, is dropped with a generation that is never published.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};

use crate::control::device::{self, DeviceInfo, StreamPlan};
use crate::control::shared::{Ask, Shared};
use crate::data::error::Error;
use crate::data::state::{Reason, StreamState};
use crate::realtime::shape::OutputShape;
use crate::thread_role::debug_assert_not_audio;

/// P2: a recreate not finished within this is abandoned and `recreating` cleared.
pub const RECREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// What phase 2 hands to phase 3.
pub struct Opened {
    stream: cpal::Stream,
    info: DeviceInfo,
    plan: StreamPlan,
}

/// What a finished recreate reports to the service thread.
pub struct Report {
    /// When the old stream stopped (ns on the render core's clock), if there was one.
    pub stopped_ns: Option<u64>,
}

/// R3's input: the opened stream and its description.
fn describe(o: Opened, generation: u64, content_rate: u32) -> (cpal::Stream, StreamState) {
    let state = StreamState {
        generation,
        started: true,
        device_id: o.info.id,
        device_name: o.info.name,
        device_rate: o.info.rate,
        stream_rate: o.plan.config.sample_rate,
        content_rate,
        channels: o.plan.config.channels,
        format: Some(o.plan.format),
    };
    (o.stream, state)
}

/// Part of R2, lock released: finds the device and builds and starts a stream whose
/// callback captures `generation` (C1).
fn open(shared: &Shared, generation: u64, target: Option<&str>) -> Result<Opened, Error> {
    let host = shared.service.host();
    let (dev, info) = device::find_output(&host, target).map_err(Error::NoDevice)?;
    let plan = device::plan_stream(&dev, &info, &shared.cfg);
    shared.core.configure(
        OutputShape {
            rate: plan.config.sample_rate,
            channels: plan.config.channels as usize,
        },
        generation,
    );
    let core = shared.core.clone();
    let err_core = shared.core.clone();
    let requests = shared.requests.clone();
    let data_cb = move |data: &mut cpal::Data, info: &cpal::OutputCallbackInfo| {
        let _role = crate::thread_role::enter(crate::thread_role::Role::Audio);
        // A rewrite of what the server holds (`OutputRewriter`) is the one call whose buffer
        // started playing before the call.
        let ts = info.timestamp();
        if ts.playback < ts.callback {
            core.rewrite(generation, data, info);
        } else {
            core.render(generation, data, info);
        }
    };
    let err_cb = move |e: cpal::Error| {
        // Errors from a stream being closed are teardown noise, not device failures.
        if err_core.current_generation() != generation {
            return;
        }
        // The server (or device) played silence for want of data: a glitch to count, not a
        // stream failure (the stream goes on; PulseAudio reports each UNDERFLOW this way).
        if e.kind() == cpal::ErrorKind::Xrun {
            err_core
                .counters
                .server_underflows
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        err_core
            .counters
            .stream_errors
            .fetch_add(1, Ordering::Relaxed);
        if matches!(
            e.kind(),
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated
        ) {
            // A reported loss is also a reason to check the device (see `service::watch`).
            requests.ask(Ask::StreamLost);
        } else {
            // DeviceChanged is informational: the watcher verifies what the device really is.
            requests.ask(Ask::Verify);
        }
    };
    let build = |cfg: cpal::StreamConfig| {
        dev.build_output_stream_raw(
            cfg,
            plan.format,
            data_cb.clone(),
            err_cb.clone(),
            Some(RECREATE_TIMEOUT),
        )
    };
    let stream = match build(plan.config) {
        Ok(s) => s,
        // Some hosts reject a fixed period; their default is better than no sound. Other
        // failures (busy, gone) are not about the period and are reported as they are.
        Err(e)
            if plan.config.buffer_size != cpal::BufferSize::Default
                && matches!(
                    e.kind(),
                    cpal::ErrorKind::UnsupportedConfig | cpal::ErrorKind::InvalidInput
                ) =>
        {
            build(cpal::StreamConfig {
                buffer_size: cpal::BufferSize::Default,
                ..plan.config
            })
            .map_err(|e| Error::Device(format!("cannot open a stream on '{}': {e}", info.id)))?
        }
        Err(e) => {
            return Err(Error::Device(format!(
                "cannot open a stream on '{}': {e}",
                info.id
            )))
        }
    };
    stream
        .play()
        .map_err(|e| Error::Device(format!("cannot start the stream on '{}': {e}", info.id)))?;
    Ok(Opened { stream, info, plan })
}

type PhaseTwo = (Option<u64>, u64, Result<Opened, Error>);

/// R2 on a worker thread: stop the old stream, schedule what it never played for replay,
/// open the new one.
fn phase_two(
    shared: Arc<Shared>,
    old: Option<cpal::Stream>,
    generation: u64,
    target: Option<String>,
    reason: Reason,
) -> PhaseTwo {
    let mut stopped_ns = None;
    let mut replayed = 0;
    if let Some(old) = old {
        // The old stream plays until its drop stops it, somewhere inside the drop, which can
        // take a while (closing an ALSA device: 8-20 ms measured): what it had not played is
        // counted from before the drop, so nothing is lost (what it played during the drop
        // is heard again). Counted from after the drop, a move lost 7-20 ms.
        let mut t = shared.core.now_ns();
        drop(old);
        if reason == Reason::ServerRestarted {
            // The old stream died with its server before now, and the watcher took a while
            // to be sure: what it had been handed and not played is what it held when its
            // callbacks stopped.
            t = t.min(shared.core.callbacks_stopped_ns().unwrap_or(t));
        } else if reason == Reason::StreamLost {
            // Its device went (unplugged) somewhere after its last callback, which is the
            // last moment it is known to have played: replay from there, so nothing is lost
            // (at most one period is heard twice). From the end of that callback's period,
            // an unplug early in it lost up to a period (7-15 ms of 25 measured on
            // tests/alsa_device.rs's device).
            let last = shared.core.last_audio_cb_ns();
            if last != 0 {
                t = t.min(last);
            }
        }
        stopped_ns = Some(t);
        replayed = shared.core.rewind(shared.core.unheard_ns(t));
    }
    let opened = open(&shared, generation, target.as_deref());
    (stopped_ns, replayed, opened)
}

/// Replaces the device stream (or opens the first one) through R1-R3, on `target` (a device
/// id; None = system default).
pub fn recreate(
    shared: &Arc<Shared>,
    reason: Reason,
    target: Option<String>,
) -> Result<Report, Error> {
    debug_assert_not_audio!();
    let t0 = Instant::now();
    let (old, generation) = {
        let mut slot = shared.service.lock_slot();
        slot.begin(&shared.service.phase, &shared.service.next_generation)
    };
    let (tx, rx) = mpsc::channel();
    let worker_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("audioplay-recreate".into())
        .spawn(move || {
            // If the caller gave up waiting, the send fails and the stream drops here.
            let _ = tx.send(phase_two(worker_shared, old, generation, target, reason));
        });
    let outcome = match spawned {
        Ok(_) => rx.recv_timeout(RECREATE_TIMEOUT).map_err(|_| {
            Error::Device(format!(
                "recreate timed out after {} s and was abandoned",
                RECREATE_TIMEOUT.as_secs()
            ))
        }),
        Err(e) => Err(Error::Device(format!(
            "cannot start a recreate worker: {e}"
        ))),
    };
    let mut slot = shared.service.lock_slot();
    let result = match outcome {
        // The player closed while this ran (an abandoned service thread finishing late):
        // nothing may start playing again. The stream is dropped with the lock released.
        Ok((_, _, Ok(o))) if shared.closing.load(Ordering::Acquire) => {
            drop(slot);
            drop(o);
            slot = shared.service.lock_slot();
            Err(Error::Closed)
        }
        Ok((stopped_ns, replayed, Ok(o))) => {
            let msg = format!(
                "recreate ({}): device '{}' at {} Hz ({} ch, {:?}), content {} Hz, generation {generation}",
                reason.as_str(),
                o.info.id,
                o.plan.config.sample_rate,
                o.plan.config.channels,
                o.plan.format,
                shared.core.content_rate()
            );
            let (stream, state) = describe(o, generation, shared.core.content_rate());
            *shared
                .service
                .rewriter
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = cpal::platform::output_rewriter(&stream);
            *shared
                .service
                .route
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = cpal::platform::output_route(&stream);
            slot.install(stream, state, &shared.core, &shared.service.state);
            Ok((msg, stopped_ns, replayed))
        }
        Ok((_, _, Err(e))) | Err(e) => {
            slot.mark_stopped(&shared.service.state);
            Err(e)
        }
    };
    shared.service.phase.end_recreate();
    drop(slot);
    let elapsed = t0.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    shared.stats.record_recreate(reason, ms, result.is_ok());
    match result {
        Ok((msg, stopped_ns, replayed)) => {
            let level = if ms > shared.cfg.recreate_warn_ms as f64 {
                crate::data::config::LogLevel::Warn
            } else {
                crate::data::config::LogLevel::Info
            };
            shared.log(
                level,
                &format!("{msg}, {ms:.1} ms, {replayed} frames replayed"),
            );
            Ok(Report { stopped_ns })
        }
        Err(e) => {
            // Rate-limited: while a server is gone, retries fail every tick.
            shared.log_limited(
                "recreate-failed",
                Duration::from_secs(5),
                crate::data::config::LogLevel::Error,
                &format!(
                    "recreate ({}) failed after {ms:.1} ms: {e}",
                    reason.as_str()
                ),
            );
            Err(e)
        }
    }
}
