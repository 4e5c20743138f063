/* tone: plays a sine through audioplay on the default output and prints the metrics.
 *
 *   tone [--freq 440] [--seconds 2] [--rate 22050] [--channels 1] [--format s16|f32]
 *        [--device ID]
 *
 * Exits 0 once the whole tone has been heard.
 */
#include <math.h>

#include "example_util.h"

static const char *USAGE =
    "usage: tone [--freq HZ] [--seconds S] [--rate HZ] [--channels N] [--format s16|f32] "
    "[--device ID]\n";

int main(int argc, char **argv) {
    double freq = 440.0, seconds = 2.0;
    ApConfig cfg;
    ap_config_init(&cfg);
    cfg.log_fn = example_log;
    cfg.log_level = AP_LOG_WARN;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--freq")) freq = atof(example_arg(argc, argv, &i, USAGE));
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(example_arg(argc, argv, &i, USAGE));
        else if (!strcmp(argv[i], "--rate")) cfg.input_rate = (uint32_t)atoi(example_arg(argc, argv, &i, USAGE));
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
    printf("audioplay %s (header %s)\n", ap_version(), AP_VERSION_STRING);

    ApPlayer *player = NULL;
    ApStatus st = ap_create(&cfg, &player);
    if (st != AP_OK) return example_fail(NULL, "ap_create", st);

    const size_t frames = (size_t)(seconds * cfg.input_rate + 0.5);
    const size_t ch = cfg.input_channels;
    const size_t block = 1024;
    int16_t *s16 = malloc(block * ch * sizeof *s16);
    float *f32 = malloc(block * ch * sizeof *f32);
    if (!s16 || !f32) return 1;
    for (size_t pos = 0; pos < frames;) {
        size_t n = frames - pos < block ? frames - pos : block;
        for (size_t i = 0; i < n; i++) {
            float x = 0.5f * (float)sin(2.0 * M_PI * freq * (double)(pos + i) / cfg.input_rate);
            for (size_t c = 0; c < ch; c++) {
                f32[i * ch + c] = x;
                s16[i * ch + c] = (int16_t)lrintf(x * 32767.0f);
            }
        }
        const void *data = cfg.input_format == AP_FORMAT_F32 ? (const void *)f32 : (const void *)s16;
        size_t done = 0;
        while (done < n) { /* ap_write blocks up to write_timeout_ms, then may queue less */
            size_t written = 0;
            const char *p = (const char *)data + done * ch * (cfg.input_format == AP_FORMAT_F32 ? 4 : 2);
            st = ap_write(player, p, n - done, &written);
            if (st != AP_OK) return example_fail(player, "ap_write", st);
            done += written;
        }
        pos += n;
    }
    free(s16);
    free(f32);
    st = ap_drain(player, (uint32_t)(seconds * 1000) + 5000);
    if (st != AP_OK) return example_fail(player, "ap_drain", st);
    int rc = example_print_metrics(player);
    ap_destroy(player);
    return rc;
}
