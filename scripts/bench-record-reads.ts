/**
 * A record written through the API in one stream of requests, then read at once: the
 * patient's and a nurse's broad reads of it, timed (docs/operations/running.md, "Statistics
 * and vacuum"; docs/decisions/037-embedded-upkeep.md).
 *
 *   npm run bench:record-reads [-- --documents 100 --messages 400 --reads 2000 --wide 0 --pause 0]
 *   DATABASE_URL=postgres://… npm run bench:record-reads
 *   DATABASE_UPKEEP_INTERVAL_MS=0 npm run bench:record-reads    # without the upkeep among requests
 *
 * Starts a server in-process (embedded in a temporary directory, or PostgreSQL in a schema of
 * its own, dropped at the end); a médecin and a nurse with the patient's declared consent, the
 * médecin's documents with their Binaries and conversations, the nurse's reads (each traced,
 * each with its notice to the patient), the patient's own `$everything` reads (`--wide`: each
 * traced by one event naming every resource read); then, after `--pause` seconds, one request of each
 * read shape per actor. Prints one line per request and, last, one JSON object. No assertions.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/log';
import { startServer } from '../src/server';
import { dropSchema, parseArgsOrExit, redactUrl, UsageError } from './benchLib';

const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';
const USAGE = 'npm run bench:record-reads -- [--documents N] [--messages N] [--reads N] [--wide N] [--pause SECONDS]';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

interface Options {
  documents: number;
  messages: number;
  reads: number;
  /** The patient's own `$everything` reads before the timed ones: each one event naming all it read. */
  wide: number;
  /** Seconds between the last write and the reads. */
  pause: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { documents: 100, messages: 400, reads: 2000, wide: 0, pause: 0 };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    if (name === '--help' || name === '-h') throw new UsageError('');
    const key = name.replace(/^--/, '') as keyof Options;
    if (!(key in o) || !name.startsWith('--')) throw new UsageError(`Unknown option ${argv[i]}`);
    const v = inline ?? argv[++i];
    const n = Math.round(Number(v));
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new UsageError(`${name} needs a number of 0 or more, got "${v}"`);
    o[key] = n;
  }
  return o;
}

async function main(): Promise<void> {
  const args = parseArgsOrExit(parseArgs, USAGE);
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `bench_${crypto.randomBytes(5).toString('hex')}` : undefined;
  // a directory of its own on PostgreSQL too: the local issuer's key is kept there
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-record-reads-'));
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1', DATABASE_SCHEMA: schema ?? '', DATA_DIR: dataDir });
  const server = await startServer(config, createLogger('silent'));
  try {
    const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/fhir`;
    const mint = (fhirUser: string | undefined, scope: string) => server.devIssuer!.mintToken({ ...(fhirUser ? { fhirUser } : {}), scope, ...(fhirUser ? {} : { sub: 'bench' }) });
    const client = await mint(undefined, 'conformance-testing');
    const call = async (method: string, p: string, token: string, json?: Json): Promise<{ status: number; body: Json }> => {
      const res = await fetch(`${base}/${p}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json', ...(json ? { 'content-type': 'application/fhir+json' } : {}) },
        body: json ? JSON.stringify(json) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : {} };
    };
    const create = async (resource: Json, token = client): Promise<Json> => {
      const res = await call('POST', resource.resourceType, token, resource);
      if (res.status !== 201) throw new Error(`POST ${resource.resourceType}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      return res.body;
    };
    const practitioner = async (family: string, profession: string) => {
      const p = await create({ resourceType: 'Practitioner', name: [{ family }] });
      await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${p.id}` }, code: [{ coding: [{ system: G15, code: profession }] }] });
      return `Practitioner/${p.id}`;
    };
    const started = performance.now();
    const doctor = await practitioner('Medecin', '10');
    const nurse = await practitioner('Infirmiere', '60');
    const patient = `Patient/${(await create({ resourceType: 'Patient', name: [{ family: 'Lecture' }], birthDate: '1970-01-01' })).id}`;
    const tokens = { doctor: await mint(doctor, 'user/*.cruds'), nurse: await mint(nurse, 'user/*.cruds'), patient: await mint(patient, 'patient/*.cruds') };
    for (const [who, token] of [[doctor, tokens.doctor], [nurse, tokens.nurse]]) {
      await create(
        {
          resourceType: 'Consent', status: 'active', patient: { reference: patient }, dateTime: new Date().toISOString(), performer: [{ reference: who }],
          scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
          category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
          policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
          provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: who } }] },
        },
        token,
      );
    }
    const documents: string[] = [];
    for (let i = 0; i < args.documents; i++) {
      const binary = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: patient }, data: Buffer.from(`document ${i}`).toString('base64') }, tokens.doctor);
      const doc = await create(
        {
          resourceType: 'DocumentReference', status: 'current', subject: { reference: patient }, author: [{ reference: doctor }], description: `document ${i}`,
          type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] }, category: [{ coding: [{ system: A03, code: '10' }] }],
          content: [{ attachment: { contentType: 'text/plain', url: `Binary/${binary.id}` } }],
        },
        tokens.doctor,
      );
      documents.push(doc.id);
    }
    for (let i = 0; i < args.messages; i++) {
      await create({ resourceType: 'Communication', status: 'in-progress', subject: { reference: patient }, sender: { reference: doctor }, recipient: [{ reference: patient }], sent: new Date().toISOString(), payload: [{ contentString: `message ${i}` }] }, tokens.doctor);
    }
    for (let i = 0; i < args.reads && documents.length; i++) {
      const res = await call('GET', `DocumentReference/${documents[i % documents.length]}`, tokens.nurse);
      if (res.status !== 200) throw new Error(`nurse read: ${res.status}`);
    }
    for (let i = 0; i < args.wide; i++) {
      const res = await call('GET', `${patient}/$everything?_count=1000`, tokens.patient);
      if (res.status !== 200) throw new Error(`patient $everything: ${res.status}`);
    }
    const written = (performance.now() - started) / 1000;
    if (args.pause > 0) await new Promise((r) => setTimeout(r, args.pause * 1000));
    const shapes = ['_history?_count=100', `${patient}/$everything?_count=1000`, 'Communication?_count=500', 'AuditEvent?_count=500', 'AuditEvent?_summary=count', 'DocumentReference?_count=500', 'Binary/_history?_count=500'];
    const results: { actor: string; request: string; status: number; seconds: number; entries: number }[] = [];
    console.log(`# ${new Date().toISOString()} ${databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)} schema ${schema}` : 'embedded'}, DATABASE_UPKEEP_INTERVAL_MS=${config.databaseUpkeepIntervalMs}`);
    console.log(`# written in ${written.toFixed(1)} s: ${args.documents} documents and Binaries, ${args.messages} conversations, ${args.reads} reads by the nurse, ${args.wide} $everything by the patient; pause ${args.pause} s`);
    for (const [actor, token] of Object.entries({ patient: tokens.patient, nurse: tokens.nurse })) {
      for (const request of shapes) {
        const t0 = performance.now();
        const res = await call('GET', request, token);
        const seconds = (performance.now() - t0) / 1000;
        const entries = res.body.entry?.length ?? res.body.total ?? 0;
        results.push({ actor, request, status: res.status, seconds: Number(seconds.toFixed(3)), entries });
        console.log(`${actor.padEnd(8)} ${String(res.status)} ${seconds.toFixed(2).padStart(7)} s ${String(entries).padStart(5)}  ${request.replace(patient, 'Patient/[id]')}`);
      }
    }
    console.log(JSON.stringify({ database: databaseUrl ? 'postgres' : 'embedded', upkeepIntervalMs: config.databaseUpkeepIntervalMs, ...args, writtenSeconds: Number(written.toFixed(1)), results }));
  } finally {
    await server.close();
    if (databaseUrl && schema) await dropSchema(databaseUrl, schema);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
