//! Fixed-point phase arithmetic shared by the linear and polyphase resamplers.

/// Moves a phase numerator `acc` (in `0..modulus`) on by `frac` without dividing; returns
/// the carry (1 when it wrapped into the next whole frame), to add to the integer step.
#[inline(always)]
pub(crate) fn advance_phase(acc: &mut u64, frac: u64, modulus: u64) -> u64 {
    *acc += frac;
    let carry = (*acc >= modulus) as u64;
    *acc -= carry * modulus;
    carry
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
