/* The C references of the render-path benchmark (issue 5), driven exactly like
 * benches/resample.rs drives our modes: per 10 ms callback, int16 mono content is converted to
 * float, resampled to exactly one block of output frames, and duplicated to stereo float.
 * Bench-only code: linked against Debian's libsamplerate, speexdsp and soxr by scripts/bench.sh.
 *
 *   refs SPEECH.wav CANDIDATE...   (src-linear src-sinc-medium speex-3 speex-10 soxr-hq)
 *
 * Prints the same TSV columns as benches/resample.rs. */
#define _GNU_SOURCE
#include <math.h>
#include <samplerate.h>
#include <soxr.h>
#include <speex/speex_resampler.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AMP 0.9

static const int PAIRS[3][2] = {{22050, 48000}, {24000, 48000}, {16000, 44100}};

typedef struct {
    const int16_t *x; /* content */
    size_t len, pos;
    float *xin;       /* per-callback float input */
    size_t xin_cap;
    SRC_STATE *src;
    SpeexResamplerState *speex;
    soxr_t soxr;
    float *tmp;       /* mono output of one block */
    int block;
} Path;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The next `n` content samples as float (zeros after the end), D3 scaling. */
static size_t take(Path *p, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = p->pos < p->len ? p->x[p->pos++] / 32768.0f : 0.0f;
    return n;
}

static long src_input(void *cb, float **data) {
    Path *p = cb;
    size_t n = 256;
    take(p, p->xin, n);
    *data = p->xin;
    return (long)n;
}

static int make(Path *p, const char *name, int in_rate, int out_rate, int block) {
    memset(p, 0, sizeof *p);
    p->block = block;
    p->xin_cap = 8192;
    p->xin = calloc(p->xin_cap, sizeof(float));
    p->tmp = calloc((size_t)block, sizeof(float));
    int err = 0;
    if (!strcmp(name, "src-linear") || !strcmp(name, "src-sinc-medium")) {
        int type = !strcmp(name, "src-linear") ? SRC_LINEAR : SRC_SINC_MEDIUM_QUALITY;
        p->src = src_callback_new(src_input, type, 1, &err, p);
        return p->src ? 0 : -1;
    }
    if (!strcmp(name, "speex-3") || !strcmp(name, "speex-10")) {
        int q = !strcmp(name, "speex-3") ? 3 : 10;
        p->speex = speex_resampler_init(1, (spx_uint32_t)in_rate, (spx_uint32_t)out_rate, q, &err);
        if (p->speex) speex_resampler_skip_zeros(p->speex);
        return p->speex ? 0 : -1;
    }
    if (!strcmp(name, "soxr-hq")) {
        soxr_error_t e;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        p->soxr = soxr_create(in_rate, out_rate, 1, &e, &io, &q, NULL);
        return p->soxr ? 0 : -1;
    }
    return -1;
}

static void destroy(Path *p) {
    if (p->src) src_delete(p->src);
    if (p->speex) speex_resampler_destroy(p->speex);
    if (p->soxr) soxr_delete(p->soxr);
    free(p->xin);
    free(p->tmp);
}

/* One callback: exactly `block` stereo frames into `out`. */
static void block(Path *p, float *out, double ratio) {
    int n = p->block;
    size_t got = 0;
    if (p->src) {
        got = (size_t)src_callback_read(p->src, ratio, n, p->tmp);
    } else {
        while (got < (size_t)n) {
            size_t want_in = (size_t)((n - got) / ratio) + 2;
            if (want_in > p->xin_cap) want_in = p->xin_cap;
            take(p, p->xin, want_in);
            if (p->speex) {
                spx_uint32_t in_len = (spx_uint32_t)want_in, out_len = (spx_uint32_t)(n - got);
                speex_resampler_process_float(p->speex, 0, p->xin, &in_len, p->tmp + got, &out_len);
                p->pos -= want_in - in_len; /* unconsumed input stays queued */
                got += out_len;
            } else {
                size_t idone = 0, odone = 0;
                soxr_process(p->soxr, p->xin, want_in, &idone, p->tmp + got, (size_t)n - got, &odone);
                p->pos -= want_in - idone;
                got += odone;
            }
        }
    }
    for (size_t i = 0; i < got; i++) out[2 * i] = out[2 * i + 1] = p->tmp[i];
}

static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double sinad, gain, delay; } Measured;

/* Least-squares fit of a sin(wn) + b cos(wn), as audioplay::quality::measure. */
static Measured measure(const float *y, size_t n, int rate, double freq) {
    double w = 2 * M_PI * freq / rate, ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
    for (size_t i = 0; i < n; i++) {
        double s = sin(w * i), c = cos(w * i);
        ss += s * s; cc += c * c; sc += s * c; ys += y[i] * s; yc += y[i] * c;
    }
    double det = ss * cc - sc * sc, a = (ys * cc - yc * sc) / det, b = (yc * ss - ys * sc) / det;
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        double fit = a * sin(w * i) + b * cos(w * i);
        sig += fit * fit;
        noise += (y[i] - fit) * (y[i] - fit);
    }
    Measured m = {10 * log10(sig / (noise > 1e-300 ? noise : 1e-300)),
                  20 * log10(sqrt(a * a + b * b) / AMP), -atan2(b, a) / w};
    return m;
}

/* Output frames of delay: where an impulse at input frame 4000 comes out. */
static double impulse_delay(const char *name, int in_rate, int out_rate) {
    int blk = out_rate / 100;
    size_t len = (size_t)in_rate;
    int16_t *x = calloc(len, sizeof *x);
    x[4000] = 16384;
    Path p;
    make(&p, name, in_rate, out_rate, blk);
    p.x = x; p.len = len;
    size_t total = (size_t)out_rate;
    float *y = calloc(total + (size_t)blk, sizeof *y), *out = calloc(2 * (size_t)blk, sizeof *out);
    for (size_t got = 0; got < total; got += (size_t)blk) {
        block(&p, out, (double)out_rate / in_rate);
        for (int i = 0; i < blk; i++) y[got + (size_t)i] = out[2 * i];
    }
    size_t best = 0;
    for (size_t i = 0; i < total; i++) if (fabsf(y[i]) > fabsf(y[best])) best = i;
    double d = (double)best - 4000.0 * out_rate / in_rate;
    destroy(&p); free(x); free(y); free(out);
    return d;
}

static void quality(const char *name, int in_rate, int out_rate, double freq, double *sinad,
                    double *gain, double *drift) {
    int blk = out_rate / 100;
    size_t len = (size_t)(2.0 * in_rate);
    int16_t *x = malloc(len * sizeof *x);
    double w = 2 * M_PI * freq / in_rate;
    for (size_t i = 0; i < len; i++) x[i] = (int16_t)lrint(sin(w * i) * AMP * 32768.0);
    double ratio = (double)out_rate / in_rate;
    size_t want = (size_t)lrint(len * ratio);
    long d = lrint(impulse_delay(name, in_rate, out_rate));
    if (d < 0) d = 0;
    Path p;
    make(&p, name, in_rate, out_rate, blk);
    p.x = x; p.len = len;
    size_t total = want + (size_t)d + (size_t)blk;
    float *y = calloc(total + (size_t)blk, sizeof *y), *out = calloc(2 * (size_t)blk, sizeof *out);
    for (size_t got = 0; got < total; got += (size_t)blk) {
        block(&p, out, ratio);
        for (int i = 0; i < blk; i++) y[got + (size_t)i] = out[2 * i];
    }
    size_t skip = (size_t)out_rate / 10, half = (want - 2 * skip) / 2;
    const float *s = y + d + skip;
    Measured m = measure(s, want - 2 * skip, out_rate, freq);
    Measured a = measure(s, half, out_rate, freq), b = measure(s + half, half, out_rate, freq);
    double period = out_rate / freq, dd = b.delay - a.delay + (double)half;
    dd -= round(dd / period) * period;
    *sinad = m.sinad;
    *gain = m.gain;
    *drift = dd / ((double)half / out_rate) * 60.0 / out_rate * 1000.0; /* ms per minute */
    destroy(&p); free(x); free(y); free(out);
}

static int16_t *read_wav(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)size);
    if (fread(b, 1, (size_t)size, f) != (size_t)size) { fclose(f); return NULL; }
    fclose(f);
    long off = 12;
    while (off + 8 <= size && memcmp(b + off, "data", 4)) off += 8 + (long)(*(uint32_t *)(b + off + 4));
    off += 8;
    *len = (size_t)(size - off) / 2;
    int16_t *x = malloc(*len * 2);
    memcpy(x, b + off, *len * 2);
    free(b);
    return x;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: refs SPEECH.wav CANDIDATE...\n"); return 2; }
    size_t len;
    int16_t *speech = read_wav(argv[1], &len);
    if (!speech) { fprintf(stderr, "cannot read %s\n", argv[1]); return 1; }
    /* Timer overhead per block, subtracted like the Rust side does. */
    double over[20001];
    for (int i = 0; i < 20001; i++) { uint64_t t = now_ns(); over[i] = (double)(now_ns() - t); }
    qsort(over, 20001, sizeof(double), cmp_f64);
    double overhead = over[10000];
    for (int c = 2; c < argc; c++) {
        for (int k = 0; k < 3; k++) {
            int a = PAIRS[k][0], b = PAIRS[k][1], blk = b / 100;
            Path p;
            if (make(&p, argv[c], a, b, blk)) { fprintf(stderr, "cannot make %s\n", argv[c]); return 1; }
            p.x = speech; p.len = len;
            size_t blocks = (size_t)((double)len * b / a) / (size_t)blk - 2;
            double *t = malloc(blocks * sizeof *t);
            float *out = calloc(2 * (size_t)blk, sizeof *out);
            for (size_t i = 0; i < blocks; i++) {
                uint64_t t0 = now_ns();
                block(&p, out, (double)b / a);
                t[i] = (double)(now_ns() - t0) - overhead;
            }
            /* Lookahead: content consumed beyond what has been output, at the end of the run. */
            double ahead_ms = ((double)p.pos / a - (double)(blocks * (size_t)blk) / b) * 1000.0;
            double mean = 0;
            for (size_t i = 10; i < blocks; i++) mean += t[i];
            mean /= (double)(blocks - 10) * blk;
            qsort(t + 10, blocks - 10, sizeof(double), cmp_f64);
            double med = t[10 + (blocks - 10) / 2] / blk, p99 = t[10 + (blocks - 10) * 99 / 100];
            destroy(&p);
            free(t); free(out);
            double s1, g1, dr, s9, g9, dr9;
            quality(argv[c], a, b, 1000.0, &s1, &g1, &dr);
            double f9 = 9000.0 < a * 0.41 ? 9000.0 : a * 0.41;
            quality(argv[c], a, b, f9, &s9, &g9, &dr9);
            double lat = impulse_delay(argv[c], a, b) * 1000.0 / b + ahead_ms;
            printf("%s\t%d->%d\t%.3f\t%.3f\t%.0f\t%.1f\t%.1f\t%.3f\t%.3f\t%.2f\t%.2f\n", argv[c], a, b,
                   med, mean, p99, s1, s9, g1, g9, lat, dr);
            fflush(stdout);
        }
    }
    free(speech);
    return 0;
}
