/* Shared by the examples: argument helpers and a metrics printout. */
#ifndef AUDIOPLAY_EXAMPLE_UTIL_H
#define AUDIOPLAY_EXAMPLE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audioplay.h"

/* Prints the library's log lines on stderr (they arrive on the service thread). */
static inline void example_log(void *user, ApLogLevel level, const char *message) {
    (void)user;
    static const char *names[] = {"?", "error", "warn", "info", "debug"};
    fprintf(stderr, "audioplay[%s]: %s\n", (level >= 1 && level <= 4) ? names[level] : "?", message);
}

static inline int example_fail(ApPlayer *player, const char *what, ApStatus status) {
    char detail[256] = "";
    if (player) ap_last_error(player, detail, sizeof detail);
    fprintf(stderr, "%s failed: %s (%d)%s%s\n", what, ap_strerror(status), (int)status,
            detail[0] ? ": " : "", detail);
    return 1;
}

static inline int example_print_metrics(ApPlayer *player) {
    ApMetrics m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    ApStatus st = ap_metrics(player, &m);
    if (st != AP_OK) return example_fail(player, "ap_metrics", st);
    printf("frames written %llu, played %llu, queued %llu, flushed %llu, dropped %llu\n",
           (unsigned long long)m.frames_written, (unsigned long long)m.frames_played,
           (unsigned long long)m.frames_queued, (unsigned long long)m.frames_flushed,
           (unsigned long long)m.frames_dropped);
    printf("underruns %llu, generation mismatches %llu, shape mismatches %llu\n",
           (unsigned long long)m.underruns, (unsigned long long)m.generation_mismatches,
           (unsigned long long)m.shape_mismatches);
    printf("stream %u Hz x %u ch (device %u Hz), content %u Hz, resampling %s\n", m.stream_rate,
           m.output_channels, m.device_rate, m.content_rate, m.needs_resample ? "on" : "off");
    printf("callback us p50 %.1f p95 %.1f p99 %.1f max %.1f; resample us p95 %.1f\n",
           m.callback_us_p50, m.callback_us_p95, m.callback_us_p99, m.callback_us_max,
           m.resample_us_p95);
    return 0;
}

/* Returns the value after flag `name` at argv[*i], advancing *i, or exits with usage. */
static inline const char *example_arg(int argc, char **argv, int *i, const char *usage) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n%s", argv[*i], usage);
        exit(2);
    }
    return argv[++*i];
}

#endif
