//! Output devices: listing them and choosing one.

use std::ffi::CStr;
use std::os::raw::c_char;

use super::handle::{self, ApPlayer};
use super::metrics::{copy_str, AP_DEVICE_ID_LEN};
use super::status::ApStatus;
use super::{ffi_guard, try_mut};

/// One output device as `ap_list_devices` reports it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ApDeviceInfo {
    /// `sizeof(ApDeviceInfo)`, written by the library.
    pub struct_size: u32,
    /// Native sample rate and channel count.
    pub rate: u32,
    /// Channels the device plays natively.
    pub channels: u32,
    /// 1 for the system default output.
    pub is_default: u32,
    /// Pass to `ApConfig.device_id` or `ap_set_device`.
    pub id: [c_char; AP_DEVICE_ID_LEN],
    /// The device's name for people, NUL-terminated (truncated to fit).
    pub name: [c_char; AP_DEVICE_ID_LEN],
}

/// Lists the system's output devices into `out[0..capacity]`; `*count` receives how many
/// there are (call with `capacity` 0 to size the array). Opens its own connection to the
/// audio system. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_list_devices(
    out: *mut ApDeviceInfo,
    capacity: usize,
    count: *mut usize,
) -> ApStatus {
    ffi_guard!({
        let n = try_mut!(count);
        if out.is_null() && capacity > 0 {
            return ApStatus::AP_ERR_NULL;
        }
        let identity = crate::data::config::Identity::default().resolve();
        let (host, _) = match crate::control::device::system_host(&identity) {
            Ok(h) => h,
            Err(_) => return ApStatus::AP_ERR_NO_DEVICE,
        };
        let list = match crate::control::device::list_outputs(&host) {
            Ok(l) => l,
            Err(_) => return ApStatus::AP_ERR_DEVICE,
        };
        let default = crate::control::device::find_output(&host, None)
            .ok()
            .map(|(_, d)| d.id);
        for (i, d) in list.iter().take(capacity).enumerate() {
            let mut info = ApDeviceInfo {
                struct_size: std::mem::size_of::<ApDeviceInfo>() as u32,
                rate: d.rate,
                channels: d.channels as u32,
                is_default: (default.as_deref() == Some(d.id.as_str())) as u32,
                id: [0; AP_DEVICE_ID_LEN],
                name: [0; AP_DEVICE_ID_LEN],
            };
            copy_str(&d.id, &mut info.id);
            copy_str(&d.name, &mut info.name);
            // SAFETY: `out` has `capacity` writable elements (checked non-null above).
            unsafe { *out.add(i) = info };
        }
        *n = list.len();
        ApStatus::AP_OK
    })
}

/// Moves playback to device `id` (NULL = follow the system default) through the same
/// three-phase recreate as a device change: nothing queued is lost. Returns once the move is
/// requested (`AP_ERR_NO_DEVICE` if `id` is not present); `AP_EVENT_DEVICE_CHANGED` fires
/// when it is done. While the device is gone later, the player falls back to the default and
/// returns when it reappears. Thread-safe.
#[no_mangle]
pub extern "C" fn ap_set_device(player: *mut ApPlayer, id: *const c_char) -> ApStatus {
    ffi_guard!({
        let h = match handle::resolve(player) {
            Ok(h) => h,
            Err(s) => return s,
        };
        let id = if id.is_null() {
            None
        } else {
            // SAFETY: non-null; the contract requires a NUL-terminated string.
            match unsafe { CStr::from_ptr(id) }.to_str() {
                Ok(s) => Some(s),
                Err(_) => {
                    h.set_error("ap_set_device: id is not valid UTF-8");
                    return ApStatus::AP_ERR_INVALID_ARG;
                }
            }
        };
        match h.player.set_device(id) {
            Ok(()) => ApStatus::AP_OK,
            Err(e) => {
                h.set_error(format!("ap_set_device: {e}"));
                ApStatus::from(&e)
            }
        }
    })
}
