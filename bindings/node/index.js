'use strict';
// audioplay for Node: a small typed wrapper over libaudioplay through koffi (no compiler).
// The library is found through AUDIOPLAY_LIB, else the system loader ("libaudioplay.so.0").
// Events are polled (ap_poll_event), so no C callback ever runs on a foreign thread.

const koffi = require('koffi');

const lib = koffi.load(process.env.AUDIOPLAY_LIB || 'libaudioplay.so.0');

const ApConfig = koffi.struct('ApConfig', {
  struct_size: 'uint32', input_format: 'int32', input_channels: 'uint32', input_rate: 'uint32',
  device_id: 'const char *', target_latency_ms: 'uint32', ring_capacity_ms: 'uint32',
  write_timeout_ms: 'uint32', prefer_stream_rate: 'int32', resample_mode: 'int32',
  log_level: 'int32', log_fn: 'void *', log_user: 'void *', device_poll_ms: 'uint32',
  device_query_cooldown_ms: 'uint32', max_recreate_per_minute: 'uint32', debounce_ms: 'uint32',
  max_replay_ms: 'uint32', recreate_warn_ms: 'uint32', start_threshold_ms: 'uint32',
  idle_suspend_ms: 'uint32', event_fn: 'void *', event_user: 'void *', resample_quality: 'int32',
  resample_p95_limit_us: 'uint32', audio_thread_priority: 'uint32',
  device_lost_timeout_ms: 'uint32',
});
const ApEvent = koffi.struct('ApEvent', {
  struct_size: 'uint32', kind: 'uint32', id: 'uint64', frame: 'uint64', heard_ms: 'double',
});
const u64 = ['frames_written', 'frames_played', 'frames_queued', 'frames_dropped', 'underruns',
  'generation_mismatches', 'shape_mismatches', 'callback_errors', 'resample_errors', 'callbacks',
  'stream_errors', 'stream_generation'];
const f64 = ['callback_us_p50', 'callback_us_p95', 'callback_us_p99', 'callback_us_max',
  'resample_us_p50', 'resample_us_p95', 'resample_us_p99', 'resample_us_max', 'output_latency_ms'];
const fields = { struct_size: 'uint32', output_channels: 'uint32' };
for (const n of u64) fields[n] = 'uint64';
for (const n of f64) fields[n] = 'double';
Object.assign(fields, {
  stream_rate: 'uint32', device_rate: 'uint32', content_rate: 'uint32', device_format: 'int32',
  needs_resample: 'uint32', recreating: 'uint32', last_recreate_reason: 'uint32',
  frames_replayed: 'uint64', recreates: 'uint64', recreate_failures: 'uint64',
  recreates_refused: 'uint64', device_query_failures: 'uint64', last_route_gap_ms: 'double',
  recreate_ms_p50: 'double', recreate_ms_p95: 'double', recreate_ms_max: 'double',
  device_id: koffi.array('char', 128, 'String'), device_name: koffi.array('char', 128, 'String'),
  frames_flushed: 'uint64', frames_heard: 'uint64', markers_flushed: 'uint64',
  events_dropped: 'uint64', last_wake_ms: 'double', suspended: 'uint32', late_callbacks: 'uint64',
  resample_fallback: 'uint32', output_lost: 'uint32', outages: 'uint64', last_outage_ms: 'uint64',
  server_reconnects: 'uint64',
  server_underflows: 'uint64',
});
const ApMetrics = koffi.struct('ApMetrics', fields);

const fn = {
  config_init: lib.func('int32 ap_config_init(_Out_ ApConfig *cfg)'),
  create: lib.func('int32 ap_create(const ApConfig *cfg, _Out_ void **out)'),
  destroy: lib.func('int32 ap_destroy(void *p)'),
  write: lib.func('int32 ap_write(void *p, const void *frames, size_t n, _Out_ size_t *written)'),
  drain: lib.func('int32 ap_drain(void *p, uint32 timeout_ms)'),
  end_utterance: lib.func('int32 ap_end_utterance(void *p)'),
  mark: lib.func('int32 ap_mark(void *p, uint64 id)'),
  flush: lib.func('int32 ap_flush(void *p, uint32 fade_ms, _Out_ uint64 *heard)'),
  metrics: lib.func('int32 ap_metrics(void *p, _Inout_ ApMetrics *m)'),
  poll_event: lib.func('int32 ap_poll_event(void *p, _Inout_ ApEvent *e, _Out_ size_t *n)'),
  last_error: lib.func('int32 ap_last_error(void *p, _Out_ char *buf, size_t len)'),
  strerror: lib.func('const char *ap_strerror(int32 code)'),
  version: lib.func('const char *ap_version()'),
};

const FORMATS = { s16: 1, f32: 2 };
const KINDS = { 1: 'marker', 2: 'utterance_start', 3: 'utterance_end', 4: 'underrun_start',
  5: 'underrun_end', 6: 'device_changed', 7: 'flushed' };

class AudioplayError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

class Player {
  /** @param {{rate?: number, channels?: number, format?: 's16'|'f32', device?: string}} opts */
  constructor({ rate = 22050, channels = 1, format = 's16', device, ...settings } = {}) {
    if (!(format in FORMATS)) throw new TypeError(`format must be s16 or f32`);
    const cfg = {};
    fn.config_init(cfg);
    Object.assign(cfg, { input_rate: rate, input_channels: channels, input_format: FORMATS[format] });
    if (device !== undefined) cfg.device_id = device;
    Object.assign(cfg, settings);
    const out = [null];
    const st = fn.create(cfg, out);
    if (st !== 0) throw new AudioplayError(st, `ap_create: ${fn.strerror(st)}`);
    this.handle = out[0];
    this.frameBytes = channels * (format === 's16' ? 2 : 4);
  }

  check(st, call) {
    if (st === 0) return;
    const buf = Buffer.alloc(256);
    fn.last_error(this.handle, buf, 256);
    throw new AudioplayError(st, `${call}: ${fn.strerror(st)} (${buf.toString('utf8').replace(/\0.*$/s, '')})`);
  }

  /** Queues interleaved samples (Int16Array, Float32Array or Buffer); returns frames queued. */
  write(samples) {
    const buf = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    if (buf.length % this.frameBytes) throw new RangeError('not a whole number of frames');
    const n = [0];
    this.check(fn.write(this.handle, buf, buf.length / this.frameBytes, n), 'ap_write');
    return Number(n[0]);
  }

  drain(timeoutMs = 60000) {
    const st = fn.drain(this.handle, timeoutMs);
    if (st === -7) return false;
    this.check(st, 'ap_drain');
    return true;
  }

  endUtterance() { this.check(fn.end_utterance(this.handle), 'ap_end_utterance'); }
  mark(id) { this.check(fn.mark(this.handle, id), 'ap_mark'); }

  flush(fadeMs = 10) {
    const heard = [0];
    this.check(fn.flush(this.handle, fadeMs, heard), 'ap_flush');
    return Number(heard[0]);
  }

  metrics() {
    const m = { struct_size: koffi.sizeof(ApMetrics) };
    this.check(fn.metrics(this.handle, m), 'ap_metrics');
    for (const k of Object.keys(m)) if (typeof m[k] === 'bigint') m[k] = Number(m[k]);
    return m;
  }

  pollEvent() {
    const e = { struct_size: koffi.sizeof(ApEvent) };
    const n = [0];
    this.check(fn.poll_event(this.handle, e, n), 'ap_poll_event');
    if (Number(n[0]) === 0) return null;
    return { kind: KINDS[e.kind] || String(e.kind), id: Number(e.id), frame: Number(e.frame), heardMs: e.heard_ms };
  }

  close() {
    if (this.handle) { fn.destroy(this.handle); this.handle = null; }
  }
}

module.exports = { Player, AudioplayError, version: () => fn.version() };
