import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { http, startTarget, Target } from '../harness';
import { A07, consent, document as documentResource, G15, ircp, Json, PATIENT_DOC, pcp, ref, REPORT, requests } from '../accessFixtures';
import { purgeArchives } from '../../src/dmp/recordLifecycle';
import { RECORD_REFUSAL_SYSTEM, RECORD_STATE_EXTENSION } from '../../src/access/policy/recordState';

/**
 * The record's lifecycle (docs/decisions/017-record-lifecycle.md) end to end, over HTTP,
 * with tokens of the suite's identity provider: opposition, activation, closure with
 * archive (every route refused, purge, legal-hold restore), closure with deletion (no row
 * of the record left in any table of the catalogue), the patient's own documents, and the
 * majority of a minor. The records are set up by the unrestricted test client; every
 * assertion is made with a real actor's token.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const knex = (): Knex => t.running!.ctx.db.knex;
const document = (patient: Json, author: string, labels: string[] = [], binary?: Json, description = `doc ${RUN}`) => documentResource(patient, REPORT, author, labels, binary ? ref(binary) : undefined, description);
const op = (token: string, patient: Json, name: string, query = '') => send('POST', `Patient/${patient.id}/$${name}${query}`, token, { resourceType: 'Parameters' });
const stateOf = (p: Json) => (p.extension ?? []).find((e: Json) => e.url === RECORD_STATE_EXTENSION)?.extension ?? [];
const part = (p: Json, name: string) => stateOf(p).find((e: Json) => e.url === name);
const detailsCode = (body: Json) => body?.issue?.[0]?.details?.coding?.[0];

const x: Json = {};
const tok: Record<string, string> = {};

/** A patient record with the general practitioner's declared consent, a document with its Binary, and a representative when asked. */
async function record(name: string, extra: Json = {}): Promise<Json> {
  const patient = await create({ resourceType: 'Patient', name: [{ family: `${name}-${RUN}` }], birthDate: '1980-01-01', ...extra });
  await create(consent(patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  const binary = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(patient) }, data: Buffer.from(`bytes of ${name} ${RUN}`).toString('base64') });
  const doc = await create(document(patient, ref(x.gp), [], binary, `doc of ${name} ${RUN}`));
  return { ...patient, binary, doc };
}

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Medecin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, organization: { reference: ref(x.org) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });
  tok.gp = await mint(ref(x.gp));
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  tok.legalHold = await mint(undefined, 'admin legal-hold');
});

describe('the state, its operations and who runs them', () => {
  beforeAll(async () => {
    x.a = await record('Active');
    tok.a = await mint(ref(x.a), 'patient/*.cruds');
  });

  it('the CapabilityStatement lists the four operations on Patient, with their definitions (profiles/OperationDefinition)', async () => {
    const res = await get('metadata');
    const patient = res.body.rest[0].resource.find((r: Json) => r.type === 'Patient');
    for (const name of ['oppose', 'activate', 'close', 'reopen']) {
      const declared = patient.operation.find((o: Json) => o.name === name);
      expect([name, declared?.definition]).toEqual([name, `https://fhir.dmp.esante.example/OperationDefinition/Patient-${name}`]);
    }
  });

  it('a new record is open; the patient activates it: the state shows on the Patient, with active', async () => {
    expect(stateOf((await get(ref(x.a), tok.a)).body)).toEqual([]);
    const res = await op(tok.a, x.a, 'activate');
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(true);
    expect(part(res.body, 'state')).toEqual({ url: 'state', valueCode: 'activated' });
    // the EHR reads it where it reads the identity
    const read = await get(ref(x.a), tok.gp);
    expect(part(read.body, 'state').valueCode).toBe('activated');
    // the record stays open to its care team
    expect((await get(ref(x.a.doc), tok.gp)).status).toBe(200);
    // and it is in the history, as a version of the Patient
    const history = await get(`${ref(x.a)}/_history`, tok.a);
    expect(history.body.entry[0].request.method).toBe('PATCH');
  });

  it('each transition is audited: the patient finds it in their trail', async () => {
    const trail = await get(`AuditEvent?patient=${x.a.id}&_count=100`, tok.a);
    expect(trail.status).toBe(200);
    const subtypes = trail.body.entry.map((e: Json) => e.resource.subtype?.[0]?.display);
    expect(subtypes).toContain('$activate');
  });

  it('a wrong state is a conflict; a missing or unknown mode a bad request; GET is not allowed', async () => {
    expect((await op(tok.a, x.a, 'activate')).status).toBe(409);
    expect((await op(tok.a, x.a, 'oppose')).status).toBe(409);
    expect((await op(tok.a, x.a, 'reopen')).status).toBe(409);
    expect((await op(tok.a, x.a, 'close')).status).toBe(400);
    expect((await op(tok.a, x.a, 'close', '?mode=shred')).status).toBe(400);
    expect((await get(`Patient/${x.a.id}/$activate`, tok.a)).status).toBe(405);
  });

  it('professionals and systems never change the state; another patient is told the record is not known', async () => {
    const other = await create({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }] });
    const otherTok = await mint(ref(other), 'patient/*.cruds');
    expect((await op(tok.gp, x.a, 'close', '?mode=archive')).status).toBe(403);
    expect((await op(tok.engine, x.a, 'oppose')).status).toBe(403);
    expect((await op(otherTok, x.a, 'close', '?mode=delete')).status).toBe(404);
    expect(part((await get(ref(x.a), tok.a)).body, 'state').valueCode).toBe('activated');
  });

  it('a plain write never changes the state: Patient.active and the extension are the operations\' own', async () => {
    const current = (await get(ref(x.a), tok.admin)).body;
    const res = await send('PUT', ref(x.a), tok.admin, { ...current, active: false });
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toContain('$close');
    const created = await send('POST', 'Patient', tok.admin, { resourceType: 'Patient', active: false, name: [{ family: `Neuf-${RUN}` }] });
    expect(created.status).toBe(403);
    // the identity itself is still the administrator's to correct
    expect((await send('PUT', ref(x.a), tok.admin, { ...current, name: [{ family: `Active-${RUN}`, given: ['Anne'] }] })).status).toBe(200);
  });
});

describe('opposed: nothing is created for the person', () => {
  beforeAll(async () => {
    x.o = await record('Oppose', { generalPractitioner: [{ reference: ref(x.gp) }] });
    tok.o = await mint(ref(x.o), 'patient/*.cruds');
  });

  it('the patient opposes; every deposit is refused with RECORD_OPPOSED (a lone create, a transaction entry, a system)', async () => {
    const res = await op(tok.o, x.o, 'oppose');
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(false);
    expect(part(res.body, 'state').valueCode).toBe('opposed');
    for (const [who, token] of [
      ['the general practitioner', tok.gp],
      ['the integration engine', tok.engine],
    ]) {
      const deposit = await send('POST', 'DocumentReference', token, document(x.o, ref(x.gp)));
      expect([who, deposit.status]).toEqual([who, 403]);
      expect(detailsCode(deposit.body)).toEqual({ system: RECORD_REFUSAL_SYSTEM, code: 'RECORD_OPPOSED' });
    }
    const bundle = await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:6f1c0f5e-0000-4000-8000-000000000001', resource: document(x.o, ref(x.gp)), request: { method: 'POST', url: 'DocumentReference' } }] });
    expect(bundle.status).toBe(403);
    expect(detailsCode(bundle.body)).toEqual({ system: RECORD_REFUSAL_SYSTEM, code: 'RECORD_OPPOSED' });
    // nothing was stored
    expect((await get(`DocumentReference?patient=${x.o.id}&_summary=count`)).body.total).toBe(1);
  });

  it('reads are refused too, with the same code; the person\'s own token serves only to withdraw the opposition', async () => {
    const read = await get(`DocumentReference?patient=${x.o.id}`, tok.gp);
    expect(read.status).toBe(403);
    expect(detailsCode(read.body).code).toBe('RECORD_OPPOSED');
    expect((await get(ref(x.o), tok.o)).status).toBe(401);
    for (const name of ['activate', 'oppose']) expect((await op(tok.o, x.o, name)).status).toBe(401);
    expect((await op(tok.o, x.o, 'close', '?mode=archive')).status).toBe(401);
    // not another person's opposition: that one is refused at sign-in as every other request
    expect((await op(tok.gp, x.o, 'reopen')).status).toBe(403);
  });

  it('the person withdraws their opposition themselves ($reopen); their token works again', async () => {
    const res = await op(tok.o, x.o, 'reopen');
    expect(res.status).toBe(200);
    expect(part(res.body, 'state').valueCode).toBe('open');
    expect((await get(ref(x.o), tok.o)).status).toBe(200);
    // opposed again, for the administrator's part below
    expect((await op(tok.o, x.o, 'oppose')).status).toBe(200);
  });

  it('an administrator reopens it when the person withdraws their opposition; deposits are accepted again', async () => {
    const res = await op(tok.admin, x.o, 'reopen');
    expect(res.status).toBe(200);
    expect(part(res.body, 'state').valueCode).toBe('open');
    expect(res.body.active).toBe(true);
    expect((await send('POST', 'DocumentReference', tok.gp, document(x.o, ref(x.gp)))).status).toBe(201);
  });
});

describe('closed with archive: unreadable and unwritable through every route, then purged or restored', () => {
  beforeAll(async () => {
    x.c = await record('Archive');
    x.cParent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.c) }, name: [{ family: `Tuteur-${RUN}` }] });
    tok.c = await mint(ref(x.c), 'patient/*.cruds');
    // before: the care team reads
    expect((await get(ref(x.c.doc), tok.gp)).status).toBe(200);
    const res = await op(tok.c, x.c, 'close', '?mode=archive');
    expect(res.status).toBe(200);
    x.closed = res.body;
  });

  it('the Patient says closed, archive, until when (ten years by default)', () => {
    expect(x.closed.active).toBe(false);
    expect(part(x.closed, 'state').valueCode).toBe('closed');
    expect(part(x.closed, 'closureMode').valueCode).toBe('archive');
    const until = Date.parse(part(x.closed, 'retainUntil').valueDateTime);
    const closed = Date.parse(part(x.closed, 'date').valueDateTime);
    expect(Math.round((until - closed) / 86_400_000)).toBe(3650);
  });

  it('every read route refuses the professional, and nothing of the record comes back', async () => {
    const d = x.c.doc.id;
    const routes: [string, () => Promise<{ status: number; text: string; body: any }>][] = [
      ['read', () => get(`DocumentReference/${d}`, tok.gp)],
      ['vread', () => get(`DocumentReference/${d}/_history/1`, tok.gp)],
      ['search naming the patient', () => get(`DocumentReference?patient=${x.c.id}`, tok.gp)],
      ['search by id', () => get(`DocumentReference?_id=${d}`, tok.gp)],
      ['include', () => get(`DocumentReference?_id=${d}&_include=DocumentReference:subject`, tok.gp)],
      ['revinclude', () => get(`Patient?_id=${x.c.id}&_revinclude=DocumentReference:subject`, tok.gp)],
      ['instance history', () => get(`DocumentReference/${d}/_history`, tok.gp)],
      ['type history', () => get(`DocumentReference/_history`, tok.gp)],
      ['everything', () => get(`Patient/${x.c.id}/$everything`, tok.gp)],
      ['Binary', () => get(`Binary/${x.c.binary.id}`, tok.gp)],
      ['Binary raw', () => get(`Binary/${x.c.binary.id}`, tok.gp, { accept: 'text/plain' })],
      ['compartment search', () => get(`Patient/${x.c.id}/DocumentReference`, tok.gp)],
      [
        'transaction GET entries',
        () => send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `DocumentReference/${d}` } }, { request: { method: 'GET', url: `Binary/${x.c.binary.id}` } }] }),
      ],
    ];
    for (const [name, call] of routes) {
      const res = await call();
      expect([name, res.text.includes(`doc of Archive ${RUN}`), res.text.includes(Buffer.from(`bytes of Archive ${RUN}`).toString('base64')), res.text.includes(`bytes of Archive ${RUN}`)]).toEqual([name, false, false, false]);
      if (name.startsWith('transaction')) for (const e of res.body.entry) expect(['403', '404']).toContain(e.response.status);
      else if (res.status === 200) expect([name, (res.body.entry ?? []).filter((e: Json) => String(e.resource?.id) === d || e.resource?.id === x.c.id)]).toEqual([name, []]);
      else expect([name, [403, 404]]).toEqual([name, expect.arrayContaining([res.status])]);
    }
  });

  it('every write route refuses, with RECORD_CLOSED', async () => {
    const current = (await get(ref(x.c.doc))).body;
    const writes: [string, () => Promise<{ status: number; body: any }>][] = [
      ['create', () => send('POST', 'DocumentReference', tok.gp, document(x.c, ref(x.gp)))],
      ['update', () => send('PUT', ref(x.c.doc), tok.gp, { ...current, description: 'changed' })],
      ['system deposit', () => send('POST', 'DocumentReference', tok.engine, document(x.c, ref(x.gp)))],
      ['transaction entry', () => send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:6f1c0f5e-0000-4000-8000-000000000002', resource: document(x.c, ref(x.gp)), request: { method: 'POST', url: 'DocumentReference' } }] })],
      ['administrator, the identity', () => send('PUT', ref(x.c), tok.legalHold, { ...x.closed, name: [{ family: 'Changed' }] })],
      ['administrator, a representative', () => send('PUT', ref(x.cParent), tok.admin, { ...x.cParent, name: [{ family: 'Changed' }] })],
    ];
    for (const [name, call] of writes) {
      const res = await call();
      expect([name, res.status]).toEqual([name, 403]);
      // a PUT onto a row hidden from the caller is refused as a create at a taken id (decision 012), without saying why;
      // a professional's PUT of a resource of the closed record is told the record is closed, as a read is (decision 031)
      if (name !== 'administrator, a representative') expect([name, detailsCode(res.body)?.code]).toEqual([name, 'RECORD_CLOSED']);
    }
    expect((await get(ref(x.c.doc))).body.description).toBe(current.description);
    // a DELETE or PATCH of a resource of the closed record deletes nothing, and says why (decision 031)
    const patch = await http(t.base, ref(x.c.doc), { method: 'PATCH', body: JSON.stringify([{ op: 'replace', path: '/status', value: 'superseded' }]), headers: { authorization: `Bearer ${tok.gp}`, 'content-type': 'application/json-patch+json' } });
    for (const res of [await send('DELETE', ref(x.c.doc), tok.gp), patch]) expect([res.status, detailsCode(res.body)?.code]).toEqual([403, 'RECORD_CLOSED']);
    expect((await get(ref(x.c.doc))).status).toBe(200);
  });

  it('administrators and systems no longer see the record; the patient\'s token no longer works', async () => {
    expect((await get(ref(x.c), tok.admin)).status).toBe(404);
    expect((await get(`Patient?_id=${x.c.id}`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await get(`RelatedPerson?patient=${x.c.id}`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await get(`RelatedPerson?_id=${x.cParent.id}&_include=RelatedPerson:patient`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await get(`AuditEvent?patient=${x.c.id}`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await get(`Patient/${x.c.id}/_history`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await get(ref(x.c), tok.engine)).status).toBe(404);
    expect((await get(ref(x.c), tok.c)).status).toBe(401);
  });

  it('the legal-hold role sees the record (not its clinical content) and restores it', async () => {
    const seen = await get(ref(x.c), tok.legalHold);
    expect(seen.status).toBe(200);
    expect(part(seen.body, 'state').valueCode).toBe('closed');
    expect((await get(`AuditEvent?patient=${x.c.id}`, tok.legalHold)).body.entry.length).toBeGreaterThan(0);
    expect((await get(`DocumentReference?patient=${x.c.id}`, tok.legalHold)).status).toBe(403);
    // an administrator without the role may not restore it
    expect((await op(tok.admin, x.c, 'reopen')).status).toBe(403);
    const res = await op(tok.legalHold, x.c, 'reopen');
    expect(res.status).toBe(200);
    expect(part(res.body, 'state').valueCode).toBe('open');
    expect((await get(ref(x.c.doc), tok.gp)).status).toBe(200);
    expect((await get(ref(x.c), tok.admin)).status).toBe(200);
    expect((await get(ref(x.c), tok.c)).status).toBe(200);
  });
});

/** Every table of the schema, from the catalogue, with its columns. */
async function catalogue(): Promise<{ table: string; columns: { name: string; type: string }[] }[]> {
  const res = await knex().raw(
    `SELECT c.table_name AS t, c.column_name AS c, c.data_type AS d FROM information_schema.columns c
      JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
      JOIN pg_class k ON k.oid = to_regclass(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name)) AND NOT k.relispartition
      WHERE c.table_schema = current_schema() ORDER BY c.table_name, c.ordinal_position`,
  );
  const out = new Map<string, { name: string; type: string }[]>();
  for (const r of res.rows as { t: string; c: string; d: string }[]) out.set(r.t, [...(out.get(r.t) ?? []), { name: r.c, type: r.d }]);
  return [...out].map(([table, columns]) => ({ table, columns }));
}

/** Rows per table whose compartment is this record's. */
async function rowsOfRecord(patientId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { table, columns } of await catalogue()) {
    if (!columns.some((c) => c.name === 'compartment')) continue;
    const res = await knex().raw(`SELECT count(*)::int AS n FROM "${table}" WHERE compartment = ?`, [patientId]);
    out[table] = Number(res.rows[0].n);
  }
  return out;
}

/** Every row of every table, any column, whose text holds `needle` (ids are random: a hit is this record's). */
async function rowsMentioning(needle: string): Promise<{ table: string; row: Json }[]> {
  const hits: { table: string; row: Json }[] = [];
  for (const { table, columns } of await catalogue()) {
    const text = columns.map((c) => `coalesce("${c.name}"::text, '')`).join(` || ' ' || `);
    const res = await knex().raw(`SELECT * FROM "${table}" WHERE position(? in ${text}) > 0`, [needle]);
    for (const row of res.rows) hits.push({ table, row });
  }
  return hits;
}

/** A completed export of the token's caller: its status path and the paths of its files. */
async function completedExport(path: string, token: string): Promise<{ status: string; files: string[] }> {
  const kickOff = await http(t.base, path, { headers: { authorization: `Bearer ${token}`, prefer: 'respond-async' } });
  expect(kickOff.status).toBe(202);
  const status = kickOff.headers.get('content-location')!.slice(t.base.length + 1);
  for (let i = 0; i < 400; i++) {
    const res = await get(status, token);
    if (res.status !== 202) {
      expect(res.status).toBe(200);
      return { status, files: res.body.output.map((o: Json) => o.url.slice(t.base.length + 1)) };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the export did not finish');
}

describe.each([
  ['opposed', 'oppose', ''],
  ['closed with archive', 'close', '?mode=archive'],
])('%s: the exports carrying the record are deleted with the change', (name, operation, query) => {
  it('the exports of the record answer 404, those of other records stay', async () => {
    const gone = await record(`Exporte-${operation}`);
    const kept = await record(`Reste-${operation}`);
    const patient = await mint(ref(gone), 'patient/*.cruds');
    const other = await mint(ref(kept), 'patient/*.cruds');
    // the care team's export holds both records, the patient's their own, the other patient's the other record
    const team = await completedExport('Patient/$export?_type=Patient,DocumentReference', tok.gp);
    const own = await completedExport('Patient/$export?_type=Patient,DocumentReference', patient);
    const unrelated = await completedExport('Patient/$export?_type=Patient,DocumentReference', other);
    for (const [e, token] of [[team, tok.gp], [own, patient], [unrelated, other]] as const) expect((await get(e.files[0], token, { accept: 'application/fhir+ndjson' })).status).toBe(200);
    expect([name, (await op(patient, gone, operation, query)).status]).toEqual([name, 200]);
    expect((await get(team.status, tok.gp)).status).toBe(404);
    for (const f of team.files) expect((await get(f, tok.gp, { accept: 'application/fhir+ndjson' })).status).toBe(404);
    // the patient of a closed record no longer calls at all: their export's rows are gone
    for (const e of [team, own]) {
      const id = e.status.split('/')[1];
      expect(((await knex().raw(`SELECT count(*)::int AS n FROM bulk_export_file WHERE export_id = ?`, [id])) as { rows: { n: number }[] }).rows[0].n).toBe(0);
      expect(((await knex().raw(`SELECT count(*)::int AS n FROM bulk_export WHERE id = ?`, [id])) as { rows: { n: number }[] }).rows[0].n).toBe(0);
    }
    expect((await get(unrelated.status, other)).status).toBe(200);
    expect((await get(unrelated.files[0], other, { accept: 'application/fhir+ndjson' })).status).toBe(200);
  });
});

/** Tables that hold no patient's data, so carry no compartment: a new table is either keyed by compartment or listed here. */
/** Work queues, drained as the dispatcher runs: their rows come and go on their own. */
const QUEUES = ['outbox', 'subscription_delivery'];
/** Bulk exports: copies of records handed to their callers, deleted with any record they carry and after BULK_EXPORT_TTL (decision 020); a bulk load's checkpoint: a file's digest and how far it was loaded (decision 024). */
const NOT_PATIENT_DATA = ['bulk_export', 'bulk_export_file', 'bulk_load_checkpoint', 'conformance_version', 'knex_migrations', 'knex_migrations_lock', 'server_setting'];

describe('closed with deletion: no row of the record left in any table', () => {
  beforeAll(async () => {
    x.d = await record('Efface');
    x.keep = await record('Garde');
    tok.d = await mint(ref(x.d), 'patient/*.cruds');
    tok.keep = await mint(ref(x.keep), 'patient/*.cruds');
    // more of the record: a representative, the patient's own document, a choice, notices of the care team's reads,
    // a Subscription naming it, a refused access kept outside the record
    for (const p of [x.d, x.keep]) {
      await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(p) }, name: [{ family: `Proche-${RUN}` }] });
      await create(document(p, ref(p)));
      await create(consent(p, ref(p), { type: 'permit', actor: [pcp(ref(x.gp))] }));
      expect((await get(`DocumentReference?patient=${p.id}`, tok.gp)).status).toBe(200);
      expect((await send('POST', 'Subscription', tok.gp, { resourceType: 'Subscription', status: 'requested', reason: `r ${RUN}`, criteria: `DocumentReference?patient=${p.id}`, channel: { type: 'rest-hook', endpoint: 'https://subscriber.example/hook', payload: 'application/fhir+json' } })).status).toBe(201);
      expect((await send('POST', 'DocumentReference', tok.gp, document(p, ref(x.gp)))).status).toBe(201);
    }
    // the patient exported their record: the export's files carry it
    const kickOff = await http(t.base, 'Patient/$export', { headers: { authorization: `Bearer ${tok.d}`, prefer: 'respond-async' } });
    expect(kickOff.status).toBe(202);
    const status = kickOff.headers.get('content-location')!.slice(t.base.length + 1);
    let polled = 202;
    for (let i = 0; i < 400 && polled === 202; i++) {
      polled = (await get(status, tok.d)).status;
      if (polled === 202) await new Promise((r) => setTimeout(r, 25));
    }
    expect(polled).toBe(200);
    expect((await rowsMentioning(x.d.id)).some((h) => h.table === 'bulk_export_file')).toBe(true);
    // an administrators' cohort naming it, in two versions, and an export of that cohort whose files carry nothing of it
    // (an administrator reads no document) but whose stored member list does
    const members = [{ entity: { reference: ref(x.d) } }, { entity: { reference: `${t.base}/Patient/${x.keep.id}` } }];
    x.cohort = await create({ resourceType: 'Group', type: 'person', actual: true, quantity: 2, member: members }, tok.admin);
    expect((await send('PUT', `Group/${x.cohort.id}`, tok.admin, { ...x.cohort, name: `Cohorte ${RUN}` })).status).toBe(200);
    const cohortExport = await completedExport(`Group/${x.cohort.id}/$export?_type=DocumentReference`, tok.admin);
    expect(cohortExport.files).toEqual([]);
    expect((await rowsMentioning(x.d.id)).some((h) => h.table === 'bulk_export')).toBe(true);
    const before = await rowsOfRecord(x.d.id);
    // the record has rows in the tables that matter, so their emptiness afterwards means something
    for (const table of ['resource', 'resource_history', 'idx_token', 'idx_reference', 'idx_string', 'binary_content', 'resource_link']) {
      expect([table, before[table] > 0]).toEqual([table, true]);
    }
    expect((await rowsMentioning(x.d.id)).some((h) => h.table === 'resource' && h.row.compartment === '' && h.row.resource_type === 'Subscription')).toBe(true);
    expect((await rowsMentioning(x.d.id)).some((h) => h.table === 'resource_history' && h.row.resource_type === 'Group')).toBe(true);
    x.keepBefore = await rowsOfRecord(x.keep.id);
  });

  it('the tables without a compartment hold no patient data (a table added later is covered, or listed here)', async () => {
    const without = (await catalogue()).filter((t) => !t.columns.some((c) => c.name === 'compartment')).map((t) => t.table);
    expect(without.sort()).toEqual(NOT_PATIENT_DATA);
  });

  it('every table with a compartment has an index led by it: a deletion finds the rows of a record without reading the table', async () => {
    const res = await knex().raw(
      `SELECT t.relname AS t FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'compartment' AND NOT a.attisdropped)
          AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = t.oid AND a.attname = 'compartment')`,
    );
    expect(res.rows.map((r: Json) => r.t)).toEqual([]);
  });

  it('the patient deletes their record: every row in every table with a compartment is gone, the other record untouched', async () => {
    const res = await op(tok.d, x.d, 'close', '?mode=delete');
    expect(res.status).toBe(200);
    expect(res.body.parameter).toEqual([{ name: 'deleted', valueReference: { reference: ref(x.d) } }]);
    const after = await rowsOfRecord(x.d.id);
    expect(Object.entries(after).filter(([, n]) => n > 0)).toEqual([]);
    expect(Object.keys(after)).toEqual(expect.arrayContaining(['resource', 'resource_history', 'binary_content', 'binary_chunk', 'outbox', 'record_closure']));
    // the other record: the same rows as before, but the trail of the care team's reads of it (the same run of requests)
    const keepAfter = await rowsOfRecord(x.keep.id);
    // (the outbox and the deliveries are queues the dispatcher drains meanwhile)
    for (const table of Object.keys(x.keepBefore).filter((t) => !QUEUES.includes(t))) expect([table, keepAfter[table] >= x.keepBefore[table]]).toEqual([table, true]);
    expect((await get(ref(x.keep.doc), tok.gp)).status).toBe(200);
    expect((await get(`Binary/${x.keep.binary.id}`, tok.keep)).status).toBe(200);
  });

  it('the only trace left anywhere is the AuditEvent of the deletion, outside the record, without clinical content', async () => {
    const hits = await rowsMentioning(x.d.id);
    const events = new Set(hits.filter((h) => h.table === 'resource' && h.row.resource_type === 'AuditEvent').map((h) => h.row.id));
    expect(events.size).toBe(1);
    const [eventId] = [...events];
    for (const h of hits) {
      const owner = h.row.resource_id ?? h.row.id;
      expect([h.table, h.row.compartment, h.row.resource_type, owner]).toEqual([h.table, '', 'AuditEvent', eventId]);
    }
    const event = await get(`AuditEvent/${eventId}`, tok.admin);
    expect(event.status).toBe(200);
    expect(event.body.subtype[0].display).toBe('$close');
    expect(event.body.outcomeDesc).toContain('deleted');
    expect(event.body.entity).toEqual([expect.objectContaining({ what: { reference: ref(x.d) } })]);
    expect(event.text).not.toContain(`Efface-${RUN}`);
    expect(event.text).not.toContain(`doc of Efface ${RUN}`);
    // the cohort keeps its other member, in every version, and says one fewer
    const cohort = (await get(`Group/${x.cohort.id}`, tok.admin)).body;
    expect(cohort.member).toEqual([{ entity: { reference: `${t.base}/Patient/${x.keep.id}` } }]);
    expect(cohort.quantity).toBe(1);
    expect(cohort.meta.versionId).toBe('2');
    expect((cohort.meta.tag ?? []).map((c: Json) => c.code)).not.toContain('SUBSETTED');
    const versions = (await get(`Group/${x.cohort.id}/_history`, tok.admin)).body.entry.map((e: Json) => e.resource);
    expect(versions.map((v: Json) => v.member.length)).toEqual([1, 1]);
    expect((await get(`Group?member=${ref(x.keep)}`, tok.admin)).body.entry.map((e: Json) => e.resource.id)).toEqual([x.cohort.id]);
    // the record is gone for everyone
    expect((await get(ref(x.d), tok.admin)).status).toBe(404);
    expect((await get(ref(x.d.doc), tok.legalHold)).status).toBe(404);
  });

  it('on request the deletion covers the records the holder represents (their children); one refused refuses all', async () => {
    const child = await record('Enfant', { birthDate: '2015-06-01' });
    const rp = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(child) }, name: [{ family: `Parent-${RUN}` }] });
    const holder = await record('Parent', { link: [{ other: { reference: ref(rp) }, type: 'seealso' }] });
    const holderTok = await mint(ref(holder), 'patient/*.cruds');
    // a child whose record is archived is the legal-hold role's: the whole request is refused, nothing deleted
    const archivedChild = await record('EnfantArchive', { birthDate: '2016-06-01' });
    const rp2 = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(archivedChild) } });
    expect((await op(await mint(ref(rp2), 'patient/*.cruds'), archivedChild, 'close', '?mode=archive')).status).toBe(200);
    const holder2 = await record('Parent2', { link: [{ other: { reference: ref(rp2) }, type: 'seealso' }] });
    const refused = await op(await mint(ref(holder2), 'patient/*.cruds'), holder2, 'close', '?mode=delete&cascade=true');
    expect(refused.status).toBe(403);
    expect(Object.values(await rowsOfRecord(holder2.id)).some((n) => n > 0)).toBe(true);

    const res = await op(holderTok, holder, 'close', '?mode=delete&cascade=true');
    expect(res.status).toBe(200);
    expect(res.body.parameter.map((p: Json) => p.valueReference.reference).sort()).toEqual([ref(holder), ref(child)].sort());
    for (const p of [holder, child]) expect(Object.entries(await rowsOfRecord(p.id)).filter(([, n]) => n > 0)).toEqual([]);
  });
});

describe('the purge of archives after their retention', () => {
  it('deletes the archives past their retention, in batches, printing progress; a second run finds nothing', async () => {
    const old = [await record('Vieux1'), await record('Vieux2')];
    for (const p of old) expect((await op(tok.admin, p, 'close', '?mode=archive')).status).toBe(200);
    const recent = await record('Recent');
    expect((await op(tok.admin, recent, 'close', '?mode=archive')).status).toBe(200);
    // as if closed ten days later than the others
    await knex().raw(`UPDATE record_closure SET retain_until = retain_until + interval '10 days' WHERE compartment = ?`, [recent.id]);
    const lines: string[] = [];
    const ctx = t.running!.ctx;
    // nothing is due a day from now
    expect(await purgeArchives(ctx, { batch: 1, now: new Date(Date.now() + 86_400_000), print: (l) => lines.push(l) })).toBe(0);
    // ten years and a day from now: the first two are due, the recent one not yet
    const now = new Date(Date.now() + 3651 * 86_400_000);
    const n = await purgeArchives(ctx, { batch: 1, now, print: (l) => lines.push(l) });
    expect(n).toBeGreaterThanOrEqual(2);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^purge: \d+ archived record\(s\) past their retention/), expect.stringMatching(/^purge: 1\/\d+ record\(s\) deleted$/), expect.stringMatching(/^purge: done, \d+ record\(s\) deleted$/)]));
    for (const p of old) expect(Object.entries(await rowsOfRecord(p.id)).filter(([, c]) => c > 0)).toEqual([]);
    // the recent archive stays, still closed
    expect((await rowsOfRecord(recent.id)).resource).toBeGreaterThan(0);
    expect((await get(ref(recent), tok.legalHold)).status).toBe(200);
    // idempotent: the same run again deletes nothing
    expect(await purgeArchives(ctx, { batch: 1, now, print: () => undefined })).toBe(0);
    // each purge left its event, by the server
    const events = await get(`AuditEvent?patient=${old[0].id}`, tok.admin);
    expect(events.body.entry?.length).toBe(1);
    expect(events.body.entry[0].resource.outcomeDesc).toContain('retention');
  });
});

describe('the patient deletes what they deposited, never a professional\'s document', () => {
  it('own document: deleted; the care team\'s: refused and still there', async () => {
    const p = await record('Propre');
    const pTok = await mint(ref(p), 'patient/*.cruds');
    // a patient deposits the patient-authored types (class 90)
    const own = await send('POST', 'DocumentReference', pTok, documentResource(p, PATIENT_DOC, ref(p)));
    expect(own.status).toBe(201);
    expect([200, 204]).toContain((await send('DELETE', `DocumentReference/${own.body.id}`, pTok)).status);
    expect((await get(`DocumentReference/${own.body.id}`, pTok)).status).toBe(410);
    const theirs = await send('DELETE', ref(p.doc), pTok);
    expect(theirs.status).toBe(403);
    expect((await get(ref(p.doc), pTok)).status).toBe(200);
    expect((await get(ref(p.doc), tok.gp)).status).toBe(200);
  });
});

describe('minors and their legal representatives: at 18 the representatives lose access', () => {
  const isoDay = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().slice(0, 10);
  const YEAR = 365.25 * 86_400_000;

  beforeAll(async () => {
    x.minor = await record('Mineur', { birthDate: isoDay(17 * YEAR) });
    x.rep = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, name: [{ family: `Mere-${RUN}` }] });
    x.secret = await create(document(x.minor, ref(x.gp), ['INVISIBLE_REPRESENTANTS_LEGAUX']));
    tok.minor = await mint(ref(x.minor), 'patient/*.cruds');
    tok.rep = await mint(ref(x.rep), 'patient/*.cruds');
  });

  it('before 18: the representative reads the record, not the document protected from them; the minor reads both', async () => {
    const seen = await get(`DocumentReference?patient=${x.minor.id}`, tok.rep);
    expect(seen.status).toBe(200);
    expect(seen.body.entry.map((e: Json) => e.resource.id)).toEqual([x.minor.doc.id]);
    expect((await get(ref(x.secret), tok.rep)).status).toBe(404);
  });

  it('from the eighteenth birthday (computed at the request): the representative is refused, the adult reads their whole history', async () => {
    // the birth date moves 18 years and a day back: no job runs, the next request decides
    const patient = (await get(ref(x.minor), tok.admin)).body;
    expect((await send('PUT', ref(x.minor), tok.admin, { ...patient, birthDate: isoDay(18 * YEAR + 2 * 86_400_000) })).status).toBe(200);
    const refused = await get(`DocumentReference?patient=${x.minor.id}`, tok.rep);
    expect(refused.status).toBe(403);
    expect(detailsCode(refused.body)).toEqual({ system: RECORD_REFUSAL_SYSTEM, code: 'PATIENT_OF_AGE' });
    expect((await get(ref(x.minor.doc), tok.rep)).status).toBe(403);
    expect((await send('POST', 'DocumentReference', tok.rep, document(x.minor, ref(x.rep)))).status).toBe(403);
    expect((await op(tok.rep, x.minor, 'close', '?mode=archive')).status).toBe(403);
    const mine = await get(`DocumentReference?patient=${x.minor.id}`, tok.minor);
    expect(mine.body.entry.map((e: Json) => e.resource.id).sort()).toEqual([x.minor.doc.id, x.secret.id].sort());
    const secret = await get(ref(x.secret), tok.minor);
    expect(secret.status).toBe(200);
    expect(secret.body.meta.security).toEqual(expect.arrayContaining([expect.objectContaining({ system: A07, code: 'INVISIBLE_REPRESENTANTS_LEGAUX' })]));
  });

  it("a guardian named after the patient's majority (tutelle) keeps acting", async () => {
    const adult = await record('Majeur', { birthDate: '1970-01-01' });
    const guardian = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(adult) }, period: { start: '2020-01-01' } });
    const res = await get(`DocumentReference?patient=${adult.id}`, await mint(ref(guardian), 'patient/*.cruds'));
    expect(res.status).toBe(200);
    expect(res.body.entry.length).toBe(1);
  });
});
