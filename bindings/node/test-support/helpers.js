'use strict';
// Shared by the tests: tones, waiting, and a second PulseAudio sink of the test's own.
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const PULSE_SH = path.resolve(__dirname, '..', '..', '..', 'scripts', 'lib', 'pulse.sh');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function toneF32(freq, rate, frames, channels = 1, amp = 0.3) {
  const a = new Float32Array(frames * channels);
  for (let i = 0; i < frames; i++) {
    const v = amp * Math.sin(2 * Math.PI * freq * i / rate);
    for (let c = 0; c < channels; c++) a[i * channels + c] = v;
  }
  return a;
}

function toneS16(freq, rate, frames, channels = 1, amp = 0.3) {
  const f = toneF32(freq, rate, frames, channels, amp);
  return Int16Array.from(f, (v) => Math.round(v * 32767));
}

async function until(what, pred, timeoutMs = 5000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

// A null sink NAME at RATE/CHANNELS with a keep-alive stream (an idle null sink stalls new
// streams, shared/NOTES.md), through scripts/lib/pulse.sh. Returns a function that removes it.
function addSink(name, rate, channels) {
  const spec = `${name}:${rate}:${channels}`;
  const run = (...args) => {
    const r = spawnSync('bash', [PULSE_SH, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pulse.sh ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  const module = run('add-sink', spec);
  const keep = spawn('bash', [PULSE_SH, 'keepalive', spec], { stdio: 'ignore' });
  run('wait-low-latency', name);
  return () => {
    keep.kill();
    spawnSync('pactl', ['unload-module', module]);
  };
}

module.exports = { sleep, toneF32, toneS16, until, addSink };

// Records what SINK plays (its monitor) as mono s16 at RATE until stop() resolves with the samples.
function recordSink(sink, rate) {
  const rec = spawn('parecord', [`--device=${sink}.monitor`, `--rate=${rate}`, '--channels=1',
    '--format=s16le', '--raw', '--latency-msec=10'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks = [];
  let err = '';
  rec.stdout.on('data', (c) => chunks.push(c));
  rec.stderr.on('data', (c) => { err += c; });
  const exited = new Promise((r) => rec.on('exit', (code, signal) => r({ code, signal })));
  return {
    async stop() {
      rec.kill('SIGINT');
      const { code, signal } = await exited;
      const buf = Buffer.concat(chunks);
      if (buf.length === 0) throw new Error(`parecord recorded nothing (exit ${code} ${signal}): ${err}`);
      return new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
    },
  };
}

// RMS of each WINDOW-sample window, as a fraction of full scale.
function windowRms(samples, window) {
  const out = [];
  for (let at = 0; at + window <= samples.length; at += window) {
    let s = 0;
    for (let i = at; i < at + window; i++) s += (samples[i] / 32768) ** 2;
    out.push(Math.sqrt(s / window));
  }
  return out;
}

module.exports.recordSink = recordSink;
module.exports.windowRms = windowRms;
