import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTarget, Target } from '../../conformance/harness';
import { document, G15, Json, REPORT, requests } from '../../conformance/accessFixtures';
import { withIns } from '../../conformance/frenchFixtures';
import { nirKey } from '../validation/domain/nir';
import { conformanceFromApi, syncConformanceResources } from '../interactions/conformanceResources';
import { inTransaction } from '../interactions/unitOfWork';
import { findProfilesDir } from '../registry/registry';
import { INTERNAL_ACCESS } from '../store/session';
import { FhirError } from '../errors';
import { loadNdjson, refusesTheLine } from './ndjsonLoad';
import { PreparePool } from './preparePool';

/**
 * The bulk loader (docs/decisions/020-bulk-data.md, 024-bulk-load.md: COPY on PostgreSQL) against the server's own database and
 * validator: lines validated, indexed and checked as creates, bad lines reported by number,
 * a rerun skipping what is stored; what it wrote is searched and access-controlled over HTTP
 * like anything written through the API.
 */
let t: Target;
const { get, create, mint } = requests(() => t);
let dir: string;
beforeAll(async () => {
  t = await startTarget();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-test-'));
});
afterAll(async () => {
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const RUN = crypto.randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${RUN}`;
const practitioner = { resourceType: 'Practitioner', id: id('pr'), name: [{ family: `Loader-${RUN}` }] };
const patient = { resourceType: 'Patient', id: id('pa'), name: [{ family: `Charge-${RUN}` }], identifier: [{ system: 'urn:example:mrn', value: `mrn-${RUN}` }], birthDate: '1970-01-01' };
const doc: Json = { ...document({ resourceType: 'Patient', id: patient.id }, REPORT, `Practitioner/${practitioner.id}`, [], 'https://documents.example/x', `loaded ${RUN}`), id: id('doc') };
const lines: string[] = [
  JSON.stringify(practitioner), // 1
  JSON.stringify(patient), // 2
  JSON.stringify(doc), // 3
  '{"resourceType": "Patient", "id": ', // 4: not JSON
  JSON.stringify({ resourceType: 'Patient', name: [{ family: 'NoId' }] }), // 5: no id
  JSON.stringify({ resourceType: 'Patient', id: id('bad'), gender: 'sometimes' }), // 6: invalid code
  JSON.stringify({ ...doc, id: id('orphan'), subject: { reference: `Patient/missing-${RUN}` } }), // 7: reference to nothing
  JSON.stringify({ resourceType: 'Observation', id: id('obs'), status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: 72.1, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' } }), // 8
  JSON.stringify({ resourceType: 'StructureDefinition', id: id('sd') }), // 9: not loaded in bulk
];

function file(name: string, content: string[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content.join('\n') + '\n');
  return f;
}

describe('npm run load', () => {
  let first: Awaited<ReturnType<typeof loadNdjson>>;
  beforeAll(async () => {
    // small batches: the refused line of a batch must not take the others with it
    first = await loadNdjson(t.running!.ctx, file('first.ndjson', lines), { batch: 3 });
  });

  it('writes the valid lines and refuses each bad one, naming its line', () => {
    expect(first).toMatchObject({ lines: 9, written: 4, skipped: 0, refused: 5 });
    expect(first.refusals.map((r) => r.line)).toEqual([4, 5, 6, 7, 9]);
    const reason = (line: number) => first.refusals.find((r) => r.line === line)!.reason;
    expect(reason(4)).toMatch(/not JSON/);
    expect(reason(5)).toMatch(/needs an id/);
    expect(reason(6)).toMatch(/gender/);
    expect(reason(7)).toMatch(new RegExp(`Patient/missing-${RUN}`));
    expect(reason(9)).toMatch(/not loaded in bulk/);
  });

  it('keeps the ids, and indexes what it writes as a create would (searches find it)', async () => {
    expect((await get(`Patient/${patient.id}`)).status).toBe(200);
    expect((await get(`Patient/${id('bad')}`)).status).toBe(404);
    expect((await get(`DocumentReference/${id('orphan')}`)).status).toBe(404);
    const byPatient = await get(`DocumentReference?patient=${patient.id}`);
    expect(byPatient.body.entry.map((e: Json) => e.resource.id)).toEqual([doc.id]);
    const byIdentifier = await get(`Patient?identifier=${encodeURIComponent(`urn:example:mrn|mrn-${RUN}`)}`);
    expect(byIdentifier.body.entry.map((e: Json) => e.resource.id)).toEqual([patient.id]);
    const byValue = await get(`Observation?subject=Patient/${patient.id}&value-quantity=72.1`);
    expect(byValue.body.entry).toHaveLength(1);
  });

  it('puts each resource in its record: a professional without access to it reads none of it', async () => {
    const stranger = await create({ resourceType: 'Practitioner', name: [{ family: `Stranger-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${stranger.id}` }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const token = await mint(`Practitioner/${stranger.id}`);
    // a record closed to a professional is refused as such (the access contract)
    expect((await get(`DocumentReference/${doc.id}`, token)).status).toBe(403);
    expect((await get(`DocumentReference?patient=${patient.id}`, token)).status).toBe(403);
    const patientToken = await mint(`Patient/${patient.id}`, 'patient/*.rs');
    expect((await get(`DocumentReference/${doc.id}`, patientToken)).status).toBe(200);
  });

  it('resumes: a rerun skips what is stored and writes only what is new', async () => {
    const extra = JSON.stringify({ ...doc, id: id('doc2'), description: `second ${RUN}` });
    const again = await loadNdjson(t.running!.ctx, file('again.ndjson', [...lines, extra]), { batch: 4 });
    expect(again).toMatchObject({ lines: 10, written: 1, skipped: 4, refused: 5 });
    const byPatient = await get(`DocumentReference?patient=${patient.id}`);
    expect(byPatient.body.entry.map((e: Json) => e.resource.id).sort()).toEqual([doc.id, id('doc2')].sort());
    // one version each: nothing was written twice
    expect((await get(`Patient/${patient.id}/_history`)).body.entry).toHaveLength(1);
  });
});

describe('npm run load: identifiers, includes, history, checkpoints', () => {
  const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
  const matricule = () => {
    const body = `29012${String(crypto.randomInt(10 ** 8)).padStart(8, '0')}`;
    return body + nirKey(body);
  };
  const insPatient = (name: string, ins: string) =>
    withIns({ resourceType: 'Patient', id: id(name), name: [{ family: 'Martin', given: ['Léa'] }], gender: 'female', birthDate: '1990-05-17' }, INS_NIR, ins);
  const docAbout = (name: string, patientId: string) => ({ ...doc, id: id(name), subject: { reference: `Patient/${patientId}` }, description: `${name} ${RUN}` });
  const ctx = () => t.running!.ctx;
  // the documents' author (stored already when the tests above ran: then skipped)
  beforeAll(() => loadNdjson(ctx(), file('author.ndjson', [JSON.stringify(practitioner)])));
  const auditEventsNaming = async (fileName: string) =>
    (await ctx().db.knex.raw(`SELECT body::text AS body FROM resource WHERE resource_type = 'AuditEvent' AND compartment = '' AND body::text LIKE ?`, [`%${fileName}%`])).rows.map(
      (r: { body: string }) => JSON.parse(r.body),
    );

  it('refuses a second Patient with the INS of an earlier line or of a stored Patient, writes the rest of the batch', async () => {
    const ins = matricule();
    const stored = matricule();
    await loadNdjson(ctx(), file('ins-stored.ndjson', [JSON.stringify(insPatient('holder', stored))]));
    const report = await loadNdjson(
      ctx(),
      file('ins.ndjson', [
        JSON.stringify(insPatient('ins-a', ins)), // 1
        JSON.stringify(insPatient('ins-b', ins)), // 2: the INS of line 1
        JSON.stringify(insPatient('ins-c', stored)), // 3: the INS of a stored Patient
        JSON.stringify(docAbout('ins-doc', id('ins-a'))), // 4
      ]),
      { batch: 10 },
    );
    expect(report).toMatchObject({ written: 2, refused: 2 });
    expect(report.refusals.map((r) => r.line)).toEqual([2, 3]);
    expect(report.refusals[0].reason).toContain(`${INS_NIR}|${ins}`);
    expect(report.refusals[1].reason).toContain(`${INS_NIR}|${stored}`);
    const found = await get(`Patient?identifier=${encodeURIComponent(`${INS_NIR}|${ins}`)}`);
    expect(found.body.entry.map((e: Json) => e.resource.id)).toEqual([id('ins-a')]);
    const holder = await get(`Patient?identifier=${encodeURIComponent(`${INS_NIR}|${stored}`)}`);
    expect(holder.body.entry.map((e: Json) => e.resource.id)).toEqual([id('holder')]);
    expect((await get(`Patient/${id('ins-b')}`)).status).toBe(404);
  });

  it('finds what it loaded by patient-scoped search with _include, by read and in history; one audit event per batch', async () => {
    const name = `inc-${RUN}.ndjson`;
    const report = await loadNdjson(
      ctx(),
      file(name, [JSON.stringify({ ...patient, id: id('inc-p'), identifier: [{ system: 'urn:example:mrn', value: `inc-${RUN}` }] }), JSON.stringify(docAbout('inc-d1', id('inc-p'))), JSON.stringify(docAbout('inc-d2', id('inc-p')))]),
      { batch: 2 },
    );
    expect(report).toMatchObject({ lines: 3, written: 3, refused: 0 });
    const bundle = await get(`DocumentReference?patient=${id('inc-p')}&_include=DocumentReference:subject`);
    expect(bundle.body.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort()).toEqual(
      [`DocumentReference/${id('inc-d1')}`, `DocumentReference/${id('inc-d2')}`, `Patient/${id('inc-p')}`].sort(),
    );
    const everything = await get(`Patient/${id('inc-p')}/DocumentReference`);
    expect(everything.body.entry).toHaveLength(2);
    const read = await get(`DocumentReference/${id('inc-d2')}`);
    expect(read.status).toBe(200);
    expect(read.body.meta.versionId).toBe('1');
    const history = await get(`DocumentReference/${id('inc-d1')}/_history`);
    expect(history.body.entry.map((e: Json) => e.request?.method ?? e.resource.meta.versionId)).toHaveLength(1);
    expect((await get(`Patient?identifier=urn:example:mrn|inc-${RUN}`)).body.entry).toHaveLength(1);
    // batches of two lines: lines 1-2 and 3
    const events = await auditEventsNaming(name);
    expect(events.map((e: Json) => e.entity[0].what.display).sort()).toEqual([expect.stringContaining('lines 1-2: 2 resources loaded'), expect.stringContaining('lines 3-3: 1 resources loaded')]);
    expect(events.every((e: Json) => e.action === 'C' && e.agent[0].who.reference === 'Device/dmp-fhir-server')).toBe(true);
  });

  it('resumes an interrupted load from its checkpoint without writing anything twice', async () => {
    const name = `resume-${RUN}.ndjson`;
    const content = [JSON.stringify({ ...patient, id: id('rs-p'), identifier: [{ system: 'urn:example:mrn', value: `rs-${RUN}` }] }), ...Array.from({ length: 7 }, (_, i) => JSON.stringify(docAbout(`rs-d${i}`, id('rs-p'))))];
    const f = file(name, content);
    // the load dies after its second batch is committed (a crash between batches)
    let calls = 0;
    await expect(
      loadNdjson(ctx(), f, {
        batch: 2,
        onProgress: () => {
          if (++calls === 3) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    const before = (await get(`DocumentReference?patient=${id('rs-p')}&_count=50`)).body.entry?.length ?? 0;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(7);
    const rerun = await loadNdjson(ctx(), f, { batch: 2 });
    // the checkpoint is where the rerun starts: the lines it covers are not read again
    expect(rerun.resumedAt).toBeGreaterThanOrEqual(2);
    expect(rerun).toMatchObject({ lines: 8, refused: 0 });
    expect(rerun.written + rerun.skipped).toBe(8 - rerun.resumedAt);
    const after = await get(`DocumentReference?patient=${id('rs-p')}&_count=50`);
    expect(after.body.entry).toHaveLength(7);
    for (let i = 0; i < 7; i++) expect((await get(`DocumentReference/${id(`rs-d${i}`)}/_history`)).body.entry).toHaveLength(1);
    // a third run of a load that finished reads nothing
    expect(await loadNdjson(ctx(), f, { batch: 2 })).toMatchObject({ lines: 8, resumedAt: 8, written: 0, skipped: 0 });
  });

  it('stops at the first refused line with --stop-on-error; the rerun starts at that line', async () => {
    const name = `stop-${RUN}.ndjson`;
    const f = file(name, [
      JSON.stringify({ ...patient, id: id('st-p'), identifier: [{ system: 'urn:example:mrn', value: `st-${RUN}` }] }), // 1
      JSON.stringify(docAbout('st-d1', id('st-p'))), // 2
      JSON.stringify({ resourceType: 'Patient', id: id('st-bad'), gender: 'sometimes' }), // 3
      JSON.stringify(docAbout('st-d2', id('st-p'))), // 4
    ]);
    const stopped = await loadNdjson(ctx(), f, { batch: 10, stopOnError: true });
    expect(stopped).toMatchObject({ written: 2, refused: 1 });
    expect(stopped.refusals.map((r) => r.line)).toEqual([3]);
    expect((await get(`DocumentReference/${id('st-d2')}`)).status).toBe(404);
    const rerun = await loadNdjson(ctx(), f, { batch: 10 });
    expect(rerun).toMatchObject({ resumedAt: 2, lines: 4, written: 1, refused: 1 });
    expect(rerun.refusals.map((r) => r.line)).toEqual([3]);
    expect((await get(`DocumentReference/${id('st-d2')}`)).status).toBe(200);
  });

  it('writes the same index rows, links and locator row as a create through the API', async () => {
    const body = { ...docAbout('same-loaded', id('same-p')), description: `same ${RUN}` };
    const owner = { ...patient, id: id('same-p'), identifier: [{ system: 'urn:example:mrn', value: `same-${RUN}` }] };
    expect(await loadNdjson(ctx(), file(`same-${RUN}.ndjson`, [JSON.stringify(owner), JSON.stringify(body)]))).toMatchObject({ written: 2, refused: 0 });
    const { id: _id, ...rest } = body;
    const created = await create(rest);
    const rowsOf = async (rid: string) => {
      const out: Record<string, unknown[]> = {};
      for (const table of ['idx_token', 'idx_string', 'idx_reference', 'idx_date', 'idx_number', 'idx_quantity', 'idx_uri', 'resource_link']) {
        const rows = (await ctx().db.knex.raw(`SELECT * FROM ${table} WHERE resource_type = 'DocumentReference' AND resource_id = ?`, [rid])).rows as Record<string, unknown>[];
        // the instant of the write differs; everything else is the same
        out[table] = rows
          .filter((r) => r.param !== '_lastUpdated')
          .map((r) => JSON.stringify({ ...r, resource_id: undefined, id: undefined }))
          .sort();
      }
      out.locator = (await ctx().db.knex.raw(`SELECT compartment FROM resource_locator WHERE resource_type = 'DocumentReference' AND id = ?`, [rid])).rows;
      return out;
    };
    const loaded = await rowsOf(id('same-loaded'));
    expect(loaded.idx_reference.length).toBeGreaterThan(0);
    expect(loaded.resource_link.length).toBeGreaterThan(0);
    expect(loaded).toEqual(await rowsOf(created.id));
  });
});

/** `--threads`: lines validated and indexed by a pool of threads (decision 024, amendment), with the same outcome line by line. */
describe('npm run load --threads', () => {
  const ctx = () => t.running!.ctx;
  const profileUrl = `http://example.org/fhir/StructureDefinition/loaded-with-birth-date-${RUN}`;
  let pool: PreparePool;
  beforeAll(async () => {
    // a profile stored through the API: the threads' validators know it as the server's does
    const profile = {
      resourceType: 'StructureDefinition',
      url: profileUrl,
      name: 'LoadedWithBirthDate',
      status: 'active',
      fhirVersion: '4.0.1',
      kind: 'resource',
      abstract: false,
      type: 'Patient',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
      derivation: 'constraint',
      differential: { element: [{ id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 }] },
    };
    await create(profile);
    await inTransaction(ctx(), INTERNAL_ACCESS, (session) => syncConformanceResources(ctx(), session, findProfilesDir()));
    pool = await PreparePool.start(2, conformanceFromApi(ctx().validator!));
  });
  afterAll(() => pool.close());

  it('writes and refuses exactly the lines the loader\'s own thread does, content and profiles included', async () => {
    const tid = (name: string) => id(`tq7-${name}`);
    const owner = { ...patient, id: tid('p'), identifier: [{ system: 'urn:example:mrn', value: `th-${RUN}` }] };
    const bytes = crypto.randomBytes(3000);
    const author = { ...practitioner, id: tid('pr') };
    const threaded = [
      JSON.stringify(author), // 1: the documents' author
      JSON.stringify(owner), // 2
      JSON.stringify({ ...doc, id: tid('d'), subject: { reference: `Patient/${tid('p')}` }, author: [{ reference: `Practitioner/${tid('pr')}` }], description: `threads ${RUN}` }), // 3
      '{"resourceType": "Patient", "id": ', // 4: not JSON
      JSON.stringify({ resourceType: 'Patient', id: tid('bad'), gender: 'sometimes' }), // 5: invalid code
      JSON.stringify({ resourceType: 'Binary', id: tid('b'), contentType: 'application/octet-stream', securityContext: { reference: `Patient/${tid('p')}` }, data: bytes.toString('base64') }), // 6
      JSON.stringify({ resourceType: 'Patient', id: tid('nobirth'), meta: { profile: [profileUrl] }, name: [{ family: 'Sans' }] }), // 7: breaks the stored profile
      JSON.stringify({ resourceType: 'Patient', id: tid('birth'), meta: { profile: [profileUrl] }, name: [{ family: 'Avec' }], birthDate: '2000-01-01' }), // 8
      JSON.stringify({ ...doc, id: tid('orphan'), subject: { reference: `Patient/missing-tq7-${RUN}` }, author: [{ reference: `Practitioner/${tid('pr')}` }] }), // 9: reference to nothing
    ];
    const report = await loadNdjson(ctx(), file(`threads-${RUN}.ndjson`, threaded), { batch: 10, pool });
    expect(report).toMatchObject({ lines: 9, written: 5, refused: 4 });
    expect(report.refusals.map((r) => r.line)).toEqual([4, 5, 7, 9]);
    expect(report.refusals.find((r) => r.line === 7)!.reason).toMatch(/birthDate/);
    // the same lines on the loader's thread (other ids): the same refusals, with the same reasons
    const alone = await loadNdjson(ctx(), file(`alone-${RUN}.ndjson`, threaded.map((l) => l.split('tq7-').join('aq7-'))), { batch: 10 });
    expect(alone.refusals.map((r) => [r.line, r.reason.split('aq7-').join('tq7-')])).toEqual(report.refusals.map((r) => [r.line, r.reason]));
    const raw = await fetch(`${t.base}/Binary/${tid('b')}`, { headers: { authorization: `Bearer ${t.token}`, accept: 'application/octet-stream' } });
    expect(Buffer.from(await raw.arrayBuffer()).equals(bytes)).toBe(true);
    const rowsOf = async (rid: string) => {
      const out: Record<string, unknown[]> = {};
      for (const table of ['idx_token', 'idx_string', 'idx_reference', 'idx_date', 'idx_uri', 'resource_link']) {
        const rows = (await ctx().db.knex.raw(`SELECT * FROM ${table} WHERE resource_type = 'DocumentReference' AND resource_id = ?`, [rid])).rows as Record<string, unknown>[];
        out[table] = rows
          .filter((r) => r.param !== '_lastUpdated')
          .map((r) => JSON.stringify({ ...r, resource_id: undefined, id: undefined, compartment: undefined, target_id: undefined, value: r.param === 'subject' || r.param === 'patient' ? undefined : r.value }))
          .sort();
      }
      return out;
    };
    const fromThreads = await rowsOf(tid('d'));
    expect(fromThreads.idx_token.length).toBeGreaterThan(0);
    expect(fromThreads).toEqual(await rowsOf(id('aq7-d')));
  });

  it('stops at the first refused line with --stop-on-error, as the loader\'s own thread does', async () => {
    const sid = (name: string) => id(`ts-${name}`);
    const f = file(`threads-stop-${RUN}.ndjson`, [
      JSON.stringify({ ...patient, id: sid('p'), identifier: [{ system: 'urn:example:mrn', value: `ts-${RUN}` }] }), // 1
      JSON.stringify({ resourceType: 'Patient', id: sid('bad'), gender: 'sometimes' }), // 2
      JSON.stringify({ resourceType: 'Patient', id: sid('bad2'), gender: 'never' }), // 3
      JSON.stringify({ ...patient, id: sid('p2'), identifier: [{ system: 'urn:example:mrn', value: `ts2-${RUN}` }] }), // 4
    ]);
    const stopped = await loadNdjson(ctx(), f, { batch: 10, stopOnError: true, pool });
    expect(stopped).toMatchObject({ written: 1, refused: 1 });
    expect(stopped.refusals.map((r) => r.line)).toEqual([2]);
    expect((await get(`Patient/${sid('p2')}`)).status).toBe(404);
  });
});

describe('npm run load: what a create keeps, what a failed batch writes, where a stop stops', () => {
  const ctx = () => t.running!.ctx;
  const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
  const matricule = () => {
    const body = `29012${String(crypto.randomInt(10 ** 8)).padStart(8, '0')}`;
    return body + nirKey(body);
  };
  const insPatient = (name: string, ins: string) =>
    withIns({ resourceType: 'Patient', id: id(name), name: [{ family: 'Martin', given: ['Léa'] }], gender: 'female', birthDate: '1990-05-17' }, INS_NIR, ins);

  it.each([['on its own thread', 0], ['with threads', 2]])('keeps the precision of decimals as a create does (72.10 stays 72.10), %s', async (_how, threads) => {
    const oid = id(`dec-${threads}`);
    const line = `{"resourceType":"Observation","id":"${oid}","status":"final","code":{"text":"weight"},"valueQuantity":{"value":72.10,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},"referenceRange":[{"low":{"value":1e2}}]}`;
    const pool = threads ? await PreparePool.start(threads, []) : undefined;
    try {
      expect(await loadNdjson(ctx(), file(`dec-${threads}-${RUN}.ndjson`, [line]), { pool })).toMatchObject({ written: 1, refused: 0 });
    } finally {
      await pool?.close();
    }
    const res = await fetch(`${t.base}/Observation/${oid}`, { headers: { authorization: `Bearer ${t.token}` } });
    const text = await res.text();
    expect(text).toContain('"value":72.10');
    expect(text).toContain('"value":1e2');
  });

  it('resumes from the checkpoint at the end of a file whose last line has no line feed', async () => {
    const f = path.join(dir, `no-final-newline-${RUN}.ndjson`);
    fs.writeFileSync(f, [JSON.stringify({ ...patient, id: id('nl-p'), identifier: [{ system: 'urn:example:mrn', value: `nl-${RUN}` }] }), '{"broken'].join('\n'));
    expect(await loadNdjson(ctx(), f)).toMatchObject({ lines: 2, written: 1, refused: 1 });
    expect(await loadNdjson(ctx(), f)).toMatchObject({ lines: 2, resumedAt: 2, written: 0, skipped: 0, refused: 0 });
  });

  it('writes a line naming a later line of its batch even when another line of the batch is refused', async () => {
    const ins = matricule();
    const report = await loadNdjson(
      ctx(),
      file(`later-${RUN}.ndjson`, [
        JSON.stringify(practitioner),
        JSON.stringify({ ...doc, id: id('later-d'), subject: { reference: `Patient/${id('later-p')}` } }), // 2: names line 3
        JSON.stringify({ ...patient, id: id('later-p'), identifier: [{ system: 'urn:example:mrn', value: `later-${RUN}` }] }), // 3
        JSON.stringify(insPatient('later-a', ins)), // 4
        JSON.stringify(insPatient('later-b', ins)), // 5: the INS of line 4: the batch fails, its lines are written one by one
      ]),
      { batch: 10 },
    );
    expect(report.refusals.map((r) => r.line)).toEqual([5]);
    expect((await get(`DocumentReference/${id('later-d')}`)).status).toBe(200);
  });

  it('with --stop-on-error, reports no line past the stop, refused on reading or while the batch before was written', async () => {
    const ins = matricule();
    const stopped = await loadNdjson(
      ctx(),
      file(`stop-report-${RUN}.ndjson`, [
        JSON.stringify(insPatient('sr-a', ins)), // 1
        JSON.stringify(insPatient('sr-b', ins)), // 2: refused when its batch is written
        JSON.stringify({ resourceType: 'Patient', id: id('sr-bad'), gender: 'sometimes' }), // 3: in the next batch, prepared meanwhile
        '{"broken', // 4
      ]),
      { batch: 2, stopOnError: true },
    );
    expect(stopped.refusals.map((r) => r.line)).toEqual([2]);
    expect(stopped).toMatchObject({ written: 1, refused: 1 });
  });

  it.each([
    ['a check of the write (422)', new FhirError(422, []), true],
    ['a conflict (409)', new FhirError(409, []), true],
    ['a server error (500)', new FhirError(500, []), false],
    ['an index row too large (54000)', Object.assign(new Error('index row requires 11496 bytes'), { code: '54000' }), true],
    ['a value the database refuses (22P02)', Object.assign(new Error('invalid input syntax'), { code: '22P02' }), true],
    ['a lost connection (08006)', Object.assign(new Error('terminating connection'), { code: '08006' }), false],
    ['an administrator ending the connection (57P01)', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), false],
    ['an error without a code', new Error('Connection terminated unexpectedly'), false],
  ])('a failed batch written line by line: %s refuses the line: %s', (_what, error, refuses) => {
    expect(refusesTheLine(error)).toBe(refuses);
  });
});

describe('npm run load --threads: a thread that dies', () => {
  it('stops the load with an error, writing nothing of the batch it was preparing', async () => {
    const ctx = t.running!.ctx;
    const pool = await PreparePool.start(1, []);
    try {
      await (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0].terminate();
      const f = file(`dies-${RUN}.ndjson`, [JSON.stringify({ ...patient, id: id('dies-p'), identifier: [{ system: 'urn:example:mrn', value: `dies-${RUN}` }] })]);
      await expect(loadNdjson(ctx, f, { batch: 10, pool })).rejects.toThrow(/preparing thread exited/);
      expect((await get(`Patient/${id('dies-p')}`)).status).toBe(404);
    } finally {
      await pool.close();
    }
  });
});

describe('npm run load: records that are not open', () => {
  const { send } = requests(() => t);
  const ctx = () => t.running!.ctx;
  const patientNamed = (name: string) => ({ resourceType: 'Patient', name: [{ family: `${name}-${RUN}` }], birthDate: '1980-01-01' });
  const docFor = (name: string, patientId: string) => ({ ...doc, id: id(name), subject: { reference: `Patient/${patientId}` }, description: `${name} ${RUN}` });

  it('refuses the lines of a record opposed or closed (RECORD_OPPOSED, RECORD_CLOSED), writes those of open records and of records the file creates', async () => {
    const opposed = await create(patientNamed('Oppose'));
    const archived = await create(patientNamed('Archive'));
    const open = await create(patientNamed('Ouvert'));
    expect((await send('POST', `Patient/${opposed.id}/$oppose`, await mint(`Patient/${opposed.id}`, 'patient/*.cruds'), { resourceType: 'Parameters' })).status).toBe(200);
    expect((await send('POST', `Patient/${archived.id}/$close?mode=archive`, await mint(`Patient/${archived.id}`, 'patient/*.cruds'), { resourceType: 'Parameters' })).status).toBe(200);
    const newcomer = { ...patientNamed('Nouveau'), id: id('newcomer') };
    const lines = [
      JSON.stringify(practitioner), // 1: the documents' author (stored already when the tests above ran: then skipped)
      JSON.stringify(docFor('to-opposed', opposed.id)), // 2
      JSON.stringify(docFor('to-open', open.id)), // 3
      JSON.stringify(docFor('to-archived', archived.id)), // 4
      JSON.stringify(newcomer), // 5
      JSON.stringify(docFor('to-newcomer', newcomer.id)), // 6
    ];
    // one batch: the refused lines must not take the others with them
    const report = await loadNdjson(ctx(), file('closed-records.ndjson', lines), { batch: 10 });
    expect(report.refusals.map((r) => r.line)).toEqual([2, 4]);
    expect(report.refusals[0].reason).toMatch(/RECORD_OPPOSED|opposed/);
    expect(report.refusals[1].reason).toMatch(/RECORD_CLOSED|closed/);
    expect(report.written + report.skipped).toBe(4);
    const stored = async (docId: string) => (await ctx().db.knex.raw(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'DocumentReference' AND id = ?`, [docId])).rows[0].n;
    expect([await stored(id('to-opposed')), await stored(id('to-open')), await stored(id('to-archived')), await stored(id('to-newcomer'))]).toEqual([0, 1, 0, 1]);
  });
});
