/**
 * IHE MHD throughput: ITI-65 Provide Document Bundle submissions (a SubmissionSet List, one
 * DocumentReference and its Binary, a 200 KB PDF) and ITI-68 retrievals of those PDFs.
 *
 *   npm run bench:mhd                                                  embedded database
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:mhd
 *   npm run bench:mhd -- --duration 10 --kb 200
 *   npm run bench:mhd -- --skip-retrieve --cpu-prof /tmp/prof           the server's V8 CPU profile
 *   npm run bench:mhd -- --large 20 --large-mb 50 --large-rounds 2      server RSS while 20 clients upload 50 MB
 *
 * Starts the compiled server in a process of its own (its memory is its own: RSS sampled
 * every 50 ms), on a new temporary embedded database or in a new schema of DATABASE_URL
 * (dropped at the end). Each phase is a closed loop of 1, then 8 clients, each request
 * waiting for the previous one of its client. The requests carry the token of the local
 * development issuer's unrestricted test client: the figures are those of the MHD checks,
 * validation and storage, not of the policy's lookups nor of the audit trail. Retrievals are
 * measured that way and then with the patient's own token (the policy's facts and one
 * AuditEvent per retrieval), alternating; each row gives the server's CPU per request, its
 * workers' included (WORKERS=n). SERVER_NODE_ARGS passes options to the server's node
 * (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof). On PostgreSQL, the same
 * rows and bytes are then inserted raw (one transaction per submission: two JSON rows and
 * the bytes) with the same number of connections: the ratio is what the server costs
 * over the bare database.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { openDevIssuer } from '../src/access/authn/devIssuer';
import { loadConfig } from '../src/config/config';
import { closedLoop, dropSchema, fmt, summarize, table } from './benchLib';
import { cpuSeconds, ServerProcess, startServerProcess } from './serverProcess';

interface Options {
  durationMs: number;
  warmupMs: number;
  kb: number;
  clients: number[];
  skipRetrieve: boolean;
  /** Directory of the server's V8 CPU profile (node --cpu-prof), written when it stops. */
  cpuProf: string | undefined;
  /** Large uploads: this many clients (0: none) each posting `largeRounds` raw Binaries of `largeMb` MB. */
  largeClients: number;
  largeMb: number;
  largeRounds: number;
}

const USAGE = 'Usage: npm run bench:mhd -- [--duration 10] [--warmup 3] [--kb 200] [--skip-retrieve] [--cpu-prof DIR] [--large 20 [--large-mb 50] [--large-rounds 2]]';

function parse(argv: string[]): Options {
  const value = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    if (at < 0) return fallback;
    const n = Number(argv[at + 1]);
    if (!Number.isFinite(n) || n <= 0) {
      console.error(`${USAGE}   (seconds per phase, document size)`);
      process.exit(2);
    }
    return n;
  };
  const at = argv.indexOf('--cpu-prof');
  const cpuProf = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && !cpuProf) {
    console.error(USAGE);
    process.exit(2);
  }
  return {
    durationMs: value('--duration', 10) * 1000,
    warmupMs: value('--warmup', 3) * 1000,
    kb: value('--kb', 200),
    clients: [1, 8],
    skipRetrieve: argv.includes('--skip-retrieve'),
    cpuProf: cpuProf && path.resolve(cpuProf),
    largeClients: argv.includes('--large') ? value('--large', 20) : 0,
    largeMb: value('--large-mb', 50),
    largeRounds: value('--large-rounds', 2),
  };
}

const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
const freshOid = () => `urn:oid:2.25.${BigInt(`0x${crypto.randomUUID().replace(/-/g, '')}`).toString()}`;

/** A PDF-looking document of `bytes` bytes (random content: nothing compresses it). */
function pdf(bytes: number): Buffer {
  const head = Buffer.from('%PDF-1.4\n');
  return Buffer.concat([head, crypto.randomBytes(bytes - head.length)]);
}

/** An ITI-65 Bundle: SubmissionSet, DocumentReference, Binary (its bytes base64 inline). */
function provideBundle(patientId: string, content: Buffer, hash: string): string {
  const [set, doc, bin] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()].map((u) => `urn:uuid:${u}`);
  return JSON.stringify({
    resourceType: 'Bundle',
    meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] },
    type: 'transaction',
    entry: [
      {
        fullUrl: set,
        resource: {
          resourceType: 'List',
          identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: freshOid() }],
          status: 'current',
          mode: 'working',
          code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] },
          subject: { reference: `Patient/${patientId}` },
          date: new Date().toISOString(),
          entry: [{ item: { reference: doc } }],
        },
        request: { method: 'POST', url: 'List' },
      },
      {
        fullUrl: doc,
        resource: {
          resourceType: 'DocumentReference',
          masterIdentifier: { system: 'urn:ietf:rfc:3986', value: freshOid() },
          status: 'current',
          type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
          category: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument', code: '10' }] }],
          subject: { reference: `Patient/${patientId}` },
          date: new Date().toISOString(),
          content: [{ attachment: { contentType: 'application/pdf', url: bin, size: content.length, hash, title: 'compte rendu' } }],
        },
        request: { method: 'POST', url: 'DocumentReference' },
      },
      { fullUrl: bin, resource: { resourceType: 'Binary', contentType: 'application/pdf', data: content.toString('base64') }, request: { method: 'POST', url: 'Binary' } },
    ],
  });
}

interface Answer {
  status: number;
  body: Buffer;
}

function send(agent: http.Agent, url: string, method: string, headers: http.OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU seconds of the server and of its workers (WORKERS=n: the primary's children), Linux /proc. */
function serverCpuSeconds(server: ServerProcess): number {
  const pid = server.child.pid!;
  let children: number[] = [];
  try {
    children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // not Linux, or gone
  }
  let total = cpuSeconds(pid);
  for (const child of children) {
    try {
      total += cpuSeconds(child);
    } catch {
      // a worker that ended meanwhile
    }
  }
  return total;
}

/** Highest and last RSS of the server while `fn` runs, and the CPU seconds the server (workers included) spent. */
async function sampled<T>(server: ServerProcess, fn: () => Promise<T>): Promise<{ result: T; peakMiB: number; endMiB: number; cpuSeconds: number }> {
  let peak = server.rssMiB();
  const timer = setInterval(() => (peak = Math.max(peak, server.rssMiB())), 50);
  const cpu0 = serverCpuSeconds(server);
  try {
    const result = await fn();
    const endMiB = server.rssMiB();
    return { result, peakMiB: Math.max(peak, endMiB), endMiB, cpuSeconds: serverCpuSeconds(server) - cpu0 };
  } finally {
    clearInterval(timer);
  }
}

/** A raw upload of `content` (one Buffer shared by every client, sent in 1 MiB writes as a client streams it). */
function upload(agent: http.Agent, url: string, headers: http.OutgoingHttpHeaders, content: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': content.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    let at = 0;
    const more = () => {
      while (at < content.length) {
        const piece = content.subarray(at, at + 2 ** 20);
        at += piece.length;
        if (!req.write(piece)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

/**
 * `clients` clients each upload `rounds` documents of `mb` MB as raw Binaries (POST Binary,
 * the body streamed to the server's spool file then to the database in chunks: an ITI-65
 * Bundle or ITI-105 carries its content in JSON, limited to 32 MiB), the server's RSS
 * sampled every 500 ms.
 */
async function largeUploads(server: ServerProcess, base: string, authorization: string, patientId: string, clients: number, mb: number, rounds: number): Promise<void> {
  const content = pdf(mb * 1_000_000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const samples: { s: number; rss: number }[] = [];
  const t0 = Date.now();
  const before = server.rssMiB();
  const timer = setInterval(() => samples.push({ s: (Date.now() - t0) / 1000, rss: server.rssMiB() }), 500);
  const cpu0 = cpuSeconds(server.child.pid!);
  let ok = 0;
  const failures: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let r = 0; r < rounds; r++) {
          const res = await upload(agent, `${base}/Binary`, { authorization, 'content-type': 'application/pdf', 'x-security-context': `Patient/${patientId}`, accept: 'application/fhir+json' }, content);
          if (res.status === 201) ok++;
          else failures.push(`${res.status} ${res.body.toString().slice(0, 200)}`);
        }
      }),
    );
  } finally {
    clearInterval(timer);
    agent.destroy();
  }
  const seconds = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(server.child.pid!) - cpu0;
  const peak = Math.max(before, ...samples.map((x) => x.rss));
  console.log(`large uploads: ${clients} clients x ${rounds} raw POST Binary of ${mb} MB (application/pdf): ${ok} stored, ${failures.length} refused, ${fmt(seconds, 1)} s, ${fmt((ok * mb) / seconds, 1)} MB/s, server CPU ${fmt(cpu, 1)} s`);
  console.log(`server RSS MiB: before ${before}, peak ${peak}, after ${server.rssMiB()}; every 500 ms: ${samples.map((x) => x.rss).join(' ')}`);
  if (failures.length) console.log(`first refusal: ${failures[0]}`);
}

interface Row {
  phase: string;
  clients: number;
  ok: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
  rss: string;
  /** Server CPU (workers included) per request, ms: what a request costs whatever else the host runs. */
  cpuMs?: number;
  firstError?: string;
}

function row(phase: string, clients: number, r: Awaited<ReturnType<typeof closedLoop>>, rss: string, cpuSeconds?: number): Row {
  const s = summarize(r);
  const cpuMs = cpuSeconds !== undefined && r.operations > 0 ? (cpuSeconds * 1000) / r.operations : undefined;
  return { phase, clients, ok: r.latencies.length, errors: r.errors, perSecond: s.perSecond, p50: s.p50, p99: s.p99, rss, ...(cpuMs !== undefined ? { cpuMs } : {}), ...(r.firstError ? { firstError: r.firstError } : {}) };
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const databaseUrl = process.env.DATABASE_URL || '';
  const schema = databaseUrl ? `bench_mhd_${crypto.randomBytes(4).toString('hex')}` : '';
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-bench-mhd-'));
  const dataDir = path.join(work, 'data');
  const content = pdf(o.kb * 1024);
  const hash = crypto.createHash('sha1').update(content).digest('base64');
  let server: ServerProcess | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    server = await startServerProcess({ DATA_DIR: dataDir, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, ...(o.largeClients > 0 ? { SPOOL_MAX_BYTES: String(Math.ceil(o.largeClients * o.largeMb * 1.1) * 1_000_000) } : {}) }, o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf] : []);
    const dev = await openDevIssuer(loadConfig({ DATA_DIR: dataDir, PORT: String(server.port) }));
    const token = await dev.mintToken({ scope: 'conformance-testing', sub: 'bench-mhd' });
    const fhir = { authorization: `Bearer ${token}`, accept: 'application/fhir+json', 'content-type': 'application/fhir+json' };
    const base = server.url;

    const patient = await send(agent, `${base}/Patient`, 'POST', fhir, JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Banc' }], birthDate: '1970-01-01' }));
    if (patient.status !== 201) throw new Error(`creating the Patient answered ${patient.status}: ${patient.body.toString()}`);
    const patientId = JSON.parse(patient.body.toString()).id as string;
    const idle = server.rssMiB();

    const rows: Row[] = [];
    const binaries: string[] = [];
    // unmeasured: the first submissions compile the code paths and fill the caches
    await closedLoop(2, o.warmupMs, async () => {
      const res = await send(agent, base, 'POST', fhir, provideBundle(patientId, content, hash));
      if (res.status !== 200) throw new Error(`ITI-65 answered ${res.status}: ${res.body.toString().slice(0, 300)}`);
    });
    for (const clients of o.clients) {
      // a Bundle is built in each timed operation (fresh identifiers): about a millisecond of the client's
      const measured = await sampled(server, () =>
        closedLoop(clients, o.durationMs, async () => {
          const body = provideBundle(patientId, content, hash);
          const res = await send(agent, base, 'POST', fhir, body);
          if (res.status !== 200) throw new Error(`ITI-65 answered ${res.status}: ${res.body.toString().slice(0, 300)}`);
          const response = JSON.parse(res.body.toString()) as { entry: { response: { location: string } }[] };
          const binary = /Binary\/([^/]+)/.exec(response.entry[2].response.location)?.[1];
          if (binary) binaries.push(binary);
        }),
      );
      rows.push(row('ITI-65 submit', clients, measured.result, `${measured.peakMiB} peak / ${measured.endMiB} end`, measured.cpuSeconds));
    }
    // retrievals by the unrestricted test client, then by the patient (the policy and an AuditEvent per retrieval), alternating
    const patientToken = await dev.mintToken({ fhirUser: `Patient/${patientId}`, scope: 'patient/*.rs' });
    for (const clients of o.skipRetrieve ? [] : o.clients) {
      for (const [who, authorization] of [['', fhir.authorization], [' as the patient', `Bearer ${patientToken}`]]) {
        let i = 0;
        const measured = await sampled(server, () =>
          closedLoop(clients, o.durationMs, async () => {
            const id = binaries[i++ % binaries.length];
            const res = await send(agent, `${base}/Binary/${id}`, 'GET', { authorization, accept: 'application/pdf' });
            if (res.status !== 200 || res.body.length !== content.length) throw new Error(`ITI-68 answered ${res.status} with ${res.body.length} bytes`);
          }),
        );
        rows.push(row(`ITI-68 retrieve ${o.kb} KB${who}`, clients, measured.result, `${measured.peakMiB} peak / ${measured.endMiB} end`, measured.cpuSeconds));
      }
    }

    // the same rows and bytes straight into PostgreSQL: two JSON rows and the bytes per submission, one transaction each
    const raw: Row[] = [];
    if (databaseUrl) {
      const pool = new Pool({ connectionString: databaseUrl, max: Math.max(...o.clients) });
      const t = `"${schema}".raw_mhd`;
      await pool.query(`CREATE TABLE ${t} (id text PRIMARY KEY, body jsonb, bytes bytea)`);
      const list = JSON.parse(provideBundle(patientId, content, hash)).entry;
      for (const clients of o.clients) {
        const r = await closedLoop(clients, o.durationMs, async () => {
          const c = await pool.connect();
          try {
            await c.query('BEGIN');
            await c.query(`INSERT INTO ${t} (id, body) VALUES ($1, $2), ($3, $4)`, [crypto.randomUUID(), JSON.stringify(list[0].resource), crypto.randomUUID(), JSON.stringify(list[1].resource)]);
            await c.query(`INSERT INTO ${t} (id, body, bytes) VALUES ($1, $2, $3)`, [crypto.randomUUID(), '{"resourceType":"Binary","contentType":"application/pdf"}', content]);
            await c.query('COMMIT');
          } finally {
            c.release();
          }
        });
        raw.push(row('raw PostgreSQL insert', clients, r, '-'));
      }
      await pool.end();
    }

    if (o.largeClients > 0) await largeUploads(server, base, fhir.authorization, patientId, o.largeClients, o.largeMb, o.largeRounds);

    const database = databaseUrl ? `PostgreSQL (schema ${schema})` : 'embedded PGlite (temporary directory)';
    console.log(`MHD bench: ${database}${process.env.WORKERS ? `, WORKERS=${process.env.WORKERS}` : ''}, ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`);
    console.log(`each submission: SubmissionSet + DocumentReference + Binary of ${o.kb} KB (application/pdf, base64 in the Bundle); ${o.durationMs / 1000} s per phase; server RSS idle ${idle} MiB`);
    console.log(`command: ${databaseUrl ? 'DATABASE_URL=… ' : ''}npm run bench:mhd -- ${process.argv.slice(2).join(' ')}`.trim());
    const all = [...rows, ...raw];
    console.log(
      table(
        ['phase', 'clients', 'ok', 'errors', 'per second', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'server RSS MiB', 'vs raw'],
        all.map((r) => {
          const rawSame = raw.find((x) => x.clients === r.clients);
          const ratio = r.phase === 'ITI-65 submit' && rawSame ? `${fmt(rawSame.perSecond / r.perSecond, 1)}x slower` : '';
          return [r.phase, String(r.clients), String(r.ok), String(r.errors), fmt(r.perSecond, 1), fmt(r.p50, 1), fmt(r.p99, 1), r.cpuMs === undefined ? '-' : fmt(r.cpuMs, 2), r.rss, ratio];
        }),
      ),
    );
    for (const r of all) if (r.firstError) console.log(`first error (${r.phase}, ${r.clients}): ${r.firstError}`);
    console.log(JSON.stringify({ database: databaseUrl ? 'postgres' : 'embedded', kb: o.kb, durationS: o.durationMs / 1000, idleRssMiB: idle, phases: all }));
  } finally {
    agent.destroy();
    await server?.stop();
    if (databaseUrl) await dropSchema(databaseUrl, schema);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
