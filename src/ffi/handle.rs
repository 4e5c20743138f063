//! Player handles: magic-tagged (libimagequant style) and registered, so a stale or forged
//! pointer is rejected without being dereferenced, and destroying a player while another
//! thread is inside a call is safe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::status::ApStatus;
use crate::player::Player;

const MAGIC_LIVE: u64 = 0x6170_6c61_7931_2e30; // "aplay1.0"
const MAGIC_DEAD: u64 = 0xdead_dead_dead_dead;

/// An opaque player handle.
pub struct ApPlayer {
    magic: u64,
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

/// Addresses of live handles. Calls clone the `Arc` out under this lock and release it at
/// once, so a call that blocks (ap_write) never holds it.
static LIVE: Mutex<BTreeMap<usize, Arc<Handle>>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<Handle>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wraps a player in a C handle. Public (hidden) so Rust tests can drive the C ABI on a
/// virtual-device player; C callers use `ap_create`.
#[doc(hidden)]
pub fn register(player: Player) -> *mut ApPlayer {
    let inner = Arc::new(Handle {
        player,
        last_error: Mutex::new(String::new()),
    });
    let ptr = Box::into_raw(Box::new(ApPlayer { magic: MAGIC_LIVE }));
    live().insert(ptr as usize, inner);
    ptr
}

/// Resolves a C handle. NULL -> `AP_ERR_NULL`; unknown or destroyed -> `AP_ERR_BAD_HANDLE`.
pub(crate) fn resolve(ptr: *const ApPlayer) -> Result<Arc<Handle>, ApStatus> {
    if ptr.is_null() {
        return Err(ApStatus::AP_ERR_NULL);
    }
    let map = live();
    let Some(h) = map.get(&(ptr as usize)) else {
        return Err(ApStatus::AP_ERR_BAD_HANDLE);
    };
    // SAFETY: the address is registered, so it is a live Box<ApPlayer> (removed from the map
    // before it is freed, under this same lock).
    let magic = unsafe { (*ptr).magic };
    if magic != MAGIC_LIVE {
        return Err(ApStatus::AP_ERR_BAD_HANDLE);
    }
    Ok(h.clone())
}

/// Unregisters, closes and frees a handle. Other threads still inside a call keep their own
/// reference and see `AP_ERR_CLOSED`.
pub(crate) fn destroy(ptr: *mut ApPlayer) -> ApStatus {
    let Some(inner) = live().remove(&(ptr as usize)) else {
        return ApStatus::AP_ERR_BAD_HANDLE;
    };
    // SAFETY: it was registered, so it came from Box::into_raw in `register` and nobody else
    // frees it (it is no longer registered).
    let mut boxed = unsafe { Box::from_raw(ptr) };
    boxed.magic = MAGIC_DEAD;
    inner.player.close();
    drop(boxed);
    ApStatus::AP_OK
}
