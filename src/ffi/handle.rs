//! Player handles: opaque tokens, never dereferenced. An `ApPlayer*` is a number the library
//! hands out once per process (a monotonically increasing id, shifted and tagged so it looks
//! like an aligned user-space pointer) and looks up in a registry; a stale or forged value is
//! simply not there (`AP_ERR_BAD_HANDLE`). Because ids are never reused, a destroyed handle
//! can never come back as another player's (a freed `Box`'s address could: issue 12), and
//! destroying a player while another thread is inside a call is safe.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::status::ApStatus;
use crate::player::Player;

/// An opaque player handle. The library never dereferences it.
pub struct ApPlayer {
    _opaque: [u8; 0],
}

pub(crate) struct Handle {
    pub player: Player,
    last_error: Mutex<String>,
}

impl Handle {
    pub fn set_error(&self, msg: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = msg.into();
    }
    /// Checks an output struct's `struct_size`, recording why it is wrong.
    pub fn struct_size_is<T>(&self, got: u32, call: &str) -> bool {
        let want = std::mem::size_of::<T>();
        if got as usize != want {
            self.set_error(format!("{call}: struct_size is {got}, expected {want}"));
        }
        got as usize == want
    }

    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Live handles by token. Calls clone the `Arc` out under this lock and release it at once,
/// so a call that blocks (ap_write) never holds it.
static LIVE: Mutex<BTreeMap<usize, Arc<Handle>>> = Mutex::new(BTreeMap::new());

/// The next id; ids start at 1 and are never handed out twice.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Tokens are `TAG | id << SHIFT`: 16-byte aligned, never NULL, and far from small integers
/// and typical heap addresses, so a forged or uninitialised value is unlikely to be live.
#[cfg(target_pointer_width = "64")]
const TAG: u64 = 0x0000_5a70_0000_0000;
#[cfg(target_pointer_width = "64")]
const MAX_ID: u64 = (1 << 36) - 1; // the id stays below the tag bits
#[cfg(not(target_pointer_width = "64"))]
const TAG: u64 = 0x4000_0000;
#[cfg(not(target_pointer_width = "64"))]
const MAX_ID: u64 = (1 << 26) - 1;
const SHIFT: u32 = 4;

fn live() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<Handle>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh token, or None once every id has been used (2^36 creates on 64-bit).
fn next_token() -> Option<usize> {
    let id = NEXT_ID
        .fetch_update(Relaxed, Relaxed, |id| (id <= MAX_ID).then_some(id + 1))
        .ok()?;
    Some((TAG | (id << SHIFT)) as usize)
}

/// Wraps a player in a C handle. Public (hidden) so Rust tests can drive the C ABI on a
/// virtual-device player; C callers use `ap_create`. Panics (caught by `ap_create` as
/// `AP_ERR_PANIC`) only if the process has used up every handle id.
#[doc(hidden)]
pub fn register(player: Player) -> *mut ApPlayer {
    try_register(player).expect("every player handle id has been used")
}

/// Wraps a player in a C handle; None (the player is closed and dropped) once the process
/// has used up every handle id.
pub(crate) fn try_register(player: Player) -> Option<*mut ApPlayer> {
    let token = next_token()?;
    let inner = Arc::new(Handle {
        player,
        last_error: Mutex::new(String::new()),
    });
    live().insert(token, inner);
    Some(token as *mut ApPlayer)
}

/// Resolves a C handle. NULL -> `AP_ERR_NULL`; unknown or destroyed -> `AP_ERR_BAD_HANDLE`.
/// The pointer is only compared, never dereferenced.
pub(crate) fn resolve(ptr: *const ApPlayer) -> Result<Arc<Handle>, ApStatus> {
    if ptr.is_null() {
        return Err(ApStatus::AP_ERR_NULL);
    }
    live()
        .get(&(ptr as usize))
        .cloned()
        .ok_or(ApStatus::AP_ERR_BAD_HANDLE)
}

/// Unregisters and closes a handle: from here on every call with it gives
/// `AP_ERR_BAD_HANDLE`. Other threads still inside a call keep their own reference and see
/// `AP_ERR_CLOSED`.
pub(crate) fn destroy(ptr: *mut ApPlayer) -> ApStatus {
    let removed = live().remove(&(ptr as usize));
    let Some(inner) = removed else {
        return ApStatus::AP_ERR_BAD_HANDLE;
    };
    inner.player.close();
    drop(inner);
    ApStatus::AP_OK
}
