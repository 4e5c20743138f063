//! The device watcher's decisions (V1, V2, debounce, P1) as pure functions: no I/O, no
//! `Shared`, no clock reads. The service thread gathers what they need (the stream's
//! signals, the device query's answer, the published stream state and the instants), asks
//! [`should_query`] whether to query at all, calls [`decide`], and acts on its [`Decision`]
//! (the recreate, counters and log lines are all the thread's).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::control::device::{self, DeviceInfo};
use crate::data::config::Config;
use crate::data::state::{Reason, StreamState};

/// P1's window: at most `max_per_minute` recreates start within any span this long.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The configuration the decisions depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A changed target must hold this long before it is acted on (0 = at once).
    pub debounce: Duration,
    /// V2: after a failed query, the next one waits this long (unless woken).
    pub cooldown: Duration,
    /// P1: recreates allowed in any [`WINDOW`].
    pub max_per_minute: u32,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Self {
        Limits {
            debounce: Duration::from_millis(cfg.debounce_ms as u64),
            cooldown: Duration::from_millis(cfg.device_query_cooldown_ms as u64),
            max_per_minute: cfg.max_recreate_per_minute,
        }
    }
}

/// Debounce: a changed target (device id, native rate, channel count), and when it was
/// first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    pub rate: u32,
    pub channels: u16,
    pub since: Instant,
}

/// What the watcher remembers between ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatcherState {
    /// V2: the last device a query returned, used while queries fail.
    pub last_good: Option<DeviceInfo>,
    /// V2: cooldown applies only after a failed query.
    pub cooldown_until: Option<Instant>,
    /// Debounce: a changed target not acted on yet.
    pub pending: Option<Pending>,
    /// P1: when recent recreates started (oldest first).
    pub recent: VecDeque<Instant>,
}

impl WatcherState {
    /// The sound-server connection was rebuilt and the stream is being recreated on `info`
    /// (the outage path, which runs before any query): the cache is fresh, no cooldown, no
    /// debounce.
    pub fn reconnected(&mut self, info: DeviceInfo) {
        self.last_good = Some(info);
        self.cooldown_until = None;
        self.pending = None;
    }
}

/// What the thread knew before querying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// A stream's error callback asked for the device to be checked (it reported an error,
    /// or its device changed).
    pub verify: bool,
    /// The stream reported itself lost, and its callbacks really stopped.
    pub lost: bool,
    /// The application asked for a move (`set_device`).
    pub requested: bool,
}

/// One tick's observation.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub signals: Signals,
    /// What the device query returned.
    pub target: Result<DeviceInfo, String>,
    /// When the answer was in (after the query, which can block): a debounce's hold is
    /// measured up to here, while everything else uses the tick's `now` (taken before it).
    pub answered: Instant,
    /// The stream's published state, loaded after the query.
    pub stream: &'a StreamState,
    /// Where the server moved the stream itself, if it did (`OutputRoute::moved_to`).
    pub moved_to: Option<String>,
    /// The application chose the device (`Config::device`, `set_device`).
    pub pinned: bool,
}

/// What the thread does with one tick's observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The query failed with this error: count it and log it (rate-limited). The cooldown
    /// is set, and the last good device (if any) stood in for the answer.
    pub query_failed: Option<String>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The query failed and no query ever succeeded: there is nothing to compare with.
    NoKnownDevice,
    /// The stream is where it should be (a pending debounce, if any, was dropped).
    Unchanged,
    /// A new target was seen: its debounce starts now.
    DebounceStarted,
    /// The pending target has not held for the debounce yet.
    Debouncing,
    /// P1 holds a recreate back: `recent` recreates started in the last minute.
    Refused { reason: Reason, recent: usize },
    /// Recreate the stream on device `target` (counted against P1 already).
    Recreate { reason: Reason, target: String },
    /// The server has already moved the stream to the new target, at the format it plays
    /// at now: it plays on there, without a gap; only its description changes.
    Followed { device: DeviceInfo },
}

/// Whether this tick queries the device (V2: the cooldown after a failed query is skipped
/// only for a stream's report or an application's request; other wakes, an utterance
/// starting or a flush, do not make a failing device be queried again).
pub fn should_query(st: &WatcherState, signals: Signals, now: Instant) -> bool {
    // A request's flag is consumed by this tick: skipping the query would lose it (the move
    // then came a tick later, debounced, as "device changed").
    signals.verify
        || signals.lost
        || signals.requested
        || st.cooldown_until.is_none_or(|t| now >= t)
}

/// Decides what a tick's observation calls for and updates the watcher's state to match.
/// `now` is the tick's instant, taken before the query.
pub fn decide(
    obs: Observation<'_>,
    st: &mut WatcherState,
    limits: &Limits,
    now: Instant,
) -> Decision {
    let (observed, query_failed) = match &obs.target {
        Ok(info) => {
            st.cooldown_until = None;
            st.last_good = Some(info.clone());
            (info.clone(), None)
        }
        Err(e) => {
            st.cooldown_until = Some(now + limits.cooldown);
            match &st.last_good {
                Some(c) => (c.clone(), Some(e.clone())),
                None => {
                    return Decision {
                        query_failed: Some(e.clone()),
                        action: Action::NoKnownDevice,
                    }
                }
            }
        }
    };
    let action = choose(&observed, &obs, st, limits, now);
    Decision {
        query_failed,
        action,
    }
}

fn choose(
    observed: &DeviceInfo,
    obs: &Observation<'_>,
    st: &mut WatcherState,
    limits: &Limits,
    now: Instant,
) -> Action {
    let (signals, stream, answered) = (obs.signals, obs.stream, obs.answered);
    let (changed, id, rate) = device::detect_change(stream, observed);
    // PulseAudio (and pipewire-pulse) move the default sink's streams to a new default
    // themselves, gaplessly, pinned or not: a moved stream is not where its description says.
    let moved = obs.moved_to.as_deref().filter(|m| *m != stream.device_id);
    if let Some(m) = moved {
        if !obs.pinned
            && !signals.lost
            && stream.started
            && m == observed.id
            && observed.rate == stream.device_rate
            && observed.channels == stream.channels
        {
            // To the new default, at the format it plays at: keep it (recreating it would
            // cost a 21-24 ms gap for nothing).
            st.pending = None;
            return Action::Followed {
                device: observed.clone(),
            };
        }
    }
    // A pinned stream the server moved off its device goes back (recreated there); a
    // following one moved elsewhere than the default (a user's choice in a mixer) stays.
    let moved_off = obs.pinned && moved.is_some() && stream.started;
    let changed = changed || moved_off;
    let reason = if signals.lost {
        Reason::StreamLost
    } else if signals.requested && changed {
        Reason::Requested
    } else if !changed {
        st.pending = None;
        return Action::Unchanged;
    } else if !stream.started {
        Reason::Retry
    } else if stream.device_id == id && !moved_off {
        Reason::FormatChanged
    } else {
        Reason::DeviceChanged
    };
    // Debounce a flapping route: act once the same target has held for the debounce.
    // A lost stream, a request or an empty slot is acted on at once.
    if matches!(reason, Reason::DeviceChanged | Reason::FormatChanged) {
        let held = match &st.pending {
            Some(p) if p.id == id && p.rate == rate && p.channels == observed.channels => {
                Some(answered.saturating_duration_since(p.since))
            }
            _ => None,
        };
        match held {
            Some(t) if t < limits.debounce => return Action::Debouncing,
            None if !limits.debounce.is_zero() => {
                st.pending = Some(Pending {
                    id,
                    rate,
                    channels: observed.channels,
                    since: now,
                });
                return Action::DebounceStarted;
            }
            _ => {}
        }
    }
    st.pending = None;
    // P1: at most max_per_minute in any 60 s window.
    while st
        .recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        st.recent.pop_front();
    }
    if st.recent.len() >= limits.max_per_minute as usize {
        return Action::Refused {
            reason,
            recent: st.recent.len(),
        };
    }
    st.recent.push_back(now);
    Action::Recreate { reason, target: id }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::SampleFormat;

    fn dev(id: &str, rate: u32, channels: u16) -> DeviceInfo {
        DeviceInfo {
            id: id.to_string(),
            name: format!("{id} sink"),
            rate,
            channels,
            format: SampleFormat::I16,
        }
    }

    /// A running stream on `d` at its native format.
    fn on(d: &DeviceInfo) -> StreamState {
        StreamState {
            generation: 3,
            started: true,
            device_id: d.id.clone(),
            device_name: d.name.clone(),
            device_rate: d.rate,
            stream_rate: d.rate,
            content_rate: 22050,
            channels: d.channels,
            format: Some(d.format),
        }
    }

    /// The slot is empty (an earlier recreate failed): what was last published, not started.
    fn stopped_on(d: &DeviceInfo) -> StreamState {
        StreamState {
            started: false,
            ..on(d)
        }
    }

    fn a() -> DeviceInfo {
        dev("s48", 48000, 2)
    }
    fn b() -> DeviceInfo {
        dev("s16", 16000, 1)
    }
    fn c() -> DeviceInfo {
        dev("s44", 44100, 2)
    }

    const LIMITS: Limits = Limits {
        debounce: Duration::from_millis(60),
        cooldown: Duration::from_millis(1000),
        max_per_minute: 30,
    };

    fn recreate(reason: Reason, target: &str) -> Option<Action> {
        Some(Action::Recreate {
            reason,
            target: target.to_string(),
        })
    }

    /// One tick, as the service thread runs it. Instants are ms after a base instant.
    struct Case {
        name: &'static str,
        // Before.
        stream: StreamState,
        last_good: Option<DeviceInfo>,
        cooldown_until: Option<u64>,
        pending: Option<(DeviceInfo, u64)>,
        recent: Vec<u64>,
        // This tick.
        signals: Signals,
        target: Result<DeviceInfo, &'static str>,
        /// Where the server moved the stream; whether the application pinned a device.
        moved_to: Option<&'static str>,
        pinned: bool,
        now: u64,
        /// How long the query took (`answered` = now + this).
        query_ms: u64,
        limits: Limits,
        // Expected: None = not queried (and then nothing else changes).
        action: Option<Action>,
        failed: bool,
        want_last_good: Option<DeviceInfo>,
        want_cooldown: Option<u64>,
        want_pending: Option<(DeviceInfo, u64)>,
        want_recent: Vec<u64>,
    }

    const NOW: u64 = 100_000;

    /// A stream on A, A known good, the query says A: nothing to do.
    fn base(name: &'static str) -> Case {
        Case {
            name,
            stream: on(&a()),
            last_good: Some(a()),
            cooldown_until: None,
            pending: None,
            recent: vec![],
            signals: Signals::default(),
            target: Ok(a()),
            moved_to: None,
            pinned: false,
            now: NOW,
            query_ms: 1,
            limits: LIMITS,
            action: Some(Action::Unchanged),
            failed: false,
            want_last_good: Some(a()),
            want_cooldown: None,
            want_pending: None,
            want_recent: vec![],
        }
    }

    fn cases() -> Vec<Case> {
        let verify = Signals {
            verify: true,
            ..Signals::default()
        };
        let lost = Signals {
            lost: true,
            ..Signals::default()
        };
        let requested = Signals {
            requested: true,
            verify: true,
            ..Signals::default()
        };
        let full: Vec<u64> = (0..30).map(|i| NOW - 59_000 + i * 100).collect();
        let a2 = || dev("s48b", 48000, 2);
        vec![
            base("no change"),
            Case {
                target: Ok(a2()),
                moved_to: Some("s48b"),
                action: Some(Action::Followed { device: a2() }),
                want_last_good: Some(a2()),
                ..base("the server moved the stream to the new default at its format: kept")
            },
            Case {
                target: Ok(a2()),
                moved_to: Some("s48b"),
                pending: Some((a2(), NOW - 30)),
                action: Some(Action::Followed { device: a2() }),
                want_last_good: Some(a2()),
                ..base("a move the server made needs no debounce: kept at once")
            },
            Case {
                target: Ok(c()),
                moved_to: Some("s44"),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(c()),
                want_pending: Some((c(), NOW)),
                ..base("moved to a default at another rate: recreated there, after the debounce")
            },
            Case {
                target: Ok(a2()),
                moved_to: Some("s44"),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(a2()),
                want_pending: Some((a2(), NOW)),
                ..base("moved, but not to the new default: recreated on the default")
            },
            Case {
                moved_to: Some("s48"),
                ..base("moved back to where it was described: nothing to do")
            },
            Case {
                moved_to: Some("s48b"),
                ..base("a following stream moved off the default (a mixer's choice): it stays")
            },
            Case {
                moved_to: Some("s48b"),
                pinned: true,
                action: Some(Action::DebounceStarted),
                want_pending: Some((a(), NOW)),
                ..base("a pinned stream the server moved off its device: the debounce starts")
            },
            Case {
                moved_to: Some("s48b"),
                pinned: true,
                pending: Some((a(), NOW - 61)),
                action: recreate(Reason::DeviceChanged, "s48"),
                want_recent: vec![NOW],
                ..base("a pinned stream the server moved off its device: recreated on it")
            },
            Case {
                target: Ok(a2()),
                moved_to: Some("s48b"),
                pinned: true,
                action: Some(Action::DebounceStarted),
                want_last_good: Some(a2()),
                want_pending: Some((a2(), NOW)),
                ..base(
                    "pinned to where the server moved it: recreated, not kept (a pin asked for it)",
                )
            },
            Case {
                target: Ok(b()),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(b()),
                want_pending: Some((b(), NOW)),
                ..base("target changed: the debounce starts")
            },
            Case {
                target: Ok(b()),
                pending: Some((b(), NOW - 30)),
                action: Some(Action::Debouncing),
                want_last_good: Some(b()),
                want_pending: Some((b(), NOW - 30)),
                ..base("same new target within the debounce: keep waiting")
            },
            Case {
                target: Ok(b()),
                pending: Some((b(), NOW - 61)),
                action: recreate(Reason::DeviceChanged, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("debounce elapsed with the same target: recreate, device changed")
            },
            Case {
                target: Ok(b()),
                pending: Some((b(), NOW - 58)),
                query_ms: 3,
                action: recreate(Reason::DeviceChanged, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("the hold is measured up to the answer, not the tick's start")
            },
            Case {
                target: Ok(a()),
                pending: Some((b(), NOW - 30)),
                ..base("target flips back during the debounce: cancelled")
            },
            Case {
                target: Ok(c()),
                pending: Some((b(), NOW - 100)),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(c()),
                want_pending: Some((c(), NOW)),
                ..base("another target during the debounce: it starts over")
            },
            Case {
                target: Ok(dev("s16", 22050, 1)),
                pending: Some((b(), NOW - 100)),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(dev("s16", 22050, 1)),
                want_pending: Some((dev("s16", 22050, 1), NOW)),
                ..base("pending device at another rate: it starts over")
            },
            Case {
                target: Ok(dev("s48", 44100, 2)),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(dev("s48", 44100, 2)),
                want_pending: Some((dev("s48", 44100, 2), NOW)),
                ..base("same device, new rate: debounced too")
            },
            Case {
                target: Ok(dev("s48", 44100, 2)),
                pending: Some((dev("s48", 44100, 2), NOW - 60)),
                query_ms: 0,
                action: recreate(Reason::FormatChanged, "s48"),
                want_last_good: Some(dev("s48", 44100, 2)),
                want_recent: vec![NOW],
                ..base("same device, new rate held (exactly the debounce): format changed")
            },
            Case {
                target: Ok(dev("s48", 48000, 6)),
                pending: Some((dev("s48", 48000, 6), NOW - 200)),
                action: recreate(Reason::FormatChanged, "s48"),
                want_last_good: Some(dev("s48", 48000, 6)),
                want_recent: vec![NOW],
                ..base("same device, new channel count held: format changed")
            },
            Case {
                target: Ok(dev("s48", 48000, 2)),
                stream: StreamState {
                    format: Some(SampleFormat::F32),
                    ..on(&a())
                },
                ..base("only the sample format differs: not a change")
            },
            Case {
                target: Ok(b()),
                limits: Limits {
                    debounce: Duration::ZERO,
                    ..LIMITS
                },
                action: recreate(Reason::DeviceChanged, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("debounce 0: a change is acted on at once")
            },
            Case {
                target: Err("PulseAudio disconnected"),
                failed: true,
                want_cooldown: Some(NOW + 1000),
                ..base("query error: cooldown, the last good device (the current one) stands in")
            },
            Case {
                target: Err("PulseAudio disconnected"),
                last_good: Some(b()),
                failed: true,
                action: Some(Action::DebounceStarted),
                want_last_good: Some(b()),
                want_cooldown: Some(NOW + 1000),
                want_pending: Some((b(), NOW)),
                ..base("query error: the last good device is a new target, debounced")
            },
            Case {
                target: Err("PulseAudio disconnected"),
                last_good: None,
                pending: Some((b(), NOW - 10)),
                signals: lost,
                failed: true,
                action: Some(Action::NoKnownDevice),
                want_last_good: None,
                want_cooldown: Some(NOW + 1000),
                want_pending: Some((b(), NOW - 10)),
                ..base("query error, no device ever seen: nothing (even a lost stream waits)")
            },
            Case {
                cooldown_until: Some(NOW + 1),
                target: Ok(b()),
                action: None,
                want_cooldown: Some(NOW + 1),
                ..base("cooldown running, nothing reported: no query")
            },
            Case {
                cooldown_until: Some(NOW + 1),
                signals: Signals {
                    requested: true,
                    ..Signals::default()
                },
                target: Ok(b()),
                action: recreate(Reason::Requested, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("cooldown running: a request alone queries (its flag is consumed)")
            },
            Case {
                cooldown_until: Some(NOW + 500),
                signals: verify,
                target: Ok(b()),
                action: Some(Action::DebounceStarted),
                want_last_good: Some(b()),
                want_pending: Some((b(), NOW)),
                ..base("a stream report during the cooldown: query; success ends the cooldown")
            },
            Case {
                cooldown_until: Some(NOW + 500),
                signals: verify,
                target: Err("timed out"),
                failed: true,
                want_cooldown: Some(NOW + 1000),
                ..base("a stream report during the cooldown, query fails again: cooldown restarts")
            },
            Case {
                cooldown_until: Some(NOW),
                target: Ok(a()),
                ..base("cooldown over (now == deadline): query")
            },
            Case {
                cooldown_until: Some(NOW + 500),
                signals: lost,
                pending: Some((b(), NOW - 10)),
                action: recreate(Reason::StreamLost, "s48"),
                want_recent: vec![NOW],
                ..base("stream lost during the cooldown, same device: recreate at once")
            },
            Case {
                signals: lost,
                target: Ok(b()),
                action: recreate(Reason::StreamLost, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("stream lost, device changed: stream lost, no debounce")
            },
            Case {
                signals: Signals {
                    lost: true,
                    requested: true,
                    verify: true,
                },
                target: Ok(b()),
                action: recreate(Reason::StreamLost, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("stream lost beats requested")
            },
            Case {
                signals: requested,
                target: Ok(b()),
                pending: Some((c(), NOW - 10)),
                action: recreate(Reason::Requested, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("app request: requested at once, pending dropped")
            },
            Case {
                signals: requested,
                target: Ok(a()),
                ..base("app request for the current device: nothing")
            },
            Case {
                stream: stopped_on(&a()),
                pending: Some((b(), NOW - 10)),
                action: recreate(Reason::Retry, "s48"),
                want_recent: vec![NOW],
                ..base("no stream running: retry at once")
            },
            Case {
                stream: stopped_on(&a()),
                target: Err("no default output device"),
                failed: true,
                action: recreate(Reason::Retry, "s48"),
                want_cooldown: Some(NOW + 1000),
                want_recent: vec![NOW],
                ..base("no stream running, query fails: retry on the last good device")
            },
            Case {
                stream: stopped_on(&a()),
                signals: requested,
                target: Ok(b()),
                action: recreate(Reason::Requested, "s16"),
                want_last_good: Some(b()),
                want_recent: vec![NOW],
                ..base("no stream running, app request: requested")
            },
            Case {
                stream: stopped_on(&a()),
                recent: full.clone(),
                action: Some(Action::Refused {
                    reason: Reason::Retry,
                    recent: 30,
                }),
                want_recent: full.clone(),
                ..base("P1: 30 in the last minute refuses the 31st")
            },
            Case {
                target: Ok(b()),
                pending: Some((b(), NOW - 100)),
                recent: full.clone(),
                action: Some(Action::Refused {
                    reason: Reason::DeviceChanged,
                    recent: 30,
                }),
                want_last_good: Some(b()),
                want_recent: full.clone(),
                ..base("P1 refuses a debounced change, and the debounce is dropped")
            },
            Case {
                signals: lost,
                recent: vec![NOW - 59_999, NOW - 1],
                limits: Limits {
                    max_per_minute: 2,
                    ..LIMITS
                },
                action: Some(Action::Refused {
                    reason: Reason::StreamLost,
                    recent: 2,
                }),
                want_recent: vec![NOW - 59_999, NOW - 1],
                ..base("P1 holds back a lost stream too")
            },
            Case {
                stream: stopped_on(&a()),
                recent: vec![NOW - 70_000, NOW - 60_000, NOW - 59_999],
                limits: Limits {
                    max_per_minute: 2,
                    ..LIMITS
                },
                action: recreate(Reason::Retry, "s48"),
                want_recent: vec![NOW - 59_999, NOW],
                ..base("P1: starts 60 s old or more leave the window")
            },
            Case {
                recent: vec![NOW - 70_000],
                want_recent: vec![NOW - 70_000],
                ..base("no change: the P1 window is not pruned")
            },
            // Bare ALSA: an exclusive device held by this player answers busy to every query;
            // the query then stands in the held device (device::query_target_holding), so
            // the watcher knows it is present and has a good device to fall back on.
            Case {
                last_good: None,
                target: Ok(a()),
                want_last_good: Some(a()),
                ..base("the held device answering busy (stood in by the query): unchanged")
            },
            Case {
                signals: lost,
                target: Err("device default: not available (disconnected)"),
                failed: true,
                action: recreate(Reason::StreamLost, "s48"),
                want_cooldown: Some(NOW + 1000),
                want_recent: vec![NOW],
                ..base("the held device unplugged: stream lost, recreate on the last good at once")
            },
            Case {
                stream: stopped_on(&a()),
                cooldown_until: Some(NOW + 400),
                target: Err("device default: not available (disconnected)"),
                action: None,
                want_cooldown: Some(NOW + 400),
                ..base("still unplugged, no stream, cooldown running: no query")
            },
            Case {
                stream: stopped_on(&a()),
                cooldown_until: Some(NOW - 1),
                target: Err("device default: not available (disconnected)"),
                failed: true,
                action: recreate(Reason::Retry, "s48"),
                want_cooldown: Some(NOW + 1000),
                want_recent: vec![NOW],
                ..base("still unplugged, cooldown over: retry on the last good (it fails again)")
            },
            Case {
                stream: stopped_on(&a()),
                cooldown_until: Some(NOW - 1),
                action: recreate(Reason::Retry, "s48"),
                want_recent: vec![NOW],
                ..base(
                    "plugged back, cooldown over: retry, and the query's success ends the cooldown",
                )
            },
            Case {
                last_good: Some(b()),
                target: Ok(a()),
                want_last_good: Some(a()),
                ..base("a pinned exclusive device answering busy stays the target: no move")
            },
        ]
    }

    #[test]
    fn table() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let pending = |p: &Option<(DeviceInfo, u64)>| {
            p.as_ref().map(|(d, since)| Pending {
                id: d.id.clone(),
                rate: d.rate,
                channels: d.channels,
                since: at(*since),
            })
        };
        let cases = cases();
        assert!(cases.len() >= 12);
        for case in cases {
            let mut st = WatcherState {
                last_good: case.last_good.clone(),
                cooldown_until: case.cooldown_until.map(at),
                pending: pending(&case.pending),
                recent: case.recent.iter().copied().map(at).collect(),
            };
            let now = at(case.now);
            let queried = should_query(&st, case.signals, now);
            let decision = queried.then(|| {
                decide(
                    Observation {
                        signals: case.signals,
                        target: case.target.clone().map_err(str::to_string),
                        answered: now + Duration::from_millis(case.query_ms),
                        stream: &case.stream,
                        moved_to: case.moved_to.map(str::to_string),
                        pinned: case.pinned,
                    },
                    &mut st,
                    &case.limits,
                    now,
                )
            });
            let name = case.name;
            assert_eq!(
                decision.as_ref().map(|d| d.action.clone()),
                case.action,
                "{name}: action"
            );
            let failed = decision.as_ref().and_then(|d| d.query_failed.clone());
            assert_eq!(
                failed,
                case.failed
                    .then(|| case.target.clone().unwrap_err().to_string()),
                "{name}: query failure"
            );
            let want = WatcherState {
                last_good: case.want_last_good.clone(),
                cooldown_until: case.want_cooldown.map(at),
                pending: pending(&case.want_pending),
                recent: case.want_recent.iter().copied().map(at).collect(),
            };
            assert_eq!(st, want, "{name}: state after");
        }
    }

    /// A route that flaps between two devices never recreates; once it holds, one recreate.
    #[test]
    fn flapping_route_recreates_once_it_holds() {
        let t0 = Instant::now();
        let stream = on(&a());
        let mut st = WatcherState::default();
        let mut tick = |ms: u64, target: DeviceInfo| {
            let now = t0 + Duration::from_millis(ms);
            decide(
                Observation {
                    signals: Signals::default(),
                    target: Ok(target),
                    answered: now,
                    stream: &stream,
                    moved_to: None,
                    pinned: false,
                },
                &mut st,
                &LIMITS,
                now,
            )
            .action
        };
        assert_eq!(tick(0, b()), Action::DebounceStarted);
        assert_eq!(tick(40, a()), Action::Unchanged);
        assert_eq!(tick(80, b()), Action::DebounceStarted);
        assert_eq!(tick(120, c()), Action::DebounceStarted);
        assert_eq!(tick(170, c()), Action::Debouncing);
        assert_eq!(
            tick(180, c()),
            Action::Recreate {
                reason: Reason::DeviceChanged,
                target: "s44".into()
            }
        );
        // The stream is not republished here: the same target starts a new debounce.
        assert_eq!(tick(190, c()), Action::DebounceStarted);
        assert_eq!(st.recent.len(), 1);
    }

    #[test]
    fn reconnect_resets_cooldown_and_debounce() {
        let t0 = Instant::now();
        let mut st = WatcherState {
            last_good: Some(a()),
            cooldown_until: Some(t0),
            pending: Some(Pending {
                id: "s16".into(),
                rate: 16000,
                channels: 1,
                since: t0,
            }),
            recent: VecDeque::from([t0]),
        };
        st.reconnected(b());
        assert_eq!(st.last_good, Some(b()));
        assert_eq!(st.cooldown_until, None);
        assert_eq!(st.pending, None);
        assert_eq!(
            st.recent.len(),
            1,
            "the outage path is not counted against P1"
        );
    }

    #[test]
    fn limits_come_from_the_config() {
        let cfg = Config {
            debounce_ms: 75,
            device_query_cooldown_ms: 1500,
            max_recreate_per_minute: 7,
            ..Config::default()
        };
        assert_eq!(
            Limits::from_config(&cfg),
            Limits {
                debounce: Duration::from_millis(75),
                cooldown: Duration::from_millis(1500),
                max_per_minute: 7,
            }
        );
    }
}
