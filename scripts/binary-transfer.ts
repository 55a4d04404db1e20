/**
 * How fast a large raw Binary goes in and out, and what it costs the server in memory
 * (docs/operations/memory.md).
 *
 *   npm run binary-transfer                  a 40 MiB document
 *   npm run binary-transfer -- --size 10     (MiB)
 *   npm run binary-transfer -- --runs 5      (each transfer timed 5 times: the median is printed)
 *   DATABASE_URL=postgres://... npm run binary-transfer   on PostgreSQL (a new schema, dropped at the end)
 *   CONTENT_DIR=/path DATABASE_URL=... npm run binary-transfer   PostgreSQL with large content in files
 *
 * Starts the compiled server in a process of its own on a new temporary embedded database
 * (or a new schema of DATABASE_URL),
 * uploads random bytes from a file (POST Binary, streamed, Content-Type application/pdf),
 * downloads them (GET Binary, Accept application/pdf), checks they are the same, and prints
 * the rate of each against the rate of copying the same file on the same disk and against a
 * bare Node.js HTTP server that only writes the upload to a file and sends it back (the
 * network's and the disk's bound for this client on this machine), with the
 * server's RSS before and at its highest during each transfer (sampled every 20 ms) and the
 * CPU time the server spent on it (what a machine loaded by other work does not change).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openDevIssuer } from '../src/access/authn/devIssuer';
import { loadConfig } from '../src/config/config';
import { redactUrl } from './benchLib';
import { cpuSeconds, ServerProcess, startServerProcess } from './serverProcess';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  const n = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isFinite(n) || n <= 0) {
    console.error('Usage: npm run binary-transfer -- [--size 40] [--runs 3]   (MiB; transfers timed, the median printed)');
    process.exit(2);
  }
  return n;
}

/**
 * A bare HTTP server in a process of its own: POST writes the body to a file, GET sends the
 * file. What Node.js, the loopback and the disk give without any FHIR server in between.
 */
const BARE_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const dir = process.argv[1];
let n = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'POST') {
    const file = path.join(dir, 'bare-' + (++n));
    const out = fs.createWriteStream(file, { highWaterMark: 1 << 20 });
    req.pipe(out);
    out.on('close', () => { res.writeHead(201, { location: '/' + n }); res.end(); });
  } else {
    const file = path.join(dir, 'bare-' + req.url.slice(1));
    res.writeHead(200, { 'content-length': fs.statSync(file).size });
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  }
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

async function startBareServer(dir: string): Promise<{ url: string; stop(): void }> {
  const child = fork('-e', [BARE_SERVER, dir], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(Number(m)));
    child.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Highest RSS of the server while `fn` runs. */
async function peakRss<T>(server: ServerProcess, fn: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = server.rssMiB();
  const timer = setInterval(() => (peak = Math.max(peak, server.rssMiB())), 20);
  try {
    const result = await fn();
    peak = Math.max(peak, server.rssMiB());
    return { result, peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * One exchange; the answer's bytes are compared with `expected` as they arrive (a memory
 * compare: hashing them here would make this client, not the server, the bound).
 */
function request(
  url: string,
  options: http.RequestOptions,
  body?: fs.ReadStream,
  expected?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; same: boolean; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      let bytes = 0;
      let same = true;
      res.on('data', (d: Buffer) => {
        if (expected && same) same = bytes + d.length <= expected.length && expected.subarray(bytes, bytes + d.length).equals(d);
        bytes += d.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, same: same && (!expected || bytes === expected.length), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

const rate = (bytes: number, ms: number) => `${(bytes / 2 ** 20 / (ms / 1000)).toFixed(1)} MiB/s`;

async function main(): Promise<void> {
  const size = Math.round(option('--size', 40) * 2 ** 20);
  const runs = Math.round(option('--runs', 3));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-binary-'));
  const dataDir = path.join(work, 'data');
  let server: ServerProcess | undefined;
  let bare: { url: string; stop(): void } | undefined;
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `transfer_${crypto.randomBytes(5).toString('hex')}` : undefined;
  try {
    const file = path.join(work, 'document.pdf');
    const content = crypto.randomBytes(size);
    fs.writeFileSync(file, content);

    // the disk's own rate for the same bytes: a file copy, synced
    const copies: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      fs.copyFileSync(file, path.join(work, `copy-${i}.pdf`));
      const fd = fs.openSync(path.join(work, `copy-${i}.pdf`), 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      copies.push(performance.now() - t);
    }
    const copyMs = median(copies);

    // the same exchanges with a bare Node.js HTTP server
    fs.mkdirSync(path.join(work, 'bare'));
    bare = await startBareServer(path.join(work, 'bare'));
    const bareUp: number[] = [];
    const bareDown: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      const up = await request(`${bare.url}/`, { method: 'POST', headers: { 'content-length': size } }, fs.createReadStream(file));
      bareUp.push(performance.now() - t);
      t = performance.now();
      const down = await request(`${bare.url}${String(up.headers.location)}`, {}, undefined, content);
      bareDown.push(performance.now() - t);
      if (!down.same) throw new Error('the bare server sent different bytes');
    }
    bare.stop();
    bare = undefined;

    server = await startServerProcess({ DATA_DIR: dataDir, DATABASE_URL: databaseUrl ?? '', DATABASE_SCHEMA: schema ?? '' });
    const dev = await openDevIssuer(loadConfig({ DATA_DIR: dataDir, PORT: String(server.port) }));
    const token = await dev.mintToken({ scope: 'conformance-testing', sub: 'binary-transfer' });
    const authorization = `Bearer ${token}`;
    const idle = server.rssMiB();

    const upMs: number[] = [];
    const downMs: number[] = [];
    const upCpu: number[] = [];
    const downCpu: number[] = [];
    let upPeak = 0;
    let downPeak = 0;
    let answerBytes = 0;
    for (let i = 0; i < runs; i++) {
      let cpu = cpuSeconds(server.child.pid!);
      let t = performance.now();
      const up = await peakRss(server, () =>
        request(`${server!.url}/Binary`, { method: 'POST', headers: { authorization, 'content-type': 'application/pdf', 'content-length': size, accept: 'application/fhir+json' } }, fs.createReadStream(file)),
      );
      upMs.push(performance.now() - t);
      upCpu.push(cpuSeconds(server.child.pid!) - cpu);
      upPeak = Math.max(upPeak, up.peakMiB);
      answerBytes = up.result.bytes;
      if (up.result.status !== 201) throw new Error(`upload answered ${up.result.status}`);
      const id = /Binary\/([^/]+)/.exec(String(up.result.headers.location))?.[1];

      cpu = cpuSeconds(server.child.pid!);
      t = performance.now();
      const down = await peakRss(server, () => request(`${server!.url}/Binary/${id}`, { headers: { authorization, accept: 'application/pdf' } }, undefined, content));
      downMs.push(performance.now() - t);
      downCpu.push(cpuSeconds(server.child.pid!) - cpu);
      downPeak = Math.max(downPeak, down.peakMiB);
      if (down.result.status !== 200 || !down.result.same) throw new Error(`download answered ${down.result.status}, ${down.result.bytes} bytes, ${down.result.same ? 'same' : 'different'} content`);
    }

    const where = databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)} schema ${schema} (dropped at the end)` : 'embedded database';
    const files = process.env.CONTENT_DIR || !databaseUrl ? 'content of 1 MiB or more in files' : 'content in the database';
    console.log(`Binary of ${(size / 2 ** 20).toFixed(1)} MiB, ${where}, ${files}, loopback HTTP, median of ${runs}`);
    console.log(`  disk copy (same file, synced)  ${copyMs.toFixed(0).padStart(6)} ms  ${rate(size, copyMs)}`);
    console.log(`  bare HTTP upload (to a file)   ${median(bareUp).toFixed(0).padStart(6)} ms  ${rate(size, median(bareUp))}`);
    console.log(`  bare HTTP download (a file)    ${median(bareDown).toFixed(0).padStart(6)} ms  ${rate(size, median(bareDown))}`);
    console.log(
      `  upload (POST, streamed)        ${median(upMs).toFixed(0).padStart(6)} ms  ${rate(size, median(upMs))}  answer ${answerBytes} bytes  server CPU ${median(upCpu).toFixed(2)} s  RSS ${idle} -> peak ${upPeak} MiB`,
    );
    console.log(`  download (GET, raw)            ${median(downMs).toFixed(0).padStart(6)} ms  ${rate(size, median(downMs))}  same bytes  server CPU ${median(downCpu).toFixed(2)} s  RSS peak ${downPeak} MiB`);
    console.log(
      JSON.stringify({
        database: databaseUrl ? 'postgres' : 'embedded',
        contentFiles: Boolean(process.env.CONTENT_DIR || !databaseUrl),
        sizeBytes: size,
        runs,
        diskCopyMs: Math.round(copyMs),
        bare: { uploadMs: Math.round(median(bareUp)), downloadMs: Math.round(median(bareDown)) },
        upload: { ms: Math.round(median(upMs)), cpuSeconds: Number(median(upCpu).toFixed(2)), answerBytes, rssBeforeMiB: idle, rssPeakMiB: upPeak },
        download: { ms: Math.round(median(downMs)), cpuSeconds: Number(median(downCpu).toFixed(2)), rssPeakMiB: downPeak },
      }),
    );
  } finally {
    bare?.stop();
    await server?.stop();
    if (databaseUrl && schema) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
