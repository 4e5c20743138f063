'use strict';
// Wrong types never reach koffi: each case runs in a child process, which must exit normally
// (koffi aborts or segfaults on a wrong type: a signal fails the test) having seen the error.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const pkg = path.resolve(__dirname, '..');

// Runs CASES (source of an array of [label, () => value-throwing thunk]) in a fresh node and
// returns what each threw, by label.
function runCases(setup, cases) {
  const src = `
    const ap = require(${JSON.stringify(pkg)});
    const { Player } = ap;
    ${setup}
    const cases = ${cases};
    const out = {};
    for (const [label, f] of cases) {
      process.stderr.write('case ' + label + '\\n');
      try { f(); out[label] = { threw: false }; }
      catch (e) { out[label] = { threw: true, name: e.constructor.name, message: String(e.message), isRange: e instanceof RangeError, isType: e instanceof TypeError }; }
    }
    if (typeof p !== 'undefined') p.close();
    process.stdout.write(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8', timeout: 60000 });
  const last = r.stderr.trim().split('\n').pop();
  assert.strictEqual(r.signal, null, `child killed by ${r.signal} (last: ${last})\n${r.stderr}`);
  assert.strictEqual(r.status, 0, `child exited ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

const BAD_TYPES = ["'abc'", 'true', '{}', '[]', 'null', '10n', '() => 1', 'Symbol("s")'];
const NUMERIC = ['rate', 'channels', 'targetLatencyMs', 'ringCapacityMs', 'writeTimeoutMs', 'devicePollMs',
  'deviceQueryCooldownMs', 'maxRecreatePerMinute', 'debounceMs', 'maxReplayMs', 'recreateWarnMs',
  'startThresholdMs', 'idleSuspendMs', 'resampleP95LimitUs', 'audioThreadPriority',
  'deviceLostTimeoutMs', 'eventPollMs'];
const ENUMS = ['format', 'streamRate', 'resampleMode', 'resampleQuality'];

test('every wrongly typed option throws a TypeError naming it, and the process lives', () => {
  const cases = [];
  for (const opt of NUMERIC) for (const v of BAD_TYPES) cases.push([`${opt}=${v}`, opt, v]);
  for (const opt of ENUMS) for (const v of ['42', 'true', '{}', 'null', '10n']) cases.push([`${opt}=${v}`, opt, v]);
  for (const v of ['42', '0', 'true', '{}', '[]', '10n', 'Buffer.from("s48")']) cases.push([`device=${v}`, 'device', v]);
  const src = `[${cases.map(([l, o, v]) => `[${JSON.stringify(l)}, () => new Player({ ${o}: ${v} })]`).join(',\n')}]`;
  const got = runCases('', src);
  assert.strictEqual(Object.keys(got).length, cases.length);
  for (const [label, opt] of cases) {
    const g = got[label];
    assert.ok(g.threw, `${label} did not throw`);
    assert.ok(g.isType, `${label}: ${g.name}: ${g.message}`);
    assert.match(g.message, new RegExp(`\\b${opt}\\b`), label);
  }
});

test('a bad options argument, or an unknown option, is a TypeError', () => {
  const got = runCases('', `[
    ['number', () => new Player(5)], ['string', () => new Player('rate')], ['null', () => new Player(null)],
    ['array', () => new Player([])], ['typo', () => new Player({ rte: 48000 })],
    ['snake', () => new Player({ input_rate: 48000 })], ['no new', () => Player({})],
  ]`);
  for (const [label, g] of Object.entries(got)) assert.ok(g.threw && g.isType, `${label}: ${JSON.stringify(g)}`);
  assert.match(got.typo.message, /unknown option 'rte'/);
});

test('values out of range are RangeErrors, with the library\'s reason when the library refuses', () => {
  const got = runCases('', `[
    ['rate 5', () => new Player({ rate: 5 })],
    ['channels 0', () => new Player({ channels: 0 })],
    ['latency 1', () => new Player({ targetLatencyMs: 1 })],
    ['rate 1.5', () => new Player({ rate: 1.5 })],
    ['rate -1', () => new Player({ rate: -1 })],
    ['rate 2^32', () => new Player({ rate: 2 ** 32 })],
    ['rate NaN', () => new Player({ rate: NaN })],
    ['format s24', () => new Player({ format: 's24' })],
    ['empty device', () => new Player({ device: '' })],
    ['NUL device', () => new Player({ device: 'a\\0b' })],
    ['poll 0', () => new Player({ eventPollMs: 0 })],
  ]`);
  for (const [label, g] of Object.entries(got)) assert.ok(g.threw && g.isRange, `${label}: ${JSON.stringify(g)}`);
  assert.match(got['rate 5'].message, /input_rate 5 out of range 1000..=384000/);
  assert.strictEqual(got['rate 5'].name, 'AudioplayRangeError');
  assert.match(got['channels 0'].message, /input_channels/);
  assert.match(got['latency 1'].message, /target_latency_ms/);
});

test('every wrongly typed method argument throws (TypeError, or RangeError for a bad value), and the process lives', () => {
  const setup = `const p = new Player({ rate: 24000, format: 'f32', writeTimeoutMs: 0 });`;
  const T = [
    ['write str', 'p.write("abc")'], ['write num', 'p.write(123)'], ['write arr', 'p.write([0.1, 0.2])'],
    ['write null', 'p.write(null)'], ['write i16 to f32', 'p.write(new Int16Array(4))'],
    ['write f64', 'p.write(new Float64Array(4))'], ['writeSync obj', 'p.writeSync({})'],
    ['drain str', 'p.drain("1")'], ['drain big', 'p.drain(10n)'], ['mark str', 'p.mark("1")'],
    ['mark big', 'p.mark(1n)'], ['flush str', 'p.flush("x")'], ['pause obj', 'p.pause({})'],
    ['resume str', 'p.resume("10")'], ['volume str', 'p.setVolume("1")'], ['volume ramp', 'p.setVolume(1, "x")'],
    ['speed str', 'p.setSpeed("2")'],
    ['voice str', 'p.setVoice("s16")'], ['voice format', 'p.setVoice({ format: 1 })'],
    ['voice rate', 'p.setVoice({ rate: "16000" })'], ['voice typo', 'p.setVoice({ rat: 16000 })'],
    ['device num', 'p.setDevice(42)'], ['device obj', 'p.setDevice({})'],
    ['stream opts', 'p.createWriteStream("x")'], ['stream drain', 'p.createWriteStream({ drain: "yes" })'],
  ];
  const R = [
    ['partial frame', 'p.write(Buffer.alloc(3))'], ['mark -1', 'p.mark(-1)'], ['mark 2^53', 'p.mark(2 ** 53)'],
    ['drain -1', 'p.drain(-1)'], ['volume NaN', 'p.setVolume(NaN)'], ['volume 5', 'p.setVolume(5)'],
    ['volume -1', 'p.setVolume(-1)'], ['speed NaN', 'p.setSpeed(NaN)'], ['speed 0.49', 'p.setSpeed(0.49)'], ['speed 4.01', 'p.setSpeed(4.01)'], ['fade 1.5', 'p.flush(1.5)'], ['voice s24', 'p.setVoice({ format: "s24" })'],
    ['voice rate 5', 'p.setVoice({ rate: 5 })'], ['device empty', 'p.setDevice("")'],
  ];
  const src = `[${[...T, ...R].map(([l, c]) => `[${JSON.stringify(l)}, () => ${c}]`).join(',\n')}]`;
  const got = runCases(setup, src);
  for (const [l] of T) assert.ok(got[l].threw && got[l].isType, `${l}: ${JSON.stringify(got[l])}`);
  for (const [l] of R) assert.ok(got[l].threw && got[l].isRange, `${l}: ${JSON.stringify(got[l])}`);
  assert.match(got['voice rate 5'].message, /ap_set_input_format: .*rate/, 'the library\'s reason (ap_last_error)');
});

test('an unknown device is refused with the library\'s reason', () => {
  const got = runCases(`const p = new Player();`, `[
    ['create', () => new Player({ device: 'no-such-sink' })],
    ['set', () => p.setDevice('no-such-sink')],
  ]`);
  for (const [label, g] of Object.entries(got)) {
    assert.ok(g.threw, label);
    assert.strictEqual(g.name, 'AudioplayError', `${label}: ${g.message}`);
    assert.match(g.message, /no-such-sink/, `${label}: ${g.message}`);
  }
});
