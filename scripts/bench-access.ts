/**
 * The cost of access control on reads and searches (docs/operations/access-benchmarks.md).
 *
 *   npm run bench:access [-- --resources 100000]
 *   DATABASE_URL=postgres://… npm run bench:access [-- --resources 1000000]
 *
 * Seeds a dataset of its own through the store's write path (newVersion + executeWrites,
 * as scripts/seed.ts does): patients with DocumentReferences of the habilitation matrix's
 * document types and classes, some masked from professionals (MASQUE_PS), and Consents
 * declaring a general practitioner (or naming him treating physician) on a share of the
 * records and a nurse on a smaller share. Then runs the same requests twice over HTTP:
 * with the token of an unrestricted test client (no policy: the `conformance-testing`
 * scope of an issuer marked testClient) and with the token of a real actor (the
 * practitioner, the nurse, a patient on their own record), and prints req/s, p50 and p99
 * of each, and the overhead of access control.
 *
 * The two modes of one case are measured in alternating rounds (A B B A …) so that drift
 * of a shared machine falls on both. The load runs in a worker thread so that it does not
 * share the event loop of the in-process server. No assertions: the benchmark prints
 * figures, and one JSON object on its last line.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import knexFactory, { type Knex } from 'knex';
import { createTestIssuer, type TestIssuer } from '../conformance/testIssuer';
import { loadConfig } from '../src/config/config';
import { newVersion } from '../src/interactions/common';
import { createLogger } from '../src/log';
import { findProfilesDir } from '../src/registry/registry';
import { RunningServer, startServer } from '../src/server';
import { executeWrites, VersionWrite } from '../src/store/writeVersions';
import { explain, type Statement } from './bench-search';
import { dropSchema, fmt, httpClient, parseArgsOrExit, percentile, pgliteVersion, redactUrl, table, UsageError, serveTasks, TaskWorker } from './benchLib';
import { Prng } from './syntheticData';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

interface Options {
  resources: number;
  /** Mean DocumentReferences per patient. */
  documents: number;
  /** Share of the records where the practitioner has a declared consent (a third of them name him treating physician instead). */
  practitionerShare: number;
  /** Share of the records where the nurse has a declared consent. */
  nurseShare: number;
  /** Share of the documents labelled MASQUE_PS. */
  masked: number;
  /** Records sampled per actor (the requests cycle over them). */
  samples: number;
  /** Measured requests per case and mode. */
  requests: number;
  /** Alternating rounds the requests of a case are split into. */
  rounds: number;
  concurrency: number;
  seed: number;
  only: string[] | undefined;
  /** EXPLAIN (ANALYZE, BUFFERS) of each statement of one request per case, actor mode. */
  explain: boolean;
  /** Keep a database this run created (its schema or directory) for later runs. */
  keep: boolean;
  /** Serve with the audit trail (as deployed): the actor's requests then also write their AuditEvent. */
  audit: boolean;
}

const USAGE = `Usage: node dist/scripts/bench-access.js [--resources 100000] [--documents 8] [--practitioner-share 0.1]
                                        [--nurse-share 0.02] [--masked 0.05] [--samples 40] [--requests 300]
                                        [--rounds 4] [--concurrency 1] [--seed 7] [--only read,search-patient,...]
                                        [--explain] [--keep] [--audit]
Environment: DATABASE_URL=postgres://… benchmarks PostgreSQL: a fresh schema bench_access_<random>, dropped at
the end unless --keep; with DATABASE_SCHEMA=name that schema is used and kept, and seeded only if it does not
hold the dataset yet. Without DATABASE_URL: the embedded PGlite database, in a temporary directory (removed
unless --keep), or in DATA_DIR when set (kept; seeded only if it does not hold the dataset yet).
Cases: read, search-patient, search-type, cross-record, everything, by-ins, mhd-by-ins.`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    resources: 100_000,
    documents: 8,
    practitionerShare: 0.1,
    nurseShare: 0.02,
    masked: 0.05,
    samples: 40,
    requests: 300,
    rounds: 4,
    concurrency: 1,
    seed: 7,
    only: undefined,
    explain: false,
    keep: false,
    audit: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const num = (min: number, max = Infinity) => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} needs a number between ${min} and ${max}, got "${v}"`);
      return n;
    };
    switch (name) {
      case '--resources':
        o.resources = Math.round(num(1000));
        break;
      case '--documents':
        o.documents = num(1);
        break;
      case '--practitioner-share':
        o.practitionerShare = num(0.0001, 1);
        break;
      case '--nurse-share':
        o.nurseShare = num(0.0001, 1);
        break;
      case '--masked':
        o.masked = num(0, 1);
        break;
      case '--samples':
        o.samples = Math.round(num(1));
        break;
      case '--requests':
        o.requests = Math.round(num(1));
        break;
      case '--rounds':
        o.rounds = Math.round(num(1));
        break;
      case '--concurrency':
        o.concurrency = Math.round(num(1));
        break;
      case '--seed':
        o.seed = Math.round(num(0));
        break;
      case '--only':
        o.only = value().split(',');
        if (o.only.some((c) => !CASES.some((k) => k.name === c))) throw new UsageError(`--only takes cases among ${CASES.map((k) => k.name).join(', ')}`);
        break;
      case '--explain':
        o.explain = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--audit':
        o.audit = true;
        break;
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
// Dataset
// ---------------------------------------------------------------------------

const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const R38 = 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale';
const A07 = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
const IDNPS = 'urn:oid:1.2.250.1.71.4.2.1';
const INS_TEST = 'urn:oid:1.2.250.1.213.1.4.10';
const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };
const PCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PCP' }] };
/** Dates are spread over the ten years before this instant (not the clock: the same seed gives the same data). */
const REFERENCE_DATE = Date.parse('2025-06-30T00:00:00Z');
const YEAR = 365.25 * 86_400_000;

/** The actors of the benchmark, with fixed ids so that a kept database is found again. */
export const GP = 'bench-gp';
const NURSE = 'bench-nurse';

interface DocType {
  system: string;
  code: string;
  display: string;
  cls: string;
}

/** The document types of the habilitation matrix, each with the class it maps to. */
function matrixDocumentTypes(): { classSystem: string; types: DocType[] } {
  const matrix = JSON.parse(fs.readFileSync(path.join(findProfilesDir(), 'habilitation-matrix.json'), 'utf8')) as {
    systems: { documentClass: string };
    documentTypes: { system: string; code: string; display: string; class: string }[];
  };
  return { classSystem: matrix.systems.documentClass, types: matrix.documentTypes.map((t) => ({ system: t.system, code: t.code, display: t.display, cls: t.class })) };
}

/** What shapes the dataset (scripts/bench-audit.ts seeds the same one). */
export type DatasetOptions = Pick<Options, 'resources' | 'documents' | 'practitionerShare' | 'nurseShare' | 'masked' | 'seed'>;

interface Seeded {
  resource: Record<string, unknown> & { resourceType: string; id: string };
  lastUpdated: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The dataset as a stream, in write order: the practitioners and their roles, then each
 * patient with their Consents and documents, until exactly `resources` resources.
 */
export function* accessDataset(o: DatasetOptions): Generator<Seeded> {
  const rng = new Prng(o.seed);
  const { classSystem, types } = matrixDocumentTypes();
  let produced = 0;
  const emit = (resource: Seeded['resource'], ms: number): Seeded => {
    produced++;
    return { resource, lastUpdated: iso(ms) };
  };
  const start = REFERENCE_DATE - 10 * YEAR;

  // --- practitioners: the two actors, then the other authors -----------------------------------
  const others = Math.max(20, Math.round(o.resources / 500));
  const practitioner = (id: string, family: string, profession: string, specialty?: string): Seeded[] => [
    {
      resource: { resourceType: 'Practitioner', id, active: true, identifier: [{ system: IDNPS, value: `8${rng.digits(11)}` }], name: [{ family, given: ['Bench'] }] },
      lastUpdated: iso(start),
    },
    {
      resource: {
        resourceType: 'PractitionerRole',
        id: `${id}-role`,
        active: true,
        practitioner: { reference: `Practitioner/${id}` },
        code: [{ coding: [{ system: G15, code: profession }] }],
        ...(specialty ? { specialty: [{ coding: [{ system: R38, code: specialty }] }] } : {}),
        period: { start: '2000-01-01' },
      },
      lastUpdated: iso(start),
    },
  ];
  const directory = [...practitioner(GP, 'Generaliste', '10', 'SM54'), ...practitioner(NURSE, 'Infirmiere', '60')];
  const otherIds: string[] = [];
  for (let i = 0; i < others; i++) {
    const id = `bench-pr-${i}`;
    otherIds.push(id);
    directory.push(...practitioner(id, `Auteur${i}`, rng.chance(0.7) ? '10' : rng.pick(['21', '50', '60', '70'])));
  }
  for (const d of directory) {
    if (produced >= o.resources) return;
    yield emit(d.resource, Date.parse(d.lastUpdated));
  }

  const consent = (patientId: string, performer: string, actor: string, role: typeof IRCP, ms: number): Seeded['resource'] => ({
    resourceType: 'Consent',
    id: rng.uuid(),
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: iso(ms),
    performer: [{ reference: performer }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    // a period that covers the benchmark whenever it runs (a consent without one lasts CONSENT_DEFAULT_DAYS)
    provision: { type: 'permit', period: { start: '2020-01-01T00:00:00Z', end: '2099-12-31T00:00:00Z' }, actor: [{ role, reference: { reference: actor } }] },
  });

  // --- patients and their records --------------------------------------------------------------
  while (produced < o.resources) {
    const patientId = rng.uuid();
    const female = rng.chance(0.52);
    const gp = rng.pick(otherIds);
    yield emit(
      {
        resourceType: 'Patient',
        id: patientId,
        active: true,
        identifier: [{ system: INS_TEST, value: `${female ? 2 : 1}${rng.digits(14)}` }],
        name: [{ family: `Patient${produced}`, given: [female ? 'Marie' : 'Jean'] }],
        gender: female ? 'female' : 'male',
        birthDate: iso(REFERENCE_DATE - (1 + rng.next() * 90) * YEAR).slice(0, 10),
        generalPractitioner: [{ reference: `Practitioner/${gp}` }],
      },
      start,
    );
    // another professional's declared consent on every record: facts are loaded for real Consents
    if (produced < o.resources) yield emit(consent(patientId, `Practitioner/${gp}`, `Practitioner/${gp}`, IRCP, start + rng.next() * YEAR), start);
    const gpRecord = rng.chance(o.practitionerShare);
    if (gpRecord && produced < o.resources) {
      // a third of his records name him treating physician (the patient's choice), the rest hold his declared consent
      const treating = rng.chance(1 / 3);
      const c = treating ? consent(patientId, `Patient/${patientId}`, `Practitioner/${GP}`, PCP, start) : consent(patientId, `Practitioner/${GP}`, `Practitioner/${GP}`, IRCP, start);
      yield emit(c, start);
    }
    if (rng.chance(o.nurseShare) && produced < o.resources) yield emit(consent(patientId, `Practitioner/${NURSE}`, `Practitioner/${NURSE}`, IRCP, start), start);

    const documents = Math.min(20 * o.documents, 1 + Math.round(rng.exponential(Math.max(0, o.documents - 1))));
    for (let d = 0; d < documents && produced < o.resources; d++) {
      const type = rng.pick(types);
      const ms = Math.floor(start + rng.next() * (REFERENCE_DATE - start));
      const byPatient = type.cls === '90';
      const author = byPatient ? `Patient/${patientId}` : gpRecord && rng.chance(0.25) ? `Practitioner/${GP}` : `Practitioner/${rng.pick(otherIds)}`;
      const masked = rng.chance(o.masked);
      yield emit(
        {
          resourceType: 'DocumentReference',
          id: rng.uuid(),
          ...(masked ? { meta: { security: [{ system: A07, code: 'MASQUE_PS', display: 'Masqué aux professionnels de santé' }] } } : {}),
          masterIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.250.1.213.1.1.9.${o.seed}.${produced}` },
          status: 'current',
          type: { coding: [{ system: type.system, code: type.code, display: type.display }] },
          category: [{ coding: [{ system: classSystem, code: type.cls }] }],
          subject: { reference: `Patient/${patientId}` },
          date: iso(ms),
          author: [{ reference: author }],
          description: type.display,
          content: [{ attachment: { contentType: 'application/pdf', language: 'fr-FR', title: type.display, size: 40_000 + rng.int(20_000), creation: iso(ms - 300_000) } }],
        },
        ms + 60_000,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Seeding (the store's write path, as scripts/seed.ts)
// ---------------------------------------------------------------------------

export async function seed(server: RunningServer, o: DatasetOptions, progress: (s: string) => void): Promise<{ seconds: number; byType: Map<string, number> }> {
  const ctx = server.ctx;
  const knex = ctx.db.knex;
  const byType = new Map<string, number>();
  const t0 = performance.now();
  let written = 0;
  let lastReport = t0;
  const writeBatch = (batch: VersionWrite[]) =>
    knex.transaction(async (trx) => {
      // durability of a benchmark dataset is not the point; the server's own writes keep the default
      if (ctx.db.kind === 'postgres') await trx.raw('SET LOCAL synchronous_commit = off');
      await executeWrites(trx, batch);
    });
  const source = accessDataset(o);
  let inFlight: Promise<void> | undefined;
  let inFlightSize = 0;
  for (;;) {
    // the next batch is built (index extraction) while the previous one is written
    const batch: VersionWrite[] = [];
    while (batch.length < 2000) {
      const next = source.next();
      if (next.done) break;
      const r = next.value.resource;
      byType.set(r.resourceType, (byType.get(r.resourceType) ?? 0) + 1);
      batch.push(newVersion(ctx, r, { id: r.id, versionId: 1, lastUpdated: next.value.lastUpdated, method: 'POST' }));
    }
    if (inFlight) {
      await inFlight;
      written += inFlightSize;
    }
    if (batch.length === 0) break;
    inFlight = writeBatch(batch);
    inFlightSize = batch.length;
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      progress(`seeded ${fmt(written, 0)} / ${fmt(o.resources, 0)} resources, ${fmt(written / ((lastReport - t0) / 1000), 0)}/s`);
    }
  }
  progress(ctx.db.kind === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE');
  if (ctx.db.kind === 'postgres') await vacuumSchema(ctx.config.databaseUrl!, ctx.config.databaseSchema!);
  else await knex.raw('ANALYZE');
  return { seconds: (performance.now() - t0) / 1000, byType };
}

/**
 * VACUUM ANALYZE of this schema's tables only (other schemas of the database are not ours),
 * on a connection of its own: the server's pool has a statement timeout a large VACUUM
 * outlasts, and VACUUM cannot run in a transaction where SET LOCAL would lift it.
 */
async function vacuumSchema(databaseUrl: string, schema: string): Promise<void> {
  const own = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 1, max: 1 } });
  try {
    await own.raw('SET statement_timeout = 0');
    const tables = await rows<{ relname: string }>(own, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'r'`, [schema]);
    for (const t of tables) await own.raw(`VACUUM ANALYZE "${schema}"."${t.relname}"`);
  } finally {
    await own.destroy();
  }
}

// ---------------------------------------------------------------------------
// Actors, samples and cases
// ---------------------------------------------------------------------------

export interface RecordSample {
  patientId: string;
  /** The Patient's INS as `system|value`, for the searches by identifier. */
  ins: string;
  /** Documents of the record, in a seeded order: the read case takes the first the actor may read. */
  documents: { id: string; type: string; date: string }[];
}

interface Actor {
  name: string;
  title: string;
  /** The token for a record (a patient acts only on their own). */
  token(patientId: string): string;
  samples: RecordSample[];
  /** Cases this actor runs. */
  cases: string[];
}

export interface Request {
  path: string;
  token: string;
  /** A POST carries its body and answers 201; a GET answers 200. */
  body?: string;
}

interface Case {
  name: string;
  title: string;
  /** The request for a sample, given the document the actor reads in it. */
  path(s: RecordSample, doc: RecordSample['documents'][number]): string;
}

const enc = encodeURIComponent;

const CASES: Case[] = [
  { name: 'read', title: 'GET DocumentReference/[id]', path: (_s, d) => `/DocumentReference/${d.id}` },
  { name: 'search-patient', title: 'GET DocumentReference?patient=X', path: (s) => `/DocumentReference?patient=${s.patientId}` },
  { name: 'search-type', title: 'GET DocumentReference?patient=X&type=system|code', path: (s, d) => `/DocumentReference?patient=${s.patientId}&type=${enc(d.type)}` },
  // a year before a document of the record: from a few to most documents of every record
  { name: 'cross-record', title: 'GET DocumentReference?date=geYYYY-MM-DD (no patient named)', path: (_s, d) => `/DocumentReference?date=ge${String(Number(d.date.slice(0, 4)) - 1)}${d.date.slice(4, 10)}` },
  { name: 'everything', title: 'GET Patient/X/$everything', path: (s) => `/Patient/${s.patientId}/$everything` },
  // no patient named either: the record is found by its INS (decision 033's lookup, and the MHD query)
  { name: 'by-ins', title: 'GET Patient?identifier=INS', path: (s) => `/Patient?identifier=${enc(s.ins)}` },
  { name: 'mhd-by-ins', title: 'GET DocumentReference?patient.identifier=INS', path: (s) => `/DocumentReference?patient.identifier=${enc(s.ins)}` },
];

export async function rows<T>(knex: Knex, sql: string, bindings: unknown[] = []): Promise<T[]> {
  return ((await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] }).rows;
}

/** `count` records among `ids`, chosen by a seeded PRNG, with their documents. */
export async function sampleRecords(knex: Knex, ids: string[], count: number, rng: Prng): Promise<RecordSample[]> {
  const chosen = new Set<string>();
  while (chosen.size < Math.min(count, ids.length)) chosen.add(ids[rng.int(ids.length)]);
  const out: RecordSample[] = [];
  for (const patientId of chosen) {
    const docs = await rows<{ id: string; system: string; code: string; date: string }>(
      knex,
      `SELECT r.id, t.system, t.code, to_char(d.low AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date FROM resource r
         JOIN idx_token t ON t.compartment = r.compartment AND t.resource_type = r.resource_type AND t.resource_id = r.id AND t.param = 'type'
         JOIN idx_date d ON d.compartment = r.compartment AND d.resource_type = r.resource_type AND d.resource_id = r.id AND d.param = 'date'
        WHERE r.compartment = ? AND r.resource_type = 'DocumentReference' AND NOT r.deleted ORDER BY r.id`,
      [patientId],
    );
    if (docs.length === 0) continue;
    const [ins] = await rows<{ system: string; code: string }>(
      knex,
      `SELECT system, code FROM idx_token WHERE compartment = ? AND resource_type = 'Patient' AND resource_id = ? AND param = 'identifier' AND system = ? ORDER BY code LIMIT 1`,
      [patientId, patientId, INS_TEST],
    );
    const shuffled = docs.map((d) => ({ d, k: rng.next() })).sort((a, b) => a.k - b.k).map(({ d }) => ({ id: d.id, type: `${d.system}|${d.code}`, date: d.date }));
    out.push({ patientId, ins: ins ? `${ins.system}|${ins.code}` : '', documents: shuffled });
  }
  return out;
}

/** The records whose Consents name a practitioner (what the policy opens for them). */
export async function recordsNamingPractitioner(knex: Knex, id: string): Promise<string[]> {
  return (
    await rows<{ compartment: string }>(
      knex,
      `SELECT DISTINCT compartment FROM idx_reference WHERE resource_type = 'Consent' AND param = 'actor' AND target_type = 'Practitioner' AND target_id = ? ORDER BY compartment`,
      [id],
    )
  ).map((r) => r.compartment);
}

// ---------------------------------------------------------------------------
// Load generation (worker thread)
// ---------------------------------------------------------------------------

interface LoadTask {
  url: string;
  requests: Request[];
  /** Index of the first request of this run in `requests` (runs of a case continue where the last stopped). */
  offset: number;
  concurrency: number;
  count: number;
}

export interface LoadResult {
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latencies: number[];
}

async function runLoad(task: LoadTask): Promise<LoadResult> {
  const client = httpClient('http', task.url, task.concurrency);
  try {
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let issued = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: task.concurrency }, async () => {
        while (issued < task.count) {
          const { path: p, token, body } = task.requests[(task.offset + issued++) % task.requests.length];
          const method = body === undefined ? 'GET' : 'POST';
          const t0 = performance.now();
          try {
            const r = await client.request(method, p, body, { authorization: `Bearer ${token}` });
            if (r.status !== (body === undefined ? 200 : 201)) throw new Error(`${method} ${p}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
            latencies.push(performance.now() - t0);
          } catch (e) {
            errors++;
            firstError ??= (e as Error).message;
          }
        }
      }),
    );
    return { errors, firstError, elapsedMs: performance.now() - started, latencies };
  } finally {
    client.close();
  }
}

const WORKER_ROLE = 'bench-access-client';

serveTasks<LoadTask, LoadResult>(WORKER_ROLE, runLoad);

export class LoadWorker extends TaskWorker<LoadTask, LoadResult> {
  constructor() {
    super(__filename, WORKER_ROLE);
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

export interface ModeFigures {
  requests: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
  firstError?: string;
}

export function figures(results: LoadResult[]): ModeFigures {
  const latencies = Float64Array.from(results.flatMap((r) => r.latencies)).sort();
  const elapsed = results.reduce((a, r) => a + r.elapsedMs, 0);
  const errors = results.reduce((a, r) => a + r.errors, 0);
  const firstError = results.find((r) => r.firstError)?.firstError;
  return {
    requests: latencies.length + errors,
    errors,
    perSecond: latencies.length / (elapsed / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    ...(firstError ? { firstError } : {}),
  };
}

export const round = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** d) / 10 ** d);
export const pct = (n: number) => `${n >= 0 ? '+' : ''}${fmt(n * 100, 1)} %`;
/** Over this, access control costs too much on a case. */
const TARGET_OVERHEAD = 0.15;

interface Entries {
  test: number;
  actor: number;
}

const entriesOf = (body: string): number => {
  const b = JSON.parse(body) as { resourceType?: string; entry?: unknown[] };
  return b.resourceType === 'Bundle' ? (b.entry ?? []).length : 1;
};

async function main(): Promise<void> {
  const o = parseArgsOrExit(parseArgs, USAGE);
  const progress = (s: string) => process.stderr.write(`… ${s}\n`);
  const started = performance.now();

  // --- where the data lives ------------------------------------------------------------------------
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const givenSchema = process.env.DATABASE_SCHEMA || undefined;
  const givenDir = process.env.DATA_DIR || undefined;
  const schema = databaseUrl ? (givenSchema ?? `bench_access_${crypto.randomBytes(4).toString('hex')}`) : undefined;
  const dataDir = databaseUrl ? undefined : (givenDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-access-')));
  const created = databaseUrl ? !givenSchema : !givenDir;
  const removeAtEnd = created && !o.keep;

  const issuer: TestIssuer = await createTestIssuer({ audience: 'https://bench.example/fhir', testClient: true });
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    AUTH_ISSUERS: issuer.issuersFile,
    ...(databaseUrl ? { DATABASE_SCHEMA: schema } : { DATA_DIR: dataDir }),
  });
  // without the audit trail unless asked: the test client is never audited, so the audit's
  // insert would count as access control (npm run bench:audit measures it on its own)
  const server = await startServer(config, createLogger('silent'), { audit: o.audit });
  const worker = new LoadWorker();
  try {
    const knex = server.ctx.db.knex;
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/fhir`;
    server.ctx.config.baseUrl = url;

    // --- the dataset: seeded here unless this database holds it already ------------------------------
    // the conformance resources the server loads at start are there in any case
    const count = async () => Number((await rows<{ n: string }>(knex, `SELECT count(*) AS n FROM resource WHERE compartment <> ''`))[0].n);
    const hasDataset = (await rows(knex, `SELECT 1 FROM resource WHERE resource_type = 'Practitioner' AND id = ?`, [GP])).length > 0;
    let seeding: string;
    if (hasDataset) {
      seeding = 'already in this database (not seeded again)';
    } else {
      const existing = await count();
      if (existing > 0) throw new Error(`This database holds ${existing} records' resources but not the benchmark's dataset: use an empty schema or directory`);
      progress(`seeding ${fmt(o.resources, 0)} resources`);
      const s = await seed(server, o, progress);
      seeding = `seeded by this run in ${fmt(s.seconds, 0)} s (${fmt(o.resources / s.seconds, 0)} resources/s, newVersion + executeWrites, then ${server.ctx.db.kind === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE'})`;
    }
    const byType = await rows<{ resource_type: string; n: string }>(knex, `SELECT resource_type, count(*) AS n FROM resource WHERE NOT deleted GROUP BY resource_type ORDER BY count(*) DESC`);
    const total = byType.reduce((a, r) => a + Number(r.n), 0);
    const patients = Number(byType.find((r) => r.resource_type === 'Patient')?.n ?? 0);
    const masked = Number((await rows<{ n: string }>(knex, `SELECT count(*) AS n FROM idx_token WHERE resource_type = 'DocumentReference' AND param = '_security' AND code = 'MASQUE_PS'`))[0].n);
    const gpRecords = await recordsNamingPractitioner(knex, GP);
    const nurseRecords = await recordsNamingPractitioner(knex, NURSE);
    const treating = Number(
      (await rows<{ n: string }>(knex, `SELECT count(*) AS n FROM resource WHERE resource_type = 'Consent' AND NOT deleted AND body::text LIKE ? AND body::text LIKE '%"PCP"%'`, [`%Practitioner/${GP}"%`]))[0].n,
    );

    // --- header --------------------------------------------------------------------------------------
    const version = (await rows<{ server_version: string }>(knex, 'SHOW server_version'))[0]?.server_version ?? '?';
    const kind = server.ctx.db.kind;
    const cpus = os.cpus();
    const envPart = databaseUrl ? `DATABASE_URL=${redactUrl(databaseUrl)} ${givenSchema ? `DATABASE_SCHEMA=${givenSchema} ` : ''}` : givenDir ? `DATA_DIR=${givenDir} ` : '';
    const header = {
      date: new Date().toISOString(),
      machine: `${cpus[0]?.model ?? '?'} (${os.availableParallelism()} cores), ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, ${os.type()} ${os.release()}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`,
      node: process.version,
      database:
        kind === 'postgres'
          ? `PostgreSQL ${version}, ${redactUrl(databaseUrl!)} schema ${schema}${removeAtEnd ? ' (dropped at the end)' : ' (kept)'}`
          : `embedded PGlite ${pgliteVersion()} (PostgreSQL ${version}), DATA_DIR=${dataDir}${removeAtEnd ? ' (removed at the end)' : ' (kept)'}`,
      server: `in-process (same process, load generator in a worker thread), one HTTP connection per client, audit trail ${o.audit ? 'on (--audit)' : 'off (started with { audit: false })'}`,
      dataset: `${fmt(total, 0)} resources (${byType.map((r) => `${r.resource_type} ${fmt(Number(r.n), 0)}`).join(', ')}), ${seeding}`,
      access: `${fmt(masked, 0)} documents MASQUE_PS; Practitioner/${GP} (general practitioner) named by the Consents of ${fmt(gpRecords.length, 0)} records (${fmt((100 * gpRecords.length) / Math.max(1, patients), 1)} %; treating physician of ${fmt(treating, 0)}); Practitioner/${NURSE} (nurse) of ${fmt(nurseRecords.length, 0)} records; every record also holds another professional's declared consent`,
      load: `${o.requests} measured requests per case and mode, in ${o.rounds} alternating rounds, ${o.concurrency} client(s), after one validation pass over every sample`,
      command: `${envPart}npm run bench:access -- ${process.argv.slice(2).join(' ')}`.trim(),
    };
    console.log('Access control benchmark: the same requests as an unrestricted test client and as real actors');
    for (const [k, v] of Object.entries(header)) console.log(`  ${k.padEnd(9)} ${v}`);
    console.log('');

    // --- actors and their tokens ------------------------------------------------------------------------
    const long = { ttlSeconds: 24 * 3600 };
    const testToken = await issuer.mint({ sub: 'bench-test-client', scope: 'conformance-testing' }, long);
    const gpToken = await issuer.mint({ sub: GP, fhirUser: `Practitioner/${GP}`, scope: 'user/*.rs' }, long);
    const nurseToken = await issuer.mint({ sub: NURSE, fhirUser: `Practitioner/${NURSE}`, scope: 'user/*.rs' }, long);
    const rng = new Prng(o.seed + 1);
    const allPatients = (await rows<{ id: string }>(knex, `SELECT id FROM resource WHERE resource_type = 'Patient' AND NOT deleted ORDER BY id`)).map((r) => r.id);
    const patientSamples = await sampleRecords(knex, allPatients, o.samples, rng);
    const patientTokens = new Map<string, string>();
    for (const s of patientSamples) patientTokens.set(s.patientId, await issuer.mint({ sub: s.patientId, fhirUser: `Patient/${s.patientId}`, scope: 'patient/*.rs' }, long));
    const allCases = CASES.map((c) => c.name);
    const actors: Actor[] = [
      {
        name: 'practitioner',
        title: `general practitioner, ${fmt(gpRecords.length, 0)} records open by consent or as treating physician`,
        token: () => gpToken,
        samples: await sampleRecords(knex, gpRecords, o.samples, rng),
        cases: allCases,
      },
      {
        name: 'nurse',
        title: `nurse, ${fmt(nurseRecords.length, 0)} records open by consent, documents filtered by the habilitation matrix`,
        token: () => nurseToken,
        samples: await sampleRecords(knex, nurseRecords, o.samples, rng),
        cases: allCases,
      },
      {
        name: 'patient',
        title: 'a patient on their own record (one token per sampled patient)',
        token: (patientId) => patientTokens.get(patientId)!,
        samples: patientSamples,
        // a patient's search naming no patient is the same as naming themselves
        cases: allCases.filter((c) => c !== 'cross-record'),
      },
    ];
    const cases = CASES.filter((c) => !o.only || o.only.includes(c.name));

    // --- validation pass (also the warm-up): both modes answer 200, the actor reads the chosen document --
    const validationClient = httpClient('http', url, 1);
    const get = (p: string, token: string) => validationClient.request('GET', p, undefined, { authorization: `Bearer ${token}` });
    const plan: { actor: Actor; kase: Case; test: Request[]; real: Request[]; entries: Entries; statements: Entries; problems: string[] }[] = [];
    let capture: Statement[] | undefined;
    knex.on('query', (q: { sql?: string; bindings?: unknown[] }) => {
      if (capture && q.sql) capture.push({ sql: q.sql, bindings: q.bindings ?? [] });
    });
    const captured = async (p: string, token: string): Promise<{ statements: Statement[]; status: number }> => {
      capture = [];
      const r = await get(p, token);
      const statements = capture;
      capture = undefined;
      return { statements, status: r.status };
    };
    for (const actor of actors) {
      // the document the actor reads in each sampled record (the matrix and the masks hide some)
      const readable = new Map<string, RecordSample['documents'][number]>();
      progress(`${actor.name}: choosing a readable document in ${actor.samples.length} records`);
      for (const s of actor.samples) {
        for (const d of s.documents.slice(0, 12)) {
          if ((await get(`/DocumentReference/${d.id}`, actor.token(s.patientId))).status === 200) {
            readable.set(s.patientId, d);
            break;
          }
        }
      }
      for (const kase of cases.filter((c) => actor.cases.includes(c.name))) {
        progress(`${actor.name} / ${kase.name}: validation pass`);
        const test: Request[] = [];
        const real: Request[] = [];
        const problems: string[] = [];
        const entries = { test: 0, actor: 0 };
        for (const s of actor.samples) {
          const d = readable.get(s.patientId);
          if (!d) continue;
          const p = kase.path(s, d);
          const [a, b] = [await get(p, testToken), await get(p, actor.token(s.patientId))];
          if (a.status !== 200 || b.status !== 200) {
            problems.push(`${p}: test client ${a.status}, ${actor.name} ${b.status} ${b.body.slice(0, 200)}`);
            continue;
          }
          entries.test += entriesOf(a.body);
          entries.actor += entriesOf(b.body);
          test.push({ path: p, token: testToken });
          real.push({ path: p, token: actor.token(s.patientId) });
        }
        if (test.length) {
          entries.test /= test.length;
          entries.actor /= test.length;
        }
        // statements of one request, each mode (the first sample)
        const statements = { test: 0, actor: 0 };
        if (test.length) {
          statements.test = (await captured(test[0].path, test[0].token)).statements.length;
          const mine = await captured(real[0].path, real[0].token);
          statements.actor = mine.statements.length;
          if (o.explain) {
            console.log(`--- ${actor.name} / ${kase.name}: ${real[0].path} (${mine.statements.length} statements as ${actor.name})`);
            for (const st of mine.statements.filter((x) => /^\s*(SELECT|WITH)\b/i.test(x.sql))) {
              const report = await explain(knex, st);
              console.log(`\n${fmt(report.executionMs, 2)} ms${report.warnings.length ? `  ** ${report.warnings.join('; ')} **` : ''}\nSQL: ${report.inlined}\n${report.plan}\n`);
            }
          }
        }
        plan.push({ actor, kase, test, real, entries, statements, problems });
      }
    }
    validationClient.close();

    // --- load ---------------------------------------------------------------------------------------------
    interface Row {
      actor: string;
      kase: string;
      samples: number;
      test: ModeFigures;
      real: ModeFigures;
      entries: Entries;
      statements: Entries;
      overheadP50: number;
      overheadThroughput: number;
    }
    const results: Row[] = [];
    for (const item of plan) {
      if (item.test.length === 0) continue;
      progress(`${item.actor.name} / ${item.kase.name}: ${o.requests} requests per mode in ${o.rounds} rounds`);
      const runs = { test: [] as LoadResult[], real: [] as LoadResult[] };
      const per = Math.max(1, Math.ceil(o.requests / o.rounds));
      // a short unmeasured run of each mode, then A B B A … so that drift falls on both
      for (const mode of ['test', 'real'] as const) await worker.run({ url, requests: item[mode], offset: 0, concurrency: o.concurrency, count: Math.min(20, per) });
      for (let r = 0; r < o.rounds; r++) {
        const order = r % 2 === 0 ? (['test', 'real'] as const) : (['real', 'test'] as const);
        for (const mode of order) runs[mode].push(await worker.run({ url, requests: item[mode], offset: r * per, concurrency: o.concurrency, count: per }));
      }
      const test = figures(runs.test);
      const real = figures(runs.real);
      results.push({
        actor: item.actor.name,
        kase: item.kase.name,
        samples: item.test.length,
        test,
        real,
        entries: item.entries,
        statements: item.statements,
        overheadP50: real.p50 / test.p50 - 1,
        overheadThroughput: test.perSecond / real.perSecond - 1,
      });
    }

    // --- report ---------------------------------------------------------------------------------------------
    console.log(
      table(
        ['actor', 'case', 'samples', 'entries t/a', 'SQL t/a', 'req/s test', 'req/s actor', 'p50 test', 'p50 actor', 'p99 test', 'p99 actor', 'overhead p50', 'overhead req/s', 'errors'],
        results.map((r) => [
          r.actor,
          r.kase,
          String(r.samples),
          `${fmt(r.entries.test, 1)}/${fmt(r.entries.actor, 1)}`,
          `${r.statements.test}/${r.statements.actor}`,
          fmt(r.test.perSecond, 0),
          fmt(r.real.perSecond, 0),
          fmt(r.test.p50, 2),
          fmt(r.real.p50, 2),
          fmt(r.test.p99, 2),
          fmt(r.real.p99, 2),
          pct(r.overheadP50),
          pct(r.overheadThroughput),
          String(r.test.errors + r.real.errors),
        ]),
      ),
    );
    console.log('  (latencies in ms; "test" is the unrestricted test client, "actor" the real actor; entries t/a: mean entries per answer;');
    console.log('   SQL t/a: statements of one request; overhead p50 = p50 actor / p50 test - 1; overhead req/s = req/s test / req/s actor - 1)');
    for (const c of cases) console.log(`  ${c.name.padEnd(15)} ${c.title}`);
    for (const a of actors) console.log(`  ${a.name.padEnd(15)} ${a.title}`);
    for (const item of plan.filter((p) => p.problems.length)) console.log(`  ${item.actor.name} / ${item.kase.name}: ${item.problems.length} samples left out — first: ${item.problems[0]}`);
    for (const r of results.filter((x) => x.test.firstError || x.real.firstError)) console.log(`  first error in ${r.actor} / ${r.kase}: ${r.real.firstError ?? r.test.firstError}`);
    const over = results.filter((r) => r.overheadP50 > TARGET_OVERHEAD);
    console.log(
      over.length
        ? `Overhead over ${TARGET_OVERHEAD * 100} % (p50): ${over.map((r) => `${r.actor} / ${r.kase} ${pct(r.overheadP50)}`).join(', ')}`
        : `Overhead under ${TARGET_OVERHEAD * 100} % (p50) in every case.`,
    );
    console.log(`Ran in ${fmt((performance.now() - started) / 1000, 0)} s.`);
    console.log('');
    console.log(
      JSON.stringify({
        ...header,
        options: o,
        results: results.map((r) => ({
          actor: r.actor,
          case: r.kase,
          samples: r.samples,
          entries: { test: round(r.entries.test, 1), actor: round(r.entries.actor, 1) },
          statements: r.statements,
          test: { requests: r.test.requests, errors: r.test.errors, perSecond: round(r.test.perSecond, 1), p50Ms: round(r.test.p50), p99Ms: round(r.test.p99) },
          actorMode: { requests: r.real.requests, errors: r.real.errors, perSecond: round(r.real.perSecond, 1), p50Ms: round(r.real.p50), p99Ms: round(r.real.p99) },
          overheadP50: round(r.overheadP50, 3),
          overheadThroughput: round(r.overheadThroughput, 3),
        })),
      }),
    );
  } finally {
    await worker.close();
    await server.close();
    await issuer.cleanup();
    if (removeAtEnd) {
      if (databaseUrl) {
        await dropSchema(databaseUrl, schema!);
      } else fs.rmSync(dataDir!, { recursive: true, force: true });
    } else if (created) {
      process.stderr.write(`… kept: run again on the same data with ${databaseUrl ? `DATABASE_SCHEMA=${schema}` : `DATA_DIR=${dataDir}`}\n`);
    }
  }
}

if (isMainThread && require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
