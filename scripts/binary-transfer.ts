/**
 * How fast a large raw Binary goes in and out, and what it costs the server in memory
 * (docs/operations/memory.md).
 *
 *   npm run binary-transfer                  a 40 MiB document
 *   npm run binary-transfer -- --size 10     (MiB)
 *   DATABASE_URL=postgres://... npm run binary-transfer   on PostgreSQL (a new schema, dropped at the end)
 *
 * Starts the compiled server in a process of its own on a new temporary embedded database
 * (or a new schema of DATABASE_URL),
 * uploads random bytes from a file (POST Binary, streamed, Content-Type application/pdf),
 * downloads them (GET Binary, Accept application/pdf), checks they are the same, and prints
 * the rate of each against the rate of copying the same file on the same disk, with the
 * server's RSS before and at its highest during each transfer (sampled every 20 ms) and the
 * CPU time the server spent on it (what a machine loaded by other work does not change).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openDevIssuer } from '../src/access/authn/devIssuer';
import { loadConfig } from '../src/config/config';
import { redactUrl } from './benchLib';
import { cpuSeconds, ServerProcess, startServerProcess } from './serverProcess';

function sizeMiB(): number {
  const at = process.argv.indexOf('--size');
  const n = at >= 0 ? Number(process.argv[at + 1]) : 40;
  if (!Number.isFinite(n) || n <= 0) {
    console.error('Usage: npm run binary-transfer -- [--size 40]   (MiB)');
    process.exit(2);
  }
  return n;
}

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

function request(url: string, options: http.RequestOptions, body?: fs.ReadStream): Promise<{ status: number; headers: http.IncomingHttpHeaders; hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, hash: hash.digest('hex'), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

const rate = (bytes: number, ms: number) => `${(bytes / 2 ** 20 / (ms / 1000)).toFixed(1)} MiB/s`;

async function main(): Promise<void> {
  const size = Math.round(sizeMiB() * 2 ** 20);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-binary-'));
  const dataDir = path.join(work, 'data');
  let server: ServerProcess | undefined;
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `transfer_${crypto.randomBytes(5).toString('hex')}` : undefined;
  try {
    const file = path.join(work, 'document.pdf');
    const content = crypto.randomBytes(size);
    const expected = crypto.createHash('sha256').update(content).digest('hex');
    fs.writeFileSync(file, content);

    // the disk's own rate for the same bytes: a file copy, synced
    let t = performance.now();
    fs.copyFileSync(file, path.join(work, 'copy.pdf'));
    const fd = fs.openSync(path.join(work, 'copy.pdf'), 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const copyMs = performance.now() - t;

    server = await startServerProcess({ DATA_DIR: dataDir, DATABASE_URL: databaseUrl ?? '', DATABASE_SCHEMA: schema ?? '' });
    const dev = await openDevIssuer(loadConfig({ DATA_DIR: dataDir, PORT: String(server.port) }));
    const token = await dev.mintToken({ scope: 'conformance-testing', sub: 'binary-transfer' });
    const authorization = `Bearer ${token}`;
    const idle = server.rssMiB();

    let cpu = cpuSeconds(server.child.pid!);
    t = performance.now();
    const up = await peakRss(server, () =>
      request(`${server!.url}/Binary`, { method: 'POST', headers: { authorization, 'content-type': 'application/pdf', 'content-length': size, accept: 'application/fhir+json' } }, fs.createReadStream(file)),
    );
    const upMs = performance.now() - t;
    const upCpu = cpuSeconds(server.child.pid!) - cpu;
    if (up.result.status !== 201) throw new Error(`upload answered ${up.result.status}`);
    const id = /Binary\/([^/]+)/.exec(String(up.result.headers.location))?.[1];

    cpu = cpuSeconds(server.child.pid!);
    t = performance.now();
    const down = await peakRss(server, () => request(`${server!.url}/Binary/${id}`, { headers: { authorization, accept: 'application/pdf' } }));
    const downMs = performance.now() - t;
    const downCpu = cpuSeconds(server.child.pid!) - cpu;
    if (down.result.status !== 200 || down.result.hash !== expected) throw new Error(`download answered ${down.result.status}, ${down.result.bytes} bytes, ${down.result.hash === expected ? 'same' : 'different'} content`);

    console.log(`Binary of ${(size / 2 ** 20).toFixed(1)} MiB, ${databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)} schema ${schema} (dropped at the end)` : 'embedded database'}, loopback HTTP`);
    console.log(`  disk copy (same file, synced)  ${copyMs.toFixed(0).padStart(6)} ms  ${rate(size, copyMs)}`);
    console.log(`  upload (POST, streamed)        ${upMs.toFixed(0).padStart(6)} ms  ${rate(size, upMs)}  answer ${up.result.bytes} bytes  server CPU ${upCpu.toFixed(2)} s  RSS ${idle} -> peak ${up.peakMiB} MiB`);
    console.log(`  download (GET, raw)            ${downMs.toFixed(0).padStart(6)} ms  ${rate(size, downMs)}  same bytes  server CPU ${downCpu.toFixed(2)} s  RSS peak ${down.peakMiB} MiB`);
    console.log(
      JSON.stringify({
        database: databaseUrl ? 'postgres' : 'embedded',
        sizeBytes: size,
        diskCopyMs: Math.round(copyMs),
        upload: { ms: Math.round(upMs), cpuSeconds: Number(upCpu.toFixed(2)), answerBytes: up.result.bytes, rssBeforeMiB: idle, rssPeakMiB: up.peakMiB },
        download: { ms: Math.round(downMs), cpuSeconds: Number(downCpu.toFixed(2)), rssPeakMiB: down.peakMiB },
      }),
    );
  } finally {
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
