//! Buffers the audio thread uses are touched when they are made, off the audio thread.
//!
//! Zeroed allocations of more than a few pages come from mmap and are mapped lazily: the
//! first write to each page is a page fault (microseconds, sometimes tens). Left alone, the
//! callback would take those faults the first time it fills a scratch buffer or pushes into a
//! new part of a queue.

/// Writes every page of `v` once (with its own value: contents are unchanged).
pub fn touch<T: Copy>(v: &mut [T]) {
    let step = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..v.len()).step_by(step) {
        let p: *mut T = &mut v[i];
        // SAFETY: `p` comes from a live `&mut T` into `v`; a volatile write of the value just
        // read keeps the compiler from eliding the store (it knows calloc memory is zero).
        unsafe { std::ptr::write_volatile(p, std::ptr::read_volatile(p)) };
    }
}

/// `vec![T::default(); n]` with every page already mapped.
pub fn zeroed<T: Copy + Default>(n: usize) -> Vec<T> {
    let mut v = vec![T::default(); n];
    touch(&mut v);
    v
}

/// Runs every slot of a fresh queue through once (push then pop), so the producer never
/// touches an unmapped page of it. `fill` makes a value that needs no allocation.
pub fn cycle_queue<T>(
    tx: &mut rtrb::Producer<T>,
    rx: &mut rtrb::Consumer<T>,
    fill: impl Fn() -> T,
) {
    while tx.push(fill()).is_ok() {}
    while rx.pop().is_ok() {}
}
