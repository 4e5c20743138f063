//! Opening and replacing the device stream in three phases (SPEC L1-L3, R1-R3, C1).
//!
//! The stream slot has one lock that guards only the slot (L1). Helpers that run "locked"
//! take `&mut StreamSlot`, which can only be borrowed from the held guard: the compiler
//! enforces L3. All I/O (closing, querying, opening) happens between the phases with the
//! lock released (L2).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};

use crate::config::LogLevel;
use crate::device::{self, DeviceInfo, StreamPlan};
use crate::error::Error;
use crate::player::{Shared, StreamState};
use crate::render::OutputShape;

/// How long a stream build may take before it is abandoned (P2's 5 s budget).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(5);

/// L1: the stream handle and what describes it, nothing else.
#[derive(Default)]
pub struct StreamSlot {
    pub stream: Option<cpal::Stream>,
    pub started: bool,
    pub stream_rate: u32,
    pub device_id: Option<String>,
    pub device_rate: u32,
    pub actual_rate: u32,
    pub generation: u64,
}

/// What phase 2 hands to phase 3.
pub struct Opened {
    stream: cpal::Stream,
    info: DeviceInfo,
    plan: StreamPlan,
}

/// R1, with the lock held: empties the slot, marks `recreating`, and reserves the next
/// generation. The returned stream is closed by the caller after unlocking.
pub fn begin(slot: &mut StreamSlot, shared: &Shared) -> (Option<cpal::Stream>, u64) {
    shared.recreating.store(true, Ordering::Release);
    let generation = shared.next_generation.fetch_add(1, Ordering::AcqRel) + 1;
    slot.started = false;
    (slot.stream.take(), generation)
}

/// R3, with the lock held: installs the running stream and publishes its generation.
pub fn install(slot: &mut StreamSlot, shared: &Shared, generation: u64, o: Opened) {
    let rate = o.plan.config.sample_rate;
    slot.stream = Some(o.stream);
    slot.started = true;
    slot.stream_rate = rate;
    slot.actual_rate = rate;
    slot.device_id = Some(o.info.id.clone());
    slot.device_rate = o.info.rate;
    slot.generation = generation;
    shared.core.publish_generation(generation);
    shared.state.store(Arc::new(StreamState {
        generation,
        started: true,
        device_id: o.info.id,
        device_name: o.info.name,
        device_rate: o.info.rate,
        stream_rate: rate,
        content_rate: shared.cfg.input_rate,
        channels: o.plan.config.channels,
        format: Some(o.plan.format),
    }));
}

/// R2, lock released: finds the device and builds and starts a stream whose callback
/// captures `generation` (C1).
fn open(shared: &Shared, generation: u64) -> Result<Opened, Error> {
    let (dev, info) = device::find_output(&shared.host, shared.cfg.device_id.as_deref())
        .map_err(Error::NoDevice)?;
    let plan = device::plan_stream(&dev, &info, &shared.cfg);
    shared.core.configure(OutputShape {
        rate: plan.config.sample_rate,
        channels: plan.config.channels as usize,
    });
    let core = shared.core.clone();
    let err_core = shared.core.clone();
    let wake = shared.wake.clone();
    let data_cb = move |data: &mut cpal::Data, info: &cpal::OutputCallbackInfo| {
        core.render(generation, data, info);
    };
    let err_cb = move |e: cpal::Error| {
        // Errors from a stream being closed are teardown noise, not device failures.
        if err_core.current_generation() == generation {
            err_core
                .counters
                .stream_errors
                .fetch_add(1, Ordering::Relaxed);
            wake.notify();
        }
        let _ = e;
    };
    let build = |cfg: cpal::StreamConfig| {
        dev.build_output_stream_raw(
            cfg,
            plan.format,
            data_cb.clone(),
            err_cb.clone(),
            Some(BUILD_TIMEOUT),
        )
    };
    let stream = match build(plan.config) {
        Ok(s) => s,
        // Some hosts reject a fixed period; their default is better than no sound.
        Err(_) if plan.config.buffer_size != cpal::BufferSize::Default => {
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

/// Replaces the device stream (or opens the first one) through R1-R3.
pub fn recreate(shared: &Shared, reason: &str) -> Result<(), Error> {
    let t0 = Instant::now();
    let (old, generation) = {
        let mut slot = shared.lock_slot();
        begin(&mut slot, shared)
    };
    drop(old); // R2: stop and close the old stream with the lock released.
    let opened = open(shared, generation);
    let mut slot = shared.lock_slot();
    let result = match opened {
        Ok(o) => {
            let msg = format!(
                "stream open ({reason}): device '{}' at {} Hz ({} ch, {:?}), content {} Hz, generation {generation}",
                o.info.id, o.plan.config.sample_rate, o.plan.config.channels, o.plan.format, shared.cfg.input_rate
            );
            install(&mut slot, shared, generation, o);
            Ok(msg)
        }
        Err(e) => Err(e),
    };
    shared.recreating.store(false, Ordering::Release);
    drop(slot);
    let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(msg) => {
            shared.log(LogLevel::Info, &format!("{msg}, {elapsed:.1} ms"));
            Ok(())
        }
        Err(e) => {
            shared.log(
                LogLevel::Error,
                &format!("stream open ({reason}) failed after {elapsed:.1} ms: {e}"),
            );
            Err(e)
        }
    }
}
