'use strict';
// index.d.ts under tsc --strict (test-types/check.js): ok.ts compiles, each bad-*.ts fails as expected.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

test('tsc --strict accepts ok.ts and rejects every bad-*.ts for its own reason', () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'test-types', 'check.js')], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /types: 10 passed, 0 failed/);
});
