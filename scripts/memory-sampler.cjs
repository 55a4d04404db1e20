/**
 * Where the server's memory is, over time: a preload for the server process
 * (docs/operations/memory.md).
 *
 *   SERVER_NODE_ARGS="-r ./scripts/memory-sampler.cjs" npm run memory -- --duration 180
 *
 * Every MEMORY_SAMPLE_SECONDS (10) it appends one JSON line to MEMORY_SAMPLE_FILE
 * (/tmp/memory-sample-<pid>.jsonl): process.memoryUsage(), the V8 heap's spaces, and the
 * resident MiB of /proc/self/smaps grouped by what the mappings are: the main thread's
 * C heap (`brk`), the C allocator's per-thread arenas (anonymous, aligned on their 64 MiB),
 * PGlite's WebAssembly memory (an anonymous mapping of 128 MiB or more), mapped files, and
 * the other anonymous mappings (V8's heap pages, code, stacks).
 */
'use strict';
const fs = require('node:fs');
const v8 = require('node:v8');

const file = process.env.MEMORY_SAMPLE_FILE || `/tmp/memory-sample-${process.pid}.jsonl`;
const every = Number(process.env.MEMORY_SAMPLE_SECONDS || 10) * 1000;
const MiB = 1024 * 1024;
const ARENA = 64 * MiB;

function mappings() {
  const groups = { brk: 0, arenas: 0, wasm: 0, files: 0, otherAnonymous: 0 };
  let current;
  const add = () => {
    if (!current) return;
    const { start, size, name, rss } = current;
    let group = 'otherAnonymous';
    if (name === '[heap]') group = 'brk';
    else if (name.startsWith('/')) group = 'files';
    else if (name === '' && start % ARENA === 0 && size <= ARENA) group = 'arenas';
    else if (name === '' && size >= 128 * MiB) group = 'wasm';
    groups[group] += rss;
  };
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      add();
      const start = parseInt(m[1], 16);
      current = { start, size: parseInt(m[2], 16) - start, name: m[3].trim(), rss: 0 };
    } else if (line.startsWith('Rss:')) current.rss = Number(line.split(/\s+/)[1]) * 1024;
  }
  add();
  for (const k of Object.keys(groups)) groups[k] = Math.round(groups[k] / MiB);
  return groups;
}

function sample() {
  const m = process.memoryUsage();
  const mib = (n) => Math.round(n / MiB);
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, mib(s.space_size)]));
  const line = { t: Math.round(process.uptime()), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), spaces, mappings: mappings() };
  fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
}

setInterval(sample, every).unref();
