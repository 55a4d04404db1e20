import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { consent, document, G15, ircp, Json, ref, REPORT, requests } from '../accessFixtures';

/**
 * FHIR Bulk Data export (docs/decisions/020-bulk-data.md): kick-off, status, files, cancel
 * and expiry over HTTP, with real tokens; every row goes through the caller's access rules,
 * and the status and files answer to the caller who asked only.
 */
let t: Target;
const { create, get, send, mint } = requests(() => t);
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const x: Json = {};
const tok: Record<string, string> = {};
const ASYNC = { prefer: 'respond-async' };

beforeAll(async () => {
  const doctor = async (family: string) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ given: ['Anne'], family: `${family}-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    return p;
  };
  x.gp = await doctor('Generaliste');
  x.author = await doctor('Auteur');
  x.stranger = await doctor('Etranger');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.shown = await create(document(x.p1, REPORT, ref(x.author), [], 'https://documents.example/a', 'shown'));
  // masked by the patient: hidden from a professional who is neither its author nor the treating physician
  x.masked = await create(document(x.p1, REPORT, ref(x.author), ['MASQUE_PS'], 'https://documents.example/b', 'masked'));
  x.other = await create(document(x.p2, REPORT, ref(x.author), [], 'https://documents.example/c', 'other record'));
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.rs');
  tok.admin = await mint(undefined, 'admin');
});

/** The id of the last export whose request ends with `path` (white-box: the rows of the in-process server). */
async function latestExportOf(path: string): Promise<string> {
  const rows = ((await t.running!.ctx.db.knex.raw(`SELECT id FROM bulk_export WHERE request = ? ORDER BY transaction_time DESC LIMIT 1`, [`${t.base}/${path}`])) as { rows: { id: string }[] }).rows;
  return rows[0].id;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const relative = (url: string) => url.slice(t.base.length + 1);

/** Kicks off an export and returns its status path. */
async function kickOff(path: string, token: string): Promise<string> {
  const res = await get(path, token, ASYNC);
  expect(res.status).toBe(202);
  const location = res.headers.get('content-location')!;
  expect(location).toMatch(new RegExp(`^${t.base}/_bulk/[0-9a-f-]{36}$`));
  return relative(location);
}

/** Polls the status until it is no longer 202 (bounded by a number of polls, not by time). */
async function finished(status: string, token: string): Promise<{ status: number; manifest: Json; headers: Headers }> {
  for (let i = 0; i < 400; i++) {
    const res = await get(status, token);
    if (res.status !== 202) return { status: res.status, manifest: res.body, headers: res.headers };
    expect(res.headers.get('x-progress')).toBeTruthy();
    await sleep(25);
  }
  throw new Error('the export did not finish');
}

/** Every resource of a completed export, by type (the files fetched with the same token). */
async function exported(manifest: Json, token: string): Promise<Record<string, Json[]>> {
  const out: Record<string, Json[]> = {};
  for (const file of manifest.output) {
    const res = await get(relative(file.url), token, { accept: 'application/fhir+ndjson' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+ndjson/);
    const lines = res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines).toHaveLength(file.count);
    for (const r of lines) expect(r.resourceType).toBe(file.type);
    (out[file.type] ??= []).push(...lines);
  }
  return out;
}
const ids = (rs: Json[] | undefined) => (rs ?? []).map((r) => r.id).sort();

describe('a professional exports what their searches return, nothing hidden', () => {
  let status: string;
  let done: Awaited<ReturnType<typeof finished>>;
  let files: Record<string, Json[]>;
  beforeAll(async () => {
    status = await kickOff('$export?_type=Patient,DocumentReference', tok.gp);
    done = await finished(status, tok.gp);
    files = await exported(done.manifest, tok.gp);
  });

  it('answers the manifest of the IG once complete', () => {
    expect(done.status).toBe(200);
    expect(done.headers.get('content-type')).toMatch(/^application\/json/);
    expect(done.headers.get('expires')).toBeTruthy();
    expect(done.manifest).toMatchObject({ requiresAccessToken: true, request: `${t.base}/$export?_type=Patient%2CDocumentReference`, error: [] });
    expect(Date.parse(done.manifest.transactionTime)).toBeGreaterThan(0);
    for (const o of done.manifest.output) expect(o.url).toMatch(new RegExp(`^${t.base}/_bulk/`));
  });

  it('holds the records open to them, never a masked document or another record', () => {
    expect(ids(files.DocumentReference)).toEqual([x.shown.id]);
    expect(ids(files.Patient)).toEqual([x.p1.id]);
  });

  it('leaves out the types not asked for (_type)', () => {
    expect(Object.keys(files).sort()).toEqual(['DocumentReference', 'Patient']);
  });

  it('another caller gets 404 for the status, the files and the cancel; no token is 401', async () => {
    expect((await get(status, tok.stranger)).status).toBe(404);
    expect((await get(relative(done.manifest.output[0].url), tok.stranger, { accept: 'application/fhir+ndjson' })).status).toBe(404);
    expect((await send('DELETE', status, tok.stranger)).status).toBe(404);
    // the patient whose record it is does not get the professional's files either
    expect((await get(relative(done.manifest.output[0].url), tok.p1, { accept: 'application/fhir+ndjson' })).status).toBe(404);
    expect((await get(status, tok.gp)).status).toBe(200);
    expect((await http(t.base, status, { headers: { authorization: '' } })).status).toBe(401);
  });

  it('is in the trail of the record exported, and of no other', async () => {
    const trail = async (patient: Json) => (await get(`AuditEvent?patient=${patient.id}&_count=1000`)).body.entry?.map((e: Json) => e.resource) ?? [];
    const exportEvents = (events: Json[]) => events.filter((e) => e.subtype?.[0]?.display === '$export' && e.agent?.some((a: Json) => a.who?.reference === ref(x.gp)));
    const mine = exportEvents(await trail(x.p1));
    expect(mine).toHaveLength(1);
    const named = mine[0].entity.map((e: Json) => e.what?.reference).filter(Boolean);
    expect(named).toEqual(expect.arrayContaining([ref(x.p1), ref(x.shown)]));
    expect(named).not.toContain(ref(x.masked));
    expect(exportEvents(await trail(x.p2))).toHaveLength(0);
  });
});

describe('a token of the same practitioner with other scopes', () => {
  let status: string;
  let manifest: Json;
  beforeAll(async () => {
    tok.gpNarrow = await mint(ref(x.gp), 'user/Patient.rs');
    status = await kickOff('Patient/$export?_type=Patient,DocumentReference', tok.gp);
    const done = await finished(status, tok.gp);
    expect(done.status).toBe(200);
    manifest = done.manifest;
    expect(manifest.output.map((o: Json) => o.type).sort()).toEqual(['DocumentReference', 'Patient']);
  });

  it('cannot search DocumentReference itself, and gets 404 for the status, every file and the cancel of the export made under user/*.cruds', async () => {
    expect((await get(`DocumentReference?patient=${x.p1.id}`, tok.gpNarrow)).status).toBe(403);
    expect((await get(status, tok.gpNarrow)).status).toBe(404);
    for (const o of manifest.output) expect([o.type, (await get(relative(o.url), tok.gpNarrow, { accept: 'application/fhir+ndjson' })).status]).toEqual([o.type, 404]);
    expect((await send('DELETE', status, tok.gpNarrow)).status).toBe(404);
    // the token of the kick-off still gets it all
    expect((await get(status, tok.gp)).status).toBe(200);
    for (const o of manifest.output) expect((await get(relative(o.url), tok.gp, { accept: 'application/fhir+ndjson' })).status).toBe(200);
  });

  it('the export it makes itself answers to it, and not to the wider token', async () => {
    const own = await kickOff('Patient/$export?_type=Patient', tok.gpNarrow);
    expect((await finished(own, tok.gpNarrow)).status).toBe(200);
    expect((await get(own, tok.gp)).status).toBe(404);
  });

  it('an export made acting in one PractitionerRole answers to that role only', async () => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `DeuxRoles-${RUN}` }] });
    const role = async (code: string) => create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code }] }] });
    const first = await role('10');
    const second = await role('60');
    const asFirst = await mint(ref(p), 'user/*.cruds', { practitioner_role: first.id });
    const own = await kickOff('Patient/$export?_type=Patient', asFirst);
    expect((await finished(own, asFirst)).status).toBe(200);
    expect((await get(own, await mint(ref(p), 'user/*.cruds', { practitioner_role: first.id }))).status).toBe(200);
    expect((await get(own, await mint(ref(p), 'user/*.cruds', { practitioner_role: second.id }))).status).toBe(404);
    // without a chosen role the practitioner acts in both
    expect((await get(own, await mint(ref(p), 'user/*.cruds'))).status).toBe(404);
  });

  it('a kick-off naming a type its scopes cannot read is refused as that search is (403)', async () => {
    const res = await get('Patient/$export?_type=Patient,DocumentReference', tok.gpNarrow, ASYNC);
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('who exports what', () => {
  it('a professional without access to a record exports none of it', async () => {
    const done = await finished(await kickOff('Patient/$export', tok.stranger), tok.stranger);
    expect(done.status).toBe(200);
    const files = await exported(done.manifest, tok.stranger);
    expect(files.Patient).toBeUndefined();
    expect(files.DocumentReference).toBeUndefined();
  });

  it('an administrator gets patients and the directory, no clinical content', async () => {
    const done = await finished(await kickOff('$export?_type=Patient,Practitioner,DocumentReference,Consent', tok.admin), tok.admin);
    const files = await exported(done.manifest, tok.admin);
    expect(ids(files.Patient)).toEqual(expect.arrayContaining([x.p1.id, x.p2.id]));
    expect(ids(files.Practitioner)).toEqual(expect.arrayContaining([x.gp.id, x.stranger.id]));
    expect(files.DocumentReference).toBeUndefined();
    expect(files.Consent).toBeUndefined();
  });

  it('a patient exports their own record only', async () => {
    const done = await finished(await kickOff('Patient/$export?_type=Patient,DocumentReference', tok.p1), tok.p1);
    const files = await exported(done.manifest, tok.p1);
    expect(ids(files.Patient)).toEqual([x.p1.id]);
    expect(ids(files.DocumentReference)).toEqual([x.masked.id, x.shown.id].sort());
  });
});

describe('references to resources hidden from the caller', () => {
  // a record of its own, so that the other expectations keep their documents
  const y: Json = {};
  beforeAll(async () => {
    y.p = await create({ resourceType: 'Patient', name: [{ family: `Trois-${RUN}` }], birthDate: '1990-01-01' });
    await create(consent(y.p, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
    y.shown = await create(document(y.p, REPORT, ref(x.author), [], 'https://documents.example/e', 'shown'));
    y.masked = await create(document(y.p, REPORT, ref(x.author), ['MASQUE_PS'], 'https://documents.example/f', 'masked'));
    y.unannounced = await create(document(y.p, REPORT, ref(x.author), ['INVISIBLE_PATIENT'], 'https://documents.example/g', 'not yet announced'));
    const naming = (target: Json) => ({
      ...document(y.p, REPORT, ref(x.author), [], 'https://documents.example/h', `names ${target.id}`),
      relatesTo: [{ code: 'appends', target: { reference: ref(target) } }],
      context: { related: [{ reference: ref(target) }, { reference: ref(y.shown) }] },
    });
    y.namesMasked = await create(naming(y.masked));
    y.namesUnannounced = await create(naming(y.unannounced));
    tok.p3 = await mint(ref(y.p), 'patient/*.rs');
  });

  /** The record's documents as the caller's search gives them, and as their export does. */
  async function searchedAndExported(token: string): Promise<{ searched: Json[]; exportedDocs: Json[] }> {
    const search = await get(`DocumentReference?patient=${y.p.id}&_count=100`, token);
    expect(search.status).toBe(200);
    const searched = (search.body.entry ?? []).map((e: Json) => e.resource).sort((a: Json, b: Json) => a.id.localeCompare(b.id));
    const done = await finished(await kickOff('Patient/$export?_type=DocumentReference', token), token);
    expect(done.status).toBe(200);
    const exportedDocs = ((await exported(done.manifest, token)).DocumentReference ?? []).filter((d) => d.subject.reference === ref(y.p)).sort((a, b) => a.id.localeCompare(b.id));
    return { searched, exportedDocs };
  }
  const subsetted = (r: Json) => Boolean(r.meta?.tag?.some((tag: Json) => tag.code === 'SUBSETTED'));

  it('a professional: the references to a masked document are withheld from the files as from the search', async () => {
    const { searched, exportedDocs } = await searchedAndExported(tok.gp);
    expect(exportedDocs).toEqual(searched);
    const doc = exportedDocs.find((d) => d.id === y.namesMasked.id)!;
    expect(doc.relatesTo).toBeUndefined();
    expect(doc.context.related).toEqual([{ reference: ref(y.shown) }]);
    expect(subsetted(doc)).toBe(true);
    expect(JSON.stringify(exportedDocs)).not.toContain(ref(y.masked));
    // what the professional may read keeps its references
    expect(exportedDocs.find((d) => d.id === y.namesUnannounced.id)!.relatesTo[0].target.reference).toBe(ref(y.unannounced));
  });

  it('the patient: the references to a document not yet announced to them are withheld from the files as from the search', async () => {
    const { searched, exportedDocs } = await searchedAndExported(tok.p3);
    expect(exportedDocs).toEqual(searched);
    const doc = exportedDocs.find((d) => d.id === y.namesUnannounced.id)!;
    expect(doc.relatesTo).toBeUndefined();
    expect(doc.context.related).toEqual([{ reference: ref(y.shown) }]);
    expect(subsetted(doc)).toBe(true);
    expect(JSON.stringify(exportedDocs)).not.toContain(ref(y.unannounced));
    expect(exportedDocs.find((d) => d.id === y.namesMasked.id)!.relatesTo[0].target.reference).toBe(ref(y.masked));
  });
});

describe('_since', () => {
  it('holds only what changed at or after the instant, and the manifest says when the cut was taken', async () => {
    const first = await finished(await kickOff('$export?_type=DocumentReference', tok.gp), tok.gp);
    const since = first.manifest.transactionTime;
    await sleep(5);
    const later = await create(document(x.p1, REPORT, ref(x.author), [], 'https://documents.example/d', 'later'));
    const done = await finished(await kickOff(`$export?_type=DocumentReference&_since=${encodeURIComponent(since)}`, tok.gp), tok.gp);
    const files = await exported(done.manifest, tok.gp);
    expect(ids(files.DocumentReference)).toEqual([later.id]);
    expect(Date.parse(done.manifest.transactionTime)).toBeGreaterThanOrEqual(Date.parse(since));
  });
});

describe('refusals at kick-off', () => {
  it.each([
    ['without Prefer: respond-async', '$export', {}, 400],
    ['an output format other than NDJSON', '$export?_outputFormat=text/csv', ASYNC, 400],
    ['Binary', '$export?_type=Binary', ASYNC, 400],
    ['_since that is not an instant', '$export?_since=2024', ASYNC, 400],
    ['_typeFilter', '$export?_typeFilter=Patient%3Factive%3Dtrue', ASYNC, 400],
    ['Group export of a Group unknown (or hidden from the caller)', 'Group/1/$export', ASYNC, 404],
  ])('%s', async (_name, path, headers, expected) => {
    const res = await get(path, tok.gp, headers);
    expect(res.status).toBe(expected);
    expect(res.body?.resourceType).toBe('OperationOutcome');
  });

  it('a type outside the patient compartment at patient level is refused as such, not as unknown', async () => {
    const res = await get('Patient/$export?_type=Practitioner', tok.gp, ASYNC);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('outside the patient compartment');
  });

  it('_outputFormat=application/fhir+ndjson sent with its + unencoded is accepted', async () => {
    const done = await finished(await kickOff('$export?_type=Patient&_outputFormat=application/fhir+ndjson', tok.gp), tok.gp);
    expect(done.status).toBe(200);
  });
});

describe('cancel and expiry', () => {
  it('a caller runs at most two exports at once (429 with Retry-After), another caller is not held back', async () => {
    // the only export of this request: its row gives the caller's own values
    await finished(await kickOff('$export?_type=Organization', tok.stranger), tok.stranger);
    const source = await latestExportOf('$export?_type=Organization');
    // two exports of the same caller that no process has finished yet
    const running = [crypto.randomUUID(), crypto.randomUUID()];
    const knex = t.running!.ctx.db.knex;
    for (const r of running) {
      await knex.raw(
        `INSERT INTO bulk_export (id, caller, rights, request, level, types, visibility, status, transaction_time, heartbeat)
         SELECT ?, caller, rights, request, level, types, visibility, 'in-progress', now(), now() FROM bulk_export WHERE id = ?`,
        [r, source],
      );
    }
    const third = await get('$export', tok.stranger, ASYNC);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBeTruthy();
    expect((await get(`_bulk/${running[0]}`, tok.stranger)).status).toBe(202);
    const other = await get('$export?_type=Patient', tok.admin, ASYNC);
    expect(other.status).toBe(202);
    for (const r of running) expect((await send('DELETE', `_bulk/${r}`, tok.stranger)).status).toBe(202);
    expect((await get('$export?_type=Patient', tok.stranger, ASYNC)).status).toBe(202);
  });

  it('DELETE cancels: 202, then the status and files are gone', async () => {
    const status = await kickOff('$export?_type=Patient', tok.gp);
    const cancelled = await send('DELETE', status, tok.gp);
    expect(cancelled.status).toBe(202);
    expect((await get(status, tok.gp)).status).toBe(404);
    expect((await send('DELETE', status, tok.gp)).status).toBe(404);
  });

  it('an expired export answers 404 and is deleted with its files', async () => {
    const status = await kickOff('$export?_type=Patient', tok.gp);
    const done = await finished(status, tok.gp);
    expect(done.status).toBe(200);
    const id = status.split('/')[1];
    const knex = t.running!.ctx.db.knex;
    const count = async (table: string, column: string) => Number(((await knex.raw(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`, [id])) as { rows: { n: string }[] }).rows[0].n);
    expect(await count('bulk_export_file', 'export_id')).toBeGreaterThan(0);
    // as if BULK_EXPORT_TTL had passed
    await knex.raw(`UPDATE bulk_export SET expires_at = now() - interval '1 second' WHERE id = ?`, [id]);
    expect((await get(relative(done.manifest.output[0].url), tok.gp, { accept: 'application/fhir+ndjson' })).status).toBe(404);
    expect((await get(status, tok.gp)).status).toBe(404);
    expect(await count('bulk_export', 'id')).toBe(0);
    expect(await count('bulk_export_file', 'export_id')).toBe(0);
  });

  it('the status says when the files expire (BULK_EXPORT_TTL after completion)', async () => {
    const done = await finished(await kickOff('$export?_type=Patient', tok.gp), tok.gp);
    const expires = Date.parse(done.headers.get('expires')!);
    expect(expires - Date.parse(done.manifest.transactionTime)).toBeGreaterThan(3000 * 1000);
  });
});

describe('the CapabilityStatement', () => {
  it('lists $export at system, Patient and Group level, and does not claim the bulk data CapabilityStatement (_typeFilter, patient, includeAssociatedData are not served)', async () => {
    const cs = (await http(t.base, 'metadata')).body;
    expect(cs.rest[0].operation.map((o: Json) => o.definition)).toContain('http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export');
    const patient = cs.rest[0].resource.find((r: Json) => r.type === 'Patient');
    expect(patient.operation.map((o: Json) => o.definition)).toContain('http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export');
    const group = cs.rest[0].resource.find((r: Json) => r.type === 'Group');
    expect(group.operation.map((o: Json) => o.definition)).toContain('http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export');
    expect(cs.instantiates ?? []).not.toContain('http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data');
  });
});
