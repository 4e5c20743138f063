/*
 * aptest: an ALSA output device that behaves like hardware, for tests/alsa_device.rs.
 *
 * An ALSA external (ioplug) PCM plugin. Unlike ALSA's `null` PCM, which has no clock (a 10 s
 * tone "plays" in 0.56 s), it is:
 *   - clocked: the hardware pointer advances in real time (CLOCK_MONOTONIC) at the one rate
 *     it runs at; its poll descriptor is a timerfd armed for when the next `avail_min` frames
 *     of room come, so poll-driven clients (cpal's ALSA thread) are paced as by a sound card's
 *     interrupts. A buffer that runs dry is an xrun, as on hardware (stop_threshold).
 *   - exclusive: one open at a time (an flock on DIR/lock, per open file description, so a
 *     second open in the same process conflicts too). Every other open while it is held, a
 *     query of its formats included, answers -EBUSY, as a `hw` PCM does.
 *   - unpluggable: while the file DIR/gone exists, opens answer -ENODEV, and a running stream
 *     is disconnected at once (an inotify descriptor wakes its poll): it reports
 *     POLLERR|POLLNVAL (what the kernel's file operations of a disconnected card return) and
 *     every call -ENODEV; what it played up to the file's mtime was heard, what it held was
 *     not. The handle frees the device (a card plugged back is a new one). Removing the file
 *     plugs it back.
 *   - a recorder: what it plays (the frames the pointer passes, not what it is handed) goes to
 *     DIR/out.raw, interleaved S16_LE at its rate and channel count, on one timeline for every
 *     open: time the device was not playing (closed, unplugged, in xrun) is written as
 *     silence, counted from the first start (DIR/origin). So the file is what a listener heard.
 *   - a witness: each open, refused open, start, xrun and close is a line in DIR/events.
 *
 * Config:  pcm.NAME { type aptest  dir "/path"  rate 48000  channels 2 }
 * Build:   cc -shared -fPIC -O2 -o libasound_module_pcm_aptest.so pcm_aptest.c -lasound
 * Load:    pcm_type.aptest { lib "/path/to/libasound_module_pcm_aptest.so" }
 */
#define _GNU_SOURCE
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	snd_pcm_ioplug_t io;
	char dir[PATH_MAX];
	char gone_path[PATH_MAX + 64];
	/* Poll descriptors: the clock (timerfd) and DIR's changes (inotify: an unplug wakes a
	 * waiting client at once, as the kernel wakes the pollers of a card that goes). */
	int notify_fd;
	unsigned int rate, channels;
	int lock_fd, timer_fd, out_fd;
	/* Our copy of the ring: frames handed over (wr) and played (rd) since prepare. */
	char *ring;
	snd_pcm_uframes_t ring_frames, wr, rd, avail_min;
	int running, xrun, gone;
	int64_t start_ns, origin_ns;
} aptest_t;

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void path_of(const aptest_t *a, const char *leaf, char *out)
{
	snprintf(out, PATH_MAX + 64, "%s/%s", a->dir, leaf);
}

static void event(const char *dir, const char *what)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/events", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char line[128];
	int n = snprintf(line, sizeof line, "%lld %s\n", (long long)now_ns(), what);
	if (write(fd, line, n) < 0) {
	}
	close(fd);
}

static int unplugged(const char *dir)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/gone", dir);
	return access(p, F_OK) == 0;
}

static void record(aptest_t *a, snd_pcm_uframes_t from, snd_pcm_uframes_t to);

/* Once gone, a stream stays gone: a real unplugged card does not come back under an open fd.
 * What it played up to the moment it went (DIR/gone's mtime) was heard. */
static int check_gone(aptest_t *a)
{
	struct stat st;
	if (!a->gone && stat(a->gone_path, &st) == 0) {
		if (a->running && !a->xrun) {
			struct timespec real;
			clock_gettime(CLOCK_REALTIME, &real);
			int64_t ago = ((int64_t)real.tv_sec - st.st_mtim.tv_sec) * 1000000000 +
				      (real.tv_nsec - st.st_mtim.tv_nsec);
			int64_t at = now_ns() - (ago > 0 ? ago : 0) - a->start_ns;
			snd_pcm_uframes_t played = at > 0 ? (snd_pcm_uframes_t)(at * (int64_t)a->rate / 1000000000) : 0;
			if (played > a->wr)
				played = a->wr;
			if (played > a->rd) {
				record(a, a->rd, played);
				a->rd = played;
			}
		}
		a->gone = 1;
		/* The card this handle was on is gone; the one plugged in next is free. */
		close(a->lock_fd);
		a->lock_fd = -1;
		event(a->dir, "disconnected");
	}
	if (a->gone) {
		snd_pcm_ioplug_set_state(&a->io, SND_PCM_STATE_DISCONNECTED);
		return -ENODEV;
	}
	return 0;
}

static size_t frame_bytes(const aptest_t *a)
{
	return 2 * a->channels;
}

/* The recording's origin: when the device first played, shared by every open. */
static int64_t origin(aptest_t *a)
{
	if (a->origin_ns)
		return a->origin_ns;
	char p[PATH_MAX + 64];
	path_of(a, "origin", p);
	FILE *f = fopen(p, "r");
	long long v = 0;
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (!v) {
		v = a->start_ns;
		f = fopen(p, "w");
		if (f) {
			fprintf(f, "%lld\n", v);
			fclose(f);
		}
	}
	a->origin_ns = v;
	return v;
}

/* Writes frames [from, to) of the ring (as played since start) to the recording, after
 * silence for any time since the recording's end. */
static void record(aptest_t *a, snd_pcm_uframes_t from, snd_pcm_uframes_t to)
{
	size_t fb = frame_bytes(a);
	int64_t at = (a->start_ns - origin(a)) * (int64_t)a->rate / 1000000000 + (int64_t)from;
	struct stat st;
	if (fstat(a->out_fd, &st) == 0) {
		int64_t have = st.st_size / (int64_t)fb;
		static const char zeros[4096];
		int64_t pad = (at - have) * (int64_t)fb;
		while (pad > 0) {
			size_t n = pad > (int64_t)sizeof zeros ? sizeof zeros : (size_t)pad;
			if (write(a->out_fd, zeros, n) < 0)
				break;
			pad -= n;
		}
	}
	while (from < to) {
		snd_pcm_uframes_t off = from % a->ring_frames;
		snd_pcm_uframes_t n = a->ring_frames - off;
		if (n > to - from)
			n = to - from;
		if (write(a->out_fd, a->ring + off * fb, n * fb) < 0)
			break;
		from += n;
	}
}

/* Frames the clock has played since start. */
static snd_pcm_uframes_t clock_frames(const aptest_t *a)
{
	return (snd_pcm_uframes_t)((now_ns() - a->start_ns) * (int64_t)a->rate / 1000000000);
}

/* Arms the timer for when `avail_min` frames of room are there (at once if they are). */
static void arm(aptest_t *a)
{
	struct itimerspec its = {0};
	snd_pcm_uframes_t room = a->ring_frames - (a->wr - a->rd);
	int64_t when;
	if (room >= a->avail_min || !a->running) {
		/* Not running: it starts when the client fills it; there is room now or never. */
		if (room < a->avail_min) {
			timerfd_settime(a->timer_fd, 0, &its, NULL); /* disarm */
			return;
		}
		when = now_ns();
	} else {
		snd_pcm_uframes_t need = a->wr + a->avail_min - a->ring_frames; /* rd must reach */
		when = a->start_ns + (int64_t)((need * 1000000000ULL + a->rate - 1) / a->rate);
	}
	if (when <= 0)
		when = 1;
	its.it_value.tv_sec = when / 1000000000;
	its.it_value.tv_nsec = when % 1000000000;
	timerfd_settime(a->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static snd_pcm_sframes_t aptest_pointer(snd_pcm_ioplug_t *io)
{
	aptest_t *a = io->private_data;
	int err = check_gone(a);
	if (err)
		return err;
	if (a->xrun)
		return -EPIPE; /* until prepared again */
	if (a->running) {
		snd_pcm_uframes_t played = clock_frames(a);
		snd_pcm_uframes_t to = played < a->wr ? played : a->wr;
		if (to > a->rd) {
			record(a, a->rd, to);
			a->rd = to;
		}
		if (played > a->wr) {
			/* Ran dry: the hardware stops (stop_threshold = buffer size). */
			a->running = 0;
			a->xrun = 1;
			event(a->dir, "xrun");
			return -EPIPE;
		}
	}
	return a->rd % io->buffer_size;
}

static snd_pcm_sframes_t aptest_transfer(snd_pcm_ioplug_t *io, const snd_pcm_channel_area_t *areas,
					 snd_pcm_uframes_t offset, snd_pcm_uframes_t size)
{
	aptest_t *a = io->private_data;
	int err = check_gone(a);
	if (err)
		return err;
	if (a->xrun)
		return -EPIPE;
	size_t fb = frame_bytes(a);
	const char *src = (const char *)areas[0].addr + (areas[0].first + offset * areas[0].step) / 8;
	snd_pcm_uframes_t done = 0;
	while (done < size) {
		snd_pcm_uframes_t off = (a->wr + done) % a->ring_frames;
		snd_pcm_uframes_t n = a->ring_frames - off;
		if (n > size - done)
			n = size - done;
		memcpy(a->ring + off * fb, src + done * fb, n * fb);
		done += n;
	}
	a->wr += size;
	arm(a);
	return size;
}

static int aptest_start(snd_pcm_ioplug_t *io)
{
	aptest_t *a = io->private_data;
	int err = check_gone(a);
	if (err)
		return err;
	a->start_ns = now_ns();
	a->running = 1;
	origin(a);
	event(a->dir, "start");
	arm(a);
	return 0;
}

static int aptest_stop(snd_pcm_ioplug_t *io)
{
	aptest_t *a = io->private_data;
	if (a->running)
		aptest_pointer(io);
	a->running = 0;
	return 0;
}

static int aptest_prepare(snd_pcm_ioplug_t *io)
{
	aptest_t *a = io->private_data;
	int err = check_gone(a);
	if (err)
		return err;
	a->running = 0;
	a->xrun = 0;
	a->wr = a->rd = 0;
	arm(a);
	return 0;
}

static int aptest_hw_params(snd_pcm_ioplug_t *io, snd_pcm_hw_params_t *params)
{
	aptest_t *a = io->private_data;
	(void)params;
	int err = check_gone(a);
	if (err)
		return err;
	free(a->ring);
	a->ring_frames = io->buffer_size;
	a->ring = calloc(a->ring_frames, frame_bytes(a));
	a->avail_min = io->period_size;
	return a->ring ? 0 : -ENOMEM;
}

static int aptest_sw_params(snd_pcm_ioplug_t *io, snd_pcm_sw_params_t *params)
{
	aptest_t *a = io->private_data;
	snd_pcm_uframes_t m;
	if (snd_pcm_sw_params_get_avail_min(params, &m) == 0 && m > 0)
		a->avail_min = m;
	return 0;
}

static int aptest_poll_revents(snd_pcm_ioplug_t *io, struct pollfd *pfd, unsigned int nfds,
			       unsigned short *revents)
{
	aptest_t *a = io->private_data;
	(void)pfd;
	(void)nfds;
	uint64_t ticks;
	if (read(a->timer_fd, &ticks, sizeof ticks) < 0) {
	}
	char drain[4096];
	while (read(a->notify_fd, drain, sizeof drain) > 0) {
	}
	if (check_gone(a)) {
		*revents = POLLERR | POLLNVAL;
		return 0;
	}
	snd_pcm_sframes_t p = aptest_pointer(io);
	if (p < 0) {
		*revents = POLLOUT | POLLERR; /* xrun */
		return 0;
	}
	snd_pcm_uframes_t room = a->ring_frames - (a->wr - a->rd);
	*revents = room >= a->avail_min ? POLLOUT : 0;
	arm(a);
	return 0;
}

static int aptest_poll_descriptors_count(snd_pcm_ioplug_t *io)
{
	(void)io;
	return 2;
}

static int aptest_poll_descriptors(snd_pcm_ioplug_t *io, struct pollfd *pfd, unsigned int space)
{
	aptest_t *a = io->private_data;
	if (space < 2)
		return -EINVAL;
	pfd[0] = (struct pollfd){.fd = a->timer_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = a->notify_fd, .events = POLLIN};
	return 2;
}

static int aptest_delay(snd_pcm_ioplug_t *io, snd_pcm_sframes_t *delayp)
{
	aptest_t *a = io->private_data;
	snd_pcm_sframes_t p = aptest_pointer(io);
	if (p < 0)
		return (int)p;
	*delayp = (snd_pcm_sframes_t)(a->wr - a->rd);
	return 0;
}

static int aptest_close(snd_pcm_ioplug_t *io)
{
	aptest_t *a = io->private_data;
	if (a->running && !a->gone)
		aptest_pointer(io);
	event(a->dir, "close");
	if (a->timer_fd >= 0)
		close(a->timer_fd);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	if (a->out_fd >= 0)
		close(a->out_fd);
	if (a->lock_fd >= 0)
		close(a->lock_fd); /* releases the flock */
	free(a->ring);
	free(a);
	return 0;
}

static const snd_pcm_ioplug_callback_t aptest_callbacks = {
	.start = aptest_start,
	.stop = aptest_stop,
	.pointer = aptest_pointer,
	.transfer = aptest_transfer,
	.close = aptest_close,
	.hw_params = aptest_hw_params,
	.sw_params = aptest_sw_params,
	.prepare = aptest_prepare,
	.poll_descriptors_count = aptest_poll_descriptors_count,
	.poll_descriptors = aptest_poll_descriptors,
	.poll_revents = aptest_poll_revents,
	.delay = aptest_delay,
};

SND_PCM_PLUGIN_DEFINE_FUNC(aptest)
{
	snd_config_iterator_t i, next;
	const char *dir = NULL;
	long rate = 48000, channels = 2;
	int err;
	(void)root;

	snd_config_for_each(i, next, conf) {
		snd_config_t *n = snd_config_iterator_entry(i);
		const char *id;
		if (snd_config_get_id(n, &id) < 0)
			continue;
		if (!strcmp(id, "comment") || !strcmp(id, "type") || !strcmp(id, "hint"))
			continue;
		if (!strcmp(id, "dir")) {
			if (snd_config_get_string(n, &dir) < 0)
				return -EINVAL;
			continue;
		}
		if (!strcmp(id, "rate")) {
			if (snd_config_get_integer(n, &rate) < 0)
				return -EINVAL;
			continue;
		}
		if (!strcmp(id, "channels")) {
			if (snd_config_get_integer(n, &channels) < 0)
				return -EINVAL;
			continue;
		}
		return -EINVAL;
	}
	if (!dir || rate <= 0 || channels <= 0 || strlen(dir) >= PATH_MAX - 16)
		return -EINVAL;
	if (stream != SND_PCM_STREAM_PLAYBACK)
		return -ENOENT; /* an output-only card has no capture PCM */
	if (unplugged(dir)) {
		event(dir, "open-gone");
		return -ENODEV;
	}

	aptest_t *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	strcpy(a->dir, dir);
	a->rate = rate;
	a->channels = channels;
	a->timer_fd = a->out_fd = a->notify_fd = -1;
	path_of(a, "gone", a->gone_path);
	char p[PATH_MAX + 64];
	path_of(a, "lock", p);
	a->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (a->lock_fd < 0 || flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = a->lock_fd < 0 ? -errno : -EBUSY;
		if (a->lock_fd >= 0)
			close(a->lock_fd);
		free(a);
		event(dir, "open-busy");
		return err;
	}
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	a->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a->notify_fd >= 0 && inotify_add_watch(a->notify_fd, dir, IN_CREATE) < 0) {
		close(a->notify_fd);
		a->notify_fd = -1;
	}
	path_of(a, "out.raw", p);
	a->out_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (a->timer_fd < 0 || a->out_fd < 0 || a->notify_fd < 0) {
		err = -errno;
		goto fail;
	}

	a->io.version = SND_PCM_IOPLUG_VERSION;
	a->io.name = "audioplay test device";
	a->io.callback = &aptest_callbacks;
	a->io.private_data = a;
	a->io.mmap_rw = 0;
	err = snd_pcm_ioplug_create(&a->io, name, stream, mode);
	if (err < 0)
		goto fail;

	static const unsigned int access[] = {SND_PCM_ACCESS_RW_INTERLEAVED};
	static const unsigned int formats[] = {SND_PCM_FORMAT_S16_LE};
	unsigned int fb = 2 * channels;
	if ((err = snd_pcm_ioplug_set_param_list(&a->io, SND_PCM_IOPLUG_HW_ACCESS, 1, access)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_list(&a->io, SND_PCM_IOPLUG_HW_FORMAT, 1, formats)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_minmax(&a->io, SND_PCM_IOPLUG_HW_CHANNELS, channels,
						   channels)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_minmax(&a->io, SND_PCM_IOPLUG_HW_RATE, rate, rate)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_minmax(&a->io, SND_PCM_IOPLUG_HW_PERIOD_BYTES, 16 * fb,
						   16384 * fb)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_minmax(&a->io, SND_PCM_IOPLUG_HW_PERIODS, 2, 64)) < 0 ||
	    (err = snd_pcm_ioplug_set_param_minmax(&a->io, SND_PCM_IOPLUG_HW_BUFFER_BYTES, 32 * fb,
						   65536 * fb)) < 0) {
		snd_pcm_ioplug_delete(&a->io); /* calls aptest_close, which frees a */
		return err;
	}
	event(dir, "open");
	*pcmp = a->io.pcm;
	return 0;

fail:
	if (a->timer_fd >= 0)
		close(a->timer_fd);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	if (a->out_fd >= 0)
		close(a->out_fd);
	close(a->lock_fd);
	free(a);
	return err;
}

SND_PCM_PLUGIN_SYMBOL(aptest);
