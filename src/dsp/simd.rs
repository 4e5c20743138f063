//! Runtime choice of the render kernels' instruction set (issue 5). The library is built for
//! baseline x86-64 (SSE2) so it loads on any machine; the hot loops (decode, channel map,
//! linear resampling) are also compiled for AVX2+FMA and picked when the CPU has them, which
//! halves their cost. Detection runs off the audio thread (`detect`, at player creation); the
//! callback only reads a flag.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

const UNKNOWN: u8 = 0;
const BASELINE: u8 = 1;
const AVX2: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Detects the CPU's features once. Call before the first callback (not on the audio thread:
/// the first detection runs `cpuid`).
pub fn detect() {
    if LEVEL.load(Relaxed) != UNKNOWN {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let level = if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::env::var_os("AUDIOPLAY_NO_SIMD").is_none()
    {
        AVX2
    } else {
        BASELINE
    };
    #[cfg(not(target_arch = "x86_64"))]
    let level = BASELINE;
    LEVEL.store(level, Relaxed);
}

/// AVX2 and FMA are there (and `detect` has run).
#[inline(always)]
pub fn avx2() -> bool {
    LEVEL.load(Relaxed) == AVX2
}

/// Defines `$name`, which runs `$body` compiled for AVX2+FMA when the CPU has them and for
/// the baseline otherwise. The body is the same code both times: LLVM vectorises it for each.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident$(<$($g:ident: $b:path),*>)?($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        #[inline]
        $vis fn $name$(<$($g: $b),*>)?($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn imp$(<$($g: $b),*>)?($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2$(<$($g: $b),*>)?($($a: $t),*) $(-> $r)? {
                imp($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::dsp::simd::avx2() {
                // SAFETY: `avx2()` is true only after `detect` found AVX2 and FMA on this CPU.
                return unsafe { avx2($($a),*) };
            }
            imp($($a),*)
        }
    };
}
pub(crate) use multiversion;
