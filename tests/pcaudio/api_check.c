/* The shim's answers to bad input, for tests/pcaudio_shim.rs. The API is declared here from
 * its documentation (no pcaudiolib header needed). Prints each error's code and message;
 * exits non-zero if a call that must fail succeeded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct audio_object;
struct audio_object *create_audio_device_object(const char *device, const char *app,
                                                const char *description);
int audio_object_open(struct audio_object *o, int format, uint32_t rate, uint8_t channels);
int audio_object_write(struct audio_object *o, const void *data, size_t bytes);
int audio_object_drain(struct audio_object *o);
int audio_object_flush(struct audio_object *o);
void audio_object_close(struct audio_object *o);
void audio_object_destroy(struct audio_object *o);
const char *audio_object_strerror(struct audio_object *o, int error);

/* pcaudiolib's format values: S16LE is 2, S24LE 14. */
#define FMT_S16LE 2
#define FMT_S24LE 14

static int bad = 0;

static void expect_error(struct audio_object *o, const char *what, int err) {
    printf("%s: %d: %s\n", what, err, audio_object_strerror(o, err));
    if (err == 0) bad = 1;
}

int main(void) {
    struct audio_object *o = create_audio_device_object(NULL, "api_check", "test");
    if (!o) return 1;
    expect_error(o, "S24LE", audio_object_open(o, FMT_S24LE, 22050, 1));
    expect_error(o, "0 channels", audio_object_open(o, FMT_S16LE, 22050, 0));
    short pcm[4] = {0};
    expect_error(o, "write unopened", audio_object_write(o, pcm, sizeof pcm));
    /* No server reachable here: either the rate or the missing server is refused. The rate
     * is checked first by audioplay. */
    expect_error(o, "rate 5", audio_object_open(o, FMT_S16LE, 5, 1));
    expect_error(NULL, "NULL object", audio_object_open(NULL, FMT_S16LE, 22050, 1));
    if (audio_object_drain(o) != 0 || audio_object_flush(o) != 0) bad = 1; /* not open: no-ops */
    audio_object_close(o);
    audio_object_close(NULL);
    audio_object_destroy(o);
    audio_object_destroy(NULL);
    return bad;
}
