import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { consent, document, G15, ircp, Json, ref, REPORT, requests } from '../accessFixtures';

/**
 * Groups and `Group/[id]/$export` (docs/decisions/030-groups.md), over HTTP with real
 * tokens: a Group lives outside any record and only administrators read it; its export
 * holds the records of its active Patient members, each row through the caller's access
 * rules; nobody else learns a Group's membership through any read path.
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
/** The unrestricted test client's token: the harness's default (no policy). */
const TEST_CLIENT = undefined;

const patient = (family: string) => create({ resourceType: 'Patient', name: [{ family: `${family}-${RUN}` }], birthDate: '1975-05-05' });
const member = (p: Json, extra: Json = {}) => ({ entity: { reference: ref(p) }, ...extra });

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ given: ['Anne'], family: `Generaliste-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.p1 = await patient('Membre');
  x.p2 = await patient('Autre-membre');
  x.outsider = await patient('Hors-groupe');
  x.inactive = await patient('Ancien-inactif');
  x.ended = await patient('Ancien-periode');
  x.opposed = await patient('Oppose');
  for (const p of [x.p1, x.p2, x.outsider, x.inactive, x.ended, x.opposed]) p.doc = await create(document(p, REPORT, ref(x.gp), [], undefined, `doc of ${p.id}`));
  // the professional reads p1's record (a declared consent), not p2's
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  tok.admin = await mint(undefined, 'admin');
  tok.gp = await mint(ref(x.gp));
  tok.p1 = await mint(ref(x.p1), 'patient/*.rs');
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  x.group = await create(
    {
      resourceType: 'Group',
      type: 'person',
      actual: true,
      name: `Cohorte-${RUN}`,
      identifier: [{ system: 'https://cohorts.example/id', value: `cohorte-${RUN}` }],
      member: [
        member(x.p1),
        member(x.p2, { period: { start: '2020-01-01' } }),
        member(x.inactive, { inactive: true }),
        member(x.ended, { period: { start: '2020-01-01', end: '2021-01-01' } }),
        member(x.opposed),
        // not a patient: not exported
        member(x.gp),
      ],
    },
    tok.admin,
  );
  x.empty = await create({ resourceType: 'Group', type: 'practitioner', actual: true, member: [member(x.gp)] }, tok.admin);
  // an opposed record is read by nobody but the legal-hold role (decision 017)
  const opposed = await send('POST', `Patient/${x.opposed.id}/$oppose`, tok.admin, { resourceType: 'Parameters' });
  expect(opposed.status).toBe(200);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const relative = (url: string) => url.slice(t.base.length + 1);

async function kickOff(path: string, token: string | undefined): Promise<string> {
  const res = await get(path, token, ASYNC);
  expect([res.status, res.body?.issue?.[0]?.diagnostics]).toEqual([202, expect.anything()]);
  return relative(res.headers.get('content-location')!);
}

async function finished(status: string, token: string | undefined): Promise<Json> {
  for (let i = 0; i < 400; i++) {
    const res = await get(status, token);
    if (res.status !== 202) {
      expect(res.status).toBe(200);
      return res.body;
    }
    await sleep(25);
  }
  throw new Error('the export did not finish');
}

async function exported(manifest: Json, token: string | undefined): Promise<Record<string, Json[]>> {
  const out: Record<string, Json[]> = {};
  for (const file of manifest.output) {
    const res = await get(relative(file.url), token, { accept: 'application/fhir+ndjson' });
    expect(res.status).toBe(200);
    for (const r of res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l))) (out[r.resourceType] ??= []).push(r);
  }
  return out;
}
const ids = (rs: Json[] | undefined) => (rs ?? []).map((r) => r.id).sort();
const sorted = (...rs: Json[]) => rs.map((r) => r.id).sort();
const exportOf = async (path: string, token: string | undefined) => {
  const manifest = await finished(await kickOff(path, token), token);
  return { manifest, files: await exported(manifest, token) };
};

describe('Group as a stored resource', () => {
  it('lives outside any record, whoever its members are', async () => {
    const rows = ((await t.running!.ctx.db.knex.raw(`SELECT compartment FROM resource WHERE resource_type = 'Group' AND id = ?`, [x.group.id])) as { rows: Json[] }).rows;
    expect(rows).toEqual([{ compartment: '' }]);
  });

  it('an administrator reads, searches, updates and deletes Groups', async () => {
    expect((await get(`Group/${x.group.id}`, tok.admin)).body.name).toBe(`Cohorte-${RUN}`);
    const byMember = await get(`Group?member=${ref(x.p2)}`, tok.admin);
    expect(byMember.status).toBe(200);
    expect(byMember.body.entry.map((e: Json) => e.resource.id)).toEqual([x.group.id]);
    expect((await get(`Group?identifier=https://cohorts.example/id|cohorte-${RUN}&type=person&actual=true`, tok.admin)).body.entry.map((e: Json) => e.resource.id)).toEqual([x.group.id]);
    const g = await create({ resourceType: 'Group', type: 'person', actual: true, member: [member(x.outsider)] }, tok.admin);
    const updated = await send('PUT', `Group/${g.id}`, tok.admin, { ...g, member: [member(x.p1)] });
    expect(updated.status).toBe(200);
    expect((await get(`Group?member=${ref(x.outsider)}`, tok.admin)).body.entry ?? []).toEqual([]);
    expect((await send('DELETE', `Group/${g.id}`, tok.admin)).status).toBe(200);
    expect((await get(`Group/${g.id}`, tok.admin)).status).toBe(410);
  });

  it('is validated like any resource: a Group without its required elements is refused', async () => {
    const res = await send('POST', 'Group', tok.admin, { resourceType: 'Group', name: 'no type, no actual' });
    expect([400, 422]).toContain(res.status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const unknownMember = await send('POST', 'Group', tok.admin, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/does-not-exist' } }] });
    expect([400, 409, 422]).toContain(unknownMember.status);
  });

  it('a Patient a Group names is not deleted while the Group names it (409, as for every referrer)', async () => {
    const p = await patient('Reference');
    const g = await create({ resourceType: 'Group', type: 'person', actual: true, member: [member(p)] }, tok.admin);
    const refused = await send('DELETE', `Patient/${p.id}`, tok.admin);
    expect(refused.status).toBe(409);
    expect(refused.body.issue[0].diagnostics).toContain(ref(g));
    expect((await send('DELETE', `Group/${g.id}`, tok.admin)).status).toBe(200);
    expect((await send('DELETE', `Patient/${p.id}`, tok.admin)).status).toBe(200);
  });

  it('a record deleted with $close?mode=delete is no member any reader is shown, nor exported', async () => {
    const gone = await patient('Supprime');
    await create(document(gone, REPORT, ref(x.gp), [], undefined, 'of a record to delete'));
    const g = await create({ resourceType: 'Group', type: 'person', actual: true, member: [member(x.p1), member(gone)] }, tok.admin);
    const closed = await send('POST', `Patient/${gone.id}/$close?mode=delete`, tok.admin, { resourceType: 'Parameters' });
    expect(closed.status).toBe(200);
    // erased from the Group itself (decision 030, amendment), not merely withheld
    const read = (await get(`Group/${g.id}`, await mint(undefined, 'admin legal-hold'))).body;
    expect(read.member).toEqual([member(x.p1)]);
    expect((read.meta.tag ?? []).map((t: Json) => t.code)).not.toContain('SUBSETTED');
    expect((await get(`Group?member=${ref(gone)}`, tok.admin)).body.entry ?? []).toEqual([]);
    const { files } = await exportOf(`Group/${g.id}/$export`, TEST_CLIENT);
    expect(ids(files.Patient)).toEqual([x.p1.id]);
    expect(JSON.stringify(files)).not.toContain(gone.id);
    expect((await send('DELETE', `Group/${g.id}`, tok.admin)).status).toBe(200);
  });

  it('is written by administrators only, alone or in a transaction', async () => {
    const body = { resourceType: 'Group', type: 'person', actual: true, member: [member(x.p1)] };
    for (const token of [tok.gp, tok.p1, tok.engine]) {
      expect((await send('POST', 'Group', token, body)).status).toBe(403);
      const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: body, request: { method: 'POST', url: 'Group' } }] };
      expect((await send('POST', '', token, bundle)).status).toBe(403);
    }
    expect((await get(`Group?member=${ref(x.p1)}`, tok.admin)).body.entry.map((e: Json) => e.resource.id)).toEqual([x.group.id]);
  });
});

describe("a Group's membership does not reach those who may not read it", () => {
  it.each([
    ['the professional', () => tok.gp],
    ['a member patient', () => tok.p1],
    ['a system', () => tok.engine],
  ])('%s: by id it is 404 exactly like an unknown id, vread and history too', async (_who, token) => {
    const unknown = await get(`Group/${crypto.randomUUID()}`, token());
    const known = await get(`Group/${x.group.id}`, token());
    expect(unknown.status).toBe(404);
    expect(known.status).toBe(404);
    expect(known.body.issue.map((i: Json) => i.code)).toEqual(unknown.body.issue.map((i: Json) => i.code));
    expect((await get(`Group/${x.group.id}/_history/1`, token())).status).toBe(404);
    expect((await get(`Group/${x.group.id}/_history`, token())).status).toBe(404);
  });

  it.each([
    ['the professional', () => tok.gp],
    ['a member patient', () => tok.p1],
    ['a system', () => tok.engine],
  ])('%s: a Group search or history is 403 whatever is stored, saying why', async (_who, token) => {
    for (const path of [`Group?member=${ref(x.p1)}`, 'Group', `Group?_id=${x.group.id}&_summary=count`, 'Group/_history']) {
      const res = await get(path, token());
      expect([path, res.status]).toEqual([path, 403]);
      expect(res.body.issue[0].diagnostics).toContain('administrators only');
    }
  });

  it.each([
    ['the professional', () => tok.gp],
    ['a member patient', () => tok.p1],
  ])('%s: no _revinclude, _has, _include or history carries a Group or counts one', async (_who, token) => {
    const rev = await get(`Patient?_id=${x.p1.id}&_revinclude=Group:member&_total=accurate`, token());
    expect(rev.status).toBe(200);
    expect(rev.body.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Patient']);
    expect(rev.body.total).toBe(1);
    const has = await get(`Patient?_has:Group:member:_id=${x.group.id}&_total=accurate`, token());
    expect(has.status).toBe(200);
    expect(has.body.total).toBe(0);
    expect(has.body.entry ?? []).toEqual([]);
    const everything = await get(`Patient/${x.p1.id}/$everything`, token());
    expect(everything.status).toBe(200);
    expect(JSON.stringify(everything.body)).not.toContain(x.group.id);
    // the system history: the Group written after their record's resources is not among the versions they are shown
    const history = await get('_history?_count=1000', token());
    if (history.status === 200) expect(history.body.entry.some((e: Json) => e.resource?.id === x.p1.id)).toBe(true);
    if (history.status === 200) expect((history.body.entry ?? []).filter((e: Json) => e.resource?.resourceType === 'Group' || String(e.fullUrl ?? e.request?.url ?? '').includes('Group/'))).toEqual([]);
    else expect(history.status).toBe(403);
    const compartment = await get(`Patient/${x.p1.id}/Group`, token());
    expect(compartment.status).not.toBe(200);
    expect(JSON.stringify(compartment.body)).not.toContain(x.group.id);
  });

  it('the administrator reads the Group without the members whose record is closed to them (an opposed record: SUBSETTED)', async () => {
    const g = (await get(`Group/${x.group.id}`, tok.admin)).body;
    const named = JSON.stringify(g.member);
    expect(named).toContain(ref(x.p1));
    expect(named).not.toContain(ref(x.opposed));
    expect(g.meta.tag?.map((t: Json) => t.code)).toContain('SUBSETTED');
    // the legal-hold role reads opposed records, and the whole Group
    const legalHold = await mint(undefined, 'admin legal-hold');
    expect(JSON.stringify((await get(`Group/${x.group.id}`, legalHold)).body.member)).toContain(ref(x.opposed));
  });

  it('the administrator does not find a Group by the member they cannot read (a search tells no more than a read)', async () => {
    expect((await get(`Group?member=${ref(x.opposed)}`, tok.admin)).body.entry ?? []).toEqual([]);
    const legalHold = await mint(undefined, 'admin legal-hold');
    expect((await get(`Group?member=${ref(x.opposed)}`, legalHold)).body.entry.map((e: Json) => e.resource.id)).toEqual([x.group.id]);
  });

  it('the administrator, by contrast, finds the members through _has and _revinclude (the queries work)', async () => {
    const has = await get(`Patient?_has:Group:member:_id=${x.group.id}`, tok.admin);
    expect(has.body.entry.map((e: Json) => e.resource.id).sort()).toEqual(sorted(x.p1, x.p2, x.inactive, x.ended));
    const rev = await get(`Patient?_id=${x.p1.id}&_revinclude=Group:member`, tok.admin);
    expect(rev.body.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort()).toEqual([ref(x.group), ref(x.p1)].sort());
  });

  it('a write tells nothing either: a PUT onto a Group id is refused alike whether it holds a Group or is free; DELETE is 404 alike', async () => {
    const body = (id: string) => ({ resourceType: 'Group', id, type: 'person', actual: true });
    const free = crypto.randomUUID();
    const onKnown = await send('PUT', `Group/${x.group.id}`, tok.gp, body(x.group.id));
    const onFree = await send('PUT', `Group/${free}`, tok.gp, body(free));
    expect(onKnown.status).toBe(403);
    expect(onFree.status).toBe(403);
    expect(onKnown.body.issue[0].diagnostics.replaceAll(x.group.id, 'X')).toBe(onFree.body.issue[0].diagnostics.replaceAll(free, 'X'));
    const deleteKnown = await send('DELETE', `Group/${x.group.id}`, tok.gp);
    const deleteFree = await send('DELETE', `Group/${free}`, tok.gp);
    expect(deleteKnown.status).toBe(deleteFree.status);
    expect((await get(`Group/${x.group.id}`, tok.admin)).status).toBe(200);
  });

  it('a write by criteria is refused with 403 whether it matches or not, and changes nothing (decision 030)', async () => {
    const identifier = x.group.identifier?.[0];
    const criteria = identifier ? `identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}` : `_id=${x.group.id}`;
    const before = (await get(`Group/${x.group.id}`, tok.admin)).body.meta.versionId;
    expect(before).toMatch(/^\d+$/);
    for (const token of [tok.gp, tok.p1]) {
      for (const query of [criteria, `_id=${crypto.randomUUID()}`]) {
        const deleted = await send('DELETE', `Group?${query}`, token);
        expect(deleted.status).toBe(403);
        expect(deleted.body.issue[0].diagnostics).toMatch(/administrators only/);
        const put = await send('PUT', `Group?${query}`, token, { resourceType: 'Group', type: 'person', actual: true });
        expect(put.status).toBe(403);
      }
    }
    expect((await get(`Group/${x.group.id}`, tok.admin)).body.meta.versionId).toBe(before);
  });

  it("the professional's and the patient's own exports carry no Group", async () => {
    const own = await exportOf('$export', tok.gp);
    expect(own.files.Group).toBeUndefined();
    expect(JSON.stringify(own.files)).not.toContain(x.group.id);
    const mine = await exportOf('Patient/$export', tok.p1);
    expect(mine.files.Group).toBeUndefined();
    expect(ids(mine.files.Patient)).toEqual([x.p1.id]);
  });

  it('their Group export is 404, as for a Group that does not exist', async () => {
    for (const token of [tok.gp, tok.p1, tok.engine]) {
      const known = await get(`Group/${x.group.id}/$export`, token, ASYNC);
      const unknown = await get(`Group/${crypto.randomUUID()}/$export`, token, ASYNC);
      expect([known.status, unknown.status]).toEqual([404, 404]);
      expect(known.body.resourceType).toBe('OperationOutcome');
    }
  });
});

describe('Group/[id]/$export', () => {
  it('exports the records of the active Patient members, and nothing of anyone else (the unrestricted test client)', async () => {
    const { manifest, files } = await exportOf(`Group/${x.group.id}/$export`, TEST_CLIENT);
    expect(manifest.request).toBe(`${t.base}/Group/${x.group.id}/$export`);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(ids(files.Patient)).toEqual(sorted(x.p1, x.p2, x.opposed));
    expect(ids(files.DocumentReference)).toEqual(sorted(x.p1.doc, x.p2.doc, x.opposed.doc));
    // the types of the Patient compartment only: the Group itself and the practitioner member are not part of it
    expect(files.Group).toBeUndefined();
    expect(files.Practitioner).toBeUndefined();
    const text = JSON.stringify(files);
    for (const absent of [x.outsider, x.inactive, x.ended]) expect(text).not.toContain(absent.id);
  });

  it("applies the caller's access rules to every row: an administrator gets no clinical content and no opposed record", async () => {
    const { files } = await exportOf(`Group/${x.group.id}/$export`, tok.admin);
    expect(ids(files.Patient)).toEqual(sorted(x.p1, x.p2));
    expect(files.DocumentReference).toBeUndefined();
    expect(files.Consent).toBeUndefined();
  });

  it('_type narrows to the types named; a type outside the patient compartment is refused (400)', async () => {
    const { files } = await exportOf(`Group/${x.group.id}/$export?_type=Patient`, TEST_CLIENT);
    expect(Object.keys(files)).toEqual(['Patient']);
    const refused = await get(`Group/${x.group.id}/$export?_type=Practitioner`, TEST_CLIENT, ASYNC);
    expect(refused.status).toBe(400);
    expect(refused.body.issue[0].diagnostics).toContain('outside the patient compartment');
    expect((await get(`Group/${x.group.id}/$export?_type=Binary`, TEST_CLIENT, ASYNC)).status).toBe(400);
  });

  it('_since keeps what changed at or after the instant, among the members only', async () => {
    const first = await finished(await kickOff(`Group/${x.group.id}/$export?_type=DocumentReference`, TEST_CLIENT), TEST_CLIENT);
    await sleep(5);
    const later = await create(document(x.p2, REPORT, ref(x.gp), [], undefined, 'later'));
    await create(document(x.outsider, REPORT, ref(x.gp), [], undefined, 'later, not a member'));
    const { files } = await exportOf(`Group/${x.group.id}/$export?_type=DocumentReference&_since=${encodeURIComponent(first.transactionTime)}`, TEST_CLIENT);
    expect(ids(files.DocumentReference)).toEqual([later.id]);
  });

  it('a Group without Patient members completes with no file', async () => {
    const { manifest } = await exportOf(`Group/${x.empty.id}/$export`, tok.admin);
    expect(manifest.output).toEqual([]);
    expect(manifest.error).toEqual([]);
  });

  it('an unknown or deleted Group is 404; the operation on the type is refused', async () => {
    expect((await get(`Group/${crypto.randomUUID()}/$export`, tok.admin, ASYNC)).status).toBe(404);
    const gone = await create({ resourceType: 'Group', type: 'person', actual: true, member: [member(x.p1)] }, tok.admin);
    expect((await send('DELETE', `Group/${gone.id}`, tok.admin)).status).toBe(200);
    expect((await get(`Group/${gone.id}/$export`, tok.admin, ASYNC)).status).toBe(404);
    expect((await get('Group/$export', tok.admin, ASYNC)).status).toBe(400);
  });

  it('the members are those of the kick-off: a member added afterwards is not in a running export, the next one has them', async () => {
    const status = await kickOff(`Group/${x.group.id}/$export?_type=Patient`, TEST_CLIENT);
    // stored with the job at kick-off (white-box: the row of the in-process server)
    const job = ((await t.running!.ctx.db.knex.raw(`SELECT patients FROM bulk_export WHERE id = ?`, [status.split('/')[1]])) as { rows: Json[] }).rows[0];
    const stored = typeof job.patients === 'string' ? JSON.parse(job.patients) : job.patients;
    expect([...stored].sort()).toEqual(sorted(x.p1, x.p2, x.opposed));
    // the administrator reads it without the opposed member (SUBSETTED) and writes it back whole, less the tag: the member they were not shown is kept
    const read = (await get(`Group/${x.group.id}`, tok.admin)).body;
    const tags = read.meta.tag.filter((t: Json) => t.code !== 'SUBSETTED');
    const g = { ...read, meta: { ...read.meta, tag: tags.length ? tags : undefined } };
    const put = await send('PUT', `Group/${x.group.id}`, tok.admin, { ...g, member: [...g.member, member(x.outsider)] });
    if (put.status !== 200) throw new Error(`PUT answered ${put.status}: ${put.text}`);
    const legalHold = await mint(undefined, 'admin legal-hold');
    expect(JSON.stringify((await get(`Group/${x.group.id}`, legalHold)).body.member)).toContain(ref(x.opposed));
    const before = await exported(await finished(status, TEST_CLIENT), TEST_CLIENT);
    expect(ids(before.Patient)).not.toContain(x.outsider.id);
    const after = await exportOf(`Group/${x.group.id}/$export?_type=Patient`, TEST_CLIENT);
    expect(ids(after.files.Patient)).toEqual(sorted(x.p1, x.p2, x.opposed, x.outsider));
    expect((await send('PUT', `Group/${x.group.id}`, tok.admin, g)).status).toBe(200);
  });

  it("is in the trail of each member's record exported, and of no other", async () => {
    await exportOf(`Group/${x.group.id}/$export?_type=Patient`, tok.admin);
    // the test client's exports are not audited: these are the administrator's
    const exportEvents = async (p: Json) => ((await get(`AuditEvent?patient=${p.id}&_count=1000`, tok.admin)).body.entry ?? []).map((e: Json) => e.resource).filter((e: Json) => e.subtype?.[0]?.display === '$export');
    expect((await exportEvents(x.p1)).length).toBeGreaterThan(0);
    expect(await exportEvents(x.inactive)).toEqual([]);
  });
});

describe('the CapabilityStatement', () => {
  it('declares Group with its interactions and the IG group-export operation on it', async () => {
    const cs = (await http(t.base, 'metadata')).body;
    const group = cs.rest[0].resource.find((r: Json) => r.type === 'Group');
    expect(group.interaction.map((i: Json) => i.code)).toEqual(expect.arrayContaining(['read', 'create', 'update', 'delete', 'search-type']));
    expect(group.searchParam.map((p: Json) => p.name)).toEqual(expect.arrayContaining(['member', 'identifier', 'type', 'characteristic', 'managing-entity']));
    expect(group.operation.map((o: Json) => o.definition)).toContain('http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export');
  });
});
