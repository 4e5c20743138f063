'use strict';
// index.d.ts under tsc --strict (test-types/check.js): ok.ts compiles, each bad-*.ts fails as expected.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

// scripts/test-binding-node.sh runs the same check on the installed package and sets
// AUDIOPLAY_TYPES_CHECKED so the suite does not run tsc a second time.
const checked = process.env.AUDIOPLAY_TYPES_CHECKED;
test('tsc --strict accepts ok.ts and rejects every bad-*.ts for its own reason',
  { skip: checked ? `checked on the installed package in ${checked}` : false }, () => {
  try { require.resolve('typescript/bin/tsc', { paths: [path.join(__dirname, '..')] }); } catch (_) {
    assert.fail('typescript is not installed: run `npm install` in bindings/node (the dev dependencies)');
  }
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'test-types', 'check.js')], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const files = fs.readdirSync(path.join(__dirname, '..', 'test-types')).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 10);
  assert.match(r.stdout, new RegExp(`types: ${files.length} passed, 0 failed`));
});
