/**
 * Validations per second of the server's validator, warm, on one core (this process):
 *   npm run bench:validate [-- --seconds 5]
 * Workloads: a PDSm DocumentReference and an INS Patient (our fixtures, with their
 * profiles), a 50-entry transaction Bundle (Patient + DocumentReferences), and the
 * AuditEvents of a read and of a search returning 20 documents (as `auditEvent()` builds
 * them, dmp-audit-event: what validating the trail at write would cost). Prints a table
 * and a JSON line; no assertion.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServerValidator } from '../src/validation/forServer';
import { auditEvent } from '../src/audit/auditEvent';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 5;
const root = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, '../fixtures')) ? '..' : '../..');
const fixture = (file: string) => JSON.parse(fs.readFileSync(path.join(root, 'fixtures/profiles/valid', file), 'utf8'));

const documentReference = fixture('document-reference.json');
const patient = fixture('patient-ins.json');
const bundle = {
  resourceType: 'Bundle',
  type: 'transaction',
  entry: [
    { fullUrl: 'urn:uuid:patient', resource: { ...patient, id: undefined }, request: { method: 'POST', url: 'Patient' } },
    ...Array.from({ length: 49 }, (_, i) => ({
      fullUrl: `urn:uuid:doc-${i}`,
      resource: { ...documentReference, id: undefined, subject: { reference: 'urn:uuid:patient' }, masterIdentifier: { ...documentReference.masterIdentifier, value: `${documentReference.masterIdentifier?.value ?? 'urn:oid:1.2.3'}.${i}` } },
      request: { method: 'POST', url: 'DocumentReference' },
    })),
  ],
};

const auditAgent = { reference: 'Practitioner/dr', display: 'Paul Martin', identifier: { system: 'https://idp.example', value: 'sub-1' }, professions: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante', code: '10' }], network: '10.0.0.7' };
const auditRequest = { recorded: new Date().toISOString(), serverUrl: 'https://dmp.example/fhir' };
const readEvent = auditEvent(auditAgent, { interaction: 'read' }, 0, { patient: 'p1', resources: ['DocumentReference/d1'] }, auditRequest);
const searchEvent = auditEvent(
  auditAgent,
  { interaction: 'search-type' },
  0,
  { patient: 'p1', resources: Array.from({ length: 20 }, (_, i) => `DocumentReference/d${i}`), query: 'patient=p1&_count=20', queriedType: 'DocumentReference' },
  auditRequest,
);

const started = process.hrtime.bigint();
const validator = createServerValidator();
const createMs = Number(process.hrtime.bigint() - started) / 1e6;

function run(name: string, resource: unknown): { name: string; perSecond: number; errors: number; firstMs: number } {
  const t0 = process.hrtime.bigint();
  const issues = validator.validate(resource);
  const firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
  for (let i = 0; i < 200; i++) validator.validate(resource); // warm-up
  let n = 0;
  const end = Date.now() + seconds * 1000;
  const begin = process.hrtime.bigint();
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) validator.validate(resource);
    n += 50;
  }
  const elapsed = Number(process.hrtime.bigint() - begin) / 1e9;
  return { name, perSecond: n / elapsed, errors, firstMs };
}

const results = [
  run('DocumentReference (dmp-document-reference)', documentReference),
  run('Patient (dmp-patient-ins)', patient),
  run('transaction Bundle, 50 entries', bundle),
  run('AuditEvent of a read (dmp-audit-event)', readEvent),
  run('AuditEvent of a search, 20 documents', searchEvent),
];

console.log('Validator benchmark');
console.log(`  date      ${new Date().toISOString()}`);
console.log(`  node      ${process.version}, ${os.cpus()[0]?.model} (${os.cpus().length} cores), one thread`);
console.log(`  command   node dist/scripts/bench-validate.js --seconds ${seconds}`);
console.log(`  start-up  Validator created in ${createMs.toFixed(1)} ms (definitions load lazily)\n`);
console.log('workload                                       validations/s   first ms   errors');
for (const r of results) {
  console.log(`${r.name.padEnd(46)} ${r.perSecond.toFixed(0).padStart(13)}   ${r.firstMs.toFixed(1).padStart(8)}   ${String(r.errors).padStart(6)}`);
}
console.log(`\ntarget: > 2,000 DocumentReference validations/s on one core: ${results[0].perSecond > 2000 ? 'met' : 'NOT met'}`);
console.log(JSON.stringify({ date: new Date().toISOString(), seconds, createMs, results }));
