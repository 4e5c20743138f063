'use strict';
// The install script. `npm install <folder>` links a folder outside the project without
// installing the folder's dependencies, so `require('koffi')` from the linked index.js would
// fail. When koffi does not resolve from this package, install it here (the package's own
// folder), with npm's own client. A tarball or registry install already has koffi: nothing to do.
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const dir = path.resolve(__dirname, '..');
function hasKoffi() {
  try { require.resolve('koffi', { paths: [dir] }); return true; } catch (_) { return false; }
}
if (hasKoffi() || process.env.AUDIOPLAY_ENSURING_KOFFI) process.exit(0);

// The parent npm's settings that point elsewhere (the consuming project's prefix) must not
// reach the child; the ones that say how to reach the registry and the cache may.
const env = {};
for (const [k, v] of Object.entries(process.env)) {
  if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig|globalconfig|offline|prefer_offline|proxy|https_proxy|noproxy|cafile|strict_ssl)$/i.test(k)) continue;
  env[k] = v;
}
env.AUDIOPLAY_ENSURING_KOFFI = '1';
const npmCli = process.env.npm_execpath;
const [cmd, pre] = npmCli && /\.c?js$/.test(npmCli) ? [process.execPath, [npmCli]] : ['npm', []];
const args = [...pre, 'install', '--omit=dev', '--no-package-lock', '--no-save', '--ignore-scripts',
  '--no-audit', '--no-fund', '--loglevel=error'];
const r = spawnSync(cmd, args, { cwd: dir, env, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0 || !hasKoffi()) {
  console.error(`audioplay: could not install koffi into ${dir} (${r.error ? r.error.message : `npm exited ${r.status}`}); run \`npm install --omit=dev\` there`);
  process.exit(1);
}
