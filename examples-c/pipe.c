/* pipe: plays PCM from stdin on the system default output.
 *
 *   espeak-ng --stdout "Hello" | pipe
 *   pipe --rate 22050 --format s16 --channels 1 < speech.raw
 *
 * Input that starts with a RIFF/WAVE header uses the header's format; anything else is raw
 * samples described by the flags. Exits 0 only after everything read has been heard.
 */
#include <stdint.h>

#include "example_util.h"

static const char *USAGE =
    "usage: pipe [--rate HZ] [--channels N] [--format s16|f32] [--device ID] < input\n";

static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint16_t le16(const unsigned char *b) { return (uint16_t)(b[0] | b[1] << 8); }

static int read_full(unsigned char *buf, size_t n) { return fread(buf, 1, n, stdin) == n; }

/* Parses the chunks after "RIFF....WAVE" up to the data chunk. */
static int parse_wav(ApConfig *cfg) {
    unsigned char h[8], fmt[64];
    int have_fmt = 0;
    for (;;) {
        if (!read_full(h, 8)) return 0;
        uint32_t size = le32(h + 4);
        if (!memcmp(h, "fmt ", 4)) {
            if (size < 16 || size > sizeof fmt || !read_full(fmt, size + (size & 1))) return 0;
            uint16_t tag = le16(fmt), bits = le16(fmt + 14);
            if (tag == 0xFFFE && size >= 26) tag = le16(fmt + 24);
            cfg->input_channels = le16(fmt + 2);
            cfg->input_rate = le32(fmt + 4);
            if (tag == 1 && bits == 16) cfg->input_format = AP_FORMAT_S16;
            else if (tag == 3 && bits == 32) cfg->input_format = AP_FORMAT_F32;
            else {
                fprintf(stderr, "unsupported WAV encoding (tag %u, %u bits)\n", tag, bits);
                return 0;
            }
            have_fmt = 1;
        } else if (!memcmp(h, "data", 4)) {
            return have_fmt; /* sizes from pipes are placeholders: read to end of input */
        } else {
            for (uint32_t k = 0; k < size + (size & 1); k++)
                if (getchar() == EOF) return 0;
        }
    }
}

int main(int argc, char **argv) {
    ApConfig cfg;
    ap_config_init(&cfg);
    cfg.log_fn = example_log;
    cfg.log_level = AP_LOG_WARN;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rate")) cfg.input_rate = (uint32_t)atoi(example_arg(argc, argv, &i, USAGE));
        else if (!strcmp(argv[i], "--channels")) cfg.input_channels = (uint32_t)atoi(example_arg(argc, argv, &i, USAGE));
        else if (!strcmp(argv[i], "--device")) cfg.device_id = example_arg(argc, argv, &i, USAGE);
        else if (!strcmp(argv[i], "--format")) {
            const char *f = example_arg(argc, argv, &i, USAGE);
            cfg.input_format = !strcmp(f, "f32") ? AP_FORMAT_F32 : AP_FORMAT_S16;
        } else {
            fprintf(stderr, "unknown argument %s\n%s", argv[i], USAGE);
            return 2;
        }
    }

    /* Peek at the first 12 bytes: a WAV header, or the start of raw samples. */
    unsigned char head[12];
    size_t got = fread(head, 1, sizeof head, stdin);
    size_t carry = got;
    if (got == 12 && !memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WAVE", 4)) {
        if (!parse_wav(&cfg)) {
            fprintf(stderr, "bad WAV header on stdin\n");
            return 3;
        }
        carry = 0;
    }

    ApPlayer *player = NULL;
    ApStatus st = ap_create(&cfg, &player);
    if (st != AP_OK) return example_fail(NULL, "ap_create", st);
    const size_t frame = cfg.input_channels * (cfg.input_format == AP_FORMAT_F32 ? 4 : 2);

    unsigned char buf[16384];
    size_t have = carry;
    memcpy(buf, head, carry);
    for (;;) {
        size_t n = fread(buf + have, 1, sizeof buf - have, stdin);
        have += n;
        size_t whole = have / frame, done = 0;
        while (done < whole) {
            size_t written = 0;
            st = ap_write(player, buf + done * frame, whole - done, &written);
            if (st != AP_OK) return example_fail(player, "ap_write", st);
            done += written;
        }
        memmove(buf, buf + whole * frame, have - whole * frame);
        have -= whole * frame;
        if (n == 0) break;
    }
    st = ap_drain(player, 120000);
    if (st != AP_OK) return example_fail(player, "ap_drain", st);
    int rc = example_print_metrics(player);
    ap_destroy(player);
    return rc;
}
