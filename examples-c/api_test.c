/* api_test: the C API from C, bad input first, then a normal flow, then abuse: NULLs, bad
 * enums, wrong struct sizes, stale handles, NaN samples, huge counts. Exits 0 when every
 * call returned the documented status. Run under valgrind and the sanitizers by
 * scripts/reliability.sh; a ctest like every example. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "example_util.h"

static int failures;

#define EXPECT(call, want)                                                                  \
    do {                                                                                    \
        ApStatus got_ = (call);                                                             \
        if (got_ != (want)) {                                                               \
            fprintf(stderr, "%s:%d: %s returned %d (%s), want %d\n", __FILE__, __LINE__,    \
                    #call, (int)got_, ap_strerror(got_), (int)(want));                      \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

int main(void) {
    ApConfig cfg;
    ApPlayer *p = NULL;
    size_t n = 0;
    EXPECT(ap_config_init(NULL), AP_ERR_NULL);
    EXPECT(ap_config_init(&cfg), AP_OK);
    EXPECT(ap_create(NULL, &p), AP_ERR_NULL);
    EXPECT(ap_create(&cfg, NULL), AP_ERR_NULL);
    cfg.struct_size = 0;
    EXPECT(ap_create(&cfg, &p), AP_ERR_STRUCT_SIZE);
    ap_config_init(&cfg);
    cfg.input_format = 42;
    EXPECT(ap_create(&cfg, &p), AP_ERR_INVALID_ARG);
    ap_config_init(&cfg);
    cfg.input_channels = 1000;
    EXPECT(ap_create(&cfg, &p), AP_ERR_INVALID_ARG);
    {
        /* ap_create_ex says why, with no log callback. */
        char why[128];
        EXPECT(ap_create_ex(&cfg, &p, why, sizeof why), AP_ERR_INVALID_ARG);
        if (strstr(why, "input_channels") == NULL) {
            fprintf(stderr, "ap_create_ex reason lacks the field: \"%s\"\n", why);
            failures++;
        }
    }
    if (p != NULL) failures++; /* outputs only on success */

    ap_config_init(&cfg);
    cfg.input_format = AP_FORMAT_F32;
    cfg.input_rate = 24000;
    EXPECT(ap_create(&cfg, &p), AP_OK);
    float tone[4800];
    for (int i = 0; i < 4800; i++) tone[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * i / 24000.0f);
    tone[100] = NAN;
    tone[101] = INFINITY; /* sanitised, never reach the device */
    EXPECT(ap_write(p, tone, 4800, &n), AP_OK);
    EXPECT(ap_write(p, NULL, 10, &n), AP_ERR_NULL);
    EXPECT(ap_write(p, tone, 10, NULL), AP_ERR_NULL);
    EXPECT(ap_write(p, tone, SIZE_MAX, &n), AP_ERR_INVALID_ARG);
    EXPECT(ap_mark(p, 1), AP_OK);
    EXPECT(ap_set_volume(p, NAN, 0), AP_ERR_INVALID_ARG);
    EXPECT(ap_set_input_format(p, 9, 1, 16000), AP_ERR_INVALID_ARG);
    EXPECT(ap_drain(p, 5000), AP_OK);
    ApMetrics m;
    memset(&m, 0, sizeof m);
    EXPECT(ap_metrics(p, &m), AP_ERR_STRUCT_SIZE);
    m.struct_size = sizeof m;
    EXPECT(ap_metrics(p, &m), AP_OK);
    if (m.frames_played != 4800 || m.underruns != 0) {
        fprintf(stderr, "played %llu, underruns %llu\n", (unsigned long long)m.frames_played,
                (unsigned long long)m.underruns);
        failures++;
    }
    ApEvent e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    /* The marker sits at the very end: its event may arrive a few ms after the drain. */
    int markers = 0;
    for (int tries = 0; tries < 500 && markers == 0; tries++) {
        EXPECT(ap_poll_event(p, &e, &n), AP_OK);
        markers += n == 1 && e.kind == AP_EVENT_MARKER;
        if (n == 0) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (markers != 1) {
        fprintf(stderr, "%d marker events\n", markers);
        failures++;
    }
    EXPECT(ap_write(p, tone, 4800, &n), AP_OK);
    uint64_t heard = 0;
    EXPECT(ap_flush(p, 5, &heard), AP_OK);
    char buf[8];
    EXPECT(ap_last_error(p, buf, 0), AP_ERR_BUFFER_TOO_SMALL);
    EXPECT(ap_last_error(p, buf, sizeof buf), AP_OK);
    EXPECT(ap_destroy(p), AP_OK);
    /* The handle is stale now: detected, not dereferenced. */
    EXPECT(ap_write(p, tone, 1, &n), AP_ERR_BAD_HANDLE);
    EXPECT(ap_destroy(p), AP_ERR_BAD_HANDLE);
    EXPECT(ap_destroy(NULL), AP_OK);
    if (strcmp(ap_version(), AP_VERSION_STRING) != 0) {
        fprintf(stderr, "library %s, header %s\n", ap_version(), AP_VERSION_STRING);
        failures++;
    }
    printf("%s: %d failures\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
