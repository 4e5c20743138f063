/* spd_audioplay.so: a speech-dispatcher audio output plugin over libaudioplay, so that
 * speech-dispatcher (and Orca, which speaks through it) plays speech through audioplay with
 * `AudioOutputMethod "audioplay"` and no code change anywhere. Written from the plugin API
 * in speech-dispatcher's public header (spd_audio_plugin.h, LGPL-2.1, included as is);
 * nothing is taken from speech-dispatcher's own plugins.
 *
 * How speech-dispatcher 0.11 drives a plugin (its speak queue, src/common/speak_queue.c):
 * per message begin(track) once, feed_sync_overlap(track) per synthesized chunk (espeak-ng:
 * 300 ms chunks; the index marks between chunks are reported when a feed returns), end()
 * when the message is over, and stop() from another thread - again every 5 ms until the
 * playing thread has given up. set_volume() is never called by speech-dispatcher itself
 * (spd_audio_set_volume only stores AudioID.volume, always 85, "volume is controlled by the
 * synthesizer"), so the volume is read from AudioID.volume at begin().
 *
 * Behaviour:
 *   open(pars)            creates the audioplay player at once (22050 Hz mono S16 until the
 *                         first begin says otherwise), so a machine where audioplay cannot
 *                         play makes open fail and speech-dispatcher falls back to the next
 *                         method of a list (`AudioOutputMethod "audioplay,pulse"`). The
 *                         player follows the system default output (and its changes) unless
 *                         AudioPulseDevice names a sink (pars[3], "default" = follow).
 *   begin(track)          takes the track's rate and channels (an in-band format change,
 *                         the stream stays), clears a stop.
 *   feed_sync_overlap     queues the track and returns when it is all queued: at most the
 *                         queue (AUDIOPLAY_SPD_QUEUE_MS, default 100) is still to be heard, the
 *                         overlap in which speech-dispatcher reports the mark and feeds the
 *                         next chunk. Returns at once after a stop.
 *   feed_sync / play      as above, then waits until it has been heard (play = begin +
 *                         feed_sync + end, for modules that play audio themselves).
 *   end()                 waits until the last frame has been heard (not after a stop).
 *   stop()                barge-in: drops what is queued and fades out what is playing over
 *                         AUDIOPLAY_SPD_FADE_MS (default 10); feeds return at once until the
 *                         next begin. Repeated stops do nothing more.
 *   close()               lets a fade finish, destroys the player.
 *   set_volume(v)         v in -100..100: linear gain (v + 100) / 185, at most 1, so
 *                         speech-dispatcher's 85 plays bit-exact and -100 is silence.
 *   get_playcmd()         "applay" (plays a WAV file through audioplay).
 *
 * AUDIOPLAY_SPD_TRACE names a file to append open/begin/stop/end timings and the player's
 * starvation counts to (for tests). The plugin never writes to stdout or stderr (a module's
 * stdout is its protocol channel with the server).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <speech-dispatcher/spd_audio_plugin.h>

#include "audioplay.h"
#include "shim_util.h"

#define EXPORT __attribute__((visibility("default")))

typedef struct {
    AudioID id; /* first: speech-dispatcher hands the plugin back this AudioID pointer */
    ApPlayer *player;
    pthread_mutex_t lock; /* guards the format fields, the volume and the stop bookkeeping */
    uint32_t rate;
    uint32_t channels;
    int applied_volume;
    uint32_t fade_ms;
    /* Set by stop, cleared by begin: feeds return at once in between. Written under the
     * lock, read without it by waits on other threads (atomics). */
    int stopped;
    /* Bumped by every stop (under `lock`): a feed between writes gives up. */
    unsigned long stops;
    /* Frames were queued since the last flush (a repeated stop must not flush a fade). */
    int written;
    double stop_at_ms; /* when the latest flush was asked, until close waits for it */
} SpdAp;

static int log_level;

#define mono_ms shim_mono_ms
#define env_u32 shim_env_u32
#define trace(...) shim_trace("AUDIOPLAY_SPD_TRACE", __VA_ARGS__)

static float gain_of(int volume) {
    if (volume < -100) volume = -100;
    float g = (float)(volume + 100) / 185.0f;
    return g > 1.0f ? 1.0f : g;
}

static void apply_volume_locked(SpdAp *s) {
    if (s->id.volume == s->applied_volume) return;
    if (ap_set_volume(s->player, gain_of(s->id.volume), 10) == AP_OK)
        s->applied_volume = s->id.volume;
}

static AudioID *ap_open(void **pars) {
    SpdAp *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    /* pars: OSS device, ALSA device, NAS server, PulseAudio device, PulseAudio minimum
     * length, client (module) name, NULL - the same order from the server and from a
     * module. */
    const char *device = NULL, *client = NULL;
    if (pars) {
        /* Fixed slots, any of them NULL (both callers pass at least 9). */
        if (pars[3] && strcmp((const char *)pars[3], "default") != 0)
            device = (const char *)pars[3];
        client = (const char *)pars[5];
    }
    ApConfig cfg;
    ap_config_init(&cfg);
    cfg.input_format = AP_FORMAT_S16;
    cfg.input_rate = 22050;
    cfg.input_channels = 1;
    cfg.device_id = device;
    cfg.ring_capacity_ms = env_u32("AUDIOPLAY_SPD_QUEUE_MS", 100, 10, 60000);
    cfg.write_timeout_ms = 0; /* non-blocking: the feed loop retries (write_frames) */
    cfg.resample_quality = AP_QUALITY_HIGH;
    cfg.application_name = "speech-dispatcher";
    cfg.stream_name = client ? client : "speech";
    char reason[256] = "";
    ApStatus st = ap_create_ex(&cfg, &s->player, reason, sizeof reason);
    if (st != AP_OK) {
        trace("open failed %d %s: %s", (int)st, ap_strerror(st), reason);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->rate = 22050;
    s->channels = 1;
    s->applied_volume = 85;
    s->id.volume = 85;
    s->fade_ms = env_u32("AUDIOPLAY_SPD_FADE_MS", 10, 0, 1000);
    trace("open device=%s client=%s queue_ms=%u fade_ms=%u", device ? device : "(default)",
          client ? client : "", cfg.ring_capacity_ms, s->fade_ms);
    return &s->id;
}

static int track_ok(AudioTrack *t) {
    return (t->bits == 16 || t->bits == 8) && t->num_channels >= 1 && t->num_channels <= 32 &&
           t->sample_rate >= 1000 && t->sample_rate <= 384000 && t->num_samples >= 0;
}

static int ap_begin(AudioID *id, AudioTrack track) {
    if (!id) return -1;
    SpdAp *s = (SpdAp *)id;
    if (!track_ok(&track)) {
        trace("begin refused: %d bits x%d at %d Hz", track.bits, track.num_channels,
              track.sample_rate);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    int r = 0;
    __atomic_store_n(&s->stopped, 0, __ATOMIC_RELEASE);
    if ((uint32_t)track.sample_rate != s->rate || (uint32_t)track.num_channels != s->channels) {
        /* In band: what is still queued plays as it was; the stream is not recreated. */
        ApStatus st = ap_set_input_format(s->player, AP_FORMAT_S16, track.num_channels,
                                          track.sample_rate);
        if (st == AP_OK) {
            s->rate = track.sample_rate;
            s->channels = track.num_channels;
        } else {
            r = -1;
        }
    }
    apply_volume_locked(s);
    trace("begin %d Hz x%d %d bits: %d", track.sample_rate, track.num_channels, track.bits, r);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Queues `frames` S16 frames; 0 when all are queued or a stop dropped the rest. Each
 * ap_write is non-blocking and made under the lock with the stop check, and a stop bumps
 * `stops` and flushes under the same lock: a write lands wholly before a stop's flush (which
 * covers it) or sees the stop and writes nothing. (Checking outside the lock let a write
 * that began just after a stop queue audio past its flush, and flushing that again cut the
 * first flush's fade short: 2-4 ms from 0.9 to 0.1 instead of 9-10.) While the queue is
 * full the feed waits 5 ms between tries: a 100 ms queue refills in time. */
static int write_frames(SpdAp *s, unsigned long stops, const int16_t *data, size_t frames) {
    while (frames > 0) {
        pthread_mutex_lock(&s->lock);
        if (__atomic_load_n(&s->stops, __ATOMIC_ACQUIRE) != stops) {
            pthread_mutex_unlock(&s->lock);
            return 0; /* stopped: drop the rest, as asked */
        }
        size_t done = 0;
        ApStatus st = ap_write(s->player, data, frames, &done);
        pthread_mutex_unlock(&s->lock);
        if (st != AP_OK) return -1;
        data += done * s->channels;
        frames -= done;
        if (frames > 0 && done == 0) {
            struct timespec pause = {0, 5 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    return 0;
}

static int feed(SpdAp *s, AudioTrack *t) {
    pthread_mutex_lock(&s->lock);
    if (s->stopped) {
        pthread_mutex_unlock(&s->lock);
        return 0; /* stopped: drop it, as asked */
    }
    if ((uint32_t)t->sample_rate != s->rate || (uint32_t)t->num_channels != s->channels ||
        !track_ok(t)) {
        pthread_mutex_unlock(&s->lock);
        return -1; /* the API says feeds keep begin's format */
    }
    unsigned long stops = s->stops;
    s->written = 1;
    pthread_mutex_unlock(&s->lock);
    if (t->num_samples == 0) return 0;
    if (!t->samples) return -1;
    size_t frames = (size_t)t->num_samples;
    if (t->bits == 16) return write_frames(s, stops, t->samples, frames);
    /* 8 bits: unsigned, as speech-dispatcher's other plugins take it; widened in chunks. */
    const unsigned char *in = (const unsigned char *)t->samples;
    size_t ch = s->channels, total = frames * ch;
    int16_t buf[4096];
    size_t per = sizeof buf / sizeof buf[0] / ch * ch;
    for (size_t i = 0; i < total; i += per) {
        size_t n = total - i < per ? total - i : per;
        for (size_t k = 0; k < n; k++) buf[k] = (int16_t)((in[i + k] - 128) * 256);
        if (write_frames(s, stops, buf, n / ch) != 0) return -1;
    }
    return 0;
}

/* Waits until everything queued has been heard, or a stop. */
static int wait_heard(SpdAp *s) {
    for (;;) {
        if (__atomic_load_n(&s->stopped, __ATOMIC_ACQUIRE)) return 0;
        ApStatus st = ap_drain(s->player, 50);
        if (st == AP_OK) return 0;
        if (st != AP_ERR_TIMEOUT) return -1;
    }
}

static int ap_feed_sync_overlap(AudioID *id, AudioTrack track) {
    if (!id) return -1;
    return feed((SpdAp *)id, &track);
}

static int ap_feed_sync(AudioID *id, AudioTrack track) {
    if (!id) return -1;
    SpdAp *s = (SpdAp *)id;
    int r = feed(s, &track);
    return r ? r : wait_heard(s);
}

static void metrics_trace(SpdAp *s, const char *what, double t0, int r) {
    ApMetrics m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    ap_metrics(s->player, &m);
    trace("%s %.1f ms %d underruns=%llu late_callbacks=%llu server_underflows=%llu "
          "flushes_rewritten=%llu",
          what, mono_ms() - t0, r, (unsigned long long)m.underruns,
          (unsigned long long)m.late_callbacks, (unsigned long long)m.server_underflows,
          (unsigned long long)m.flushes_rewritten);
}

static int ap_end(AudioID *id) {
    if (!id) return -1;
    SpdAp *s = (SpdAp *)id;
    if (__atomic_load_n(&s->stopped, __ATOMIC_ACQUIRE)) {
        trace("end (stopped)");
        return 0;
    }
    double t0 = mono_ms();
    ap_end_utterance(s->player);
    int r = wait_heard(s);
    metrics_trace(s, "end", t0, r);
    return r;
}

static int ap_play(AudioID *id, AudioTrack track) {
    int r = ap_begin(id, track);
    if (r == 0) r = ap_feed_sync(id, track);
    if (r == 0) r = ap_end(id);
    return r;
}

static int ap_stop(AudioID *id) {
    if (!id) return -1;
    SpdAp *s = (SpdAp *)id;
    pthread_mutex_lock(&s->lock);
    __atomic_store_n(&s->stopped, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&s->stops, 1, __ATOMIC_ACQ_REL);
    int flush = s->written;
    s->written = 0;
    if (!flush) {
        pthread_mutex_unlock(&s->lock);
        return 0; /* a repeat: the fade is running, or nothing was playing */
    }
    s->stop_at_ms = mono_ms();
    uint64_t heard = 0;
    double latency = 0;
    /* Under the lock: no feed's write comes between the stop and its flush. ap_flush never
     * waits for a writer (and the feed's writes do not block), so this is short. */
    ApStatus st = ap_flush(s->player, s->fade_ms, &heard);
    pthread_mutex_unlock(&s->lock);
    ap_position(s->player, NULL, NULL, &latency);
    ApMetrics m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    ap_metrics(s->player, &m);
    trace("stop fade_ms=%u heard_frame=%llu rate=%u latency_ms=%.1f %d underruns=%llu "
          "late_callbacks=%llu server_underflows=%llu",
          s->fade_ms, (unsigned long long)heard, s->rate, latency, (int)st,
          (unsigned long long)m.underruns, (unsigned long long)m.late_callbacks,
          (unsigned long long)m.server_underflows);
    return st == AP_OK ? 0 : -1;
}

/* A fade a stop started is heard out before the player goes (destroying it mid-fade would
 * cut it: a click); bounded. */
static void wait_for_fade(SpdAp *s) {
    if (s->stop_at_ms <= 0) return;
    double deadline = s->stop_at_ms + s->fade_ms + 60.0;
    for (;;) {
        ApEvent e;
        size_t n = 0;
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        while (ap_poll_event(s->player, &e, &n) == AP_OK && n == 1) {
            if (e.kind == AP_EVENT_FLUSHED) return;
        }
        if (mono_ms() >= deadline) return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static int ap_close(AudioID *id) {
    if (!id) return -1;
    SpdAp *s = (SpdAp *)id;
    trace("close");
    wait_for_fade(s);
    ap_destroy(s->player);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return 0;
}

static int ap_set_volume_cb(AudioID *id, int volume) {
    if (!id || volume < -100 || volume > 100) return -1;
    SpdAp *s = (SpdAp *)id;
    pthread_mutex_lock(&s->lock);
    s->id.volume = volume;
    apply_volume_locked(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void ap_set_loglevel(int level) {
    log_level = level; /* nothing is logged: the library and plugin never print */
}

static char const *ap_get_playcmd(void) {
    return "applay";
}

static const spd_audio_plugin_t plugin = {
    .name = "audioplay",
    .open = ap_open,
    .play = ap_play,
    .stop = ap_stop,
    .close = ap_close,
    .set_volume = ap_set_volume_cb,
    .set_loglevel = ap_set_loglevel,
    .get_playcmd = ap_get_playcmd,
    .begin = ap_begin,
    .feed_sync = ap_feed_sync,
    .feed_sync_overlap = ap_feed_sync_overlap,
    .end = ap_end,
};

/* The one symbol speech-dispatcher looks up (SPD_AUDIO_PLUGIN_ENTRY_STR). */
EXPORT spd_audio_plugin_t const *spd_audio_plugin_get(void) {
    return &plugin;
}
