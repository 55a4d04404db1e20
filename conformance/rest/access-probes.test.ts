import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { A07, as, consent, document as documentResource, G15, ircp, Json, PATIENT_DOC, pcp, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes of the access contract (ACCESS.md, docs/decisions/008-access-model.md) from
 * outside, over HTTP, with real tokens: each test is named for the rule it holds the
 * server to, and tries a path around it (scopes through includes, writes to hidden ids,
 * history after deletion, Binaries reached by another URL, 403 against 404 …).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const document = (patient: Json, type: { code: string; cls: string }, author: string, labels: string[] = [], url?: string) => documentResource(patient, type, author, labels, url, `doc ${RUN}`);
const binary = (patient: Json, text: string) => ({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(patient) }, data: Buffer.from(text).toString('base64') });

/** The ids of every resource in an answer, however nested, but OperationOutcomes and Bundles. */
function resourcesIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) resourcesIn(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Json;
    if (typeof o.resourceType === 'string' && o.resourceType !== 'OperationOutcome' && o.resourceType !== 'Bundle' && typeof o.id === 'string') out.push(`${o.resourceType}/${o.id}`);
    for (const v of Object.values(o)) resourcesIn(v, out);
  }
  return out;
}
const returned = (res: { text: string }) => resourcesIn(res.text ? JSON.parse(res.text) : null);

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  const practitioner = (name: string) => create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
  const role = (p: Json, profession: string, extra: Json = {}) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...extra });
  x.gp = await practitioner('Generaliste');
  await role(x.gp, '10', { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.other = await practitioner('Autre');
  await role(x.other, '10', { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.nurse = await practitioner('Infirmier');
  await role(x.nurse, '60');
  x.gpRole = await role(x.gp, '10');
  x.inactiveRole = await role(x.gp, '10', { active: false });
  x.pastRole = await role(x.gp, '10', { period: { start: '2000-01-01', end: '2010-01-01' } });
  x.retiring = await practitioner('Retraite');
  await role(x.retiring, '10', { period: { start: '2000-01-01', end: '2010-01-01' } });
  x.deletedPractitioner = await practitioner('Supprime');
  await send('DELETE', ref(x.deletedPractitioner), t.token!);
  x.org = await create({ resourceType: 'Organization', name: `Org ${RUN}` });

  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.deletedPatient = await create({ resourceType: 'Patient', name: [{ family: `Efface-${RUN}` }] });
  await send('DELETE', ref(x.deletedPatient), t.token!);
  x.closed = await create({ resourceType: 'Patient', active: false, name: [{ family: `Ferme-${RUN}` }], birthDate: '1960-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });

  x.report = await create(document(x.p1, REPORT, ref(x.gp)));
  x.psych = await create(document(x.p1, PSYCH, ref(x.gp)));
  x.maskedBinary = await create(binary(x.p1, `masked ${RUN}`));
  x.masked = await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS'], ref(x.maskedBinary)));
  x.unannounced = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']));
  x.minorSecret = await create(document(x.minor, REPORT, ref(x.gp), ['INVISIBLE_REPRESENTANTS_LEGAUX']));
  x.closedDoc = await create(document(x.closed, REPORT, ref(x.gp)));

  tok.gp = await mint(ref(x.gp));
  tok.other = await mint(ref(x.other));
  tok.nurse = await mint(ref(x.nurse));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');

  tok.retiring = await mint(ref(x.retiring));
  for (const [who, token] of [[x.gp, tok.gp], [x.other, tok.other], [x.nurse, tok.nurse], [x.retiring, tok.retiring]] as const) {
    await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  }
  await create(consent(x.minor, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.p2consent = await create(consent(x.p2, ref(x.p2), { type: 'deny', actor: [ircp(ref(x.other))] }, 'OPTOUT'), tok.p2);
});

describe('scopes bound what an application may ask, through every path', () => {
  it('a patient/Patient.rs token gets no DocumentReference through _revinclude', async () => {
    const narrow = await mint(ref(x.p1), 'patient/Patient.rs');
    const res = await get(`Patient?_id=${x.p1.id}&_revinclude=DocumentReference:subject&_revinclude=Consent:patient`, narrow);
    expect(res.status).toBe(200);
    expect(returned(res)).toEqual([ref(x.p1)]);
  });
  it('a patient/Patient.r token gets nothing but the Patient from $everything', async () => {
    const narrow = await mint(ref(x.p1), 'patient/Patient.r');
    const res = await get(`Patient/${x.p1.id}/$everything`, narrow);
    expect(returned(res).filter((r) => !r.startsWith('Patient/'))).toEqual([]);
  });
  it('a patient/Patient.rs token cannot tell which document types exist through _has', async () => {
    const narrow = await mint(ref(x.p1), 'patient/Patient.rs');
    const res = await get(`Patient?_has:DocumentReference:subject:type=${PSYCH.code}`, narrow);
    expect(returned(res)).toEqual([]);
  });
});

describe('a hidden resource is written as if it did not exist, and stays intact', () => {
  it('PUT to the id of a document hidden by the matrix does not overwrite it and is refused without showing it', async () => {
    const body = { ...document(x.p1, REPORT, ref(x.nurse)), id: x.psych.id };
    const res = await send('PUT', `DocumentReference/${x.psych.id}`, tok.nurse, body);
    // refused before any statement runs (it used to fail in the database, 409 "concurrent write" after three attempts)
    expect(res.status).toBe(403);
    expect(res.text).not.toContain(PSYCH.code);
    expect(res.status).toBeLessThan(500);
    const stored = await get(`DocumentReference/${x.psych.id}`, tok.gp);
    expect(stored.body.type.coding[0].code).toBe(PSYCH.code);
    expect(stored.body.meta.versionId).toBe('1');
  });
  it('PUT by the patient to the id of a document invisible to them does not overwrite it', async () => {
    const body = { ...document(x.p1, REPORT, ref(x.p1)), id: x.unannounced.id };
    const res = await send('PUT', `DocumentReference/${x.unannounced.id}`, tok.p1, body);
    expect(res.status).toBe(403);
    const stored = await get(`DocumentReference/${x.unannounced.id}`, tok.gp);
    expect(stored.body.author[0].reference).toBe(ref(x.gp));
    expect(stored.body.meta.versionId).toBe('1');
  });
  it('PATCH and DELETE of a hidden document answer as for a missing one and leave it alone', async () => {
    const missing = crypto.randomUUID();
    const patch = [{ op: 'replace', path: '/description', value: 'changed' }];
    const hdr = { 'content-type': 'application/json-patch+json' };
    const a = await http(t.base, `DocumentReference/${x.psych.id}`, { method: 'PATCH', body: JSON.stringify(patch), headers: { ...as(tok.nurse), ...hdr } });
    const b = await http(t.base, `DocumentReference/${missing}`, { method: 'PATCH', body: JSON.stringify(patch), headers: { ...as(tok.nurse), ...hdr } });
    expect([a.status, a.text.replace(x.psych.id, 'ID')]).toEqual([b.status, b.text.replace(missing, 'ID')]);
    const c = await send('DELETE', `DocumentReference/${x.psych.id}`, tok.nurse);
    const d = await send('DELETE', `DocumentReference/${missing}`, tok.nurse);
    expect(c.status).toBe(d.status);
    expect((await get(`DocumentReference/${x.psych.id}`, tok.gp)).body.description).toBe(`doc ${RUN}`);
  });
  it('a conditional delete does not delete a hidden row, a conditional create does not return it', async () => {
    expect((await send('DELETE', `DocumentReference?_id=${x.psych.id}`, tok.nurse)).status).toBe(204);
    expect((await get(`DocumentReference/${x.psych.id}`, tok.gp)).status).toBe(200);
    const res = await send('POST', 'DocumentReference', tok.nurse, document(x.p1, REPORT, ref(x.nurse)), { 'if-none-exist': `_id=${x.psych.id}` });
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(x.psych.id);
  });
  it('a conditional reference does not resolve to a hidden resource', async () => {
    const body = { ...document(x.p1, REPORT, ref(x.nurse)), relatesTo: [{ code: 'appends', target: { reference: `DocumentReference?_id=${x.psych.id}` } }] };
    const res = await send('POST', '', tok.nurse, { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'DocumentReference' }, resource: body }] });
    expect(res.status).toBe(412);
  });
});

describe('a single hidden resource is a 404 exactly like a missing id', () => {
  it('the 404 of a hidden document is byte for byte the 404 of a missing one (read, vread, history, $validate)', async () => {
    const missing = crypto.randomUUID();
    for (const path of ['DocumentReference/ID', 'DocumentReference/ID/_history/1', 'DocumentReference/ID/_history', 'DocumentReference/ID/$validate']) {
      const hidden = await get(path.replace('ID', x.psych.id), tok.nurse);
      const unknown = await get(path.replace('ID', missing), tok.nurse);
      expect([path, hidden.status, hidden.text.split(x.psych.id).join('ID')]).toEqual([path, unknown.status, unknown.text.split(missing).join('ID')]);
      expect(hidden.status).toBe(404);
    }
  });
  it('a patient cannot tell another record or its documents from missing ones, even a closed record', async () => {
    for (const [token, path] of [
      [tok.p1, `Patient/${x.closed.id}`],
      [tok.p1, `DocumentReference/${x.closedDoc.id}`],
      [tok.parent, `DocumentReference/${x.closedDoc.id}`],
      [tok.p1, `Patient/${x.p2.id}`],
    ]) {
      const res = await get(path, token);
      expect([path, res.status]).toEqual([path, 404]);
    }
  });
  it("a patient reads no other patient's Consent, by id or by search", async () => {
    expect((await get(`Consent/${x.p2consent.id}`, tok.p1)).status).toBe(404);
    expect(returned(await get(`Consent?patient=${x.p2.id}`, tok.p1))).toEqual([]);
    expect(returned(await get(`Consent?_id=${x.p2consent.id}`, tok.p1))).toEqual([]);
  });
});

describe('history keeps the labels and the matrix after a deletion', () => {
  it('a deleted document invisible to the patient stays invisible in vread and history', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']), tok.gp);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}/_history/1`, tok.p1)).status).toBe(404);
    expect(returned(await get(`DocumentReference/${doc.id}/_history`, tok.p1))).toEqual([]);
    expect(returned(await get(`DocumentReference/_history?_count=200`, tok.p1))).not.toContain(ref(doc));
  });
  it('a masked document deleted by its author does not show to other professionals in history', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS']), tok.other);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.other)).status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}/_history/1`, tok.gp)).status).toBe(404);
  });
});

describe('a Binary follows the DocumentReference that points to it', () => {
  it('through a versioned URL', async () => {
    const b = await create(binary(x.p1, `versioned ${RUN}`), tok.other);
    await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS'], `Binary/${b.id}/_history/1`), tok.other);
    expect((await get(`Binary/${b.id}`, tok.other)).status).toBe(200);
    expect((await get(`Binary/${b.id}`, tok.gp)).status).toBe(404);
  });
  it('through an absolute URL of this server', async () => {
    const b = await create(binary(x.p1, `absolute ${RUN}`), tok.other);
    await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS'], `${t.base}/Binary/${b.id}`), tok.other);
    expect((await get(`Binary/${b.id}`, tok.gp)).status).toBe(404);
    expect((await get(`Binary/${b.id}`, tok.gp, { accept: 'text/plain' })).status).toBe(404);
  });
  it('with a Range header, a HEAD or If-None-Match: the same 404, no byte and no length', async () => {
    const b = await create(binary(x.p1, `ranged ${RUN}`), tok.other);
    await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS'], ref(b)), tok.other);
    const ranged = await get(`Binary/${b.id}`, tok.other, { accept: 'text/plain', range: 'bytes=0-5' });
    expect(ranged.status).toBe(206);
    expect(ranged.text).toBe('ranged');
    const probes: Record<string, string>[] = [{ range: 'bytes=0-5' }, { range: 'bytes=1000-' }, { range: 'bytes=0-1,3-4' }, { 'if-none-match': 'W/"1"', range: 'bytes=0-5' }];
    for (const headers of probes) {
      const res = await get(`Binary/${b.id}`, tok.gp, { accept: 'text/plain', ...headers });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-range')).toBeNull();
      expect(res.headers.get('accept-ranges')).toBeNull();
      expect(res.text).not.toContain('ranged');
    }
    const head = await send('HEAD', `Binary/${b.id}`, tok.gp);
    expect(head.status).toBe(404);
  });
  it('after the document that points to it is deleted', async () => {
    const b = await create(binary(x.p1, `deleted psych ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, PSYCH, ref(x.gp), [], ref(b)), tok.gp);
    expect((await get(`Binary/${b.id}`, tok.nurse)).status).toBe(404);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    expect((await get(`Binary/${b.id}`, tok.nurse)).status).toBe(404);
  });
});

describe('writes outside the caller\'s rights are refused', () => {
  it('nobody but the server writes or deletes the audit trail (AuditEvent)', async () => {
    const event = {
      resourceType: 'AuditEvent',
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
      recorded: new Date().toISOString(),
      agent: [{ who: { reference: ref(x.gp) }, requestor: true }],
      source: { observer: { display: 'forged' } },
      entity: [{ what: { reference: ref(x.p1) } }],
    };
    expect((await send('POST', 'AuditEvent', tok.gp, event)).status).toBe(403);
    expect((await send('POST', 'AuditEvent', tok.p1, event)).status).toBe(403);
  });
  it('a professional does not create legal representatives (RelatedPerson is the directory, written by administrators)', async () => {
    const rp = { resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.p1) } };
    expect((await send('POST', 'RelatedPerson', tok.gp, rp)).status).toBe(403);
  });
  it('a patient does not rewrite the content of a document a professional deposited (its Binary)', async () => {
    const b = await create(binary(x.p1, `report ${RUN}`), tok.gp);
    await create(document(x.p1, REPORT, ref(x.gp), [], ref(b)), tok.gp);
    const res = await send('PUT', `Binary/${b.id}`, tok.p1, { ...binary(x.p1, 'rewritten'), id: b.id });
    expect(res.status).toBe(403);
    expect((await send('DELETE', `Binary/${b.id}`, tok.p1)).status).toBe(403);
  });
  it("nobody changes a document's content once deposited: another professional, its author, a system, by PUT, PATCH or transaction (decision 021, amendment)", async () => {
    const b = await create(binary(x.p1, `signed report ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], ref(b)), tok.gp);
    const patch = (token: string, ops: unknown) => send('PATCH', `Binary/${b.id}`, token, ops, { 'content-type': 'application/json-patch+json' });
    const forged = Buffer.from('forged').toString('base64');
    // the colleague reads it (same record, consent declared) and may not rewrite it; nor may its author
    expect((await get(`Binary/${b.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(200);
    for (const token of [tok.other, tok.gp]) {
      const put = await send('PUT', `Binary/${b.id}`, token, { ...binary(x.p1, 'forged'), id: b.id });
      expect(put.status).toBe(403);
      expect(put.body.issue[0].diagnostics).toContain('A stored Binary is not changed');
      expect((await patch(token, [{ op: 'replace', path: '/data', value: forged }])).status).toBe(403);
      // the same bytes are refused too: the rule is on what is written, not on whether it differs
      expect((await send('PUT', `Binary/${b.id}`, token, { ...binary(x.p1, `signed report ${RUN}`), id: b.id })).status).toBe(403);
      const fhirpath = {
        resourceType: 'Parameters',
        parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Binary.data' }, { name: 'value', valueBase64Binary: forged }] }],
      };
      expect((await send('PATCH', `Binary/${b.id}`, token, fhirpath)).status).toBe(403);
      const entry = { resource: { ...binary(x.p1, 'forged'), id: b.id }, request: { method: 'PUT', url: `Binary/${b.id}` } };
      const bundle = await send('POST', '', token, { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect(bundle.status).toBe(403);
      const batch = await send('POST', '', token, { resourceType: 'Bundle', type: 'batch', entry: [entry] });
      expect(batch.body.entry[0].response.status).toMatch(/^403/);
    }
    // the system that deposited a document's content does not rewrite it either
    const engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });
    const system = await mint(ref(engine), 'system/*.cruds');
    const deposited = await create(binary(x.p1, `lab result ${RUN}`), system);
    expect((await send('PUT', `Binary/${deposited.id}`, system, { ...binary(x.p1, 'forged'), id: deposited.id })).status).toBe(403);
    expect(Buffer.from((await get(`Binary/${deposited.id}`, t.token!, { accept: 'application/fhir+json' })).body.data, 'base64').toString()).toBe(`lab result ${RUN}`);
    // a hidden Binary (the masked document's content, for the nurse) answers as a free id does: the refusal of a create at a chosen id, telling nothing
    const hidden = await send('PUT', `Binary/${x.maskedBinary.id}`, tok.nurse, { ...binary(x.p1, 'forged'), id: x.maskedBinary.id });
    const freeId = crypto.randomUUID();
    const missing = await send('PUT', `Binary/${freeId}`, tok.nurse, { ...binary(x.p1, 'forged'), id: freeId });
    expect([hidden.status, missing.status]).toEqual([403, 403]);
    expect(hidden.body.issue[0].diagnostics.replace(x.maskedBinary.id, 'ID')).toBe(missing.body.issue[0].diagnostics.replace(freeId, 'ID'));
    // still named by its document: not deleted (decision 014)
    expect((await send('DELETE', `Binary/${b.id}`, tok.other)).status).toBe(409);
    const stored = await get(`Binary/${b.id}`, tok.gp, { accept: 'application/fhir+json' });
    expect(Buffer.from(stored.body.data, 'base64').toString()).toBe(`signed report ${RUN}`);
    expect(stored.body.meta.versionId).toBe('1');
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).body.meta.versionId).toBe('1');
  });
  it('a document names its content in every url form the server reads it by: hidden with it, not deleted while named (decision 008, amendment)', async () => {
    const mask = (docId: string) =>
      send('POST', `DocumentReference/${docId}/$meta-add`, tok.p1, {
        resourceType: 'Parameters',
        parameter: [{ name: 'meta', valueMeta: { security: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument', code: 'MASQUE_PS' }] } }],
      });
    for (const form of [(id: string) => `Binary/${id}/`, (id: string) => `Binary/${id}?x=1`, (id: string) => `Binary/${id}#f`, (id: string) => `Binary//${id}`, (id: string) => `Binary/./${id}`, (id: string) => `${t.base}/Binary/${id}/_history`]) {
      const content = await create(binary(x.p1, `form ${RUN}`), tok.gp);
      const doc = await create(document(x.p1, REPORT, ref(x.gp), [], form(content.id)), tok.gp);
      expect((await mask(doc.id)).status).toBe(200);
      const url = form(content.id);
      expect([url, (await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status]).toEqual([url, 404]);
      expect([url, (await get(`Binary/${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status]).toEqual([url, 200]);
      expect([url, (await send('DELETE', `Binary/${content.id}`, tok.gp)).status]).toEqual([url, 409]);
    }
  });
  it('a url naming a Binary with percent-escapes or a backslash, which the server reads otherwise, is refused on every write path whatever its host; other urls with escapes are not (decision 008, amendments)', async () => {
    const content = await create(binary(x.p1, `escaped ${RUN}`), tok.gp);
    const escaped = content.id.replace(/-/g, '%2D');
    expect(escaped).not.toBe(content.id);
    // what the rule would miss: the server answers the escaped spelling with the content
    expect((await get(`Binary/${escaped}`, tok.gp, { accept: 'application/fhir+json' })).status).toBe(200);
    const refused = (res: { status: number; body: Json }, what: string) => {
      expect([what, res.status]).toEqual([what, 422]);
      expect(JSON.stringify(res.body.issue)).toContain('URL characters only');
    };
    // the same server written otherwise (scheme and host in capitals, its address, a doubled slash), and any other host:
    // which hosts name this server is not knowable from inside it (decision 008, second amendment)
    const base = new URL(t.base);
    const spellings = [
      `${base.protocol.toUpperCase()}//${base.host.toUpperCase()}${base.pathname}`,
      `${base.protocol}//127.0.0.1:${base.port}${base.pathname}`,
      `${base.protocol}//${base.host}/${base.pathname}`,
      'https://elsewhere.example/fhir',
    ];
    // and a backslash, which the server reads as / (decision 008, third amendment)
    expect((await get(`Binary\\${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status).toBe(200);
    const urls = [
      `Binary/${escaped}`,
      `${t.base}/Binary/${escaped}`,
      `%42inary/${content.id}`,
      `Binary/${content.id}?x=%41`,
      `%2542inary/${content.id}`,
      ...spellings.map((s) => `${s}/Binary/${escaped}`),
      `Binary\\${content.id}`,
      `Binary/${content.id}\\`,
      `${t.base}/Binary\\${content.id}`,
    ];
    for (const url of urls) {
      const doc = () => document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], url);
      refused(await send('POST', 'DocumentReference', tok.gp, doc()), `create ${url}`);
      refused(await send('POST', 'DocumentReference', tok.gp, doc(), { 'if-none-exist': `_id=never-${crypto.randomUUID()}` }), `conditional create ${url}`);
      refused(await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: doc(), request: { method: 'POST', url: 'DocumentReference' } }] }), `transaction ${url}`);
      const batch = await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'batch', entry: [{ resource: doc(), request: { method: 'POST', url: 'DocumentReference' } }] });
      expect([url, batch.status, batch.body.entry?.[0]?.response?.status]).toEqual([url, 200, '422']);
    }
    const doc = await create(document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], ref(content)), tok.gp);
    // a stored document's content is not rewritten by PUT or PATCH (405, PDSm), whatever its url; a PUT at a new id creates
    const escapedContent = { ...doc, content: [{ attachment: { contentType: 'text/plain', url: `Binary/${escaped}` } }] };
    expect((await send('PUT', `DocumentReference/${doc.id}`, tok.gp, escapedContent)).status).toBe(405);
    expect((await send('PATCH', `DocumentReference/${doc.id}`, tok.gp, [{ op: 'replace', path: '/content/0/attachment/url', value: `Binary/${escaped}` }], { 'content-type': 'application/json-patch+json' })).status).toBe(405);
    const newId = `escaped-${crypto.randomUUID()}`;
    refused(await send('PUT', `DocumentReference/${newId}`, tok.gp, { ...escapedContent, id: newId }), 'create by PUT');
    expect((await get(`DocumentReference/${newId}`, tok.gp)).status).toBe(404);
    // the document and its content as they were: hidden from a colleague by the mask
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).body.meta.versionId).toBe('1');
    expect((await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(404);
    expect((await get(`Binary/${escaped}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(404);
    // a control character is no FHIR string at all (datatypes.html#string)
    const control = await send('POST', 'DocumentReference', tok.gp, document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], `Binary/${content.id}\u001f`));
    expect(control.status).toBe(400);
    expect(JSON.stringify(control.body.issue)).toContain('U+001F');
    // another server's url is its own business
    expect((await send('POST', 'DocumentReference', tok.gp, document(x.p1, REPORT, ref(x.gp), [], 'https://elsewhere.example/files/compte%20rendu.pdf'))).status).toBe(201);
  });
  it("a document's content is in its own record: a Binary of another record the writer reads is refused, one they do not read tells nothing (decision 029, amendment)", async () => {
    const elsewhere = await create(binary(x.minor, `minor's ${RUN}`), tok.gp);
    for (const url of [ref(elsewhere), `${t.base}/Binary/${elsewhere.id}/_history/1`, `Binary//${elsewhere.id}`]) {
      const direct = await send('POST', 'DocumentReference', tok.gp, document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], url));
      expect([url, direct.status]).toEqual([url, 422]);
      expect(JSON.stringify(direct.body.issue)).toContain('belongs to another record');
      const tx = await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: document(x.p1, REPORT, ref(x.gp), [], url), request: { method: 'POST', url: 'DocumentReference' } }] });
      expect([url, tx.status]).toEqual([url, 422]);
    }
    // the Binary written by the same transaction, before the document or after it (judged once every entry is written)
    for (const binaryFirst of [true, false]) {
      const urn = `urn:uuid:${crypto.randomUUID()}`;
      const entries = [
        { fullUrl: urn, resource: binary(x.minor, `minor's, in the same Bundle ${RUN}`), request: { method: 'POST', url: 'Binary' } },
        { resource: document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], urn), request: { method: 'POST', url: 'DocumentReference' } },
      ];
      const tx = await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: binaryFirst ? entries : entries.reverse() });
      expect([binaryFirst, tx.status]).toEqual([binaryFirst, 422]);
      expect(JSON.stringify(tx.body)).toContain('belongs to another record');
      // named on the document's entry, whenever the refusal is found
      expect([binaryFirst, tx.body.issue[0].expression]).toEqual([binaryFirst, [`Bundle.entry[${binaryFirst ? 1 : 0}].resource.content[0].attachment.url`]]);
      const same = [
        { fullUrl: urn, resource: binary(x.p1, `own, in the same Bundle ${RUN}`), request: { method: 'POST', url: 'Binary' } },
        { resource: document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], urn), request: { method: 'POST', url: 'DocumentReference' } },
      ];
      expect((await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: binaryFirst ? same : same.reverse() })).status).toBe(200);
    }
    // a colleague without the minor's record: the same answer as for a Binary that does not exist
    const unknown = await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), [], `Binary/never-${RUN}`));
    const hidden = await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), [], ref(elsewhere)));
    expect([unknown.status, hidden.status]).toEqual([201, 201]);
    // and it opens nothing: the content is read by its own record's readers only (a professional outside it is refused the record, 403)
    const status = async (token: string) => (await get(`Binary/${elsewhere.id}`, token, { accept: 'application/fhir+json' })).status;
    expect({ other: await status(tok.other), p1: await status(tok.p1), gp: await status(tok.gp) }).toEqual({ other: 403, p1: 404, gp: 200 });
    // the record's own content, as ever
    const own = await create(binary(x.p1, `own ${RUN}`), tok.gp);
    expect((await send('POST', 'DocumentReference', tok.gp, document(x.p1, REPORT, ref(x.gp), [], ref(own)))).status).toBe(201);
  });
  it("a Binary is the content of one document: a colleague cannot take it from the patient or its author by naming it again (decision 008, fourth amendment)", async () => {
    const content = await create(binary(x.p1, `one document's ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], ref(content)), tok.gp);
    const readers = async () => ({
      patient: (await get(`Binary/${content.id}`, tok.p1, { accept: 'application/fhir+json' })).status,
      author: (await get(`Binary/${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status,
      colleague: (await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status,
    });
    const before = await readers();
    expect(before).toEqual({ patient: 200, author: 200, colleague: 200 });
    for (const [label, url] of [['INVISIBLE_PATIENT', ref(content)], ['MASQUE_PS', `${t.base}/Binary/${content.id}/_history/1`], ['', `Binary//${content.id}`]]) {
      const again = await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), label ? [label] : [], url));
      expect([label, again.status]).toEqual([label, 422]);
      expect(JSON.stringify(again.body.issue)).toContain('the content of another document');
      const tx = await send('POST', '', tok.other, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: document(x.p1, REPORT, ref(x.other), label ? [label] : [], url), request: { method: 'POST', url: 'DocumentReference' } }] });
      expect([label, tx.status]).toEqual([label, 422]);
    }
    expect(await readers()).toEqual(before);
    // two new documents naming one new Binary in one transaction, the Binary's entry last
    const urn = `urn:uuid:${crypto.randomUUID()}`;
    const shared = await send('POST', '', tok.other, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: document(x.p1, REPORT, ref(x.other), [], urn), request: { method: 'POST', url: 'DocumentReference' } },
        { resource: document(x.p1, REPORT, ref(x.other), ['INVISIBLE_PATIENT'], urn), request: { method: 'POST', url: 'DocumentReference' } },
        { fullUrl: urn, resource: binary(x.p1, `shared ${RUN}`), request: { method: 'POST', url: 'Binary' } },
      ],
    });
    expect(shared.status).toBe(422);
    expect(JSON.stringify(shared.body.issue)).toContain('the content of another document');
    // the same when the colleague may not read it (the patient masked the document), and after the document's deletion
    expect((await send('POST', `DocumentReference/${doc.id}/$meta-add`, tok.p1, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code: 'MASQUE_PS' }] } }] })).status).toBe(200);
    expect((await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), ['INVISIBLE_PATIENT'], ref(content)))).status).toBe(422);
    expect((await send('DELETE', ref(doc), tok.gp)).status).toBe(200);
    expect((await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), ['INVISIBLE_PATIENT'], ref(content)))).status).toBe(422);
    expect({ patient: (await readers()).patient, author: (await readers()).author }).toEqual({ patient: 200, author: 200 });
  });

  it("the content of a deleted document stays hidden from those it was hidden from, whatever else names it; its author and the patient still read it", async () => {
    const content = await create(binary(x.p1, `deleted masked ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], ref(content)), tok.gp);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    expect((await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(404);
    // a document of one's own naming it is refused: it is the deleted document's content (decision 008, fourth amendment)
    const mine = await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), [], ref(content)));
    expect(mine.status).toBe(422);
    expect(JSON.stringify(mine.body.issue)).toContain('the content of another document');
    expect((await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(404);
    expect((await get(`Binary?_id=${content.id}`, tok.other)).body.total ?? (await get(`Binary?_id=${content.id}`, tok.other)).body.entry?.length ?? 0).toBe(0);
    expect((await get(`Binary/${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status).toBe(200);
    expect((await get(`Binary/${content.id}`, tok.p1, { accept: 'application/fhir+json' })).status).toBe(200);
  });
  it('a deleted Binary is not written again at its id, by anyone of the policy (decision 021, amendment)', async () => {
    const b = await create(binary(x.p1, `first ${RUN}`), tok.gp);
    // nothing names it yet: a colleague may delete it, not put other bytes in its place
    expect((await send('DELETE', `Binary/${b.id}`, tok.other)).status).toBe(200);
    for (const token of [tok.other, tok.gp, tok.p1]) {
      const again = await send('PUT', `Binary/${b.id}`, token, { ...binary(x.p1, 'forged'), id: b.id });
      expect(again.status).toBe(403);
      const raw = await http(t.base, `Binary/${b.id}`, { method: 'PUT', body: 'forged', headers: { ...as(token), 'content-type': 'text/plain', 'x-security-context': ref(x.p1) } });
      expect(raw.status).toBe(403);
      const entry = { resource: { ...binary(x.p1, 'forged'), id: b.id }, request: { method: 'PUT', url: `Binary/${b.id}` } };
      expect((await send('POST', '', token, { resourceType: 'Bundle', type: 'transaction', entry: [entry] })).status).toBe(403);
    }
    expect((await get(`Binary/${b.id}`, t.token!, { accept: 'application/fhir+json' })).status).toBe(410);
  });
  it("a document of one's own naming hidden content is refused, and nothing opens it (decision 008, amendments)", async () => {
    // the colleague reads the content, then the patient masks its document
    const content = await create(binary(x.p1, `to be masked ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], ref(content)), tok.gp);
    expect((await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(200);
    const masked = await send('POST', `DocumentReference/${doc.id}/$meta-add`, tok.p1, {
      resourceType: 'Parameters',
      parameter: [{ name: 'meta', valueMeta: { security: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument', code: 'MASQUE_PS' }] } }],
    });
    expect(masked.status).toBe(200);
    expect((await get(`Binary/${content.id}`, tok.other, { accept: 'application/fhir+json' })).status).toBe(404);
    for (const url of [ref(content), `${t.base}/${ref(content)}`, `${ref(content)}/_history/1`]) {
      // refused at write since the fourth amendment (another document's content); the reads below hold either way
      const mine = await send('POST', 'DocumentReference', tok.other, document(x.p1, REPORT, ref(x.other), [], url));
      expect(mine.status).toBe(422);
      const paths = [
        `Binary/${content.id}`,
        `Binary?_id=${content.id}`,
        `Binary/${content.id}/_history/1`,
        `Binary/${content.id}/_history`,
        `Binary/_history?_count=500`,
        `DocumentReference?patient=${x.p1.id}&_include=*&_count=1000`,
        `Patient/${x.p1.id}/$everything?_count=1000`,
        `Patient/${x.p1.id}/$everything?_type=Binary&_count=1000`,
      ];
      for (const path of paths) {
        const res = await get(path, tok.other, { accept: 'application/fhir+json' });
        // neither its bytes nor the Binary itself (its own document, which names it, may come back)
        expect([url, path, res.text.includes(Buffer.from(`to be masked ${RUN}`).toString('base64')), returned(res).includes(ref(content))]).toEqual([url, path, false, false]);
      }
      // counted nowhere, in no Bundle entry, matched by no condition
      expect((await get(`Binary?_id=${content.id}&_summary=count`, tok.other)).body.total).toBe(0);
      const batch = await send('POST', '', tok.other, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Binary/${content.id}` } }, { request: { method: 'GET', url: `Binary?_id=${content.id}` } }] });
      expect(batch.body.entry[0].response.status).toMatch(/^404/);
      expect(batch.body.entry[1].resource.total ?? batch.body.entry[1].resource.entry?.length ?? 0).toBe(0);
      expect((await send('DELETE', `Binary?_id=${content.id}`, tok.other)).status).toBe(204);
      expect((await get(`Binary/${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status).toBe(200);
    }
    // the author and the patient still read it
    expect((await get(`Binary/${content.id}`, tok.gp, { accept: 'application/fhir+json' })).status).toBe(200);
    expect((await get(`Binary/${content.id}`, tok.p1, { accept: 'application/fhir+json' })).status).toBe(200);
    // the nurse's own report naming a psychiatric document's content (a class her profession does not read)
    const psychContent = await create(binary(x.p1, `psychiatric ${RUN}`), tok.gp);
    await create(document(x.p1, PSYCH, ref(x.gp), [], ref(psychContent)), tok.gp);
    expect((await send('POST', 'DocumentReference', tok.nurse, document(x.p1, REPORT, ref(x.nurse), [], ref(psychContent)))).status).toBe(422);
    expect((await get(`Binary/${psychContent.id}`, tok.nurse, { accept: 'application/fhir+json' })).status).toBe(404);
    // the patient's own document naming content awaiting its announcement
    const unannounced = await create(binary(x.p1, `unannounced ${RUN}`), tok.gp);
    await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT'], ref(unannounced)), tok.gp);
    expect((await send('POST', 'DocumentReference', tok.p1, document(x.p1, PATIENT_DOC, ref(x.p1), [], ref(unannounced)))).status).toBe(422);
    expect((await get(`Binary/${unannounced.id}`, tok.p1, { accept: 'application/fhir+json' })).status).toBe(404);
  });
  it("the author deletes their document and its content in one transaction; the test client still updates a Binary (FHIR update)", async () => {
    const b = await create(binary(x.p1, `to remove ${RUN}`), tok.gp);
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], ref(b)), tok.gp);
    const both = await send('POST', '', tok.gp, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'DELETE', url: `Binary/${b.id}` } }, { request: { method: 'DELETE', url: `DocumentReference/${doc.id}` } }],
    });
    expect(both.status).toBe(200);
    expect((await get(`Binary/${b.id}`, t.token!, { accept: 'application/fhir+json' })).status).toBe(410);
    // _cascade=delete from the content reaches its document: the author's alone
    const c = await create(binary(x.p1, `cascade ${RUN}`), tok.gp);
    const cdoc = await create(document(x.p1, REPORT, ref(x.gp), [], `${t.base}/Binary/${c.id}`), tok.gp);
    expect((await send('DELETE', `Binary/${c.id}?_cascade=delete`, tok.other)).status).toBe(403);
    expect((await get(`DocumentReference/${cdoc.id}`, tok.gp)).status).toBe(200);
    expect((await send('DELETE', `Binary/${c.id}`, tok.gp)).status).toBe(409);
    expect((await send('DELETE', `Binary/${c.id}?_cascade=delete`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference/${cdoc.id}`, tok.gp)).status).toBe(410);
    const free = await create(binary(x.p1, `draft ${RUN}`));
    const updated = await send('PUT', `Binary/${free.id}`, t.token!, { ...binary(x.p1, 'second draft'), id: free.id });
    expect(updated.status).toBe(200);
  });
  it('only the author deletes a document, and the author may', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.other)).status).toBe(403);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    // gone, or not known: a deleted document has no type left for the matrix to let through
    expect([404, 410]).toContain((await get(`DocumentReference/${doc.id}`, tok.gp)).status);
    expect((await get(`DocumentReference/${doc.id}`, t.token!)).status).toBe(410);
  });
  it('only the author sets or removes the invisibility labels: another professional cannot reveal a document to the patient', async () => {
    const unannounced = await get(`DocumentReference/${x.unannounced.id}`, tok.nurse);
    expect(unannounced.status).toBe(200);
    const { meta: _meta, ...rest } = unannounced.body;
    expect((await send('PUT', `DocumentReference/${x.unannounced.id}`, tok.nurse, rest)).status).toBe(403);
    expect((await get(`DocumentReference/${x.unannounced.id}`, tok.p1)).status).toBe(404);
  });
  it('only the patient sets or removes the mask: the treating physician cannot unmask by rewriting the document', async () => {
    const designation = await create(consent(x.p1, ref(x.p1), { type: 'permit', actor: [pcp(ref(x.gp))] }), tok.p1);
    try {
      const masked = await get(`DocumentReference/${x.masked.id}`, tok.gp);
      expect(masked.status).toBe(200);
      const { meta: _meta, ...rest } = masked.body;
      const res = await send('PUT', `DocumentReference/${x.masked.id}`, tok.gp, rest);
      expect(res.status).toBe(403);
    } finally {
      await send('DELETE', `Consent/${designation.id}`, tok.p1);
    }
    expect((await get(`DocumentReference/${x.masked.id}`, tok.nurse)).status).toBe(404);
  });
});

describe('_list and chains read the List only as the caller may', () => {
  it('a List in a record closed to the caller does not select its members', async () => {
    const list = await create({ resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) }, entry: [{ item: { reference: ref(x.gp) } }] }, tok.gp);
    expect(returned(await get(`Practitioner?_list=${list.id}`, tok.gp))).toEqual([ref(x.gp)]);
    expect(returned(await get(`Practitioner?_list=${list.id}`, tok.p2))).toEqual([]);
    expect(returned(await get(`Practitioner?_list=${list.id}`, tok.admin))).toEqual([]);
  });
});

describe('administrators and legal representatives reach nothing hidden through any path', () => {
  it('an administrator gets no clinical content through _revinclude, _include:iterate, _has or system history', async () => {
    for (const path of [
      `Patient?_id=${x.p1.id}&_revinclude=*`,
      `Patient?_id=${x.p1.id}&_revinclude=DocumentReference:subject&_revinclude=Consent:patient`,
      `Practitioner?_id=${x.gp.id}&_revinclude=*&_include:iterate=*`,
      `_history?_count=500`,
      `Patient/${x.p1.id}/$everything?_type=DocumentReference,Consent,Binary`,
    ]) {
      const res = await get(path, tok.admin);
      expect([path, res.status < 500]).toEqual([path, true]);
      const clinical = returned(res).filter((r) => /^(DocumentReference|Binary|List|Communication|Consent)\//.test(r));
      expect([path, clinical]).toEqual([path, []]);
    }
    expect(returned(await get(`Patient?_has:DocumentReference:subject:type=${PSYCH.code}`, tok.admin))).toEqual([]);
  });
  it("a legal representative never reaches the minor's protected document", async () => {
    for (const path of [
      `Patient/${x.minor.id}/$everything?_count=200`,
      `Patient?_id=${x.minor.id}&_revinclude=*`,
      `DocumentReference/_history?_count=200`,
      `Patient/${x.minor.id}/*?_count=200`,
      `DocumentReference?_id=${x.minorSecret.id}`,
      `DocumentReference/${x.minorSecret.id}/_history/1`,
    ]) {
      const res = await get(path, tok.parent);
      expect([path, returned(res).includes(ref(x.minorSecret))]).toEqual([path, false]);
    }
    expect(returned(await get(`Patient?_has:DocumentReference:subject:_security=INVISIBLE_REPRESENTANTS_LEGAUX`, tok.parent))).toEqual([]);
  });
});

describe('a token names an actor of this server, acting now', () => {
  const unsigned = (claims: Json) => {
    const b64 = (o: Json) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'x', aud: 'y', iat: now, exp: now + 300, ...claims })}.`;
  };
  it.each([
    ['alg none', async () => unsigned({ sub: 's', fhirUser: ref(x.gp), scope: 'user/*.cruds' })],
    ['a fhirUser that is an absolute URL of another server', () => mint(`https://other.example/fhir/${ref(x.gp)}`)],
    ['a fhirUser that is not an actor type', () => mint(`Organization/${x.org.id}`)],
    ['a deleted practitioner', () => mint(ref(x.deletedPractitioner))],
    ['a practitioner_role of another practitioner', () => mint(ref(x.nurse), 'user/*.cruds', { practitioner_role: x.gpRole.id })],
    ['an inactive practitioner_role', () => mint(ref(x.gp), 'user/*.cruds', { practitioner_role: x.inactiveRole.id })],
    ['a practitioner_role whose period has ended', () => mint(ref(x.gp), 'user/*.cruds', { practitioner_role: x.pastRole.id })],
    ['a deleted patient', () => mint(ref(x.deletedPatient), 'patient/*.cruds')],
  ])('refuses %s with 401', async (_n, token) => {
    const res = await get(`Practitioner/${x.gp.id}`, await token());
    expect(res.status).toBe(401);
  });
  it('a practitioner whose only role has ended reads no document', async () => {
    const res = await get(`DocumentReference?patient=${x.p1.id}`, tok.retiring);
    expect(res.status).toBe(200);
    expect(returned(res)).toEqual([]);
  });
});

describe('pages, includes and batches leave hidden rows out', () => {
  it("a page link is the caller's own: another caller cannot follow it", async () => {
    const first = await get(`DocumentReference?patient=${x.p1.id}&_count=1`, tok.gp);
    const next = first.body.link.find((l: Json) => l.relation === 'next').url as string;
    const path = next.slice(t.base.length + 1);
    expect((await get(path, tok.gp)).status).toBe(200);
    const replay = await get(path, tok.nurse);
    expect(replay.status).toBe(400);
    expect(returned(replay)).toEqual([]);
  });
  it('a List in the record pointing at hidden documents includes none of them, even with :iterate and *', async () => {
    // a professional cannot reference what they cannot read, and learns no more than of a missing one (docs/decisions/014-integrity.md)
    const listOf = (r: string) => ({ resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) }, entry: [{ item: { reference: r } }] });
    const hidden422 = await send('POST', 'List', tok.gp, listOf(ref(x.masked)));
    const missing422 = await send('POST', 'List', tok.gp, listOf('DocumentReference/never-there'));
    expect([hidden422.status, missing422.status]).toEqual([422, 422]);
    expect(hidden422.body.issue[0].diagnostics.replaceAll(ref(x.masked), 'X')).toBe(missing422.body.issue[0].diagnostics.replaceAll('DocumentReference/never-there', 'X'));
    // so the List is written by the unrestricted client
    const list = await create({ resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) }, entry: [ref(x.report), ref(x.psych), ref(x.masked)].map((r) => ({ item: { reference: r } })) });
    const hidden = [ref(x.psych), ref(x.masked), ref(x.maskedBinary)];
    for (const path of [
      `List?_id=${list.id}&_include=List:item`,
      `List?_id=${list.id}&_include=*&_include:iterate=*`,
      `List?_id=${list.id}&_include:iterate=List:item&_include:iterate=DocumentReference:relatesto`,
      `DocumentReference?_list=${list.id}`,
      `DocumentReference?_id=${x.report.id}&_revinclude=List:item&_include:iterate=List:item`,
      `Patient?_id=${x.p1.id}&_revinclude=*&_include:iterate=*`,
    ]) {
      const res = await get(path, tok.nurse);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, returned(res).filter((r) => hidden.includes(r))]).toEqual([path, []]);
    }
    // the author of the masked document does get it through the same path (the probe can reach it)
    expect(returned(await get(`List?_id=${list.id}&_include=List:item`, tok.other))).toContain(ref(x.masked));
  });
  it('batch entries reach no hidden Binary, whatever the URL form', async () => {
    const res = await send('POST', '', tok.nurse, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [`Binary/${x.maskedBinary.id}`, `${t.base}/Binary/${x.maskedBinary.id}`, `Binary?_id=${x.maskedBinary.id}`, `Binary/${x.maskedBinary.id}/_history/1`].map((url) => ({ request: { method: 'GET', url } })),
    });
    expect(res.status).toBe(200);
    expect(returned(res)).not.toContain(ref(x.maskedBinary));
    expect(res.text).not.toContain(Buffer.from(`masked ${RUN}`).toString('base64'));
  });
  it('counts do not count hidden rows, whatever way they are asked', async () => {
    for (const [countPath, listPath] of [
      [`DocumentReference?patient=${x.p1.id}&_summary=count`, `DocumentReference?patient=${x.p1.id}&_count=500`],
      [`DocumentReference?patient=${x.p1.id}&_count=0`, `DocumentReference?patient=${x.p1.id}&_count=500`],
      [`Patient/${x.p1.id}/DocumentReference?_summary=count`, `Patient/${x.p1.id}/DocumentReference?_count=500`],
      [`Patient/${x.p1.id}/*?_summary=count`, `Patient/${x.p1.id}/*?_count=500`],
      [`DocumentReference/_history?_count=0`, `DocumentReference/_history?_count=500`],
    ]) {
      const counted = (await get(countPath, tok.nurse)).body.total;
      const listed = (await get(listPath, tok.nurse)).body.entry ?? [];
      expect([countPath, counted]).toEqual([countPath, listed.length]);
      expect([countPath, counted < (await get(countPath, tok.other)).body.total]).toEqual([countPath, true]);
    }
  });
});

describe('systems deposit, and read no clinical content through any path', () => {
  it('an integration engine reaches no document, Consent or Binary by search, include, $everything or history, and cannot overwrite one', async () => {
    const engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });
    const token = await mint(ref(engine), 'system/*.cruds');
    expect((await get(`DocumentReference?patient=${x.p1.id}`, token)).status).toBe(403);
    for (const path of [`Patient?_id=${x.p1.id}&_revinclude=*&_include:iterate=*`, `Patient/${x.p1.id}/$everything`, `_history?_count=500`, `Practitioner?_id=${x.gp.id}&_revinclude=*`]) {
      const res = await get(path, token);
      const clinical = returned(res).filter((r) => /^(DocumentReference|Binary|List|Consent|Communication)\//.test(r));
      expect([path, res.status < 500, clinical]).toEqual([path, true, []]);
    }
    expect((await get(`DocumentReference/${x.report.id}`, token)).status).toBe(404);
    const overwrite = await send('PUT', `DocumentReference/${x.report.id}`, token, { ...document(x.p1, REPORT, ref(x.org)), id: x.report.id });
    expect(overwrite.status).toBe(403);
    expect((await get(`DocumentReference/${x.report.id}`, tok.gp)).body.author[0].reference).toBe(ref(x.gp));
  });
});

describe('break-glass applies to one named record', () => {
  it('is refused on a search naming no patient and on a batch, and opens nothing else', async () => {
    const doctor = await create({ resourceType: 'Practitioner', name: [{ family: `Urgences-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(doctor) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const token = await mint(ref(doctor));
    const glass = { 'x-break-glass': 'patient unconscious' };
    expect((await get(`DocumentReference?description=doc%20${RUN}`, token, glass)).status).toBe(400);
    const batch = await http(t.base, '', { method: 'POST', headers: { ...as(token), ...glass }, json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `DocumentReference?patient=${x.p1.id}` } }] } });
    expect(batch.status).toBe(400);
    // opening p2 does not open p1 in the same request
    const res = await get(`DocumentReference?patient=${x.p2.id}&_revinclude=Consent:patient`, token, glass);
    expect(res.status).toBe(200);
    expect(returned(res).filter((r) => [ref(x.report), ref(x.psych)].includes(r))).toEqual([]);
    expect((await get(`DocumentReference/${x.report.id}`, token, glass)).status).toBe(200);
    expect((await get(`DocumentReference/${x.report.id}`, token)).status).toBe(403);
  });
});
