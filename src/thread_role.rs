//! Layer 0: which of the library's threads the caller is on, checked in debug builds (as
//! cubeb-coreaudio asserts that a function runs on its serial queue). The audio callback,
//! the service thread and the event thread each take their role when they start; a function
//! that belongs to one thread asserts it, and what the callback must never do (lock the slot,
//! log, query a device, recreate) asserts that it is not on the audio thread. Release builds
//! compile all of it away. The role lives in a `const`-initialised thread-local `Cell`: no
//! allocation or destructor registration, so the callback may set it (SPEC C1).

/// The library's thread kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Any thread that is none of the others: the application's, a test's.
    Other,
    /// Inside the audio callback.
    Audio,
    /// The player's service thread (device watcher, recreates, idle, fallback, outages).
    Service,
    /// The player's event thread (event delivery to the application).
    Events,
}

#[cfg(debug_assertions)]
thread_local! {
    static ROLE: std::cell::Cell<Role> = const { std::cell::Cell::new(Role::Other) };
}

/// The role of the calling thread (always `Other` in release builds, where only the
/// debug-assertion macros below, compiled out there, would ask).
#[inline(always)]
#[cfg_attr(not(debug_assertions), allow(dead_code))]
pub fn current() -> Role {
    #[cfg(debug_assertions)]
    return ROLE.with(|r| r.get());
    #[cfg(not(debug_assertions))]
    Role::Other
}

/// Takes `role` for the calling thread until the guard drops, which restores the previous
/// one (a test thread that drives a virtual device's callback is `Audio` only inside it).
#[inline(always)]
pub fn enter(role: Role) -> Guard {
    #[cfg(debug_assertions)]
    return Guard(ROLE.with(|r| r.replace(role)));
    #[cfg(not(debug_assertions))]
    {
        let _ = role;
        Guard(Role::Other)
    }
}

/// Restores the previous role when dropped.
pub struct Guard(#[allow(dead_code)] Role);

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        ROLE.with(|r| r.set(self.0));
    }
}

/// Debug builds: panics unless the calling thread has one of the given roles.
macro_rules! debug_assert_role {
    ($($role:ident)|+) => {
        #[cfg(debug_assertions)]
        {
            use $crate::thread_role::Role::*;
            let role = $crate::thread_role::current();
            assert!(
                matches!(role, $($role)|+),
                "{} ran on a thread with role {:?}, expected {}",
                module_path!(),
                role,
                stringify!($($role)|+)
            );
        }
    };
}

/// Debug builds: panics if called from inside the audio callback.
macro_rules! debug_assert_not_audio {
    () => {
        #[cfg(debug_assertions)]
        {
            let role = $crate::thread_role::current();
            assert!(
                role != $crate::thread_role::Role::Audio,
                "{} ran on the audio thread (SPEC C1-C4)",
                module_path!()
            );
        }
    };
}

pub(crate) use debug_assert_not_audio;
pub(crate) use debug_assert_role;

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    fn service_only() {
        debug_assert_role!(Service);
    }

    fn never_on_audio() {
        debug_assert_not_audio!();
    }

    #[test]
    fn roles_are_checked_and_restored() {
        assert_eq!(current(), Role::Other);
        never_on_audio();
        assert!(std::panic::catch_unwind(service_only).is_err());
        {
            let _audio = enter(Role::Audio);
            assert_eq!(current(), Role::Audio);
            assert!(std::panic::catch_unwind(never_on_audio).is_err());
            {
                let _service = enter(Role::Service);
                service_only();
            }
            assert_eq!(current(), Role::Audio);
        }
        assert_eq!(current(), Role::Other);
    }
}
