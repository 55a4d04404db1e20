#!/usr/bin/env node
/**
 * Compiles the TypeScript (src/, scripts/) into dist/, once: the server and the scripts
 * run the compiled files (docs/operations/deployment.md).
 *
 *   node scripts/build.cjs              always compile (npm run build)
 *   node scripts/build.cjs --if-stale   compile only when a source is newer than the last build (npm start, npm run <script>)
 *   node scripts/build.cjs --prepare    after npm install / npm ci: compile when TypeScript is installed;
 *                                       a production install (--omit=dev) without it keeps an existing dist/
 *
 * Plain JavaScript: it must run before anything is compiled.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
/** Written at the start of each successful build: sources newer than it are not in dist/. */
const stamp = path.join(dist, '.build-stamp');
const entry = path.join(dist, 'src', 'server.js');
const SOURCES = ['src', 'scripts', 'conformance/capability', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function typescript() {
  try {
    return require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    return undefined;
  }
}

/** Newest modification time of the inputs of the build (0 when the sources are not there, as in an image holding dist/ only). */
function newestSource() {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) visit(path.join(p, name));
    } else if (/\.(ts|json)$/.test(p) && !p.endsWith('.test.ts')) {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  for (const s of SOURCES) visit(path.join(root, s));
  return newest;
}

function built() {
  try {
    fs.statSync(entry);
    return fs.statSync(stamp).mtimeMs;
  } catch {
    return undefined;
  }
}

function compile(tsc) {
  const startedAt = new Date();
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) fail('build failed: the TypeScript compiler reported the errors above');
  // the time the compiler started: a source saved during the build is newer, and is built next time
  fs.writeFileSync(stamp, '');
  fs.utimesSync(stamp, startedAt, startedAt);
}

const mode = process.argv[2] ?? '--always';
const tsc = typescript();
if (mode === '--always') {
  if (!tsc) fail('cannot build: TypeScript is not installed (npm install, with the development dependencies)');
  compile(tsc);
} else if (mode === '--prepare') {
  if (tsc) compile(tsc);
  else if (built() === undefined) {
    process.stderr.write('TypeScript is not installed (production install): dist/ must come from a build (npm ci && npm run build) before npm start\n');
  }
} else if (mode === '--if-stale') {
  const at = built();
  const stale = at === undefined || newestSource() > at;
  if (stale) {
    if (!tsc) {
      fail(
        at === undefined
          ? 'not built: dist/src/server.js is missing and TypeScript is not installed. Build with npm ci && npm run build (development dependencies), then npm ci --omit=dev'
          : 'dist/ is older than the sources and TypeScript is not installed to rebuild it: run npm run build where the development dependencies are installed',
      );
    }
    process.stderr.write(at === undefined ? 'building (first run)\n' : 'sources changed since the last build: building\n');
    compile(tsc);
  }
} else {
  fail(`unknown option ${mode}: --if-stale or --prepare`);
}
