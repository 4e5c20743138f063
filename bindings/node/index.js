'use strict';
// audioplay for Node: a typed wrapper over libaudioplay through koffi (no compiler).
//
// Every option and argument is checked here, in JavaScript, before anything reaches the FFI:
// koffi turns a wrong JS type into undefined behaviour (a string where a uint32 goes aborts the
// process; a number where a `const char *` goes is taken as an address and segfaults). Wrong
// types throw TypeError, values out of range throw RangeError (with the library's reason when
// the library is the one that refuses: ap_create_ex for create, ap_last_error otherwise).
//
// Blocking calls (ap_write waiting for room, ap_drain, ap_list_devices) run through koffi's
// `.async` on a worker thread, so the event loop keeps running. Events are polled
// (ap_poll_event) on a timer while someone listens: no C callback ever runs on a library thread.

const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { Writable } = require('node:stream');

function loadKoffi() {
  try {
    return require('koffi');
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && /koffi/.test(e.message)) {
      const err = new Error(`audioplay needs the koffi package, which is not installed for ${__dirname}` +
        ' (an `npm install <folder>` links the folder without installing its dependencies when the' +
        ' install script is skipped): run `npm install --omit=dev` in that folder, or install with' +
        ' `npm install --install-links <folder>`');
      err.code = 'MODULE_NOT_FOUND';
      err.cause = e;
      throw err;
    }
    throw e;
  }
}
const koffi = loadKoffi();

// ---------------------------------------------------------------------------------------------
// Finding the library: bundled in the package (npm pack copies it there), then AUDIOPLAY_LIB
// (an explicit choice wins over anything found by location), then the repository's release
// build when the package is a checkout (npm install <folder> links to it), then the system
// loader. Python looks in the same order, less the checkout.

const SYSTEM_LIB = 'libaudioplay.so.0';

function libraryCandidates() {
  const out = [{ from: 'bundled', file: path.join(__dirname, 'native', 'libaudioplay.so'), must: false }];
  const env = process.env.AUDIOPLAY_LIB;
  if (env) out.push({ from: 'AUDIOPLAY_LIB', file: env, must: true });
  const repo = path.resolve(__dirname, '..', '..');
  if (fs.existsSync(path.join(repo, 'include', 'audioplay.h'))) {
    out.push({ from: 'repository build', file: path.join(repo, 'target', 'release', 'libaudioplay.so'), must: false });
  }
  return out;
}

function loadLibrary() {
  const looked = [];
  for (const c of libraryCandidates()) {
    // AUDIOPLAY_LIB is tried even when it names no file (koffi then says why it failed).
    if (c.must || fs.existsSync(c.file)) {
      try {
        return { lib: koffi.load(c.file), file: c.file, from: c.from };
      } catch (e) {
        const where = c.from === 'AUDIOPLAY_LIB' ? `AUDIOPLAY_LIB=${c.file}` : `the ${c.from} libaudioplay at ${c.file}`;
        throw new Error(`audioplay: cannot load libaudioplay from ${where}: ${e.message}`);
      }
    }
    looked.push(`${c.file} (${c.from}, not there)`);
  }
  if (!process.env.AUDIOPLAY_LIB) looked.push('AUDIOPLAY_LIB (not set)');
  try {
    return { lib: koffi.load(SYSTEM_LIB), file: SYSTEM_LIB, from: 'system' };
  } catch (e) {
    looked.push(`${SYSTEM_LIB} through the system loader (${e.message})`);
  }
  const err = new Error(`audioplay: cannot find the libaudioplay shared library; looked at: ${looked.join('; ')}.` +
    ' Set AUDIOPLAY_LIB to the path of libaudioplay.so, or install the library (libaudioplay.so.0).');
  err.code = 'AUDIOPLAY_LIB_NOT_FOUND';
  throw err;
}

const loaded = loadLibrary();
const lib = loaded.lib;

// ---------------------------------------------------------------------------------------------
// The C ABI (include/audioplay.h).

const DEVICE_ID_LEN = 128;
const ApConfig = koffi.struct('ApConfig', {
  struct_size: 'uint32', input_format: 'int32', input_channels: 'uint32', input_rate: 'uint32',
  device_id: 'const char *', target_latency_ms: 'uint32', ring_capacity_ms: 'uint32',
  write_timeout_ms: 'uint32', prefer_stream_rate: 'int32', resample_mode: 'int32',
  log_level: 'int32', log_fn: 'void *', log_user: 'void *', device_poll_ms: 'uint32',
  device_query_cooldown_ms: 'uint32', max_recreate_per_minute: 'uint32', debounce_ms: 'uint32',
  max_replay_ms: 'uint32', recreate_warn_ms: 'uint32', start_threshold_ms: 'uint32',
  idle_suspend_ms: 'uint32', event_fn: 'void *', event_user: 'void *', resample_quality: 'int32',
  resample_p95_limit_us: 'uint32', audio_thread_priority: 'uint32',
  device_lost_timeout_ms: 'uint32', application_name: 'const char *',
  application_id: 'const char *', stream_name: 'const char *', media_role: 'const char *',
  keep_awake_ms: 'uint32', wake_preroll_ms: 'uint32', trim_threshold: 'float',
  trim_keep_ms: 'uint32',
});
const ApEvent = koffi.struct('ApEvent', {
  struct_size: 'uint32', kind: 'uint32', id: 'uint64', frame: 'uint64', heard_ms: 'double',
});
const ApDeviceInfo = koffi.struct('ApDeviceInfo', {
  struct_size: 'uint32', rate: 'uint32', channels: 'uint32', is_default: 'uint32',
  id: koffi.array('char', DEVICE_ID_LEN, 'String'), name: koffi.array('char', DEVICE_ID_LEN, 'String'),
});
const ApStreamState = koffi.struct('ApStreamState', {
  struct_size: 'uint32', started: 'uint32', generation: 'uint64', stream_rate: 'uint32',
  device_rate: 'uint32', content_rate: 'uint32', output_channels: 'uint32', recreating: 'uint32',
  device_format: 'int32',
  device_id: koffi.array('char', DEVICE_ID_LEN, 'String'),
  device_name: koffi.array('char', DEVICE_ID_LEN, 'String'),
});
const u64 = ['frames_written', 'frames_played', 'frames_queued', 'frames_dropped', 'underruns',
  'generation_mismatches', 'shape_mismatches', 'callback_errors', 'resample_errors', 'callbacks',
  'stream_errors', 'stream_generation'];
const f64 = ['callback_us_p50', 'callback_us_p95', 'callback_us_p99', 'callback_us_max',
  'resample_us_p50', 'resample_us_p95', 'resample_us_p99', 'resample_us_max', 'output_latency_ms'];
const metricFields = { struct_size: 'uint32', output_channels: 'uint32' };
for (const n of u64) metricFields[n] = 'uint64';
for (const n of f64) metricFields[n] = 'double';
Object.assign(metricFields, {
  stream_rate: 'uint32', device_rate: 'uint32', content_rate: 'uint32', device_format: 'int32',
  needs_resample: 'uint32', recreating: 'uint32', last_recreate_reason: 'uint32',
  frames_replayed: 'uint64', recreates: 'uint64', recreate_failures: 'uint64',
  recreates_refused: 'uint64', device_query_failures: 'uint64', last_route_gap_ms: 'double',
  recreate_ms_p50: 'double', recreate_ms_p95: 'double', recreate_ms_max: 'double',
  device_id: koffi.array('char', DEVICE_ID_LEN, 'String'),
  device_name: koffi.array('char', DEVICE_ID_LEN, 'String'),
  frames_flushed: 'uint64', frames_heard: 'uint64', markers_flushed: 'uint64',
  events_dropped: 'uint64', last_wake_ms: 'double', suspended: 'uint32', late_callbacks: 'uint64',
  resample_fallback: 'uint32', output_lost: 'uint32', outages: 'uint64', last_outage_ms: 'uint64',
  server_reconnects: 'uint64', server_underflows: 'uint64', trimmed_ms: 'double',
  flushes_rewritten: 'uint64', server_moves: 'uint64',
});
const ApMetrics = koffi.struct('ApMetrics', metricFields);

const fn = {
  config_init: lib.func('int32 ap_config_init(_Out_ ApConfig *cfg)'),
  create_ex: lib.func('int32 ap_create_ex(const ApConfig *cfg, _Out_ void **out, _Out_ uint8_t *reason, size_t len)'),
  destroy: lib.func('int32 ap_destroy(void *p)'),
  write: lib.func('int32 ap_write(void *p, const void *frames, size_t n, _Out_ size_t *written)'),
  drain: lib.func('int32 ap_drain(void *p, uint32 timeout_ms)'),
  end_utterance: lib.func('int32 ap_end_utterance(void *p)'),
  mark: lib.func('int32 ap_mark(void *p, uint64 id)'),
  flush: lib.func('int32 ap_flush(void *p, uint32 fade_ms, _Out_ uint64 *heard)'),
  pause: lib.func('int32 ap_pause(void *p, uint32 ramp_ms)'),
  resume: lib.func('int32 ap_resume(void *p, uint32 ramp_ms)'),
  set_volume: lib.func('int32 ap_set_volume(void *p, float gain, uint32 ramp_ms)'),
  set_gain_pan: lib.func('int32 ap_set_gain_pan(void *p, float gain, float pan, uint32 ramp_ms, uint32 scope)'),
  set_speed: lib.func('int32 ap_set_speed(void *p, float speed)'),
  set_input_format: lib.func('int32 ap_set_input_format(void *p, int32 format, uint32 channels, uint32 rate)'),
  list_devices: lib.func('int32 ap_list_devices(void *out, size_t capacity, _Out_ size_t *count)'),
  set_device: lib.func('int32 ap_set_device(void *p, const char *id)'),
  position: lib.func('int32 ap_position(void *p, _Out_ uint64 *heard, _Out_ uint64 *queued, _Out_ double *latency)'),
  metrics: lib.func('int32 ap_metrics(void *p, _Inout_ ApMetrics *m)'),
  snapshot_state: lib.func('int32 ap_snapshot_state(void *p, _Inout_ ApStreamState *s)'),
  poll_event: lib.func('int32 ap_poll_event(void *p, _Inout_ ApEvent *e, _Out_ size_t *n)'),
  last_error: lib.func('int32 ap_last_error(void *p, _Out_ uint8_t *buf, size_t len)'),
  strerror: lib.func('const char *ap_strerror(int32 code)'),
  version: lib.func('const char *ap_version()'),
};

const STATUS = {
  0: 'AP_OK', [-1]: 'AP_ERR_NULL', [-2]: 'AP_ERR_INVALID_ARG', [-3]: 'AP_ERR_STRUCT_SIZE',
  [-4]: 'AP_ERR_BAD_HANDLE', [-5]: 'AP_ERR_NO_DEVICE', [-6]: 'AP_ERR_DEVICE', [-7]: 'AP_ERR_TIMEOUT',
  [-8]: 'AP_ERR_CLOSED', [-9]: 'AP_ERR_PANIC', [-10]: 'AP_ERR_BUFFER_TOO_SMALL',
  [-11]: 'AP_ERR_NO_OUTPUT',
};
const ERR_INVALID_ARG = -2;
const ERR_TIMEOUT = -7;
const ERR_CLOSED = -8;

const FORMATS = { s16: 1, f32: 2 };
const SAMPLE_BYTES = { s16: 2, f32: 4 };
const STREAM_RATES = { content: 1, device: 2 };
const RESAMPLE_MODES = { callback: 1, producer: 2, off: 3 };
const QUALITIES = { linear: 1, high: 2 };
const EVENT_KINDS = { 1: 'marker', 2: 'utterance_start', 3: 'utterance_end', 4: 'underrun_start',
  5: 'underrun_end', 6: 'device_changed', 7: 'flushed', 8: 'output_lost', 9: 'output_restored' };
const EVENT_NAMES = new Set([...Object.values(EVENT_KINDS), 'event']);
const DEVICE_FORMATS = { 0: 'unknown', 1: 'i16', 2: 'f32', 3: 'i32', 4: 'i24', 5: 'u8', 6: 'f64', 7: 'other' };
const REASONS = { 0: 'none', 1: 'initial', 2: 'device_changed', 3: 'stream_lost', 4: 'format_changed',
  5: 'retry', 6: 'requested', 7: 'server_restarted' };

// ---------------------------------------------------------------------------------------------
// Errors.

/** A call the library refused: `status` is the ApStatus, `code` its name, `reason` the library's words. */
class AudioplayError extends Error {
  constructor(status, call, reason) {
    super(errorMessage(status, call, reason));
    this.name = 'AudioplayError';
    this.status = status;
    this.code = STATUS[status] || `AP_STATUS_${status}`;
    this.reason = reason || '';
  }
}

/** The library found an argument out of range (AP_ERR_INVALID_ARG): a RangeError with the library's reason. */
class AudioplayRangeError extends RangeError {
  constructor(status, call, reason) {
    super(errorMessage(status, call, reason));
    this.name = 'AudioplayRangeError';
    this.status = status;
    this.code = STATUS[status];
    this.reason = reason || '';
  }
}

function errorMessage(status, call, reason) {
  const base = `${call}: ${fn.strerror(status)}`;
  return reason ? `${base}: ${reason}` : base;
}

function libraryError(status, call, reason) {
  return status === ERR_INVALID_ARG ? new AudioplayRangeError(status, call, reason)
    : new AudioplayError(status, call, reason);
}

function cString(buf) {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

// ---------------------------------------------------------------------------------------------
// Argument checks (before anything reaches koffi).

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'object') return `an object (${(v.constructor && v.constructor.name) || 'Object'})`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return `a ${typeof v}`;
}

function checkUint32(name, v, { min = 0, max = 0xffffffff } = {}) {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
  if (v < min || v > max) throw new RangeError(`${name} must be in ${min}..${max}, got ${v}`);
  return v;
}

function checkEnum(name, v, table) {
  const names = Object.keys(table);
  if (typeof v !== 'string') throw new TypeError(`${name} must be one of ${names.map((n) => `'${n}'`).join(', ')}, got ${describe(v)}`);
  if (!Object.prototype.hasOwnProperty.call(table, v)) {
    throw new RangeError(`${name} must be one of ${names.map((n) => `'${n}'`).join(', ')}, got '${v}'`);
  }
  return table[v];
}

function checkDeviceId(name, v, { allowNull }) {
  if (v === null && allowNull) return null;
  if (typeof v !== 'string') {
    throw new TypeError(`${name} must be a device id string${allowNull ? ' or null (the system default)' : ''}, got ${describe(v)}`);
  }
  if (v.length === 0) throw new RangeError(`${name} must not be empty`);
  if (v.includes('\0')) throw new RangeError(`${name} must not contain a NUL character`);
  if (Buffer.byteLength(v) >= 4096) throw new RangeError(`${name} is too long (${Buffer.byteLength(v)} bytes)`);
  return v;
}

// An identity string (application name, stream name, media role): 1..256 bytes, no NUL.
function checkName(name, v) {
  if (v === null) return null;
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string or null, got ${describe(v)}`);
  if (v.length === 0) throw new RangeError(`${name} must not be empty`);
  if (v.includes('\0')) throw new RangeError(`${name} must not contain a NUL character`);
  if (Buffer.byteLength(v) > 256) throw new RangeError(`${name} is too long (${Buffer.byteLength(v)} bytes, at most 256)`);
  return v;
}

function checkObject(name, v) {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new TypeError(`${name} must be an object, got ${describe(v)}`);
  }
  return v;
}

function checkKeys(name, obj, known) {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) {
      throw new TypeError(`unknown ${name} '${k}' (known: ${[...known].join(', ')})`);
    }
  }
}

// Player options: JS name -> [C field, check].
const u32 = (opts) => (name, v) => checkUint32(name, v, opts);
const OPTIONS = {
  rate: ['input_rate', u32()],
  channels: ['input_channels', u32()],
  format: ['input_format', (n, v) => checkEnum(n, v, FORMATS)],
  device: ['device_id', (n, v) => checkDeviceId(n, v, { allowNull: true })],
  targetLatencyMs: ['target_latency_ms', u32()],
  ringCapacityMs: ['ring_capacity_ms', u32()],
  writeTimeoutMs: ['write_timeout_ms', u32()],
  streamRate: ['prefer_stream_rate', (n, v) => checkEnum(n, v, STREAM_RATES)],
  resampleMode: ['resample_mode', (n, v) => checkEnum(n, v, RESAMPLE_MODES)],
  resampleQuality: ['resample_quality', (n, v) => checkEnum(n, v, QUALITIES)],
  devicePollMs: ['device_poll_ms', u32()],
  deviceQueryCooldownMs: ['device_query_cooldown_ms', u32()],
  maxRecreatePerMinute: ['max_recreate_per_minute', u32()],
  debounceMs: ['debounce_ms', u32()],
  maxReplayMs: ['max_replay_ms', u32()],
  recreateWarnMs: ['recreate_warn_ms', u32()],
  startThresholdMs: ['start_threshold_ms', u32()],
  idleSuspendMs: ['idle_suspend_ms', u32()],
  resampleP95LimitUs: ['resample_p95_limit_us', u32()],
  audioThreadPriority: ['audio_thread_priority', u32()],
  deviceLostTimeoutMs: ['device_lost_timeout_ms', u32()],
  // How the sound server shows and routes the stream (null: the library's default).
  applicationName: ['application_name', (n, v) => checkName(n, v)],
  applicationId: ['application_id', (n, v) => checkName(n, v)],
  streamName: ['stream_name', (n, v) => checkName(n, v)],
  mediaRole: ['media_role', (n, v) => checkName(n, v)],
  keepAwakeMs: ['keep_awake_ms', u32()],
  wakePrerollMs: ['wake_preroll_ms', u32()],
  // Leading-silence trim (0: off); the range is checked by the library (with its reason).
  trimThreshold: ['trim_threshold', (n, v) => {
    if (typeof v !== 'number') throw new TypeError(`${n} must be a number, got ${describe(v)}`);
    return v;
  }],
  trimKeepMs: ['trim_keep_ms', u32()],
  // The binding's own: how often events are polled while someone listens.
  eventPollMs: [null, u32({ min: 1, max: 1000 })],
};
const OPTION_NAMES = new Set(Object.keys(OPTIONS));

// ms arguments of methods: the library clamps ramps and fades at 10000.
const checkMs = (name, v) => checkUint32(name, v);

function checkMarkId(v) {
  if (typeof v !== 'number') throw new TypeError(`mark id must be a number, got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`mark id must be an integer in 0..${Number.MAX_SAFE_INTEGER}, got ${v}`);
  return v;
}

function num(v) { return typeof v === 'bigint' ? Number(v) : v; }

// Turns samples into bytes for ap_write, checking the type against the current format.
function sampleBytes(samples, format, frameBytes) {
  let buf;
  if (samples instanceof Int16Array || samples instanceof Float32Array) {
    const want = format === 's16' ? Int16Array : Float32Array;
    if (!(samples instanceof want)) {
      throw new TypeError(`the player's format is ${format}: write a ${want.name} (or raw bytes in a Buffer), got ${samples.constructor.name}`);
    }
    buf = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  } else if (samples instanceof Uint8Array) {
    buf = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  } else if (samples instanceof ArrayBuffer) {
    buf = Buffer.from(samples);
  } else {
    throw new TypeError(`samples must be an Int16Array (s16), a Float32Array (f32), a Buffer/Uint8Array or an ArrayBuffer of raw samples, got ${describe(samples)}`);
  }
  if (buf.length % frameBytes) {
    throw new RangeError(`samples are ${buf.length} bytes, not a whole number of ${frameBytes}-byte frames`);
  }
  // The library reads samples as aligned values; a Buffer slice can start anywhere.
  if (buf.byteOffset % 4) buf = Buffer.from(buf);
  return buf;
}

function callAsync(f, ...args) {
  return new Promise((resolve, reject) => {
    f.async(...args, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A player whose owner dropped it without close() is destroyed when collected.
const collector = new FinalizationRegistry((handle) => { fn.destroy(handle); });

// ---------------------------------------------------------------------------------------------

class Player extends EventEmitter {
  /**
   * Opens a player on the system default output (or `device`).
   * @param {object} [options] see index.d.ts (PlayerOptions)
   */
  constructor(options) {
    super();
    const opts = checkObject('options', options);
    checkKeys('option', opts, OPTION_NAMES);
    const cfg = {};
    fn.config_init(cfg);
    let pollMs = 20;
    for (const [name, [field, check]] of Object.entries(OPTIONS)) {
      const v = opts[name];
      if (v === undefined) continue;
      const c = check(name, v);
      if (field === null) pollMs = c;
      else cfg[field] = c;
    }
    const out = [null];
    const reason = Buffer.alloc(512);
    const st = fn.create_ex(cfg, out, reason, reason.length);
    if (st !== 0) throw libraryError(st, 'ap_create', cString(reason));
    this._handle = out[0];
    this._format = opts.format === undefined ? 's16' : opts.format;
    this._channels = cfg.input_channels;
    this._rate = cfg.input_rate;
    this._pollMs = pollMs;
    this._timer = null;
    this._ref = true;
    this._chain = Promise.resolve();
    this._pending = 0;
    this._epoch = 0;
    collector.register(this, this._handle, this);
    this.on('newListener', (name) => {
      if (EVENT_NAMES.has(name)) setImmediate(() => this._updatePolling());
    });
    this.on('removeListener', (name) => {
      if (EVENT_NAMES.has(name)) this._updatePolling();
    });
  }

  /** Sample format written now ('s16' or 'f32'). */
  get format() { return this._format; }
  /** Interleaved channels written now. */
  get channels() { return this._channels; }
  /** Content rate written now, Hz. */
  get rate() { return this._rate; }
  /** Bytes per frame of what is written now. */
  get frameBytes() { return this._channels * SAMPLE_BYTES[this._format]; }
  /** True once close() has run. */
  get closed() { return this._handle === null; }

  _live(call) {
    if (this._handle === null) throw new AudioplayError(ERR_CLOSED, call, 'the player is closed');
    return this._handle;
  }

  _check(st, call) {
    if (st === 0) return;
    let reason = '';
    if (this._handle !== null) {
      const buf = Buffer.alloc(512);
      if (fn.last_error(this._handle, buf, buf.length) === 0) reason = cString(buf);
    }
    throw libraryError(st, call, reason);
  }

  // Runs `op` after every write/drain/mark queued before it, in call order. A flush between
  // the call and its turn cancels it (`onFlushed` gives its result).
  _enqueue(op, onFlushed) {
    const epoch = this._epoch;
    this._pending++;
    const run = this._chain.then(() => {
      if (this._handle === null) throw new AudioplayError(ERR_CLOSED, 'audioplay', 'the player is closed');
      if (epoch !== this._epoch) return onFlushed();
      return op(epoch);
    });
    const done = () => { this._pending--; };
    this._chain = run.then(done, done);
    return run;
  }

  /**
   * Queues interleaved samples in the current format without blocking the event loop; waits
   * (on a worker thread) while the queue is full. Resolves with the frames queued: all of them,
   * or fewer when flush() or close() cut the write short. Writes run in call order.
   * @param {Int16Array|Float32Array|Buffer|Uint8Array|ArrayBuffer} samples
   * @returns {Promise<number>}
   */
  write(samples) {
    this._live('ap_write');
    const frameBytes = this.frameBytes;
    const buf = sampleBytes(samples, this._format, frameBytes);
    return this._enqueue((epoch) => this._writeAll(buf, frameBytes, epoch), () => 0);
  }

  async _writeAll(buf, frameBytes, epoch) {
    const frames = buf.length / frameBytes;
    let done = 0;
    while (done < frames) {
      if (this._handle === null || epoch !== this._epoch) break;
      const chunk = done === 0 ? buf : buf.subarray(done * frameBytes);
      const n = [0];
      const st = await callAsync(fn.write, this._handle, chunk, frames - done, n);
      if (st === ERR_CLOSED) break;
      this._check(st, 'ap_write');
      const got = num(n[0]);
      done += got;
      if (got === 0 && done < frames) await sleep(5); // write_timeout_ms 0: the queue is full
    }
    return done;
  }

  /**
   * Queues what fits now (blocking up to writeTimeoutMs while the queue is full) and returns
   * the frames queued. Runs at once, ahead of writes still pending from write().
   */
  writeSync(samples) {
    const h = this._live('ap_write');
    const frameBytes = this.frameBytes;
    const buf = sampleBytes(samples, this._format, frameBytes);
    const n = [0];
    this._check(fn.write(h, buf, buf.length / frameBytes, n), 'ap_write');
    return num(n[0]);
  }

  /**
   * Waits, on a worker thread, until everything written so far has been heard. Resolves true,
   * or false when `timeoutMs` passed first. Events heard before the drain completed are emitted
   * before it resolves.
   */
  drain(timeoutMs = 60000) {
    this._live('ap_drain');
    checkMs('timeoutMs', timeoutMs);
    return this._enqueue(async () => {
      const st = await callAsync(fn.drain, this._handle, timeoutMs);
      this._pollEvents();
      if (st === ERR_TIMEOUT) return false;
      this._check(st, 'ap_drain');
      return true;
    }, () => true);
  }

  /** Ends the utterance after what was written (including writes still pending). */
  endUtterance() {
    this._live('ap_end_utterance');
    this._soon(() => this._check(fn.end_utterance(this._handle), 'ap_end_utterance'));
  }

  /** Places marker `id` after what was written (including writes still pending). */
  mark(id) {
    this._live('ap_mark');
    checkMarkId(id);
    this._soon(() => this._check(fn.mark(this._handle, id), 'ap_mark'));
  }

  // Runs a quick call now, or after pending writes so it lands in call order.
  _soon(call) {
    if (this._pending === 0) return call();
    this._enqueue(call, () => undefined).catch((e) => this._deferredError(e));
    return undefined;
  }

  // A call that ran after pending writes failed: 'error' (thrown when nobody listens, as
  // EventEmitter does). A player closed meanwhile is not an error.
  _deferredError(e) {
    if (e instanceof AudioplayError && e.status === ERR_CLOSED) return;
    process.nextTick(() => this.emit('error', e));
  }

  /**
   * Barge-in: drops everything queued (writes still pending from write() included) and fades
   * out what is playing over `fadeMs`. Returns the content frame that was being heard.
   */
  flush(fadeMs = 10) {
    const h = this._live('ap_flush');
    checkMs('fadeMs', fadeMs);
    this._epoch++;
    const heard = [0];
    this._check(fn.flush(h, fadeMs, heard), 'ap_flush');
    return num(heard[0]);
  }

  /** Pauses with a `rampMs` fade; writes still queue. */
  pause(rampMs = 10) {
    const h = this._live('ap_pause');
    checkMs('rampMs', rampMs);
    this._check(fn.pause(h, rampMs), 'ap_pause');
  }

  /** Resumes after pause(), fading in over `rampMs`. */
  resume(rampMs = 10) {
    const h = this._live('ap_resume');
    checkMs('rampMs', rampMs);
    this._check(fn.resume(h, rampMs), 'ap_resume');
  }

  /**
   * Gain (linear 0..4) and pan (-1 left .. 1 right, equal-power; ignored on mono) from the
   * next frame written, ramped over `rampMs`; for this utterance only if `utterance`, else
   * until changed. Above unity a soft limiter prevents clipping.
   */
  setGainPan(gain, pan = 0, rampMs = 10, utterance = false) {
    const h = this._live('ap_set_gain_pan');
    if (typeof gain !== 'number') throw new TypeError(`gain must be a number, got ${describe(gain)}`);
    if (!(gain >= 0 && gain <= 4)) throw new RangeError(`gain must be in 0..4, got ${gain}`);
    if (typeof pan !== 'number') throw new TypeError(`pan must be a number, got ${describe(pan)}`);
    if (!(pan >= -1 && pan <= 1)) throw new RangeError(`pan must be in -1..1, got ${pan}`);
    checkMs('rampMs', rampMs);
    if (typeof utterance !== 'boolean') {
      throw new TypeError(`utterance must be a boolean, got ${describe(utterance)}`);
    }
    // AP_GAIN_UTTERANCE = 0, AP_GAIN_UNTIL_CHANGED = 1.
    this._check(fn.set_gain_pan(h, gain, pan, rampMs, utterance ? 0 : 1), 'ap_set_gain_pan');
  }

  /**
   * Speed without pitch change, in band: audio written from now on plays at `speed`
   * (0.5..4; 1 = as written, a bypass); the change is crossfaded. Positions and event frames
   * stay content frames; markers fire when their frame is heard.
   */
  setSpeed(speed) {
    const h = this._live('ap_set_speed');
    if (typeof speed !== 'number') throw new TypeError(`speed must be a number, got ${describe(speed)}`);
    if (!(speed >= 0.5 && speed <= 4)) throw new RangeError(`speed must be in 0.5..4, got ${speed}`);
    this._check(fn.set_speed(h, speed), 'ap_set_speed');
  }

  /** Output gain, linear 0..4 (1 = unchanged), ramped over `rampMs`. */
  setVolume(gain, rampMs = 10) {
    const h = this._live('ap_set_volume');
    if (typeof gain !== 'number') throw new TypeError(`gain must be a number, got ${describe(gain)}`);
    if (!(gain >= 0 && gain <= 4)) throw new RangeError(`gain must be in 0..4, got ${gain}`);
    checkMs('rampMs', rampMs);
    this._check(fn.set_volume(h, gain, rampMs), 'ap_set_volume');
  }

  /**
   * Voice change, in band: what is written from now on is in this format/channels/rate (any
   * left out stay as they are); what was written before plays as it was. Applies after writes
   * still pending.
   */
  setVoice(voice) {
    this._live('ap_set_input_format');
    const v = checkObject('voice', voice);
    checkKeys('voice field', v, new Set(['format', 'channels', 'rate']));
    const format = v.format === undefined ? this._format : v.format;
    const code = checkEnum('format', format, FORMATS);
    const channels = v.channels === undefined ? this._channels : checkUint32('channels', v.channels);
    const rate = v.rate === undefined ? this._rate : checkUint32('rate', v.rate);
    const apply = () => {
      this._check(fn.set_input_format(this._handle, code, channels, rate), 'ap_set_input_format');
    };
    if (this._pending === 0) {
      apply();
    } else {
      // Pending writes were checked against the old format: the change waits for them. The
      // header's ranges are checked now; a refusal at its turn goes to 'error'.
      checkUint32('channels', channels, { min: 1, max: 32 });
      checkUint32('rate', rate, { min: 1000, max: 384000 });
      this._enqueue(apply, () => apply()).catch((e) => this._deferredError(e));
    }
    this._format = format;
    this._channels = channels;
    this._rate = rate;
  }

  /** Moves playback to device `id` (null: follow the system default); nothing queued is lost. */
  setDevice(id) {
    const h = this._live('ap_set_device');
    const dev = checkDeviceId('device id', id, { allowNull: true });
    this._check(fn.set_device(h, dev), 'ap_set_device');
  }

  /** Where playback is (cheap): frame heard now, frames queued, device latency in ms. */
  position() {
    const h = this._live('ap_position');
    const heard = [0]; const queued = [0]; const latency = [0];
    this._check(fn.position(h, heard, queued, latency), 'ap_position');
    return { framesHeard: num(heard[0]), framesQueued: num(queued[0]), latencyMs: latency[0] };
  }

  /** A snapshot of the player's counters and timings (ApMetrics' fields, by their C names). */
  metrics() {
    const h = this._live('ap_metrics');
    const m = { struct_size: koffi.sizeof(ApMetrics) };
    this._check(fn.metrics(h, m), 'ap_metrics');
    delete m.struct_size;
    for (const k of Object.keys(m)) m[k] = num(m[k]);
    m.device_format = DEVICE_FORMATS[m.device_format] || 'other';
    m.last_recreate_reason = REASONS[m.last_recreate_reason] || String(m.last_recreate_reason);
    return m;
  }

  /** The current stream, read without locks. */
  state() {
    const h = this._live('ap_snapshot_state');
    const s = { struct_size: koffi.sizeof(ApStreamState) };
    this._check(fn.snapshot_state(h, s), 'ap_snapshot_state');
    return {
      started: s.started === 1, generation: num(s.generation), streamRate: s.stream_rate,
      deviceRate: s.device_rate, contentRate: s.content_rate, outputChannels: s.output_channels,
      recreating: s.recreating === 1, deviceFormat: DEVICE_FORMATS[s.device_format] || 'other',
      deviceId: s.device_id, deviceName: s.device_name,
    };
  }

  /** Takes the oldest event not yet taken, or null. (Listening with on() polls for you.) */
  pollEvent() {
    const h = this._live('ap_poll_event');
    const e = { struct_size: koffi.sizeof(ApEvent) };
    const n = [0];
    this._check(fn.poll_event(h, e, n), 'ap_poll_event');
    if (num(n[0]) === 0) return null;
    return { kind: EVENT_KINDS[e.kind] || 'unknown', id: num(e.id), frame: num(e.frame), heardMs: e.heard_ms };
  }

  /** The library's last error message for this player ('' if none). */
  lastError() {
    const h = this._live('ap_last_error');
    const buf = Buffer.alloc(512);
    this._check(fn.last_error(h, buf, buf.length), 'ap_last_error');
    return cString(buf);
  }

  _listening() {
    for (const n of EVENT_NAMES) if (this.listenerCount(n) > 0) return true;
    return false;
  }

  _updatePolling() {
    const want = this._handle !== null && this._listening();
    if (want && this._timer === null) {
      this._timer = setInterval(() => this._pollEvents(), this._pollMs);
      if (!this._ref) this._timer.unref();
    } else if (!want && this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  _pollEvents() {
    if (this._handle === null || !this._listening()) return;
    for (let i = 0; i < 4096; i++) {
      const e = this.pollEvent();
      if (e === null) break;
      this.emit(e.kind, e);
      this.emit('event', e);
      if (this._handle === null) break;
    }
  }

  /** Lets the process exit while this player's event polling is the only thing left (like socket.unref()). */
  unref() { this._ref = false; if (this._timer) this._timer.unref(); return this; }
  /** Undoes unref(): an open player with event listeners keeps the process alive. */
  ref() { this._ref = true; if (this._timer) this._timer.ref(); return this; }

  /**
   * A Writable of raw sample bytes in the current format (chunks may split frames). By default
   * the stream ends the utterance and drains on end, so 'finish' means everything was heard.
   */
  createWriteStream(options) {
    const o = checkObject('options', options);
    checkKeys('stream option', o, new Set(['drain', 'drainTimeoutMs', 'endUtterance', 'highWaterMark']));
    for (const k of ['drain', 'endUtterance']) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new TypeError(`${k} must be a boolean, got ${describe(o[k])}`);
    }
    const drainAtEnd = o.drain !== false;
    const endAtEnd = o.endUtterance !== false;
    const drainTimeoutMs = o.drainTimeoutMs === undefined ? 60000 : checkUint32('drainTimeoutMs', o.drainTimeoutMs);
    const hwm = o.highWaterMark === undefined ? undefined : checkUint32('highWaterMark', o.highWaterMark);
    this._live('ap_write');
    const player = this;
    let rest = Buffer.alloc(0);
    return new Writable({
      decodeStrings: false,
      highWaterMark: hwm,
      write(chunk, encoding, cb) {
        if (!(chunk instanceof Uint8Array)) {
          cb(new TypeError(`the stream takes raw sample bytes (Buffer), got ${describe(chunk)}`));
          return;
        }
        let bytes = rest.length ? Buffer.concat([rest, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const fb = player.frameBytes;
        const whole = bytes.length - (bytes.length % fb);
        rest = Buffer.from(bytes.subarray(whole));
        bytes = bytes.subarray(0, whole);
        if (whole === 0) { cb(); return; }
        let p;
        try { p = player.write(bytes); } catch (e) { cb(e); return; }
        p.then(() => cb(), cb);
      },
      final(cb) {
        if (rest.length) {
          cb(new RangeError(`the stream ended inside a frame (${rest.length} bytes left over)`));
          return;
        }
        try {
          if (endAtEnd) player.endUtterance();
          if (!drainAtEnd) { cb(); return; }
          player.drain(drainTimeoutMs).then((ok) => {
            cb(ok ? null : new AudioplayError(ERR_TIMEOUT, 'ap_drain', `not heard within ${drainTimeoutMs} ms`));
          }, cb);
        } catch (e) { cb(e); }
      },
    });
  }

  /** Stops playback and frees the player; pending write()/drain() settle. Idempotent. */
  close() {
    if (this._handle === null) return;
    try { this._pollEvents(); } catch (_) { /* closing anyway */ }
    const h = this._handle;
    this._handle = null;
    this._updatePolling();
    collector.unregister(this);
    fn.destroy(h);
  }
}

/** The system's output devices (on a worker thread: it opens its own connection). */
async function listDevices() {
  for (let attempt = 0; attempt < 4; attempt++) {
    const count = [0];
    let st = await callAsync(fn.list_devices, null, 0, count);
    if (st !== 0) throw libraryError(st, 'ap_list_devices', '');
    const cap = num(count[0]) + 4;
    const size = koffi.sizeof(ApDeviceInfo);
    const buf = Buffer.alloc(cap * size);
    st = await callAsync(fn.list_devices, buf, cap, count);
    if (st === -10 || (st === 0 && num(count[0]) > cap)) continue; // more devices appeared meanwhile
    if (st !== 0) throw libraryError(st, 'ap_list_devices', '');
    const out = [];
    for (let i = 0; i < Math.min(cap, num(count[0])); i++) {
      const d = koffi.decode(buf, i * size, ApDeviceInfo);
      out.push({ id: d.id, name: d.name, rate: d.rate, channels: d.channels, isDefault: d.is_default === 1 });
    }
    return out;
  }
  throw new AudioplayError(-10, 'ap_list_devices', 'the device list kept growing');
}

module.exports = {
  Player,
  AudioplayError,
  AudioplayRangeError,
  listDevices,
  version: () => fn.version(),
  library: { path: loaded.file, from: loaded.from },
};
