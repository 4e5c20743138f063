//! The audio thread's scheduling (issue 5: callback max). On PulseAudio the callback runs on
//! the protocol client's socket thread, an ordinary thread that any other runnable thread can
//! preempt mid-callback; measured here, the worst callback of a 20 s stream was 45-90 us in
//! most runs at normal priority, 3-37 us at SCHED_FIFO. The library never touches the audio
//! thread from inside the callback (no syscalls there, C2): that thread is created with a
//! known name (`device::system_host`), and the service thread finds it by name and asks for
//! `audio_thread_priority` (SCHED_FIFO), best effort, as cubeb and PortAudio do for theirs.
//! Other hosts run the callback on a thread of their own that cpal names: ALSA's stream
//! worker is `cpal_alsa_out` (one per stream, so a recreate brings a new one), cpal's native
//! PipeWire host's is `pw_out` ([`AUDIO_THREADS`]).

use crate::control::device::AUDIO_THREAD_NAME;
use crate::control::shared::Shared;
use crate::data::config::LogLevel;
use crate::thread_role::debug_assert_role;

#[derive(Default)]
pub struct Priority {
    /// Done for the stream generation this was last run for.
    done_for: Option<u64>,
    /// Ticks that found no audio thread yet, and for which generation.
    misses: (u64, u32),
}

/// A stream's audio thread can appear a little after its generation is published (cpal's
/// ALSA worker starts with the stream; seen missed on a loaded machine): look again on this
/// many service ticks (250 ms each by default) before giving up on a generation.
const MAX_MISSES: u32 = 20;

impl Priority {
    /// Promotes audio threads not yet promoted, once per stream generation (service thread).
    pub fn tick(&mut self, shared: &Shared) {
        debug_assert_role!(Service);
        let want = shared.cfg.audio_thread_priority;
        let generation = shared.core.current_generation();
        if want == 0 || generation == 0 || self.done_for == Some(generation) {
            return;
        }
        let tried = promote(want as i32);
        if self.misses.0 != generation {
            self.misses = (generation, 0);
        }
        if tried.is_empty() && self.misses.1 < MAX_MISSES {
            self.misses.1 += 1;
            return;
        }
        self.done_for = Some(generation);
        for (tid, result) in tried {
            let msg = match result {
                Ok(()) => format!("audio thread {tid} at SCHED_FIFO priority {want}"),
                Err(e) => format!(
                    "could not raise audio thread {tid} to SCHED_FIFO {want} ({e}): its callbacks can be preempted under load"
                ),
            };
            shared.log(LogLevel::Info, &msg);
        }
    }
}

/// The names of the threads that run the audio callback, on every host: the PulseAudio
/// client's socket thread (named by the library), cpal's ALSA output worker, cpal's native
/// PipeWire output thread (cpal 0.18.2).
pub const AUDIO_THREADS: [&str; 3] = [AUDIO_THREAD_NAME, "cpal_alsa_out", "pw_out"];

/// Every thread of this process named as an audio thread ([`AUDIO_THREADS`]) and not already
/// real-time: set to SCHED_FIFO at `prio`. Returns what was tried.
#[cfg(target_os = "linux")]
fn promote(prio: i32) -> Vec<(i32, Result<(), std::io::Error>)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut tried = Vec::new();
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let named = std::fs::read_to_string(e.path().join("comm"))
            .is_ok_and(|c| AUDIO_THREADS.contains(&c.trim_end()));
        // SAFETY: sched_getscheduler only reads the policy of thread `tid` (or fails).
        if !named || unsafe { libc::sched_getscheduler(tid) } == libc::SCHED_FIFO {
            continue;
        }
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: `param` is a valid sched_param that outlives the call; a tid that has exited
        // meanwhile only makes the call fail.
        let r = unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) };
        tried.push((
            tid,
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            },
        ));
    }
    tried
}

#[cfg(not(target_os = "linux"))]
fn promote(_prio: i32) -> Vec<(i32, Result<(), std::io::Error>)> {
    Vec::new()
}
