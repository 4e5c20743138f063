/* What the drop-in shims over audioplay (bindings/pcaudio, bindings/speechd) share: a
 * monotonic clock in ms, an optional trace file named by an environment variable (the shims
 * never write to stdout or stderr, so tests read this instead), and bounded numeric
 * tunables from the environment. Header-only: each shim is one translation unit. */
#ifndef AUDIOPLAY_SHIM_UTIL_H
#define AUDIOPLAY_SHIM_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double shim_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Appends "<ms> <message>\n" to the file `env_var` names; nothing when it is unset. */
__attribute__((format(printf, 2, 3)))
static void shim_trace(const char *env_var, const char *fmt, ...) {
    const char *path = getenv(env_var);
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "%.3f ", shim_mono_ms());
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
    fclose(f);
}

/* `name` as a number in lo..=hi, else `dflt` (unset, empty, not a number, out of range). */
static uint32_t shim_env_u32(const char *name, uint32_t dflt, uint32_t lo, uint32_t hi) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n < lo || n > hi) return dflt;
    return (uint32_t)n;
}

#endif
