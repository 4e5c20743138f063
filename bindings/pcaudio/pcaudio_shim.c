/* libpcaudio.so.0 over audioplay: the small audio-object API that espeak-ng (and anything
 * else built on pcaudiolib) plays through, implemented from its documented behaviour on
 * top of libaudioplay. Written from scratch (pcaudiolib is GPL-3; nothing is taken from it).
 *
 * Behaviour:
 *   create_*_object(device, app, description)  no I/O; device NULL = the system default
 *                                               (followed across default changes).
 *   audio_object_open(fmt, rate, channels)      creates the audioplay player; S16 and
 *                                               FLOAT32 in native byte order; anything else
 *                                               is refused (audio_object_strerror says why).
 *                                               Reopening an open object with another format
 *                                               is an in-band voice change.
 *   audio_object_write(data, bytes)             queues and returns; blocks only while the
 *                                               (shallow) queue is full. A flush from another
 *                                               thread makes it return at once.
 *   audio_object_drain()                        returns once the last frame has been heard.
 *   audio_object_flush()                        stops at once with a short fade (no click).
 *   audio_object_close() / _destroy()           discard what is queued / free the object.
 *
 * Tunables (environment, read at open): AUDIOPLAY_PCAUDIO_QUEUE_MS (queue depth, default
 * 60: espeak-ng fires its word events when a write returns, so this is how far ahead of the
 * listener they run), AUDIOPLAY_PCAUDIO_FADE_MS (flush fade, default 10),
 * AUDIOPLAY_PCAUDIO_TRACE (a file to append open/flush/drain timings to, for tests).
 * The library never writes to stdout or stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audioplay.h"
#include "shim_util.h"

#define EXPORT __attribute__((visibility("default")))

/* pcaudiolib's enum audio_object_format, in its declared order (values are the ABI). */
enum {
    PC_S8, PC_U8, PC_S16LE, PC_S16BE, PC_U16LE, PC_U16BE, PC_S18LE, PC_S18BE, PC_U18LE,
    PC_U18BE, PC_S20LE, PC_S20BE, PC_U20LE, PC_U20BE, PC_S24LE, PC_S24BE, PC_U24LE, PC_U24BE,
    PC_S24_32LE, PC_S24_32BE, PC_U24_32LE, PC_U24_32BE, PC_S32LE, PC_S32BE, PC_U32LE,
    PC_U32BE, PC_FLOAT32LE, PC_FLOAT32BE, PC_FLOAT64LE, PC_FLOAT64BE, PC_IEC958LE,
    PC_IEC958BE, PC_ALAW, PC_ULAW, PC_ADPCM, PC_MPEG, PC_GSM, PC_AC3
};

/* Our error codes (positive, so they never collide with audioplay's negative ApStatus,
 * which are returned as they are). */
enum {
    ERR_NULL_OBJECT = 0x5001,
    ERR_FORMAT = 0x5002,
    ERR_CHANNELS = 0x5003,
    ERR_NOT_OPEN = 0x5004,
    ERR_NOMEM = 0x5005
};

struct audio_object {
    char *device;
    char *app_name;
    char *description;
    pthread_mutex_t lock; /* guards player, format fields and the message */
    ApPlayer *player;
    ApFormat format;
    uint32_t rate;
    uint32_t channels;
    size_t frame_bytes;
    unsigned char carry[128]; /* a partial frame left by a write */
    size_t carry_len;
    volatile unsigned long flushes; /* bumped by every flush: a blocked write gives up */
    uint32_t fade_ms;
    double flush_pending_ms; /* when the latest flush (fading still) was asked, else 0 */
    int last_code;
    char message[512];
};

#define mono_ms shim_mono_ms
#define env_u32 shim_env_u32
#define trace(...) shim_trace("AUDIOPLAY_PCAUDIO_TRACE", __VA_ARGS__)

/* Records an error for audio_object_strerror and returns its code. Caller holds the lock. */
static int fail(struct audio_object *o, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof o->message, fmt, ap);
    va_end(ap);
    o->last_code = code;
    return code;
}

/* An audioplay failure on a live player: its own last error says what happened. */
static int fail_ap(struct audio_object *o, ApPlayer *p, const char *what, ApStatus st) {
    char detail[256] = "";
    if (p) ap_last_error(p, detail, sizeof detail);
    pthread_mutex_lock(&o->lock);
    int r = fail(o, st, "audioplay: %s: %s%s%s", what, ap_strerror(st), *detail ? ": " : "",
                 detail);
    pthread_mutex_unlock(&o->lock);
    return r;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static struct audio_object *make_object(const char *device, const char *app,
                                        const char *description) {
    struct audio_object *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->device = dup_or_null(device);
    o->app_name = dup_or_null(app);
    o->description = dup_or_null(description);
    if ((device && !o->device) || (app && !o->app_name) || (description && !o->description)) {
        free(o->device);
        free(o->app_name);
        free(o->description);
        free(o);
        return NULL;
    }
    pthread_mutex_init(&o->lock, NULL);
    return o;
}

EXPORT struct audio_object *create_audio_device_object(const char *device,
                                                       const char *application_name,
                                                       const char *description) {
    return make_object(device, application_name, description);
}

/* pcaudiolib also exports a constructor per backend; each gives the same audioplay object. */
EXPORT struct audio_object *create_pulseaudio_object(const char *device, const char *app,
                                                     const char *description) {
    return make_object(device, app, description);
}
EXPORT struct audio_object *create_alsa_object(const char *device, const char *app,
                                               const char *description) {
    return make_object(device, app, description);
}
EXPORT struct audio_object *create_oss_object(const char *device, const char *app,
                                              const char *description) {
    return make_object(device, app, description);
}
EXPORT struct audio_object *create_qsa_object(const char *device, const char *app,
                                              const char *description) {
    return make_object(device, app, description);
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static const char *format_name(int f) {
    static const char *names[] = {
        "S8", "U8", "S16LE", "S16BE", "U16LE", "U16BE", "S18LE", "S18BE", "U18LE", "U18BE",
        "S20LE", "S20BE", "U20LE", "U20BE", "S24LE", "S24BE", "U24LE", "U24BE", "S24_32LE",
        "S24_32BE", "U24_32LE", "U24_32BE", "S32LE", "S32BE", "U32LE", "U32BE", "FLOAT32LE",
        "FLOAT32BE", "FLOAT64LE", "FLOAT64BE", "IEC958LE", "IEC958BE", "ALAW", "ULAW",
        "ADPCM", "MPEG", "GSM", "AC3"};
    if (f >= 0 && f < (int)(sizeof names / sizeof names[0])) return names[f];
    return "unknown";
}

/* The audioplay format for a pcaudiolib one, or 0 if audioplay cannot take it. */
static ApFormat map_format(int f, size_t *sample_bytes) {
    int le = host_is_little_endian();
    if (f == (le ? PC_S16LE : PC_S16BE)) {
        *sample_bytes = 2;
        return AP_FORMAT_S16;
    }
    if (f == (le ? PC_FLOAT32LE : PC_FLOAT32BE)) {
        *sample_bytes = 4;
        return AP_FORMAT_F32;
    }
    return 0;
}

/* Waits (bounded) until a fade-out a flush started has been heard: espeak-ng closes right
 * after it flushes, and destroying the player mid-fade would cut it (a click). */
static void wait_for_fade(struct audio_object *o, ApPlayer *p) {
    if (o->flush_pending_ms <= 0) return;
    double deadline = o->flush_pending_ms + o->fade_ms + 60.0;
    o->flush_pending_ms = 0;
    for (;;) {
        ApEvent e;
        size_t n = 0;
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        while (ap_poll_event(p, &e, &n) == AP_OK && n == 1) {
            if (e.kind == AP_EVENT_FLUSHED) return;
        }
        if (mono_ms() >= deadline) return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void close_locked(struct audio_object *o) {
    if (o->player) {
        ApPlayer *p = o->player;
        o->player = NULL;
        o->flushes++;
        wait_for_fade(o, p);
        ApMetrics m;
        memset(&m, 0, sizeof m);
        m.struct_size = sizeof m;
        ap_metrics(p, &m);
        /* Whether a flush's fade went into what the server held (heard within the fade of
         * the call) or behind it (after the device latency). */
        trace("closed flushes_rewritten=%llu", (unsigned long long)m.flushes_rewritten);
        ap_destroy(p);
    }
    o->carry_len = 0;
}

EXPORT int audio_object_open(struct audio_object *o, int format, uint32_t rate,
                             uint8_t channels) {
    if (!o) return ERR_NULL_OBJECT;
    size_t sample_bytes = 0;
    ApFormat apf = map_format(format, &sample_bytes);
    pthread_mutex_lock(&o->lock);
    int r = 0;
    if (!apf) {
        r = fail(o, ERR_FORMAT,
                 "audioplay: sample format %s (%d) is not supported: audioplay takes %s and %s",
                 format_name(format), format, host_is_little_endian() ? "S16LE" : "S16BE",
                 host_is_little_endian() ? "FLOAT32LE" : "FLOAT32BE");
        goto out;
    }
    if (channels == 0 || channels > 32) {
        r = fail(o, ERR_CHANNELS, "audioplay: %u channels: 1 to 32 are supported",
                 (unsigned)channels);
        goto out;
    }
    if (o->player) {
        /* Already open: a voice change, in band (audio written before plays as it was). */
        if (apf != o->format || rate != o->rate || channels != o->channels) {
            ApStatus st = ap_set_input_format(o->player, apf, channels, rate);
            if (st != AP_OK) {
                char detail[256] = "";
                ap_last_error(o->player, detail, sizeof detail);
                r = fail(o, st, "audioplay: reopen as %s %u Hz x%u: %s: %s",
                         format_name(format), rate, (unsigned)channels, ap_strerror(st),
                         detail);
                goto out;
            }
        }
    } else {
        ApConfig cfg;
        ap_config_init(&cfg);
        cfg.input_format = apf;
        cfg.input_rate = rate;
        cfg.input_channels = channels;
        cfg.device_id = o->device; /* NULL: follow the default */
        cfg.ring_capacity_ms = env_u32("AUDIOPLAY_PCAUDIO_QUEUE_MS", 60, 10, 60000);
        cfg.write_timeout_ms = 200; /* the write loop below retries */
        cfg.resample_quality = AP_QUALITY_HIGH;
        cfg.application_name = o->app_name;
        cfg.stream_name = o->description;
        char reason[256] = "";
        ApPlayer *p = NULL;
        ApStatus st = ap_create_ex(&cfg, &p, reason, sizeof reason);
        if (st != AP_OK) {
            r = fail(o, st, "audioplay: cannot open %s at %u Hz x%u on %s: %s%s%s",
                     format_name(format), rate, (unsigned)channels,
                     o->device ? o->device : "the default output", ap_strerror(st),
                     *reason ? ": " : "", reason);
            goto out;
        }
        o->player = p;
        trace("open %s %u %u queue_ms=%u", format_name(format), rate, (unsigned)channels,
              cfg.ring_capacity_ms);
    }
    o->format = apf;
    o->rate = rate;
    o->channels = channels;
    o->frame_bytes = sample_bytes * channels;
    o->carry_len = 0;
    o->fade_ms = env_u32("AUDIOPLAY_PCAUDIO_FADE_MS", 10, 0, 1000);
out:
    pthread_mutex_unlock(&o->lock);
    return r;
}

EXPORT void audio_object_close(struct audio_object *o) {
    if (!o) return;
    trace("close");
    pthread_mutex_lock(&o->lock);
    close_locked(o);
    pthread_mutex_unlock(&o->lock);
}

EXPORT void audio_object_destroy(struct audio_object *o) {
    if (!o) return;
    trace("destroy");
    audio_object_close(o);
    pthread_mutex_destroy(&o->lock);
    free(o->device);
    free(o->app_name);
    free(o->description);
    free(o);
}

/* Queues `frames` whole frames; gives up (returning 0) if a flush comes meanwhile. */
static int write_frames(struct audio_object *o, ApPlayer *p, unsigned long flushes,
                        const unsigned char *data, size_t frames, size_t frame_bytes) {
    while (frames > 0) {
        if (o->flushes != flushes) return 0; /* flushed: drop the rest, as asked */
        size_t done = 0;
        ApStatus st = ap_write(p, data, frames, &done);
        if (st == AP_ERR_CLOSED || st == AP_ERR_BAD_HANDLE) return 0; /* closed meanwhile */
        if (st != AP_OK) return fail_ap(o, p, "write", st);
        data += done * frame_bytes;
        frames -= done;
    }
    return 0;
}

EXPORT int audio_object_write(struct audio_object *o, const void *data, size_t bytes) {
    if (!o) return ERR_NULL_OBJECT;
    if (bytes == 0) return 0;
    if (!data) {
        pthread_mutex_lock(&o->lock);
        int r = fail(o, ERR_NULL_OBJECT, "audioplay: write of %zu bytes from NULL", bytes);
        pthread_mutex_unlock(&o->lock);
        return r;
    }
    pthread_mutex_lock(&o->lock);
    ApPlayer *p = o->player;
    if (!p) {
        int r = fail(o, ERR_NOT_OPEN, "audioplay: write before audio_object_open");
        pthread_mutex_unlock(&o->lock);
        return r;
    }
    size_t fb = o->frame_bytes;
    unsigned long flushes = o->flushes;
    const unsigned char *in = data;
    /* A frame split across writes: complete it first. */
    unsigned char whole[128];
    int have_whole = 0;
    if (o->carry_len) {
        size_t need = fb - o->carry_len;
        size_t take = bytes < need ? bytes : need;
        memcpy(o->carry + o->carry_len, in, take);
        o->carry_len += take;
        in += take;
        bytes -= take;
        if (o->carry_len == fb) {
            memcpy(whole, o->carry, fb);
            o->carry_len = 0;
            have_whole = 1;
        }
    }
    size_t frames = bytes / fb;
    size_t rest = bytes - frames * fb;
    memcpy(o->carry + o->carry_len, in + frames * fb, rest);
    o->carry_len += rest;
    pthread_mutex_unlock(&o->lock);
    /* The player is used without the lock (its calls are thread-safe, and a handle that was
     * closed meanwhile answers AP_ERR_BAD_HANDLE), so a flush never waits for a write. */
    int r = 0;
    if (have_whole) r = write_frames(o, p, flushes, whole, 1, fb);
    if (r == 0) r = write_frames(o, p, flushes, in, frames, fb);
    return r;
}

EXPORT int audio_object_drain(struct audio_object *o) {
    if (!o) return ERR_NULL_OBJECT;
    pthread_mutex_lock(&o->lock);
    ApPlayer *p = o->player;
    pthread_mutex_unlock(&o->lock);
    if (!p) return 0; /* nothing open: nothing to hear */
    ap_end_utterance(p);
    double t0 = mono_ms();
    ApStatus st;
    /* Until the last frame has been heard; a stall is reported by audioplay itself
     * (AP_ERR_NO_OUTPUT after its device_lost_timeout_ms). */
    while ((st = ap_drain(p, 10000)) == AP_ERR_TIMEOUT) {
    }
    ApMetrics m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    ap_metrics(p, &m);
    trace("drain %.1f ms %d underruns=%llu late_callbacks=%llu server_underflows=%llu", mono_ms() - t0,
          (int)st, (unsigned long long)m.underruns, (unsigned long long)m.late_callbacks,
          (unsigned long long)m.server_underflows);
    if (st == AP_OK || st == AP_ERR_CLOSED || st == AP_ERR_BAD_HANDLE) return 0;
    return fail_ap(o, p, "drain", st);
}

EXPORT int audio_object_flush(struct audio_object *o) {
    if (!o) return ERR_NULL_OBJECT;
    pthread_mutex_lock(&o->lock);
    ApPlayer *p = o->player;
    uint32_t fade = o->fade_ms;
    o->flushes++;
    o->carry_len = 0;
    if (p) o->flush_pending_ms = mono_ms();
    pthread_mutex_unlock(&o->lock);
    if (!p) return 0;
    uint64_t heard = 0;
    double latency = 0;
    ApStatus st = ap_flush(p, fade, &heard);
    ap_position(p, NULL, NULL, &latency);
    trace("flush fade_ms=%u heard_frame=%llu latency_ms=%.1f %d", fade,
          (unsigned long long)heard, latency, (int)st);
    if (st == AP_OK || st == AP_ERR_BAD_HANDLE) return 0;
    return fail_ap(o, p, "flush", st);
}

EXPORT const char *audio_object_strerror(struct audio_object *o, int error) {
    switch (error) {
    case 0: return "no error";
    case ERR_NULL_OBJECT: if (!o) return "audioplay: no audio object (NULL)"; break;
    case ERR_NOMEM: return "audioplay: out of memory";
    default: break;
    }
    if (o) {
        /* The detailed message of the latest error with this code. */
        if (o->last_code == error && o->message[0]) return o->message;
    }
    switch (error) {
    case ERR_NULL_OBJECT: return "audioplay: NULL argument";
    case ERR_FORMAT: return "audioplay: sample format not supported (S16 and FLOAT32 only)";
    case ERR_CHANNELS: return "audioplay: channel count not supported (1 to 32)";
    case ERR_NOT_OPEN: return "audioplay: the audio object is not open";
    default: break;
    }
    if (error < 0) return ap_strerror(error);
    return strerror(error);
}

/* pcaudiolib exports its backends' entry points too; here they are the same functions. */
#define ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target)))
ALIAS(pulseaudio_object_open, audio_object_open);
ALIAS(pulseaudio_object_close, audio_object_close);
ALIAS(pulseaudio_object_destroy, audio_object_destroy);
ALIAS(pulseaudio_object_write, audio_object_write);
ALIAS(pulseaudio_object_drain, audio_object_drain);
ALIAS(pulseaudio_object_flush, audio_object_flush);
ALIAS(pulseaudio_object_strerror, audio_object_strerror);
ALIAS(alsa_object_open, audio_object_open);
ALIAS(alsa_object_close, audio_object_close);
ALIAS(alsa_object_destroy, audio_object_destroy);
ALIAS(alsa_object_write, audio_object_write);
ALIAS(alsa_object_drain, audio_object_drain);
ALIAS(alsa_object_flush, audio_object_flush);
ALIAS(alsa_object_strerror, audio_object_strerror);
ALIAS(oss_object_open, audio_object_open);
ALIAS(oss_object_close, audio_object_close);
ALIAS(oss_object_destroy, audio_object_destroy);
ALIAS(oss_object_write, audio_object_write);
ALIAS(oss_object_drain, audio_object_drain);
ALIAS(oss_object_flush, audio_object_flush);
ALIAS(oss_object_strerror, audio_object_strerror);
