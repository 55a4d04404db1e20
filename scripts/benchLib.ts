/**
 * Building blocks of scripts/bench.ts: command-line options, the workload (French
 * PDSm-like DocumentReference, Patient, Practitioner, transaction Bundles), a
 * closed-loop load generator, a keep-alive HTTP client and the statistics.
 * No assertions: the benchmark prints figures.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Client } from 'pg';
import { nirKey } from '../src/validation/domain/nir';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

export interface BenchOptions {
  /** Seconds per measured phase. */
  duration: number;
  /** Seconds of unmeasured warm-up before the create and raw-insert phases. */
  warmup: number;
  /** Concurrent clients (HTTP) and pg connections (raw ceiling). */
  concurrency: number;
  /** Base URL of a running server (…/fhir); the server is started in-process when absent. */
  url: string | undefined;
  skipIngest: boolean;
  skipRaw: boolean;
  /** Leave out the start-up measurement (two starts of the compiled server, about 20 s). */
  skipStartup: boolean;
  /** HTTP client: node:http with a keep-alive Agent (default) or the global fetch (undici). */
  client: 'http' | 'fetch';
  /** Directory where a CPU profile of the main thread (the in-process server) is written per measured phase. */
  cpuProf: string | undefined;
}

export class UsageError extends Error {}

/** Parses the command line; a UsageError prints its message and the usage, then exits (2, or 0 for --help). */
export function parseArgsOrExit<T>(parse: (argv: string[]) => T, usage: string): T {
  try {
    return parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(e.message);
    console.error(usage);
    process.exit(e.message ? 2 : 0);
  }
}

export const USAGE = `Usage: node dist/scripts/bench.js [--duration 10] [--warmup 2] [--concurrency 8]
                                 [--url http://host:port/fhir] [--skip-ingest] [--skip-raw] [--skip-startup]
                                 [--client http|fetch] [--cpu-prof DIR]
Environment: DATABASE_URL=postgres://... benchmarks PostgreSQL (fresh schema bench_<random>,
dropped at the end); without it the embedded PGlite database (temporary directory).`;

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { duration: 10, warmup: 2, concurrency: 8, url: undefined, skipIngest: false, skipRaw: false, skipStartup: false, client: 'http', cpuProf: undefined };
  const positive = (name: string, v: string | undefined, allowZero = false): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`${name} needs a ${allowZero ? 'non-negative' : 'positive'} number, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (name) {
      case '--duration':
        o.duration = positive(name, value());
        break;
      case '--warmup':
        o.warmup = positive(name, value(), true);
        break;
      case '--concurrency':
        o.concurrency = Math.max(1, Math.round(positive(name, value())));
        break;
      case '--url': {
        const u = value();
        if (!u || !/^https?:\/\//.test(u)) throw new UsageError(`--url needs an http(s) URL, got "${u}"`);
        o.url = u.replace(/\/+$/, '');
        break;
      }
      case '--skip-ingest':
        o.skipIngest = true;
        break;
      case '--skip-raw':
        o.skipRaw = true;
        break;
      case '--skip-startup':
        o.skipStartup = true;
        break;
      case '--client': {
        const c = value();
        if (c !== 'http' && c !== 'fetch') throw new UsageError(`--client is http or fetch, got "${c}"`);
        o.client = c;
        break;
      }
      case '--cpu-prof': {
        const dir = value();
        if (!dir) throw new UsageError('--cpu-prof needs a directory');
        o.cpuProf = dir;
        break;
      }
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`Unknown option ${arg}`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------
// Workload
// ---------------------------------------------------------------------------

export const pick = <T>(values: readonly T[], i: number): T => values[i % values.length];
const digits = (n: number) => Array.from({ length: n }, () => crypto.randomInt(10)).join('');

const FAMILY = ['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau'];
const GIVEN = ['Marie', 'Jean', 'Camille', 'Louis', 'Léa', 'Hugo', 'Chloé', 'Lucas', 'Manon', 'Jules'];
const CITY: [string, string][] = [['Paris', '75011'], ['Lyon', '69003'], ['Marseille', '13005'], ['Lille', '59000'], ['Nantes', '44000']];
/** LOINC document types used by the DMP (type) and their XDS class (category). */
const DOC_TYPES: [code: string, display: string, classCode: string, classDisplay: string][] = [
  ['11488-4', 'Note de consultation', 'REPORTS', 'Compte rendu'],
  ['18842-5', 'Lettre de sortie', 'REPORTS', 'Compte rendu'],
  ['11502-2', 'CR d\u2019examens biologiques', 'RESULTS', 'R\u00e9sultat d\u2019examen'],
  ['18748-4', 'CR d\u2019imagerie m\u00e9dicale', 'REPORTS', 'Compte rendu'],
  ['57833-6', 'Prescription de produits de sant\u00e9', 'PRESCRIPTIONS', 'Prescription'],
];

/** Where this run's NIRs start: a database holds one Patient per INS, so the patients of one run never share one. */
const NIR_OFFSET = crypto.randomInt(0, 989_000);

/**
 * A well-formed NIR (sex, year, month, département, commune, order, then the key 97 - body
 * mod 97): commune and order count from the run's offset, so that 989,000 consecutive
 * patients of a run have distinct NIRs.
 */
export function nir(i: number, sex: 1 | 2): string {
  const n = (NIR_OFFSET + i) % 989_000;
  const body =
    `${sex}${String(40 + (i % 60)).padStart(2, '0')}${String((i % 12) + 1).padStart(2, '0')}` +
    `${String((i % 95) + 1).padStart(2, '0')}${String(1 + (Math.floor(n / 999) % 990)).padStart(3, '0')}${String(1 + (n % 999)).padStart(3, '0')}`;
  return body + nirKey(body);
}

/** A French patient with an INS (NIR) identifier. */
export function patientResource(i: number): Record<string, unknown> {
  const [city, postalCode] = pick(CITY, i);
  const gender = i % 2 === 0 ? 'female' : 'male';
  return {
    resourceType: 'Patient',
    meta: { profile: ['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins'] },
    identifier: [
      {
        use: 'official',
        type: { coding: [{ system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203', code: 'INS-NIR' }] },
        system: 'urn:oid:1.2.250.1.213.1.4.8',
        value: nir(i, gender === 'female' ? 2 : 1),
      },
      { use: 'usual', system: 'urn:oid:1.2.250.1.71.4.2.7', value: `IPP-${digits(9)}` },
    ],
    // the INS traits: a Patient carrying an INS is checked against our INS profile (profiles/profile-map.json)
    extension: [
      { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability', extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status', code: 'QUAL' } }] },
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { code: postalCode.startsWith('75') ? '75056' : '69123' } }] } },
    ],
    name: [{ use: 'official', family: pick(FAMILY, i), given: [pick(GIVEN, i * 7 + 3)], extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name', valueString: pick(GIVEN, i * 7 + 3) }] }],
    gender,
    birthDate: `${1940 + (i % 60)}-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`,
    telecom: [{ system: 'phone', value: `06${digits(8)}`, use: 'mobile' }],
    address: [{ use: 'home', line: [`${(i % 120) + 1} rue de la R\u00e9publique`], city, postalCode, country: 'FR' }],
  };
}

/** Patients posted so far by this process: each POST carries an INS no other Patient holds (one Patient per INS). */
let postedPatients = 0;

/** A template patient with an INS of its own (the templates are reused; their INS cannot be). */
export function withFreshIns(patient: Record<string, unknown>): Record<string, unknown> {
  const [ins, ...others] = patient.identifier as Record<string, unknown>[];
  const sex = patient.gender === 'female' ? 2 : 1;
  return { ...patient, identifier: [{ ...ins, value: nir(TEMPLATE_COUNT + postedPatients++, sex) }, ...others] };
}

/** Templates are numbered below this; posted patients above. */
const TEMPLATE_COUNT = 10_000;

/** A serialised transaction Bundle with its identifier slots filled: fresh NIRs and RPPS numbers (cheap enough to do per request). */
export function withFreshIdentifiers(body: string): string {
  return body.replace(/"@@NIR([12])@@"/g, (_m, sex: string) => `"${nir(TEMPLATE_COUNT + postedPatients++, Number(sex) as 1 | 2)}"`).replace(/"@@RPPS@@"/g, () => `"8${digits(11)}"`);
}

/** A health professional with an RPPS identifier. */
export function practitionerResource(i: number): Record<string, unknown> {
  return {
    resourceType: 'Practitioner',
    meta: { profile: ['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner'] },
    identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: `8${digits(11)}` }],
    name: [{ use: 'official', family: pick(FAMILY, i + 3), given: [pick(GIVEN, i + 5)], prefix: ['Dr'] }],
  };
}

/**
 * A document of the shared health record, shaped like an IHE MHD / French PDSm
 * comprehensive DocumentReference: masterIdentifier (document OID), type (LOINC),
 * category (XDS class), subject, date, author, securityLabel, one PDF attachment, context.
 */
export function documentReferenceResource(i: number, patientRef: string, practitionerRef: string): Record<string, unknown> {
  const [code, display, classCode, classDisplay] = pick(DOC_TYPES, i);
  const day = String((i % 28) + 1).padStart(2, '0');
  const binaryId = crypto.randomUUID();
  return {
    resourceType: 'DocumentReference',
    meta: { profile: ['https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/PDSm_ComprehensiveDocumentReference'] },
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.250.1.213.1.1.9.${digits(6)}.${i}` },
    identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:uuid:${crypto.randomUUID()}` }],
    status: 'current',
    docStatus: 'final',
    type: { coding: [{ system: 'http://loinc.org', code, display }] },
    category: [{ coding: [{ system: 'urn:oid:1.2.250.1.213.1.1.4.1', code: classCode, display: classDisplay }] }],
    subject: { reference: patientRef },
    date: `2025-03-${day}T10:${String(i % 60).padStart(2, '0')}:00+01:00`,
    author: [{ reference: practitionerRef }],
    securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N', display: 'normal' }] }],
    content: [
      {
        attachment: {
          contentType: 'application/pdf',
          language: 'fr-FR',
          url: `Binary/${binaryId}`,
          size: 48213 + (i % 1000),
          hash: crypto.createHash('sha1').update(binaryId).digest('base64'),
          title: display,
          creation: `2025-03-${day}T09:55:00+01:00`,
        },
        format: { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient' },
      },
    ],
    context: {
      period: { start: `2025-03-${day}T09:00:00+01:00`, end: `2025-03-${day}T09:45:00+01:00` },
      facilityType: { coding: [{ system: 'urn:oid:1.2.250.1.213.1.1.4.9', code: 'SA01', display: 'Etablissement public de sant\u00e9' }] },
      practiceSetting: { coding: [{ system: 'urn:oid:1.2.250.1.213.1.1.4.16', code: 'ORG01', display: 'M\u00e9decine g\u00e9n\u00e9rale' }] },
    },
  };
}

/**
 * A transaction Bundle of `size` entries, in groups of up to 100: one Patient, one
 * Practitioner and DocumentReferences referencing both by urn:uuid.
 */
export function transactionBundle(size: number, seed: number): Record<string, unknown> {
  const entry: Record<string, unknown>[] = [];
  for (let g = 0; entry.length < size; g++) {
    const groupSize = Math.min(100, size - entry.length);
    const patientUrl = `urn:uuid:${crypto.randomUUID()}`;
    const practitionerUrl = `urn:uuid:${crypto.randomUUID()}`;
    // national identifiers are slots filled at each POST (withFreshIdentifiers): a Bundle posted again cannot reuse them
    const patient = patientResource(seed + g);
    const [ins, ...others] = patient.identifier as Record<string, unknown>[];
    patient.identifier = [{ ...ins, value: patient.gender === 'female' ? '@@NIR2@@' : '@@NIR1@@' }, ...others];
    const practitioner = practitionerResource(seed + g);
    practitioner.identifier = [{ ...(practitioner.identifier as Record<string, unknown>[])[0], value: '@@RPPS@@' }];
    entry.push({ fullUrl: patientUrl, resource: patient, request: { method: 'POST', url: 'Patient' } });
    if (groupSize > 1) entry.push({ fullUrl: practitionerUrl, resource: practitioner, request: { method: 'POST', url: 'Practitioner' } });
    for (let k = 2; k < groupSize; k++) {
      entry.push({
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        resource: documentReferenceResource(seed + g * 100 + k, patientUrl, practitionerUrl),
        request: { method: 'POST', url: 'DocumentReference' },
      });
    }
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

// ---------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------

export interface HttpResponse {
  status: number;
  location: string | undefined;
  body: string;
}

export interface HttpClient {
  request(method: 'GET' | 'POST', path: string, body?: string, extraHeaders?: Record<string, string>): Promise<HttpResponse>;
  close(): void;
}

const FHIR_JSON = 'application/fhir+json';

/** node:http with a keep-alive Agent of `connections` sockets (cheapest client in Node). */
function nodeHttpClient(baseUrl: string, connections: number, auth: Record<string, string>): HttpClient {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const prefix = base.pathname.replace(/\/+$/, '');
  return {
    request(method, path, body, extraHeaders) {
      return new Promise((resolve, reject) => {
        const headers: http.OutgoingHttpHeaders = { accept: FHIR_JSON, ...auth, ...extraHeaders };
        if (body !== undefined) {
          headers['content-type'] = FHIR_JSON;
          headers['content-length'] = Buffer.byteLength(body);
        }
        const req = http.request({ host: base.hostname, port: base.port || 80, path: prefix + path, method, agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** The global fetch (undici inside Node 20), which keeps connections alive by default. */
function fetchClient(baseUrl: string, auth: Record<string, string>): HttpClient {
  return {
    async request(method, path, body, extraHeaders) {
      const res = await fetch(baseUrl + path, {
        method,
        body,
        headers: { accept: FHIR_JSON, ...auth, ...(body === undefined ? {} : { 'content-type': FHIR_JSON }), ...extraHeaders },
      });
      return { status: res.status, location: res.headers.get('location') ?? undefined, body: await res.text() };
    },
    close: () => undefined,
  };
}

/** `token`: the bearer token every request carries (the server asks one of every request but /metadata). */
export function httpClient(kind: 'http' | 'fetch', baseUrl: string, connections: number, token?: string): HttpClient {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return kind === 'fetch' ? fetchClient(baseUrl, auth) : nodeHttpClient(baseUrl, connections, auth);
}

/** "Type/id" from a Location header such as http://host/fhir/Type/id/_history/1. */
export function typeAndId(location: string | undefined): string | undefined {
  const m = location ? /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})\/_history\/[^/]+$/.exec(location) : null;
  return m ? m[1] : undefined;
}

// ---------------------------------------------------------------------------
// Load generation and statistics
// ---------------------------------------------------------------------------

export interface LoopResult {
  /** Latencies (ms) of the operations that succeeded. */
  latencies: number[];
  /** Operations completed (successes and errors). */
  operations: number;
  errors: number;
  firstError: string | undefined;
  elapsedMs: number;
}

/**
 * Closed loop: `concurrency` clients each run `op` back to back until `durationMs` has
 * passed (an operation in flight at the deadline is finished and counted). `op` gets the
 * client number and a per-client sequence number and throws (or rejects) on failure.
 */
let aborted = false;

/** Ends every closed loop of this thread at its next operation (Ctrl-C). */
export function abortLoops(): void {
  aborted = true;
}

export async function closedLoop(concurrency: number, durationMs: number, op: (client: number, seq: number) => Promise<void>): Promise<LoopResult> {
  const latencies: number[] = [];
  let operations = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + durationMs;
  const client = async (c: number) => {
    for (let seq = 0; performance.now() < deadline && !aborted; seq++) {
      const t0 = performance.now();
      try {
        await op(c, seq);
        latencies.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
      operations++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  return { latencies, operations, errors, firstError, elapsedMs: performance.now() - started };
}

export interface PhaseStats {
  operations: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
  mean: number;
  elapsedMs: number;
  firstError?: string;
}

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Throughput counts successful operations only, times `unitsPerOp` (e.g. entries per Bundle). */
export function summarize(r: LoopResult, unitsPerOp = 1): PhaseStats {
  const sorted = Float64Array.from(r.latencies).sort();
  const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN;
  return {
    operations: r.operations,
    errors: r.errors,
    perSecond: (r.latencies.length * unitsPerOp) / (r.elapsedMs / 1000),
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    mean,
    elapsedMs: r.elapsedMs,
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

export function fmt(n: number | undefined, decimals = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A plain-text table with right-aligned numeric columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A connection string without its password, for printing. */
/** Drops a schema a run created, and everything in it, on a connection of its own. */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

// ---------------------------------------------------------------------------
// HTTP load tasks, run in a worker thread so that the load generator does not
// share the event loop of an in-process server.
// ---------------------------------------------------------------------------

export type HttpTask =
  | { kind: 'create'; url: string; client: 'http' | 'fetch'; concurrency: number; durationMs: number; warmupMs: number; practitionerRef: string }
  | { kind: 'read'; url: string; client: 'http' | 'fetch'; concurrency: number; durationMs: number; ids: string[]; tokens?: string[] }
  | { kind: 'tx-sequential'; url: string; client: 'http' | 'fetch'; size: number; count: number }
  | { kind: 'tx-concurrent'; url: string; client: 'http' | 'fetch'; size: number; concurrency: number; durationMs: number }
  | { kind: 'setup'; url: string; client: 'http' | 'fetch' };

/** A task with the bearer token its requests carry. */
export type AuthorizedHttpTask = HttpTask & { token?: string };

export interface HttpTaskResult {
  stats: PhaseStats;
  /** Operations run before the measured window (warm-up), successes and errors. */
  warmupOperations: number;
  /** Units (resources) written or read in total, warm-up included: divides the SQL statement count. */
  units: number;
  /** "Type/id" of the resources created (create, setup). */
  ids?: string[];
  /** "Patient/id" of the record each of `ids` belongs to (create). */
  records?: string[];
}

/** Templates generated once, so that the clients spend their time on requests, not on building resources. */
export function templates(count: number): { patients: Record<string, unknown>[]; documents: Record<string, unknown>[] } {
  return {
    patients: Array.from({ length: count }, (_, i) => patientResource(i)),
    documents: Array.from({ length: count }, (_, i) => documentReferenceResource(i, 'Patient/placeholder', 'Practitioner/placeholder')),
  };
}

async function expectStatus(res: Promise<HttpResponse>, expected: number, what: string): Promise<HttpResponse> {
  const r = await res;
  if (r.status !== expected) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
  return r;
}

export async function runHttpTask(task: AuthorizedHttpTask): Promise<HttpTaskResult> {
  const connections = 'concurrency' in task ? task.concurrency : 1;
  const client = httpClient(task.client, task.url, connections, task.token);
  try {
    switch (task.kind) {
      case 'setup': {
        const r = await expectStatus(client.request('POST', '/Practitioner', JSON.stringify(practitionerResource(0))), 201, 'POST Practitioner');
        const id = typeAndId(r.location);
        if (!id) throw new Error(`POST Practitioner: no usable Location header (${r.location})`);
        return { stats: summarize({ latencies: [], operations: 1, errors: 0, firstError: undefined, elapsedMs: 1 }), warmupOperations: 0, units: 1, ids: [id] };
      }
      case 'create': {
        // Each client alternates: POST Patient, then POST DocumentReference about that patient.
        const t = templates(200);
        const ids: string[] = [];
        const records: string[] = [];
        const lastPatient: (string | undefined)[] = new Array(task.concurrency).fill(undefined);
        const op = async (c: number, seq: number) => {
          const patient = lastPatient[c];
          if (patient === undefined || seq % 2 === 0) {
            const body = JSON.stringify(withFreshIns(pick(t.patients, seq + c * 31)));
            const r = await expectStatus(client.request('POST', '/Patient', body), 201, 'POST Patient');
            const id = typeAndId(r.location);
            if (!id) throw new Error(`POST Patient: no usable Location header (${r.location})`);
            lastPatient[c] = id;
            ids.push(id);
            records.push(id);
          } else {
            const body = JSON.stringify({ ...pick(t.documents, seq + c * 31), subject: { reference: patient }, author: [{ reference: task.practitionerRef }] });
            const r = await expectStatus(client.request('POST', '/DocumentReference', body), 201, 'POST DocumentReference');
            const id = typeAndId(r.location);
            if (!id) throw new Error(`POST DocumentReference: no usable Location header (${r.location})`);
            ids.push(id);
            records.push(patient);
          }
        };
        const warm = task.warmupMs > 0 ? await closedLoop(task.concurrency, task.warmupMs, op) : undefined;
        const measured = await closedLoop(task.concurrency, task.durationMs, op);
        const total = (warm?.operations ?? 0) + measured.operations;
        return { stats: summarize(measured), warmupOperations: warm?.operations ?? 0, units: total, ids, records };
      }
      case 'read': {
        if (task.ids.length === 0) throw new Error('read: nothing was created to read');
        const op = async () => {
          const k = crypto.randomInt(task.ids.length);
          const id = task.ids[k];
          // with `tokens`, each read carries the token of its own caller (the record's patient)
          const auth = task.tokens ? { authorization: `Bearer ${task.tokens[k]}` } : undefined;
          const r = await expectStatus(client.request('GET', `/${id}`, undefined, auth), 200, `GET ${id.split('/')[0]}`);
          if (r.body.length < 20) throw new Error(`GET ${id}: empty body`);
        };
        const measured = await closedLoop(task.concurrency, task.durationMs, op);
        return { stats: summarize(measured), warmupOperations: 0, units: measured.operations };
      }
      case 'tx-sequential': {
        // Bundles are built and serialised before the clock starts.
        const bodies = Array.from({ length: task.count }, (_, i) => JSON.stringify(transactionBundle(task.size, i * task.size)));
        let k = 0;
        const op = async () => {
          const body = withFreshIdentifiers(bodies[k++]);
          const r = await expectStatus(client.request('POST', '', body), 200, `POST transaction(${task.size})`);
          const entries = (JSON.parse(r.body) as { entry?: unknown[] }).entry?.length ?? 0;
          if (entries !== task.size) throw new Error(`transaction(${task.size}): ${entries} entries in the response`);
        };
        const latencies: number[] = [];
        let errors = 0;
        let firstError: string | undefined;
        for (let i = 0; i < task.count; i++) {
          const t0 = performance.now();
          try {
            await op();
            latencies.push(performance.now() - t0);
          } catch (e) {
            errors++;
            firstError ??= (e as Error).message;
          }
        }
        // Throughput over the time spent in requests (sum of latencies), in resources per second.
        const busy = latencies.reduce((a, b) => a + b, 0);
        return {
          stats: summarize({ latencies, operations: task.count, errors, firstError, elapsedMs: busy || 1 }, task.size),
          warmupOperations: 0,
          units: task.count * task.size,
        };
      }
      case 'tx-concurrent': {
        const pool = Array.from({ length: task.concurrency * 2 }, (_, i) => JSON.stringify(transactionBundle(task.size, i * task.size)));
        const op = async (c: number, seq: number) => {
          const r = await expectStatus(client.request('POST', '', withFreshIdentifiers(pick(pool, c + seq * task.concurrency))), 200, `POST transaction(${task.size})`);
          const entries = (JSON.parse(r.body) as { entry?: unknown[] }).entry?.length ?? 0;
          if (entries !== task.size) throw new Error(`transaction(${task.size}): ${entries} entries in the response`);
        };
        const measured = await closedLoop(task.concurrency, task.durationMs, op);
        return { stats: summarize(measured, task.size), warmupOperations: 0, units: measured.operations * task.size };
      }
    }
  } finally {
    client.close();
  }
}

const WORKER_ROLE = 'bench-http-client';

/** The load generator in its own thread: `run` sends one task and resolves with its result. */
export class HttpWorker {
  private readonly worker: Worker;
  private pending: { resolve: (r: HttpTaskResult) => void; reject: (e: Error) => void } | undefined;
  private exited = false;
  /** The bearer token the tasks' requests carry (set once the server under test is known). */
  token: string | undefined;

  constructor() {
    this.worker = new Worker(path.join(__dirname, 'benchLib.js'), { workerData: { role: WORKER_ROLE } });
    this.worker.on('message', (m: { ok: true; result: HttpTaskResult } | { ok: false; error: string }) => {
      const p = this.pending;
      this.pending = undefined;
      if (!p) return;
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    this.worker.on('error', (e) => {
      this.pending?.reject(e);
      this.pending = undefined;
    });
    this.worker.on('exit', (code) => {
      this.pending?.reject(new Error(`the load-generator thread stopped (exit code ${code})`));
      this.pending = undefined;
      this.exited = true;
    });
  }

  run(task: HttpTask): Promise<HttpTaskResult> {
    if (this.exited) return Promise.reject(new Error('the load-generator thread has stopped'));
    if (this.pending) return Promise.reject(new Error('HttpWorker runs one task at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ ...task, token: this.token });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  const port = parentPort;
  port.on('message', (task: HttpTask) => {
    runHttpTask(task).then(
      (result) => port.postMessage({ ok: true, result }),
      (e: unknown) => port.postMessage({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
}

// ---------------------------------------------------------------------------
// CPU accounting (Linux /proc; elsewhere only this process is measured)
// ---------------------------------------------------------------------------

export interface CpuSnapshot {
  at: number;
  /** Busy and total jiffies of the whole host (all cores), from /proc/stat. */
  hostBusy: number;
  hostTotal: number;
  /** CPU of this process (server, load-generator thread and, embedded, PGlite), microseconds. */
  selfMicros: number;
  /** CPU of local PostgreSQL processes; undefined when not measured. */
  postgres: PostgresJiffies | undefined;
  /** Event-loop utilisation of this (the server's) main thread. */
  elu: ReturnType<typeof performance.eventLoopUtilization>;
}

export interface CpuUsage {
  /** Cores kept busy on the host by everything, on average. */
  hostCores: number | undefined;
  /** Cores used by this process. */
  selfCores: number;
  /** Cores used by local PostgreSQL processes. */
  postgresCores: number | undefined;
  /** Cores used by everything else on the host: noise from other work. */
  otherCores: number | undefined;
  /** CPU milliseconds per unit (request, or resource for ingest). */
  selfMsPerUnit: number;
  postgresMsPerUnit: number | undefined;
  /** Fraction of time the main thread (the in-process server) was busy. */
  mainLoopBusy: number;
}

const CLK_TCK = 100; // USER_HZ: 100 on every Linux architecture Node supports

function readHostJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3] - v[4], total };
  } catch {
    return undefined;
  }
}

/**
 * utime + stime of each live PostgreSQL process counted. Processes that end between two
 * snapshots are lost (a short autovacuum run); the postmaster's cutime is not used because
 * it also collects the sessions of other clients of the same cluster.
 */
interface PostgresJiffies {
  perPid: Map<number, number>;
}

function procStat(pid: string): { comm: string; fields: string[] } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3 (state)
    return { comm: stat.slice(stat.indexOf('(') + 1, close), fields };
  } catch {
    return undefined; // ended meanwhile, or not readable
  }
}

/** CPU jiffies of the given PostgreSQL processes (all processes named postgres when `only` is undefined). */
function readPostgresJiffies(only: Set<number> | undefined): PostgresJiffies | undefined {
  let pids: string[];
  try {
    pids = only ? [...only].map(String) : fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  const perPid = new Map<number, number>();
  for (const pid of pids) {
    const st = procStat(pid);
    // utime and stime are fields 14 and 15
    if (st?.comm === 'postgres') perPid.set(Number(pid), Number(st.fields[11]) + Number(st.fields[12]));
  }
  return perPid.size > 0 ? { perPid } : undefined;
}

/**
 * `postgres`: false (not measured), true (every local process named postgres) or the set of
 * PostgreSQL process ids to count (the benchmark's backends and the background processes).
 */
export function cpuSnapshot(postgres: boolean | Set<number>): CpuSnapshot {
  const host = readHostJiffies();
  const u = process.cpuUsage();
  return {
    at: performance.now(),
    hostBusy: host?.busy ?? NaN,
    hostTotal: host?.total ?? NaN,
    selfMicros: u.user + u.system,
    postgres: postgres === false ? undefined : readPostgresJiffies(postgres === true ? undefined : postgres),
    elu: performance.eventLoopUtilization(),
  };
}

function postgresJiffiesBetween(a: PostgresJiffies | undefined, b: PostgresJiffies | undefined): number | undefined {
  if (!a || !b) return undefined;
  let sum = 0;
  for (const [pid, j] of b.perPid) sum += j - (a.perPid.get(pid) ?? 0);
  return Math.max(0, sum);
}

export function cpuUsageBetween(a: CpuSnapshot, b: CpuSnapshot, units: number, cores: number): CpuUsage {
  const seconds = (b.at - a.at) / 1000;
  const hostTotal = b.hostTotal - a.hostTotal;
  const hostCores = Number.isFinite(hostTotal) && hostTotal > 0 ? ((b.hostBusy - a.hostBusy) / hostTotal) * cores : undefined;
  const selfSeconds = (b.selfMicros - a.selfMicros) / 1e6;
  const pgJiffies = postgresJiffiesBetween(a.postgres, b.postgres);
  const pgSeconds = pgJiffies === undefined ? undefined : pgJiffies / CLK_TCK;
  const selfCores = selfSeconds / seconds;
  const postgresCores = pgSeconds === undefined ? undefined : pgSeconds / seconds;
  return {
    hostCores,
    selfCores,
    postgresCores,
    otherCores: hostCores === undefined ? undefined : Math.max(0, hostCores - selfCores - (postgresCores ?? 0)),
    selfMsPerUnit: (selfSeconds * 1000) / units,
    postgresMsPerUnit: pgSeconds === undefined ? undefined : (pgSeconds * 1000) / units,
    mainLoopBusy: performance.eventLoopUtilization(b.elu, a.elu).utilization,
  };
}

/** The installed PGlite version, for the benchmark headers. */
export function pgliteVersion(): string {
  try {
    const pkg = path.join(path.dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json'); // dist/index.cjs -> package root
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

/**
 * A worker thread that runs the tasks of one script (its own file, loaded again in the
 * thread) one at a time: the load generator stays off the main thread of an in-process
 * server. The thread side calls serveTasks with the same role.
 */
export class TaskWorker<T, R> {
  private readonly worker: Worker;

  constructor(file: string, role: string) {
    this.worker = new Worker(file, { workerData: { role } });
  }

  run(task: T): Promise<R> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ok: true; result: R } | { ok: false; error: string }) => {
        this.worker.off('error', onError);
        if (m.ok) resolve(m.result);
        else reject(new Error(m.error));
      };
      const onError = (e: Error) => {
        this.worker.off('message', onMessage);
        reject(e);
      };
      this.worker.once('message', onMessage);
      this.worker.once('error', onError);
      this.worker.postMessage(task);
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

/** In the thread a TaskWorker of this role started: answers each task with `handler`'s result. */
export function serveTasks<T, R>(role: string, handler: (task: T) => Promise<R>): void {
  if (isMainThread || !parentPort || (workerData as { role?: string } | null)?.role !== role) return;
  const port = parentPort;
  port.on('message', (task: T) => {
    handler(task).then(
      (result) => port.postMessage({ ok: true, result }),
      (e: unknown) => port.postMessage({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
}

