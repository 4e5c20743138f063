/* Drives spd_audioplay.so the way speech-dispatcher's loader does (dlopen, the
 * spd_audio_plugin_get entry point) and checks its answers to bad calls, then plays through
 * the synchronous play() path that modules doing their own audio use: a 440 Hz tone of
 * 0.5 s as 16-bit samples, then the same as 8-bit (unsigned) samples, 300 ms apart. Prints
 * what it found, one check a line; exits 1 on the first wrong answer.
 *   api_check PLUGIN_PATH
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <speech-dispatcher/spd_audio_plugin.h>

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL %s\n", what);                                                       \
            return 1;                                                                        \
        }                                                                                    \
        printf("ok %s\n", what);                                                             \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    spd_audio_plugin_t const *(*get)(void) =
        (spd_audio_plugin_t const *(*)(void))dlsym(h, SPD_AUDIO_PLUGIN_ENTRY_STR);
    CHECK(get != NULL, "entry point");
    spd_audio_plugin_t const *p = get();
    CHECK(p && p->name && strcmp(p->name, "audioplay") == 0, "name audioplay");
    CHECK(p->open && p->play && p->stop && p->close && p->set_volume && p->set_loglevel &&
              p->get_playcmd && p->begin && p->feed_sync && p->feed_sync_overlap && p->end,
          "every entry point");
    AudioTrack none;
    memset(&none, 0, sizeof none);
    CHECK(p->stop(NULL) == -1 && p->close(NULL) == -1 && p->end(NULL) == -1 &&
              p->begin(NULL, none) == -1 && p->feed_sync(NULL, none) == -1 &&
              p->feed_sync_overlap(NULL, none) == -1 && p->play(NULL, none) == -1 &&
              p->set_volume(NULL, 0) == -1,
          "NULL id refused");
    p->set_loglevel(5);
    CHECK(strcmp(p->get_playcmd(), "applay") == 0, "playcmd applay");

    /* As speech-dispatcher's server passes them: OSS, ALSA, NAS, PulseAudio device, minimum
     * length, client name, then NULLs. */
    void *pars[9] = {"/dev/dsp", "default", NULL, "default", "100", "api_check", NULL};
    AudioID *id = p->open(pars);
    CHECK(id != NULL, "open");
    id->volume = 85; /* what spd_audio_set_volume stores */
    CHECK(p->set_volume(id, 101) == -1, "volume 101 refused");
    CHECK(p->stop(id) == 0, "stop with nothing playing");

    enum { RATE = 22050, N = RATE / 2 };
    short *s16 = malloc(N * sizeof *s16);
    unsigned char *u8 = malloc(N);
    for (int i = 0; i < N; i++) {
        double v = 0.5 * sin(2 * M_PI * 440.0 * i / RATE);
        s16[i] = (short)lrint(v * 32767);
        u8[i] = (unsigned char)lrint(128 + v * 127);
    }
    AudioTrack t = {.bits = 24, .num_channels = 1, .sample_rate = RATE, .num_samples = N,
                    .samples = s16};
    CHECK(p->begin(id, t) == -1, "24 bits refused");
    t.bits = 16;
    t.sample_rate = 5;
    CHECK(p->begin(id, t) == -1, "5 Hz refused");
    t.sample_rate = RATE;
    CHECK(p->begin(id, t) == 0, "begin 16 bits");
    AudioTrack other = t;
    other.sample_rate = 16000;
    CHECK(p->feed_sync_overlap(id, other) == -1, "a feed at another rate than begin's refused");
    CHECK(p->end(id) == 0, "end with nothing fed");
    CHECK(p->play(id, t) == 0, "play 16 bits");
    usleep(300000);
    AudioTrack t8 = {.bits = 8, .num_channels = 1, .sample_rate = RATE, .num_samples = N,
                     .samples = (short *)u8};
    CHECK(p->play(id, t8) == 0, "play 8 bits");
    CHECK(p->close(id) == 0, "close");
    free(s16);
    free(u8);
    return 0;
}
