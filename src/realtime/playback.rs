//! The render state's two state machines: where the consumed content stands against its
//! utterance boundaries ([`Phase`]) and whether the device is being kept fed ([`Flow`]).
//! Each transition is one small method; the transitions are pure, and the caller emits the
//! events they say are due. Nothing here allocates or blocks (SPEC C2).
//!
//! They are two machines, not one, because they change independently: an underrun opened
//! inside an utterance stays open across its end (its `UnderrunEnd` comes with the next full
//! callback, whatever the phase is by then), and the device can be fed or dry in any phase.
//!
//! What the render state keeps beside them, on purpose:
//! - `paused` (a bool): the application's pause, mirrored from the controls. It overlays
//!   every phase: the fade takes the output to silence, a silent pause holds the output, and
//!   a resume carries on in the same phase. Its ramp is the fade shared with flushes.
//! - `flushing` (`Option<u64>`): a pending discard, which also overlays every phase (it
//!   fades out whatever plays, then discards up to the position it carries and leaves the
//!   phase `Idle`).
//! - `resampled_ring` (a bool): what the ring holds (the writer's resampled frames), a fact
//!   about the data, not about playback.

/// Where the content being consumed stands against its utterance boundaries. Exactly one at
/// a time (it replaces `in_utterance`, `waiting_preroll` and `finishing`, which were never
/// set two at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Outside an utterance: what the ring holds plays and nothing is owed; running dry is
    /// not an underrun.
    Idle,
    /// An utterance has started but is held back until enough of it is queued (or its end
    /// is written).
    Preroll,
    /// Inside an utterance and playing: running dry is an underrun.
    Speaking,
    /// The utterance has ended: the resampler still owes the output frames its last input
    /// frames make (its tail), played before anything new.
    Finishing,
}

impl Phase {
    /// Between an utterance's start and its end (pre-rolling or speaking).
    pub fn in_utterance(self) -> bool {
        matches!(self, Phase::Preroll | Phase::Speaking)
    }

    /// An utterance start was reached. `preroll`: it is to be held back first. Starts
    /// afresh from any phase (an owed tail is dropped).
    pub fn start(&mut self, preroll: bool) {
        *self = if preroll {
            Phase::Preroll
        } else {
            Phase::Speaking
        };
    }

    /// An utterance end was reached. Returns whether it ends a heard utterance (its event
    /// is due and its tail owed); `flushing`: the utterance is being discarded, nothing is
    /// owed. An end outside an utterance changes nothing.
    pub fn end(&mut self, flushing: bool) -> bool {
        if !self.in_utterance() {
            return false;
        }
        *self = if flushing {
            Phase::Idle
        } else {
            Phase::Finishing
        };
        !flushing
    }

    /// Enough of a pre-rolling utterance is queued: it plays. (No assertion of the phase
    /// it leaves: this runs on the audio thread, C2.)
    pub fn preroll_met(&mut self) {
        *self = Phase::Speaking;
    }

    /// The tail owed at an utterance's end has been played.
    pub fn tail_played(&mut self) {
        *self = Phase::Idle;
    }

    /// A flush discarded everything up to its end: nothing is open or owed.
    pub fn flushed(&mut self) {
        *self = Phase::Idle;
    }
}

/// Whether the callbacks are keeping the device fed. Exactly one at a time (it replaces
/// `playing` and `underrun_open`: an open underrun always meant not playing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// No callback has filled its buffer yet, or the last one that was not held ran short.
    Dry,
    /// The last callback that was not held filled its whole buffer.
    Flowing,
    /// A callback ran short inside an utterance: `UnderrunStart` was emitted, and
    /// `UnderrunEnd` is owed at the next callback that fills its whole buffer.
    Underrun,
}

impl Flow {
    /// A callback left part of its buffer silent, not on purpose (not paused, pre-rolling
    /// or flushing). Returns whether that is an underrun: inside an utterance, after audio
    /// was flowing or in this very callback (a ring still empty at an utterance's start is
    /// not one).
    pub fn ran_short(&mut self, in_utterance: bool, rendered_some: bool) -> bool {
        if in_utterance && (*self == Flow::Flowing || rendered_some) {
            *self = Flow::Underrun;
            return true;
        }
        if *self == Flow::Flowing {
            *self = Flow::Dry;
        }
        false
    }

    /// A callback filled its whole buffer. Returns whether that ends an open underrun.
    pub fn ran_full(&mut self) -> bool {
        let ended = *self == Flow::Underrun;
        *self = Flow::Flowing;
        ended
    }

    pub fn flowing(self) -> bool {
        self == Flow::Flowing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_utterance_goes_through_its_phases() {
        let mut p = Phase::Idle;
        p.start(true);
        assert_eq!(p, Phase::Preroll);
        assert!(p.in_utterance());
        p.preroll_met();
        assert_eq!(p, Phase::Speaking);
        assert!(p.end(false), "a heard end is due");
        assert_eq!(p, Phase::Finishing);
        assert!(!p.in_utterance());
        p.tail_played();
        assert_eq!(p, Phase::Idle);
    }

    #[test]
    fn ends_outside_an_utterance_or_while_flushing_owe_nothing() {
        for from in [Phase::Idle, Phase::Finishing] {
            let mut p = from;
            assert!(!p.end(false));
            assert_eq!(p, from, "an end outside an utterance changes nothing");
        }
        for from in [Phase::Preroll, Phase::Speaking] {
            let mut p = from;
            assert!(!p.end(true));
            assert_eq!(p, Phase::Idle, "a flushed utterance owes no tail");
        }
        let mut p = Phase::Finishing;
        p.start(false);
        assert_eq!(p, Phase::Speaking, "a new utterance drops the owed tail");
    }

    #[test]
    fn an_underrun_counts_once_per_dry_spell_and_closes_only_on_a_full_callback() {
        let mut f = Flow::Dry;
        assert!(
            !f.ran_short(true, false),
            "an empty start is not an underrun"
        );
        assert!(!f.ran_short(false, true), "outside an utterance never");
        assert!(!f.ran_full());
        assert!(f.flowing());
        assert!(f.ran_short(true, false));
        assert_eq!(f, Flow::Underrun);
        assert!(!f.ran_short(true, false), "still dry: the same underrun");
        assert!(!f.ran_short(false, false));
        assert_eq!(f, Flow::Underrun, "stays open past the utterance");
        assert!(
            f.ran_short(true, true),
            "audio again, then short again: a new one"
        );
        assert!(f.ran_full(), "its end is due");
        assert!(!f.ran_full());
        assert!(!f.ran_short(false, true));
        assert_eq!(f, Flow::Dry);
    }
}
