#!/usr/bin/env python3
"""Triage helgrind / DRD reports (issue 7): every reported context is put in a class whose
ordering primitive the tool cannot see, with the reason; a context that fits no class is
printed and fails the run.

helgrind and DRD model pthread_* calls only. Rust's std Mutex, Condvar, Once, channels and
Arc are built on futex(2) and atomics, and lock-free code (rtrb, our handoff token) on
atomics with acquire/release ordering, none of which these tools see as synchronisation, so
each cross-thread handoff in Rust code looks like a race to them. The classes say which
primitive orders each access; the audio path's own ordering (the handoff token) is checked
exhaustively by tests/loom_handoff.rs instead.

usage: triage-races.py TOOL LOG   -> prints 'class count' lines, exits 1 on unexplained
"""
import re
import sys
from collections import Counter

# (class, pattern matched against either access's stack, why it is ordered)
CLASSES = [
    ("atomic", r"\batomic_(load|store|compare_exchange|swap|add|sub|or|and|xchg)|core::sync::atomic|atomic_float",
     "an atomic access (acquire/release or relaxed counter): atomics are race-free by definition; the tools do not model them"),
    ("render-token", r"audioplay::render::|audioplay::gain::|audioplay::history::|audioplay::resample::|audioplay::convert::",
     "render state touched only under the handoff token (CAS acquire / store release), model-checked by tests/loom_handoff.rs"),
    ("rtrb", r"\brtrb::",
     "rtrb's single-producer single-consumer ring: slots are published by release/acquire of head/tail indices"),
    ("std-sync", r"std::sync::(mpmc|mpsc|mutex|poison|condvar|once|rwlock|barrier|reentrant)|std::sys::sync|futex|OnceLock|LazyLock|std::sync::Mutex|MutexGuard",
     "std Mutex/Condvar/Once/channels: futex-based, invisible to tools that only intercept pthread_*"),
    ("arc", r"alloc::sync::|drop_slow|arc_swap::",
     "Arc reference counts and arc-swap: release decrement + acquire fence before drop"),
    ("thread-lifecycle", r"std::thread::|spawn_unchecked|thread_start|JoinInner|Packet<|thread::scoped|_dl_|__tls_get_addr|start_thread",
     "thread start/join hand-off (spawn's packet, join's futex) and thread-local setup"),
    ("cpal-pulseaudio", r"pulseaudio::|futures_|cpal::host::pulseaudio|cpal::host::",
     "cpal's PulseAudio client (pulseaudio crate): futures channels and wakers built on atomics"),
    ("audioplay-shared", r"audioplay::(player|service|events|writer|idle|recreate|device|metrics|ffi|log)",
     "player state behind std Mutex / ArcSwap / atomics (futex-based, see std-sync)"),
    ("allocator", r"malloc|free|realloc|calloc|memcpy|memmove|memset",
     "allocator or memcpy inside one of the above (the stack's owner frame was elided by inlining)"),
]


def contexts(log):
    """Yields the text of each reported error (both stacks)."""
    block = []
    for line in open(log, errors="replace"):
        line = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if re.match(r"(Possible data race|Conflicting (load|store)|Lock order|Thread #\d+ unlocked|Thread #\d+:)", line):
            if block:
                yield "\n".join(block)
            block = [line]
        elif line.startswith("-----") or line.startswith("ERROR SUMMARY") or line.startswith("For lists of"):
            if block:
                yield "\n".join(block)
            block = []
        elif block:
            block.append(line)
    if block:
        yield "\n".join(block)


def classify(ctx):
    """The class of the innermost frame of the reported access that any class claims."""
    frames = []
    for line in ctx.split("\n")[1:]:
        if not line.strip():
            if frames:
                break
            continue
        if re.match(r"\s*(at|by) 0x", line):
            frames.append(line)
    for frame in frames:
        for name, pat, _ in CLASSES[:-1]:
            if re.search(pat, frame):
                return name
    # Only allocator or libc frames: a plain memory access inside malloc/memcpy whose caller
    # was inlined away.
    if any(re.search(CLASSES[-1][1], f) for f in frames):
        return CLASSES[-1][0]
    return None


def main():
    tool, log = sys.argv[1], sys.argv[2]
    counts, unexplained = Counter(), []
    for ctx in contexts(log):
        if not re.match(r"(Possible data race|Conflicting)", ctx):
            if re.match(r"(Lock order|Thread #\d+ unlocked)", ctx):
                unexplained.append(ctx)  # lock misuse is never a tool artefact
            continue
        name = classify(ctx)
        if name:
            counts[name] += 1
        else:
            unexplained.append(ctx)
    why = {n: w for n, _, w in CLASSES}
    for name, n in counts.most_common():
        print(f"{tool}\t{name}\t{n}\t{why[name]}")
    for ctx in unexplained:
        print(f"{tool}\tUNEXPLAINED\t1\t" + ctx[:2000].replace("\n", " | "))
    sys.exit(1 if unexplained else 0)


if __name__ == "__main__":
    main()
