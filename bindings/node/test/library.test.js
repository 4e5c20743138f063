'use strict';
// Where the library comes from: bundled -> AUDIOPLAY_LIB -> repository build -> system, and an
// error naming the library and the variable when none is there. Each case loads a copy of
// index.js from a folder of its own in a child process.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { library } = require('..');

const pkg = path.resolve(__dirname, '..');
const koffiDir = (() => {
  let d = path.dirname(require.resolve('koffi', { paths: [pkg] }));
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();

function copyPackage({ withKoffi = true, bundle = null } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audioplay-lookup-'));
  const p = path.join(dir, 'audioplay');
  fs.mkdirSync(p);
  for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(pkg, f), path.join(p, f));
  if (withKoffi) {
    fs.mkdirSync(path.join(p, 'node_modules'));
    fs.symlinkSync(koffiDir, path.join(p, 'node_modules', 'koffi'));
  }
  if (bundle) {
    fs.mkdirSync(path.join(p, 'native'));
    fs.copyFileSync(bundle, path.join(p, 'native', 'libaudioplay.so'));
  }
  return { dir, p };
}

function load(p, env) {
  const e = { ...process.env };
  delete e.AUDIOPLAY_LIB;
  delete e.LD_LIBRARY_PATH;
  Object.assign(e, env);
  const r = spawnSync(process.execPath, ['-e', `
    try { const a = require(${JSON.stringify(p)}); console.log(JSON.stringify({ ok: true, ...a.library, version: a.version() })); }
    catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })); }`], { env: e, encoding: 'utf8' });
  assert.strictEqual(r.signal, null, r.stderr);
  assert.strictEqual(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const realLib = library.path;

test('AUDIOPLAY_LIB is used when the package has no library of its own', () => {
  const { dir, p } = copyPackage();
  try {
    const got = load(p, { AUDIOPLAY_LIB: realLib });
    assert.deepStrictEqual([got.ok, got.from, got.path], [true, 'AUDIOPLAY_LIB', realLib]);
    const bad = load(p, { AUDIOPLAY_LIB: '/nonexistent/libaudioplay.so' });
    assert.strictEqual(bad.ok, false);
    assert.match(bad.message, /AUDIOPLAY_LIB=\/nonexistent\/libaudioplay\.so/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('without AUDIOPLAY_LIB: the system library, or an error naming the library and the variable', () => {
  const { dir, p } = copyPackage();
  try {
    const got = load(p, {});
    const ld = spawnSync('sh', ['-c', 'ldconfig -p 2>/dev/null | grep -q "libaudioplay\\.so\\.0 "']);
    if (ld.status === 0) {
      assert.deepStrictEqual([got.ok, got.from], [true, 'system']);
    } else {
      assert.strictEqual(got.ok, false, JSON.stringify(got));
      assert.strictEqual(got.code, 'AUDIOPLAY_LIB_NOT_FOUND');
      assert.match(got.message, /libaudioplay/);
      assert.match(got.message, /AUDIOPLAY_LIB/);
      assert.match(got.message, /native\/libaudioplay\.so/);
    }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('a library bundled in the package comes first', () => {
  const bundle = fs.existsSync(realLib) ? realLib : null;
  if (!bundle) return assert.fail(`the loaded library ${realLib} is not a file to bundle`);
  const { dir, p } = copyPackage({ bundle });
  try {
    const got = load(p, { AUDIOPLAY_LIB: '/nonexistent/libaudioplay.so' });
    assert.deepStrictEqual([got.ok, got.from, got.path], [true, 'bundled', path.join(p, 'native', 'libaudioplay.so')]);
    assert.match(got.version, /^\d+\.\d+\.\d+$/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('in a checkout, AUDIOPLAY_LIB wins over the repository build, which comes next', () => {
  // A checkout's layout: include/audioplay.h and target/release/libaudioplay.so two levels up.
  const { dir, p } = copyPackage();
  try {
    const repo = path.join(dir, 'repo');
    const node = path.join(repo, 'bindings', 'node');
    fs.mkdirSync(path.join(repo, 'bindings'), { recursive: true });
    fs.renameSync(p, node);
    fs.mkdirSync(path.join(repo, 'include'));
    fs.writeFileSync(path.join(repo, 'include', 'audioplay.h'), '');
    const built = path.join(repo, 'target', 'release', 'libaudioplay.so');
    fs.mkdirSync(path.dirname(built), { recursive: true });
    fs.copyFileSync(realLib, built);
    const chosen = load(node, { AUDIOPLAY_LIB: realLib });
    assert.deepStrictEqual([chosen.ok, chosen.from, chosen.path], [true, 'AUDIOPLAY_LIB', realLib]);
    const found = load(node, {});
    assert.deepStrictEqual([found.ok, found.from, found.path], [true, 'repository build', built]);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('koffi missing (a linked folder whose install script was skipped): an error saying what to run', () => {
  const { dir, p } = copyPackage({ withKoffi: false });
  try {
    const got = load(p, { AUDIOPLAY_LIB: realLib, NODE_PATH: '' });
    assert.strictEqual(got.ok, false, JSON.stringify(got));
    assert.match(got.message, /koffi/);
    assert.match(got.message, /npm install --omit=dev/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
