/* A small libespeak-ng program in playback mode (ENOUTPUT_MODE_SPEAK_AUDIO: espeak-ng plays
 * through pcaudiolib itself, on its own threads), for tests/pcaudio_shim.rs:
 *
 *   espeak_events TEXT                speaks TEXT, waits until it has been played
 *   espeak_events TEXT CANCEL_MS      cancels (espeak_Cancel) CANCEL_MS after it started
 *
 * Prints, with CLOCK_MONOTONIC times in ms:
 *   START t                  just before espeak_Synthesize
 *   WORD t audio_position    each word event as espeak-ng delivers it (audio_position: ms of
 *                            the utterance's audio before the word)
 *   CANCEL t_call t_return   around espeak_Cancel
 *   END t
 * Which libpcaudio it plays through is up to the dynamic linker (LD_LIBRARY_PATH).
 */
#include <espeak-ng/speak_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int on_events(short *wav, int n, espeak_EVENT *e) {
    (void)wav;
    (void)n;
    double now = mono_ms();
    for (; e && e->type != espeakEVENT_LIST_TERMINATED; e++) {
        if (e->type == espeakEVENT_WORD) printf("WORD %.3f %d\n", now, e->audio_position);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: espeak_events TEXT [CANCEL_MS]\n");
        return 2;
    }
    const char *text = argv[1];
    int cancel_ms = argc > 2 ? atoi(argv[2]) : -1;
    if (espeak_Initialize(AUDIO_OUTPUT_PLAYBACK, 0, NULL, 0) <= 0) {
        fprintf(stderr, "espeak_Initialize failed\n");
        return 1;
    }
    espeak_SetSynthCallback(on_events);
    printf("START %.3f\n", mono_ms());
    fflush(stdout);
    if (espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_AUTO, NULL,
                     NULL) != EE_OK) {
        fprintf(stderr, "espeak_Synth failed\n");
        return 1;
    }
    if (cancel_ms >= 0) {
        usleep((useconds_t)cancel_ms * 1000);
        double t_call = mono_ms();
        espeak_Cancel();
        double t_ret = mono_ms();
        printf("CANCEL %.3f %.3f\n", t_call, t_ret);
        fflush(stdout);
        usleep(300 * 1000);
    } else {
        espeak_Synchronize();
    }
    printf("END %.3f\n", mono_ms());
    fflush(stdout);
    espeak_Terminate();
    return 0;
}
