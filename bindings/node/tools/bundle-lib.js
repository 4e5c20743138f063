'use strict';
// prepack: copies the release library into the package (native/libaudioplay.so), stripped
// when `strip` is there, so a tarball from `npm pack` carries its library. postpack (--clean)
// removes the copy again, so a checkout keeps loading the fresh target/release build.
// The source: AUDIOPLAY_BUNDLE_LIB if set, else the repository's target/release/libaudioplay.so.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const dir = path.resolve(__dirname, '..');
const dest = path.join(dir, 'native', 'libaudioplay.so');
if (process.argv.includes('--clean')) {
  fs.rmSync(path.join(dir, 'native'), { recursive: true, force: true });
  process.exit(0);
}
const src = process.env.AUDIOPLAY_BUNDLE_LIB || path.resolve(dir, '..', '..', 'target', 'release', 'libaudioplay.so');
if (!fs.existsSync(src)) {
  console.error(`audioplay prepack: no library to bundle at ${src}: build it first ` +
    '(cargo build --release --lib in the repository) or set AUDIOPLAY_BUNDLE_LIB to a libaudioplay.so');
  process.exit(1);
}
fs.mkdirSync(path.dirname(dest), { recursive: true });
fs.copyFileSync(src, dest);
fs.chmodSync(dest, 0o755);
const s = spawnSync('strip', ['--strip-unneeded', dest], { stdio: 'ignore' });
console.error(`audioplay prepack: bundled ${src} (${fs.statSync(dest).size} bytes${s.status === 0 ? ', stripped' : ''})`);
