'use strict';
// Real playback through the private PulseAudio server the harness started (PULSE_SERVER or
// XDG_RUNTIME_DIR): frames heard, the event loop during drain, streams, events, the whole API.
const test = require('node:test');
const assert = require('node:assert');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const { once } = require('node:events');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Player, AudioplayError, listDevices, version, library } = require('..');
const { sleep, toneF32, toneS16, until, addSink, recordSink, windowRms } = require('../test-support/helpers');

test('a tone plays: every frame written is played after drain', async () => {
  const p = new Player({ rate: 24000, format: 'f32' });
  try {
    const frames = 12000;
    assert.strictEqual(await p.write(toneF32(440, 24000, frames)), frames);
    p.endUtterance();
    assert.strictEqual(await p.drain(5000), true);
    const m = p.metrics();
    assert.strictEqual(m.frames_written, frames);
    assert.strictEqual(m.frames_played, frames);
    assert.strictEqual(m.frames_queued, 0);
    assert.strictEqual(m.underruns, 0);
    assert.strictEqual(m.content_rate, 24000);
    assert.ok(m.callbacks > 0);
    assert.ok(m.device_id.length > 0, 'a device id');
  } finally {
    p.close();
  }
});

test('the event loop keeps running while drain and a blocking write wait', async (t) => {
  // A 200 ms queue and 1.5 s of audio: write() waits for room and drain() for the end, both
  // on worker threads. A 10 ms interval must keep ticking throughout.
  const p = new Player({ rate: 16000, ringCapacityMs: 200 });
  const ticks = [];
  const timer = setInterval(() => ticks.push(Date.now()), 10);
  try {
    const t0 = Date.now();
    const frames = 24000;
    assert.strictEqual(await p.write(toneS16(330, 16000, frames)), frames);
    const wrote = Date.now() - t0;
    assert.ok(await p.drain(10000));
    const elapsed = Date.now() - t0;
    clearInterval(timer);
    t.diagnostic(`write ${wrote} ms, drain done at ${elapsed} ms, ${ticks.length} ticks, longest gap ${ticks.slice(1).reduce((g, x, i) => Math.max(g, x - ticks[i]), 0)} ms`);
    assert.ok(wrote > 1000, `the write waited for room (${wrote} ms)`);
    assert.ok(elapsed >= 1400, `drain waited for the audio (${elapsed} ms)`);
    let gap = 0;
    for (let i = 1; i < ticks.length; i++) gap = Math.max(gap, ticks[i] - ticks[i - 1]);
    // Blocking calls would stop the ticks for the whole 1.4 s; a loaded 2-core machine delays
    // timers by up to ~0.2 s, so the bounds leave room for that and none for a blocked loop.
    assert.ok(ticks.length >= elapsed / 10 / 4, `${ticks.length} ticks in ${elapsed} ms`);
    assert.ok(gap < 500, `longest gap between ticks ${gap} ms`);
    assert.strictEqual(p.metrics().frames_played, frames);
  } finally {
    clearInterval(timer);
    p.close();
  }
});

test('a Readable pipes into the player\'s Writable; finish means heard', async () => {
  const p = new Player({ rate: 22050, channels: 2, format: 's16' });
  try {
    const frames = 11025;
    const bytes = Buffer.from(toneS16(523, 22050, frames, 2).buffer);
    // Chunks of odd sizes, so frames are split across chunks.
    async function* chunks() {
      for (let at = 0; at < bytes.length; at += 999) {
        yield bytes.subarray(at, Math.min(at + 999, bytes.length));
      }
    }
    await pipeline(Readable.from(chunks()), p.createWriteStream());
    const m = p.metrics();
    assert.strictEqual(m.frames_written, frames);
    assert.strictEqual(m.frames_played, frames);
    // A stream ending inside a frame is an error, not silently dropped bytes.
    await assert.rejects(pipeline(Readable.from([Buffer.alloc(3)]), p.createWriteStream()), RangeError);
    await assert.rejects(pipeline(Readable.from(['text']), p.createWriteStream()), TypeError);
  } finally {
    p.close();
  }
});

test('events arrive on the EventEmitter: markers, utterance start and end, flushed', async () => {
  const p = new Player({ rate: 24000, format: 'f32' });
  try {
    const seen = [];
    p.on('event', (e) => seen.push(e));
    const markers = [];
    p.on('marker', (e) => markers.push(e.id));
    const ended = once(p, 'utterance_end');
    p.mark(1);
    const pending = p.write(toneF32(440, 24000, 4800));
    p.mark(2); // after the pending write, in call order
    const second = p.write(toneF32(660, 24000, 4800));
    p.endUtterance();
    await Promise.all([pending, second]);
    assert.ok(await p.drain(5000));
    const [end] = await ended;
    assert.strictEqual(end.kind, 'utterance_end');
    assert.strictEqual(end.frame, 9600);
    assert.deepStrictEqual(markers, [1, 2]);
    const m = seen.filter((e) => e.kind === 'marker');
    assert.deepStrictEqual(m.map((e) => e.frame), [0, 4800]);
    assert.deepStrictEqual(seen.map((e) => e.kind), ['utterance_start', 'marker', 'marker', 'utterance_end']);
    assert.ok(seen[3].heardMs >= seen[0].heardMs + 300, 'heard 400 ms of audio');

    const flushed = once(p, 'flushed');
    await p.write(toneF32(440, 24000, 24000));
    await sleep(200);
    const heard = p.flush(10);
    assert.ok(heard > 0 && heard < 9600 + 24000, `heard frame ${heard}`);
    const [f] = await flushed;
    assert.ok(f.frame >= heard, `fade ended at ${f.frame}, asked at ${heard}`);
    const after = p.metrics();
    assert.ok(after.frames_flushed > 0);
    assert.strictEqual(after.frames_written, after.frames_played + after.frames_queued + after.frames_flushed + after.frames_dropped);
  } finally {
    p.close();
  }
});

test('flush cancels writes still pending, and close settles them', async () => {
  const p = new Player({ rate: 16000, ringCapacityMs: 100 });
  try {
    const a = p.write(toneS16(440, 16000, 16000));
    const b = p.write(toneS16(440, 16000, 16000));
    await sleep(150);
    p.flush(0);
    const [na, nb] = await Promise.all([a, b]);
    assert.ok(na < 16000, `the blocked write stopped at ${na}`);
    assert.strictEqual(nb, 0, 'the queued write was dropped');
    const c = p.write(toneS16(440, 16000, 32000));
    const d = p.drain(10000);
    await sleep(100);
    p.close();
    assert.ok((await c) < 32000);
    await assert.rejects(d, (e) => e instanceof AudioplayError && e.code === 'AP_ERR_CLOSED');
    assert.throws(() => p.metrics(), (e) => e instanceof AudioplayError && /closed/.test(e.message));
    p.close(); // idempotent
  } finally {
    p.close();
  }
});

test('pause holds the position, resume goes on; volume, voice change, position, state', async () => {
  const p = new Player({ rate: 24000, format: 'f32' });
  try {
    await p.write(toneF32(440, 24000, 24000));
    await until('playback', () => p.position().framesHeard > 2400);
    p.pause(5);
    await sleep(100);
    const held = p.position().framesHeard;
    await sleep(300);
    assert.strictEqual(p.position().framesHeard, held, 'position holds while paused');
    assert.strictEqual(p.metrics().underruns, 0, 'no underrun counted while paused');
    p.resume(5);
    await until('playback after resume', () => p.position().framesHeard > held + 2400);
    p.setVolume(0.5, 10);
    p.setVolume(0, 10);
    p.setVolume(4);
    p.setVolume(1);
    const pos = p.position();
    assert.ok(pos.framesQueued >= 0 && pos.latencyMs >= 0);
    // Voice change: 16 kHz mono s16 from here on.
    p.setVoice({ format: 's16', rate: 16000 });
    assert.strictEqual(p.format, 's16');
    assert.throws(() => p.write(toneF32(440, 24000, 10)), TypeError);
    assert.strictEqual(await p.write(toneS16(440, 16000, 8000)), 8000);
    assert.ok(await p.drain(5000));
    const m = p.metrics();
    assert.strictEqual(m.frames_written, 32000);
    assert.strictEqual(m.frames_played, 32000);
    assert.strictEqual(m.content_rate, 16000);
    const s = p.state();
    assert.strictEqual(s.started, true);
    assert.strictEqual(s.contentRate, 16000);
    assert.strictEqual(s.deviceId, m.device_id);
    assert.ok(s.streamRate > 0 && s.outputChannels > 0);
    assert.strictEqual(p.writeSync(new Int16Array(160)), 160);
    // A drain that runs out of time resolves false; the audio plays on.
    await p.write(toneS16(440, 16000, 16000));
    const t0 = Date.now();
    assert.strictEqual(await p.drain(50), false);
    assert.ok(Date.now() - t0 < 500, 'drain(50) gave up in time');
    p.flush(0);
    assert.strictEqual(typeof p.lastError(), 'string');
    assert.throws(() => p.setVoice({ rate: 5 }), RangeError);
    assert.match(p.lastError(), /rate/);
  } finally {
    p.close();
  }
});

test('setVolume changes what is heard: a quarter of the gain is a quarter of the level', async (t) => {
  const p = new Player({ rate: 48000, format: 'f32' });
  try {
    const sink = p.metrics().device_id;
    const rec = recordSink(sink, 48000);
    await sleep(300); // the recorder is running
    const burst = toneF32(1000, 48000, 14400, 1, 0.4); // 300 ms
    const gap = new Float32Array(14400);
    await p.write(burst);
    await p.write(gap);
    assert.ok(await p.drain(5000));
    p.setVolume(0.25, 0);
    await p.write(burst);
    await p.write(gap);
    assert.ok(await p.drain(5000));
    const samples = await rec.stop();
    // 10 ms windows: the first burst's sit near 0.4/sqrt(2) = 0.283, the second's near a
    // quarter of that; windows across an edge (or a dropout under load) fall in between.
    const rms = windowRms(samples, 480);
    const full = rms.filter((r) => r > 0.15);
    const quarter = rms.filter((r) => r > 0.03 && r < 0.15);
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    assert.ok(full.length >= 10 && quarter.length >= 10,
      `${full.length} windows at full level, ${quarter.length} lower (of 30 each)`);
    const [a, b] = [median(full), median(quarter)];
    t.diagnostic(`levels ${a.toFixed(4)} and ${b.toFixed(4)} (ratio ${(a / b).toFixed(3)}), ${full.length}+${quarter.length} windows`);
    assert.ok(Math.abs(a - 0.4 / Math.SQRT2) < 0.03, `full-gain level ${a}`);
    assert.ok(Math.abs(a / b - 4) < 0.4, `levels ${a} and ${b}: ratio ${a / b}`);
  } finally {
    p.close();
  }
});

test('a voice change behind pending writes applies after them, in call order', async () => {
  const p = new Player({ rate: 24000, format: 'f32' });
  try {
    const first = p.write(toneF32(440, 24000, 12000));
    p.setVoice({ format: 's16', channels: 2, rate: 16000 });
    assert.strictEqual(p.frameBytes, 4);
    const second = p.write(toneS16(440, 16000, 8000, 2));
    assert.deepStrictEqual(await Promise.all([first, second]), [12000, 8000]);
    assert.ok(await p.drain(5000));
    const m = p.metrics();
    assert.strictEqual(m.frames_played, 20000);
    assert.strictEqual(p.state().contentRate, 16000);
    assert.throws(() => { p.write(toneF32(1, 1, 1)); }, TypeError);
  } finally {
    p.close();
  }
});

test('devices: listed, and playback moves to another with a device_changed event', async () => {
  const remove = addSink('node_alt', 16000, 1);
  const p = new Player({ rate: 16000 });
  try {
    const devices = await listDevices();
    const alt = devices.find((d) => d.id === 'node_alt');
    assert.ok(alt, `node_alt listed in ${JSON.stringify(devices)}`);
    assert.strictEqual(alt.rate, 16000);
    assert.strictEqual(alt.channels, 1);
    assert.strictEqual(devices.filter((d) => d.isDefault).length, 1);
    const before = p.metrics().device_id;
    assert.notStrictEqual(before, 'node_alt');
    const changed = once(p, 'device_changed');
    await p.write(toneS16(440, 16000, 16000));
    p.setDevice('node_alt');
    const [e] = await changed;
    assert.ok(e.id >= 2, `new stream generation ${e.id}`);
    assert.ok(await p.drain(5000));
    const m = p.metrics();
    assert.strictEqual(m.device_id, 'node_alt');
    assert.strictEqual(m.last_recreate_reason, 'requested');
    assert.strictEqual(m.frames_played, 16000, 'nothing lost in the move');
    p.setDevice(null);
  } finally {
    p.close();
    remove();
  }
});

test('listeners keep the process alive until close(), unless unref()', () => {
  const run = (code) => spawnSync(process.execPath, ['-e', `
    const { Player } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const p = new Player();
    p.on('marker', () => {});
    ${code}`], { timeout: 3000, encoding: 'utf8' });
  const unref = run('p.unref();');
  assert.deepStrictEqual([unref.status, unref.signal], [0, null], `unref'd: ${unref.stderr}`);
  const closed = run('setTimeout(() => p.close(), 300);');
  assert.deepStrictEqual([closed.status, closed.signal], [0, null], `closed: ${closed.stderr}`);
  const held = run('');
  assert.strictEqual(held.signal, 'SIGTERM', 'an open player with a listener keeps the process alive (killed at the timeout)');
});

test('version and the library found', () => {
  assert.match(version(), /^\d+\.\d+\.\d+$/);
  assert.ok(['bundled', 'repository build', 'AUDIOPLAY_LIB', 'system'].includes(library.from));
  assert.ok(library.path.length > 0);
});
