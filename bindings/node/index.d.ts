/// <reference types="node" />
// Types for audioplay's Node binding. Strict on purpose: an option, a metric or an event name
// that does not exist is a compile error, not a silent undefined.

import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';

export type Format = 's16' | 'f32';
export type StreamRate = 'device' | 'content';
export type ResampleMode = 'callback' | 'producer' | 'off';
export type ResampleQuality = 'linear' | 'high';
export type DeviceFormat = 'unknown' | 'i16' | 'f32' | 'i32' | 'i24' | 'u8' | 'f64' | 'other';
export type RecreateReason = 'none' | 'initial' | 'device_changed' | 'stream_lost' | 'format_changed'
  | 'retry' | 'requested' | 'server_restarted';

/** Options of `new Player()`; every one is optional and checked (TypeError / RangeError). */
export interface PlayerOptions {
  /** Content sample rate, Hz, 1000..384000 (default 22050). */
  rate?: number;
  /** Interleaved channels, 1..32 (default 1). */
  channels?: number;
  /** Sample format of what is written (default 's16'). */
  format?: Format;
  /** Output device id (see listDevices()); null or left out follows the system default. */
  device?: string | null;
  /** Device buffer target, ms, 2..1000 (default 20). */
  targetLatencyMs?: number;
  /** Queue capacity, ms of content, 10..60000 (default 2000). */
  ringCapacityMs?: number;
  /** How long one ap_write may wait for room, ms, 0..600000; 0 = never wait (default 1000). */
  writeTimeoutMs?: number;
  streamRate?: StreamRate;
  resampleMode?: ResampleMode;
  resampleQuality?: ResampleQuality;
  /** How often the output device is checked, ms, 10..10000 (default 250). */
  devicePollMs?: number;
  deviceQueryCooldownMs?: number;
  /** 1..600 (default 30). */
  maxRecreatePerMinute?: number;
  debounceMs?: number;
  maxReplayMs?: number;
  recreateWarnMs?: number;
  /** Pre-roll before an utterance starts, ms (default 0). */
  startThresholdMs?: number;
  /** Pause the device stream after this long idle, ms (default 0 = never). */
  idleSuspendMs?: number;
  resampleP95LimitUs?: number;
  /** SCHED_FIFO priority 1..99 asked for the audio thread, 0 = leave it (default 10). */
  audioThreadPriority?: number;
  /** Give up on a lost output after this long, ms (default 10000; 0 = never). */
  deviceLostTimeoutMs?: number;
  /** application.name the sound server shows (default: the program's name). */
  applicationName?: string | null;
  /** application.id, reverse-DNS (default: none). */
  applicationId?: string | null;
  /** media.name of the stream (default "Speech"). */
  streamName?: string | null;
  /** media.role of the stream (default "a11y"; "none" sets no role). */
  mediaRole?: string | null;
  /** Suspend the device stream after this long idle, ms (default 30000; 0 = never). */
  keepAwakeMs?: number;
  /** Silence played after a suspend before the first frame, ms, 0..1000 (default 0). */
  wakePrerollMs?: number;
  /** Leading-silence trim threshold (full scale 1; 0 = off, the default). */
  trimThreshold?: number;
  /** Leading silence kept before the first sound when trimming, ms (default 10). */
  trimKeepMs?: number;
  /** How often events are polled while someone listens, ms, 1..1000 (default 20). */
  eventPollMs?: number;
}

/** A voice change: what is written from now on (fields left out stay as they are). */
export interface Voice {
  format?: Format;
  channels?: number;
  rate?: number;
}

export type EventKind = 'marker' | 'utterance_start' | 'utterance_end' | 'underrun_start'
  | 'underrun_end' | 'device_changed' | 'flushed' | 'output_lost' | 'output_restored';

export interface PlayerEvent<K extends EventKind = EventKind> {
  kind: K;
  /** The marker id (marker), the new stream generation (device_changed, output_restored), else 0. */
  id: number;
  /** The content frame it happened at (flushed: where the fade ended). */
  frame: number;
  /** When the listener heard it, ms since the player was created. */
  heardMs: number;
}

/** Listeners by name: each event kind, 'event' for all of them, and 'error' for a call that
 * ran after pending writes (mark, endUtterance, setVoice) and failed. */
export type PlayerEvents = { [K in EventKind]: PlayerEvent<K> } & { event: PlayerEvent; error: Error };
export type PlayerEventName = keyof PlayerEvents;

export interface Position {
  framesHeard: number;
  framesQueued: number;
  latencyMs: number;
}

export interface StreamState {
  started: boolean;
  generation: number;
  streamRate: number;
  deviceRate: number;
  contentRate: number;
  outputChannels: number;
  recreating: boolean;
  deviceFormat: DeviceFormat;
  deviceId: string;
  deviceName: string;
}

export interface Device {
  id: string;
  name: string;
  rate: number;
  channels: number;
  isDefault: boolean;
}

/** ApMetrics, by its C field names. */
export interface Metrics {
  output_channels: number;
  frames_written: number;
  frames_played: number;
  frames_queued: number;
  frames_dropped: number;
  underruns: number;
  generation_mismatches: number;
  shape_mismatches: number;
  callback_errors: number;
  resample_errors: number;
  callbacks: number;
  stream_errors: number;
  stream_generation: number;
  callback_us_p50: number;
  callback_us_p95: number;
  callback_us_p99: number;
  callback_us_max: number;
  resample_us_p50: number;
  resample_us_p95: number;
  resample_us_p99: number;
  resample_us_max: number;
  output_latency_ms: number;
  stream_rate: number;
  device_rate: number;
  content_rate: number;
  device_format: DeviceFormat;
  needs_resample: number;
  recreating: number;
  last_recreate_reason: RecreateReason;
  frames_replayed: number;
  recreates: number;
  recreate_failures: number;
  recreates_refused: number;
  device_query_failures: number;
  last_route_gap_ms: number;
  recreate_ms_p50: number;
  recreate_ms_p95: number;
  recreate_ms_max: number;
  device_id: string;
  device_name: string;
  frames_flushed: number;
  frames_heard: number;
  markers_flushed: number;
  events_dropped: number;
  last_wake_ms: number;
  suspended: number;
  late_callbacks: number;
  resample_fallback: number;
  output_lost: number;
  outages: number;
  last_outage_ms: number;
  server_reconnects: number;
  server_underflows: number;
  /** Leading silence dropped at utterance starts, ms. */
  trimmed_ms: number;
  /** Flushes whose fade was written into what the sound server already held. */
  flushes_rewritten: number;
  /** Route changes the server made itself that the stream kept (no recreate, no gap). */
  server_moves: number;
}
export type MetricName = keyof Metrics;

export type StatusCode = 'AP_ERR_NULL' | 'AP_ERR_INVALID_ARG' | 'AP_ERR_STRUCT_SIZE' | 'AP_ERR_BAD_HANDLE'
  | 'AP_ERR_NO_DEVICE' | 'AP_ERR_DEVICE' | 'AP_ERR_TIMEOUT' | 'AP_ERR_CLOSED' | 'AP_ERR_PANIC'
  | 'AP_ERR_BUFFER_TOO_SMALL' | 'AP_ERR_NO_OUTPUT';

/** A call the library refused. */
export class AudioplayError extends Error {
  /** The ApStatus (negative). */
  readonly status: number;
  readonly code: StatusCode;
  /** The library's reason ('' if it gave none). */
  readonly reason: string;
}

/** The library found an argument out of range (AP_ERR_INVALID_ARG). */
export class AudioplayRangeError extends RangeError {
  readonly status: -2;
  readonly code: 'AP_ERR_INVALID_ARG';
  readonly reason: string;
}

export type Samples = Int16Array | Float32Array | Uint8Array | ArrayBuffer;

export interface WriteStreamOptions {
  /** Drain at the end, so 'finish' means everything was heard (default true). */
  drain?: boolean;
  drainTimeoutMs?: number;
  /** End the utterance at the end (default true). */
  endUtterance?: boolean;
  highWaterMark?: number;
}

export class Player extends EventEmitter {
  constructor(options?: PlayerOptions);
  readonly format: Format;
  readonly channels: number;
  readonly rate: number;
  readonly frameBytes: number;
  readonly closed: boolean;

  /** Queues samples without blocking the event loop; resolves with the frames queued. */
  write(samples: Samples): Promise<number>;
  /** Queues what fits now (waits up to writeTimeoutMs); returns the frames queued. */
  writeSync(samples: Samples): number;
  /** Resolves true once everything written was heard, false on timeout. */
  drain(timeoutMs?: number): Promise<boolean>;
  endUtterance(): void;
  mark(id: number): void;
  /** Barge-in; returns the content frame being heard. */
  flush(fadeMs?: number): number;
  pause(rampMs?: number): void;
  resume(rampMs?: number): void;
  /** Linear gain 0..4. */
  setVolume(gain: number, rampMs?: number): void;
  /** Gain (0..4) and pan (-1..1, equal-power; ignored on mono) from the next frame written,
   * ramped; for this utterance only if `utterance`, else until changed. */
  setGainPan(gain: number, pan?: number, rampMs?: number, utterance?: boolean): void;
  /** Speed without pitch change, 0.5..4 (1 = as written), from the next frame written. */
  setSpeed(speed: number): void;
  setVoice(voice: Voice): void;
  setDevice(id: string | null): void;
  position(): Position;
  metrics(): Metrics;
  state(): StreamState;
  pollEvent(): PlayerEvent | null;
  lastError(): string;
  createWriteStream(options?: WriteStreamOptions): Writable;
  ref(): this;
  unref(): this;
  close(): void;

  on<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  once<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  off<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  addListener<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  removeListener<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  prependListener<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  prependOnceListener<K extends PlayerEventName>(event: K, listener: (event: PlayerEvents[K]) => void): this;
  emit<K extends PlayerEventName>(event: K, value: PlayerEvents[K]): boolean;
}

export function listDevices(): Promise<Device[]>;
export function version(): string;
/** Which libaudioplay was loaded, and how it was found. */
export const library: { readonly path: string; readonly from: 'bundled' | 'repository build' | 'AUDIOPLAY_LIB' | 'system' };
