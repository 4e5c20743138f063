'use strict';
// Runs on the PulseAudio harness scripts/test.sh starts, against the installed library.
const test = require('node:test');
const assert = require('node:assert');
const { Player, AudioplayError, version } = require('..');

const tone = (freq, rate, frames) => Float32Array.from({ length: frames }, (_, i) => 0.5 * Math.sin(2 * Math.PI * freq * i / rate));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('plays a tone, reads metrics, polls events and flushes', async () => {
  const p = new Player({ rate: 24000, format: 'f32' });
  try {
    p.mark(3);
    assert.strictEqual(p.write(tone(440, 24000, 12000)), 12000);
    assert.ok(p.drain(5000));
    const m = p.metrics();
    assert.strictEqual(m.frames_played, 12000);
    assert.strictEqual(m.underruns, 0);
    assert.strictEqual(m.device_id, 's48');
    const kinds = [];
    for (let e; (e = p.pollEvent()) !== null;) kinds.push(`${e.kind}:${e.id}`);
    assert.deepStrictEqual(kinds.slice(0, 2), ['utterance_start:0', 'marker:3']);
    p.write(tone(440, 24000, 48000));
    await sleep(300);
    assert.ok(p.flush(10) > 0);
    await sleep(200);
    const after = p.metrics();
    assert.ok(after.frames_flushed > 0);
    assert.strictEqual(after.frames_written, after.frames_played + after.frames_queued + after.frames_flushed + after.frames_dropped);
  } finally {
    p.close();
  }
});

test('errors carry the status', () => {
  assert.throws(() => new Player({ rate: 5 }), (e) => e instanceof AudioplayError && e.status === -2);
  assert.match(version(), /^\d+\.\d+\.\d+$/);
});
