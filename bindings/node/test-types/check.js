'use strict';
// The .d.ts's strictness, checked with tsc --strict: ok.ts must compile; every bad-*.ts must
// fail with exactly the error its first line expects ("// expect: TSnnnn word": the code and a
// word the message must name), so a file that fails for another reason fails the check too.
//
//   node check.js PROJECT   PROJECT has audioplay, typescript and @types/node installed
//   node check.js           checks this package folder (its dev dependencies supply tsc)
// Prints one line per file and "N passed, N failed"; exits 1 on any failure.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const fixtures = __dirname;
const pkg = path.resolve(__dirname, '..');

function projectFromPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audioplay-types-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(pkg, path.join(dir, 'node_modules', 'audioplay'));
  for (const dep of ['@types', 'typescript', 'undici-types']) {
    const src = path.join(pkg, 'node_modules', dep);
    if (fs.existsSync(src)) fs.symlinkSync(src, path.join(dir, 'node_modules', dep));
  }
  return dir;
}

function check(project) {
  const work = fs.mkdtempSync(path.join(project, '.types-check-'));
  const files = fs.readdirSync(fixtures).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) fs.copyFileSync(path.join(fixtures, f), path.join(work, f));
  fs.writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'es2022', module: 'node16', moduleResolution: 'node16',
      types: ['node'], skipLibCheck: true, noUncheckedIndexedAccess: true,
    },
    files,
  }, null, 2));
  const tsc = require.resolve('typescript/bin/tsc', { paths: [project] });
  const r = spawnSync(process.execPath, [tsc, '-p', work, '--pretty', 'false'], { encoding: 'utf8' });
  const errors = {};
  for (const line of (r.stdout + r.stderr).split('\n')) {
    const m = /^(?:.*[\\/])?([\w-]+\.ts)\(\d+,\d+\): error (TS\d+): (.*)$/.exec(line);
    if (m) (errors[m[1]] = errors[m[1]] || []).push(`${m[2]}: ${m[3]}`);
    else if (/error TS\d+/.test(line)) (errors['(other)'] = errors['(other)'] || []).push(line);
  }
  let passed = 0; let failed = 0;
  const report = (ok, f, why) => { if (ok) passed++; else failed++; console.log(`${ok ? 'ok  ' : 'FAIL'} ${f}: ${why}`); };
  if (errors['(other)']) report(false, '(tsc)', errors['(other)'].join('; '));
  for (const f of files) {
    const got = errors[f] || [];
    if (f === 'ok.ts') { report(got.length === 0, f, got.length ? got.join('; ') : 'compiles'); continue; }
    const want = /^\/\/ expect: (TS\d+) (\S+)/.exec(fs.readFileSync(path.join(fixtures, f), 'utf8'));
    if (!want) { report(false, f, 'no "// expect: TSnnnn word" line'); continue; }
    const ok = got.length === 1 && got[0].startsWith(`${want[1]}:`) && got[0].includes(want[2]);
    report(ok, f, got.length ? got.join('; ') : `compiled, but must fail with ${want[1]} (${want[2]})`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`types: ${passed} passed, ${failed} failed`);
  return failed === 0 && passed === files.length;
}

if (require.main === module) {
  const arg = process.argv[2];
  const project = arg ? path.resolve(arg) : projectFromPackage();
  const ok = check(project);
  if (!arg) fs.rmSync(project, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}
module.exports = { check, projectFromPackage };
