// Must compile under tsc --strict: the whole API as a TypeScript user writes it.
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import {
  Player, AudioplayError, AudioplayRangeError, listDevices, version, library,
  Metrics, MetricName, PlayerEvent, PlayerOptions, Device, Position, StreamState,
} from 'audioplay';

async function main(): Promise<void> {
  const opts: PlayerOptions = {
    rate: 24000, channels: 1, format: 'f32', device: null, targetLatencyMs: 20, ringCapacityMs: 2000,
    writeTimeoutMs: 1000, streamRate: 'device', resampleMode: 'callback', resampleQuality: 'high',
    devicePollMs: 250, deviceQueryCooldownMs: 1000, maxRecreatePerMinute: 30, debounceMs: 60,
    maxReplayMs: 200, recreateWarnMs: 500, startThresholdMs: 0, idleSuspendMs: 0,
    resampleP95LimitUs: 5000, audioThreadPriority: 0, deviceLostTimeoutMs: 10000, eventPollMs: 20,
  };
  const p = new Player(opts);
  p.on('marker', (e: PlayerEvent<'marker'>) => { const id: number = e.id; void id; });
  p.on('utterance_end', (e) => { const k: 'utterance_end' = e.kind; void k; });
  p.once('event', (e) => { const f: number = e.frame + e.heardMs; void f; });
  p.off('flushed', () => {});
  p.on('error', (e: Error) => { const s: string = e.message; void s; });
  p.mark(1);
  const n: number = await p.write(new Float32Array(2400));
  const m: number = p.writeSync(Buffer.alloc(4 * 10));
  p.endUtterance();
  const heard: boolean = await p.drain(5000);
  p.pause(10);
  p.resume();
  p.setVolume(0.5, 20);
  p.setVoice({ format: 's16', rate: 16000 });
  await p.write(new Int16Array(160));
  p.setDevice(null);
  const devices: Device[] = await listDevices();
  const first = devices[0];
  if (first !== undefined) p.setDevice(first.id);
  const pos: Position = p.position();
  const st: StreamState = p.state();
  const metrics: Metrics = p.metrics();
  const name: MetricName = 'frames_played';
  const played: number = metrics[name];
  const dev: string = metrics.device_id;
  const fmt: 'i16' | 'f32' | 'unknown' | 'i32' | 'i24' | 'u8' | 'f64' | 'other' = metrics.device_format;
  const ev: PlayerEvent | null = p.pollEvent();
  const flushedAt: number = p.flush(10);
  const w = p.createWriteStream({ drain: true, drainTimeoutMs: 5000 });
  await pipeline(Readable.from([Buffer.alloc(320)]), w);
  const msg: string = p.lastError();
  p.unref().ref();
  p.close();
  const closed: boolean = p.closed;
  const v: string = version();
  const where: string = library.path + library.from;
  try { new Player({ rate: 5 }); } catch (e) {
    if (e instanceof AudioplayRangeError) { const r: string = e.reason; const s: -2 = e.status; void r; void s; }
    if (e instanceof AudioplayError) { const s: number = e.status; void s; }
  }
  void [n, m, heard, pos, st, played, dev, fmt, ev, flushedAt, msg, closed, v, where];
}
void main();
