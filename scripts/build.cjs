#!/usr/bin/env node
/**
 * Compiles the TypeScript (src/, scripts/) into dist/, once: the server and the scripts
 * run the compiled files (docs/operations/running.md).
 *
 *   node scripts/build.cjs              always compile (npm run build)
 *   node scripts/build.cjs --if-stale   compile only when a source is newer than the last build (npm start, npm run <script>)
 *   node scripts/build.cjs --prepare    after npm install / npm ci: compile when TypeScript is installed;
 *                                       a production install (--omit=dev) without it keeps an existing dist/
 *
 * Plain JavaScript: it must run before anything is compiled.
 */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
/** Written by each successful build: the digest of the sources it compiled. */
const stamp = path.join(dist, '.build-stamp');
const entry = path.join(dist, 'src', 'server.js');
const SOURCES = ['src', 'scripts', 'conformance/capability', 'conformance/mhd', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

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

/**
 * Digest of the inputs of the build, by content: modification times change with a copy,
 * a checkout or an image layer, the content does not. Undefined when the sources are not
 * there (an image holding dist/ only): what was built is then what runs.
 */
function sourceDigest() {
  if (!fs.existsSync(path.join(root, 'src'))) return undefined;
  const hash = crypto.createHash('sha256');
  const visit = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name));
    } else if (/\.(ts|json)$/.test(p) && !p.endsWith('.test.ts')) {
      hash.update(path.relative(root, p)).update('\0').update(fs.readFileSync(p)).update('\0');
    }
  };
  for (const s of SOURCES) visit(path.join(root, s));
  return hash.digest('hex');
}

/** The digest of the sources dist/ was built from; undefined when there is no build. */
function built() {
  try {
    fs.statSync(entry);
    return fs.readFileSync(stamp, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function compile(tsc) {
  // taken before: a source saved during the build makes the next start build again
  const digest = sourceDigest() ?? '';
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) fail('build failed: the TypeScript compiler reported the errors above');
  fs.writeFileSync(stamp, digest + '\n');
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
  const digest = at === undefined ? undefined : sourceDigest();
  const stale = at === undefined || (digest !== undefined && digest !== at);
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
