/* espeak_say: a real TTS engine (espeak-ng) speaking through audioplay.
 *
 *   espeak_say "Text to speak."     (press Enter while it speaks to interrupt: barge-in)
 *
 * espeak-ng's synthesis callback hands over int16 chunks at 22050 Hz; they are written to
 * the player as they come, with a marker at each word's first sample. Each word is printed
 * when the listener hears it (the marker event), so the words appear in spoken order and in
 * time with the speech.
 */
#include <espeak-ng/speak_lib.h>
#include <pthread.h>
#include <stdint.h>

#include "example_util.h"

#define MAX_WORDS 4096

static ApPlayer *player;
static const char *text;
static int sample_rate;
static uint64_t samples_written; /* samples of this synthesis handed to the player */
static struct { int pos, len; } words[MAX_WORDS];
static int n_words;
static volatile int interrupted;

static void write_all(const short *wav, size_t n) {
    while (n > 0 && !interrupted) {
        size_t done = 0;
        ApStatus st = ap_write(player, wav, n, &done);
        if (st != AP_OK) {
            example_fail(player, "ap_write", st);
            exit(1);
        }
        wav += done;
        n -= done;
        samples_written += done;
    }
}

/* espeak-ng's synthesis callback: audio chunks with the events that fall inside them. */
static int on_synth(short *wav, int numsamples, espeak_EVENT *events) {
    int used = 0;
    for (espeak_EVENT *e = events; e && e->type != espeakEVENT_LIST_TERMINATED; e++) {
        if (e->type != espeakEVENT_WORD || n_words >= MAX_WORDS) continue;
        /* Write up to the word's first sample, then mark it. */
        int64_t at = (int64_t)e->audio_position * sample_rate / 1000 - (int64_t)samples_written;
        if (at > numsamples) at = numsamples;
        if (at > used) {
            write_all(wav + used, (size_t)(at - used));
            used = (int)at;
        }
        words[n_words].pos = e->text_position - 1; /* 1-based in espeak-ng */
        words[n_words].len = e->length;
        ap_mark(player, (uint64_t)n_words);
        n_words++;
    }
    if (wav && numsamples > used) write_all(wav + used, (size_t)(numsamples - used));
    return interrupted; /* non-zero stops synthesis */
}

/* Runs on the player's service thread when a marker's frame is heard. */
static void on_event(void *user, const ApEvent *e) {
    (void)user;
    if (e->kind == AP_EVENT_MARKER && e->id < (uint64_t)n_words) {
        printf("%.*s\n", words[e->id].len, text + words[e->id].pos);
        fflush(stdout);
    } else if (e->kind == AP_EVENT_FLUSHED) {
        printf("[interrupted]\n");
        fflush(stdout);
    }
}

/* Barge-in: a line on stdin interrupts. EOF (no terminal, as under ctest) does not. */
static void *watch_stdin(void *arg) {
    (void)arg;
    int c;
    while ((c = getchar()) != EOF) {
        if (c == '\n') {
            uint64_t heard = 0;
            interrupted = 1;
            ap_flush(player, 20, &heard);
            fprintf(stderr, "barge-in at content frame %llu\n", (unsigned long long)heard);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    text = argc > 1 ? argv[1] : "Hello. This is espeak, speaking through audioplay.";
    sample_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 100, NULL, 0);
    if (sample_rate <= 0) {
        fprintf(stderr, "espeak-ng failed to initialise\n");
        return 1;
    }
    espeak_SetVoiceByName("en");
    espeak_SetSynthCallback(on_synth);

    ApConfig cfg;
    ap_config_init(&cfg);
    cfg.input_format = AP_FORMAT_S16;
    cfg.input_channels = 1;
    cfg.input_rate = (uint32_t)sample_rate;
    cfg.start_threshold_ms = 100; /* a little pre-roll so the first chunks do not stutter */
    cfg.log_fn = example_log;
    cfg.log_level = AP_LOG_WARN;
    cfg.event_fn = on_event;
    ApStatus st = ap_create(&cfg, &player);
    if (st != AP_OK) return example_fail(NULL, "ap_create", st);

    pthread_t watcher;
    pthread_create(&watcher, NULL, watch_stdin, NULL);
    pthread_detach(watcher);

    espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_AUTO, NULL, NULL);
    st = ap_drain(player, 60000);
    if (st != AP_OK && !interrupted) return example_fail(player, "ap_drain", st);
    int rc = example_print_metrics(player);
    ap_destroy(player);
    espeak_Terminate();
    return rc;
}
