import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { A03, A07, as, consent, document, G15, ircp, Json, LOINC, MHD_LIST_TYPES, minimalProvideBundle, PATIENT_DOC, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * One refusal per record, whatever the interaction (docs/decisions/031-refusal-consistency.md):
 * a professional without the right to a record gets, for every request addressing one of its
 * resources (read, vread, history, PUT, PATCH, DELETE, their conditional forms, the same as
 * Bundle entries), the 403 a read gets, with the same OperationOutcome, and nothing is
 * written; the refusal comes before anything the payload could make the server say.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const INS = 'urn:oid:1.2.250.1.213.1.4.8';
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const body = (r: Json) => (({ meta: _meta, ...rest }) => rest)(r);
let serial = 0;
const uniqueId = () => `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.7${++serial}`;

beforeAll(async () => {
  const practitioner = async (name: string) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
    await create({
      resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) },
      code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }],
    });
    return p;
  };
  x.gp = await practitioner('Traitant');
  x.stranger = await practitioner('Etranger');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, INS, freshNir()));
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  for (const patient of [x.p1, x.national]) await create(consent(patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.doc = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `doc ${RUN}`), tok.gp);
  x.obs = await create({ resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: ref(x.p1) }, valueString: `obs ${RUN}` }, tok.gp);
  expect((await get(ref(x.doc), tok.stranger)).status).toBe(403);
});

/** The stored versions of a resource, as the unrestricted client reads them. */
const versionOf = async (r: Json) => (await get(ref(r), t.token)).body.meta.versionId;
const jsonPatch = (path: string, json: unknown, token: string, headers: Record<string, string> = {}) =>
  http(t.base, path, { method: 'PATCH', body: JSON.stringify(json), headers: { ...as(token), 'content-type': 'application/json-patch+json', ...headers } });
const outcome = (res: { status: number; body: any }) => ({ status: res.status, issue: res.body?.issue });
/** A transaction entry's error as a lone request's: without the `Bundle.entry[n]: ` its diagnostics start with. */
const unprefixed = (o: Json | undefined) => o?.issue?.map((i: Json) => ({ ...i, diagnostics: String(i.diagnostics).replace(/^Bundle\.entry\[\d+\]: /, '') }));

describe('a professional without the right to a record gets the read\'s refusal from every interaction on its resources', () => {
  it('PUT, PATCH, DELETE (with and without If-Match), vread and history answer the read\'s 403 and write nothing', async () => {
    for (const r of [x.doc, x.obs]) {
      const read = outcome(await get(ref(r), tok.stranger));
      expect(read.status).toBe(403);
      expect(JSON.stringify(read)).not.toContain(x.p1.id);
      const changed = r.resourceType === 'DocumentReference' ? { ...body(r), status: 'superseded' } : { ...body(r), valueString: 'changed' };
      const path = r.resourceType === 'DocumentReference' ? '/status' : '/valueString';
      const answers: Record<string, Json> = {
        vread: outcome(await get(`${ref(r)}/_history/1`, tok.stranger)),
        history: outcome(await get(`${ref(r)}/_history`, tok.stranger)),
        'HEAD': { status: (await http(t.base, ref(r), { method: 'HEAD', headers: as(tok.stranger) })).status, issue: read.issue },
        PUT: outcome(await send('PUT', ref(r), tok.stranger, changed)),
        'PUT If-Match W/"1"': outcome(await send('PUT', ref(r), tok.stranger, changed, { 'if-match': 'W/"1"' })),
        'PUT If-Match W/"7"': outcome(await send('PUT', ref(r), tok.stranger, changed, { 'if-match': 'W/"7"' })),
        'PUT of an invalid body': outcome(await send('PUT', ref(r), tok.stranger, { ...changed, status: 42 })),
        PATCH: outcome(await jsonPatch(ref(r), [{ op: 'replace', path, value: 'superseded' }], tok.stranger)),
        'PATCH If-Match W/"7"': outcome(await jsonPatch(ref(r), [{ op: 'replace', path, value: 'superseded' }], tok.stranger, { 'if-match': 'W/"7"' })),
        'PATCH failing': outcome(await jsonPatch(ref(r), [{ op: 'test', path, value: 'not this' }], tok.stranger)),
        DELETE: outcome(await send('DELETE', ref(r), tok.stranger)),
        'DELETE If-Match W/"1"': outcome(await send('DELETE', ref(r), tok.stranger, undefined, { 'if-match': 'W/"1"' })),
        'DELETE If-Match W/"7"': outcome(await send('DELETE', ref(r), tok.stranger, undefined, { 'if-match': 'W/"7"' })),
      };
      for (const [what, answer] of Object.entries(answers)) expect([ref(r), what, answer]).toEqual([ref(r), what, read]);
      expect(await versionOf(r)).toBe('1');
    }
  });

  it('conditional PUT, PATCH and DELETE naming the patient answer as a search naming them does, and write nothing', async () => {
    const search = outcome(await get(`DocumentReference?patient=${x.p1.id}`, tok.stranger));
    expect(search.status).toBe(403);
    const criteria = `DocumentReference?patient=${x.p1.id}&_id=${x.doc.id}`;
    const answers: Record<string, Json> = {
      PUT: outcome(await send('PUT', criteria, tok.stranger, { ...body(x.doc), status: 'superseded' })),
      PATCH: outcome(await jsonPatch(criteria, [{ op: 'replace', path: '/status', value: 'superseded' }], tok.stranger)),
      DELETE: outcome(await send('DELETE', criteria, tok.stranger)),
      'PUT by subject': outcome(await send('PUT', `DocumentReference?subject=${ref(x.p1)}&_id=${x.doc.id}`, tok.stranger, { ...body(x.doc), status: 'superseded' })),
    };
    for (const [what, answer] of Object.entries(answers)) expect([what, answer]).toEqual([what, { status: 403, issue: what === 'PUT by subject' ? answer.issue : search.issue }]);
    expect(await versionOf(x.doc)).toBe('1');
  });

  it('transaction and batch entries answer as the lone request, and write nothing', async () => {
    const read = outcome(await get(ref(x.doc), tok.stranger));
    const patchBinary = { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify([{ op: 'replace', path: '/status', value: 'superseded' }])).toString('base64') };
    const entries: [string, Json][] = [
      ['GET', { request: { method: 'GET', url: ref(x.doc) } }],
      ['GET _history', { request: { method: 'GET', url: `${ref(x.doc)}/_history` } }],
      ['PUT', { request: { method: 'PUT', url: ref(x.doc) }, resource: { ...body(x.doc), status: 'superseded' } }],
      ['PATCH', { request: { method: 'PATCH', url: ref(x.doc) }, resource: patchBinary }],
      ['DELETE', { request: { method: 'DELETE', url: ref(x.doc) } }],
      ['DELETE If-Match', { request: { method: 'DELETE', url: ref(x.doc), ifMatch: 'W/"7"' } }],
    ];
    for (const [what, entry] of entries) {
      const batch = await send('POST', '', tok.stranger, { resourceType: 'Bundle', type: 'batch', entry: [entry] });
      expect([what, batch.status]).toEqual([what, 200]);
      const answer = batch.body.entry[0].response;
      expect([what, 'batch', { status: Number(answer.status.split(' ')[0]), issue: answer.outcome.issue }]).toEqual([what, 'batch', read]);
      const transaction = await send('POST', '', tok.stranger, { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect([what, 'transaction', { status: transaction.status, issue: unprefixed(transaction.body) }]).toEqual([what, 'transaction', read]);
    }
    expect(await versionOf(x.doc)).toBe('1');
  });
});

describe('an ITI-65 submission from a professional without the right to the record', () => {
  const provide = (patient: Json, o: { subject?: string; hash?: string } = {}) =>
    minimalProvideBundle({ subject: o.subject ?? ref(patient), author: ref(x.gp), uniqueId, text: `contenu ${RUN} ${++serial}`, hash: o.hash });
  /** An answer with the patient's id taken out, to compare a national record's with another's. */
  const about = (res: { status: number; text: string }, patient: Json) => ({ status: res.status, text: res.text.split(patient.id).join('ID') });

  it('is refused with the record\'s 403 before any content check: whether the Patient has an INS does not show', async () => {
    const refusals = [
      ['national, no PDSm metadata', about(await send('POST', '', tok.stranger, provide(x.national)), x.national)],
      ['plain record', about(await send('POST', '', tok.stranger, provide(x.p1)), x.p1)],
      ['national, wrong hash', about(await send('POST', '', tok.stranger, provide(x.national, { hash: Buffer.alloc(20).toString('base64') })), x.national)],
      ['national, version-specific subject', about(await send('POST', '', tok.stranger, provide(x.national, { subject: `${ref(x.national)}/_history/1` })), x.national)],
      ['national, absolute subject', about(await send('POST', '', tok.stranger, provide(x.national, { subject: `${t.base}/${ref(x.national)}` })), x.national)],
    ] as const;
    for (const [what, res] of refusals) {
      expect([what, res.status]).toEqual([what, 403]);
      expect([what, res.text]).toEqual([what, refusals[1][1].text]);
      // nothing of the PDSm checks (profiles, XDS codes): the record's refusal and its code only
      expect(res.text).not.toMatch(/XDS|PDSm|StructureDefinition|dmp-(submission|document|folder)/);
      expect(JSON.parse(res.text).issue[0].details.coding[0].code).toBe('NO_CONSENT');
    }
    // the one with access is held to PDSm for the national record, and is not for the other
    expect((await send('POST', '', tok.gp, provide(x.national))).status).toBe(422);
    expect((await send('POST', '', tok.gp, provide(x.p1))).status).toBe(200);
    expect((await get(`List?patient=${x.national.id}&_summary=count`, t.token)).body.total).toBe(0);
  });

  it('a version-specific subject with its content as a Binary of the Bundle is stored in the record', async () => {
    const res = await send('POST', '', tok.gp, provide(x.p1, { subject: `${ref(x.p1)}/_history/1` }));
    expect([res.status, res.body.issue]).toEqual([200, undefined]);
    const binary = res.body.entry[2].response.location.replace(/\/_history\/.*$/, '');
    // the Binary follows its document's record: the patient reads it, a stranger is refused as for the record
    expect((await get(binary, tok.p1, { accept: 'text/plain' })).status).toBe(200);
    expect((await get(binary, tok.stranger, { accept: 'text/plain' })).status).toBe(403);
  });
});

describe('a PUT of a stored document that changes what only a replacement may change', () => {
  it('answers 405 whatever else is wrong with the body, as its PATCH does', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `put ${RUN}`), tok.gp);
    // (an author the write rules allow: a change they refuse is their 403 first, decision 031 amendment)
    const put = await send('PUT', ref(doc), tok.gp, { ...body(doc), status: 'not-a-status', description: 'rewritten' });
    const patch = await jsonPatch(ref(doc), [{ op: 'replace', path: '/status', value: 'not-a-status' }, { op: 'replace', path: '/description', value: 'rewritten' }], tok.gp);
    expect([put.status, patch.status]).toEqual([405, 405]);
    expect(put.body.issue[0].diagnostics).toContain('DocumentReference.description');
    // a body that changes only what a PUT may change and is invalid is still refused as invalid
    expect((await send('PUT', ref(doc), tok.gp, { ...body(doc), status: 'not-a-status' })).status).toBe(422);
    expect(await versionOf(doc)).toBe('1');
  });
});

describe('a search parameter names the patient only when its value is the patient', () => {
  it(':missing does not confine a search to a record named "true" or "false"', async () => {
    const ids = async (path: string) => ((await get(path, tok.gp)).body.entry ?? []).map((e: Json) => e.resource.id);
    expect(await ids(`DocumentReference?patient:missing=false&description=doc%20${RUN}`)).toEqual([x.doc.id]);
    expect(await ids(`DocumentReference?subject:missing=false&description=doc%20${RUN}`)).toEqual([x.doc.id]);
    expect(await ids(`Observation?patient:missing=false&value-string=obs%20${RUN}`)).toEqual([x.obs.id]);
    // and the professional without consent is refused when a value names the record with the Patient type
    const named = outcome(await get(`DocumentReference?subject:Patient=${x.p1.id}`, tok.stranger));
    expect(named).toEqual(outcome(await get(`DocumentReference?subject=${ref(x.p1)}`, tok.stranger)));
    expect(named.status).toBe(403);
    // so does a version-specific reference to the patient, relative or absolute
    expect(outcome(await get(`DocumentReference?patient=${ref(x.p1)}/_history/1`, tok.stranger))).toEqual(named);
    expect(outcome(await get(`DocumentReference?subject=${encodeURIComponent(`${t.base}/${ref(x.p1)}/_history/1`)}`, tok.stranger))).toEqual(named);
    expect(outcome(await get(`DocumentReference?patient=${x.p1.id}/_history/1`, tok.stranger))).toEqual(named);
    expect(outcome(await get(`DocumentReference?subject:Patient=${x.p1.id}/_history/1`, tok.stranger))).toEqual(named);
  });

  it('a batch search entry and a POST _search naming the patient answer as the lone search', async () => {
    const lone = outcome(await get(`DocumentReference?patient=${x.p1.id}`, tok.stranger));
    const posted = await http(t.base, 'DocumentReference/_search', { method: 'POST', body: `patient=${x.p1.id}`, headers: { ...as(tok.stranger), 'content-type': 'application/x-www-form-urlencoded' } });
    expect(outcome(posted)).toEqual(lone);
    const batch = await send('POST', '', tok.stranger, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `DocumentReference?patient=${x.p1.id}` } }] });
    const answer = batch.body.entry[0].response;
    expect({ status: Number(answer.status.split(' ')[0]), issue: answer.outcome.issue }).toEqual(lone);
  });
});

describe('other paths to a record closed to the caller', () => {
  it('every request naming the Patient answers the refusal its read gets', async () => {
    const read = outcome(await get(ref(x.p1), tok.stranger));
    expect(read.status).toBe(403);
    const { meta: _meta, ...patient } = x.p1;
    const answers: Record<string, Json> = {
      history: outcome(await get(`${ref(x.p1)}/_history`, tok.stranger)),
      vread: outcome(await get(`${ref(x.p1)}/_history/1`, tok.stranger)),
      $everything: outcome(await get(`${ref(x.p1)}/$everything`, tok.stranger)),
      'compartment search': outcome(await get(`${ref(x.p1)}/DocumentReference`, tok.stranger)),
      'compartment search, every type': outcome(await get(`${ref(x.p1)}/*`, tok.stranger)),
      PUT: outcome(await send('PUT', ref(x.p1), tok.stranger, { ...patient, gender: 'other' })),
      PATCH: outcome(await jsonPatch(ref(x.p1), [{ op: 'add', path: '/gender', value: 'other' }], tok.stranger)),
      DELETE: outcome(await send('DELETE', ref(x.p1), tok.stranger)),
      '$mask-all': outcome(await send('POST', `${ref(x.p1)}/$mask-all`, tok.stranger, { resourceType: 'Parameters' })),
      'search by _id': outcome(await get(`Patient?_id=${x.p1.id}`, tok.stranger)),
    };
    for (const [what, answer] of Object.entries(answers)) expect([what, answer]).toEqual([what, read]);
    expect(await versionOf(x.p1)).toBe('1');
  });

  it('every operation on one of its resources answers the read\'s refusal', async () => {
    const read = outcome(await get(ref(x.doc), tok.stranger));
    const meta = { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:probe', code: RUN }] } }] };
    expect(x.doc.content[0].attachment.url).toMatch(/^Binary\//);
    const answers: Record<string, Json> = {
      $meta: outcome(await get(`${ref(x.doc)}/$meta`, tok.stranger)),
      '$meta-add': outcome(await send('POST', `${ref(x.doc)}/$meta-add`, tok.stranger, meta)),
      '$meta-delete': outcome(await send('POST', `${ref(x.doc)}/$meta-delete`, tok.stranger, meta)),
      $validate: outcome(await send('POST', `${ref(x.doc)}/$validate`, tok.stranger, { resourceType: 'Parameters' })),
      '$validate mode=delete': outcome(await send('POST', `${ref(x.doc)}/$validate?mode=delete`, tok.stranger, { resourceType: 'Parameters' })),
      // the document's content, published inline and stored as a Binary of its record
      Binary: outcome(await get(x.doc.content[0].attachment.url, tok.stranger)),
      'Binary DELETE': outcome(await send('DELETE', x.doc.content[0].attachment.url, tok.stranger)),
    };
    for (const [what, answer] of Object.entries(answers)) expect([what, answer]).toEqual([what, read]);
    expect(await versionOf(x.doc)).toBe('1');
  });

  it('a conditional create whose criteria match a resource of that record creates nothing there', async () => {
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: ref(x.p1) }, valueString: `new ${RUN}` };
    const onHidden = await send('POST', 'Observation', tok.stranger, obs, { 'if-none-exist': `_id=${x.obs.id}` });
    const onMissing = await send('POST', 'Observation', tok.stranger, obs, { 'if-none-exist': `_id=${crypto.randomUUID()}` });
    expect(outcome(onHidden)).toEqual(outcome(onMissing));
    expect(onHidden.status).toBe(403);
    expect((await get(`Observation?patient=${x.p1.id}&value-string=new%20${RUN}&_summary=count`, t.token)).body.total).toBe(0);
  });
});

describe('a resource hidden from a caller who may enter its record answers as a missing one on the same paths', () => {
  it('conditional create, If-Match, conditional writes and Bundle entries', async () => {
    const colleague = await create({ resourceType: 'Practitioner', name: [{ family: `Collegue-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(colleague) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    const token = await mint(ref(colleague));
    await create(consent(x.p1, ref(colleague), { type: 'permit', actor: [ircp(ref(colleague))] }), token);
    // masked by the patient's choice (set here by the unrestricted client): the colleague is not its author
    const masked = await create(document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], undefined, `masked ${RUN}`));
    expect((await get(ref(masked), token)).status).toBe(404);
    const missing = crypto.randomUUID();
    const shape = (res: { status: number; text: string }, id: string) => ({ status: res.status, text: res.text.split(id).join('ID').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'UUID').replace(/"lastUpdated":"[^"]+"/g, '') });
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: ref(x.p1) }, valueString: `cond ${RUN}` };
    const probes: [string, (id: string) => Promise<{ status: number; text: string }>][] = [
      ['If-None-Exist', (id) => send('POST', 'Observation', token, obs, { 'if-none-exist': `_id=${id}`, prefer: 'return=minimal' })],
      ['PUT If-Match', (id) => send('PUT', `DocumentReference/${id}`, token, { ...body(masked), id }, { 'if-match': 'W/"1"' })],
      ['PATCH If-Match', (id) => jsonPatch(`DocumentReference/${id}`, [{ op: 'replace', path: '/status', value: 'superseded' }], token, { 'if-match': 'W/"1"' })],
      ['DELETE If-Match', (id) => send('DELETE', `DocumentReference/${id}`, token, undefined, { 'if-match': 'W/"1"' })],
      ['history', (id) => get(`DocumentReference/${id}/_history`, token)],
      ['conditional PATCH', (id) => jsonPatch(`DocumentReference?_id=${id}`, [{ op: 'replace', path: '/status', value: 'superseded' }], token)],
      ['conditional DELETE', (id) => send('DELETE', `DocumentReference?_id=${id}`, token)],
      ['batch', (id) => send('POST', '', token, { resourceType: 'Bundle', type: 'batch', entry: ['GET', 'DELETE'].map((method) => ({ request: { method, url: `DocumentReference/${id}` } })) })],
      ['transaction', (id) => send('POST', '', token, { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `DocumentReference/${id}`, ifMatch: 'W/"1"' } }] })],
    ];
    for (const [what, probe] of probes) expect([what, shape(await probe(masked.id), masked.id)]).toEqual([what, shape(await probe(missing), missing)]);
    expect(await versionOf(masked)).toBe('1');
  });
});

describe('every kind of record refusal is one answer on every path', () => {
  it('a blocked professional and a legal representative of a patient come of age', async () => {
    const blocked = await create({ resourceType: 'Practitioner', name: [{ family: `Bloque-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(blocked) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    const blockedToken = await mint(ref(blocked));
    await create(consent(x.p1, ref(blocked), { type: 'permit', actor: [ircp(ref(blocked))] }), blockedToken);
    await create(consent(x.p1, ref(x.p1), { type: 'deny', actor: [ircp(ref(blocked))] }, 'OPTOUT'), tok.p1);
    const adult = await create({ resourceType: 'Patient', name: [{ family: `Majeur-${RUN}` }], birthDate: '2000-01-01' });
    const parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(adult) }, period: { start: '2005-01-01' } });
    const adultDoc = await create(document(adult, REPORT, ref(x.gp), [], undefined, `adulte ${RUN}`));
    const cases: [string, string, Json][] = [
      ['a blocked professional', blockedToken, x.doc],
      ['a representative of a patient come of age', await mint(ref(parent), 'patient/*.cruds'), adultDoc],
    ];
    for (const [who, token, doc] of cases) {
      const read = outcome(await get(ref(doc), token));
      expect([who, read.status]).toEqual([who, 403]);
      const answers: Record<string, Json> = {
        PUT: outcome(await send('PUT', ref(doc), token, { ...body(doc), status: 'superseded' })),
        PATCH: outcome(await jsonPatch(ref(doc), [{ op: 'replace', path: '/status', value: 'superseded' }], token)),
        DELETE: outcome(await send('DELETE', ref(doc), token, undefined, { 'if-match': 'W/"3"' })),
        history: outcome(await get(`${ref(doc)}/_history`, token)),
      };
      const batch = await send('POST', '', token, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'DELETE', url: ref(doc) } }] });
      answers.batch = { status: Number(batch.body.entry[0].response.status.split(' ')[0]), issue: batch.body.entry[0].response.outcome.issue };
      for (const [what, answer] of Object.entries(answers)) expect([who, what, answer]).toEqual([who, what, read]);
      expect(await versionOf(doc)).toBe('1');
    }
  });
});

describe('a deleted resource that was hidden from the caller stays missing', () => {
  it('by id, history and vread, and in type and system history', async () => {
    const colleague = await create({ resourceType: 'Practitioner', name: [{ family: `Collegue2-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(colleague) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    const token = await mint(ref(colleague));
    await create(consent(x.p1, ref(colleague), { type: 'permit', actor: [ircp(ref(colleague))] }), token);
    const masked = await create(document(x.p1, REPORT, ref(x.gp), ['MASQUE_PS'], undefined, `masked2 ${RUN}`));
    const secret = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT'], undefined, `secret2 ${RUN}`), tok.gp);
    for (const d of [masked, secret]) expect((await send('DELETE', ref(d), tok.gp)).status).toBe(200);
    const missing = crypto.randomUUID();
    const shape = (res: { status: number; text: string }, id: string) => ({ status: res.status, text: res.text.split(id).join('ID') });
    for (const [who, token_, d] of [['a colleague, a masked document', token, masked], ['the patient, a document invisible to them', tok.p1, secret]] as const) {
      for (const suffix of ['', '/_history', '/_history/1', '/_history/2']) {
        expect([who, suffix, shape(await get(`${ref(d)}${suffix}`, token_), d.id)]).toEqual([who, suffix, shape(await get(`DocumentReference/${missing}${suffix}`, token_), missing)]);
      }
      for (const path of ['DocumentReference/_history?_count=500', '_history?_count=500']) expect([who, path, (await get(path, token_)).text.includes(d.id)]).toEqual([who, path, false]);
    }
  });
});

describe("a submission on the patient's side for another record", () => {
  it('answers as for an id nobody holds, whether or not that record is a national one', async () => {
    const submission = (subject: string) => {
      const doc = `urn:uuid:${crypto.randomUUID()}`;
      return { resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, request: { method: 'POST', url: 'List' }, resource: { resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }], status: 'current', mode: 'working', source: { reference: ref(x.p1) },
          code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: subject }, date: new Date().toISOString(), entry: [{ item: { reference: doc } }] } },
        { fullUrl: doc, request: { method: 'POST', url: 'DocumentReference' }, resource: { resourceType: 'DocumentReference', masterIdentifier: { system: 'urn:ietf:rfc:3986', value: uniqueId() }, status: 'current',
          type: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'DOCPAT03' }] }, category: [{ coding: [{ system: A03, code: '90' }] }],
          subject: { reference: subject }, author: [{ reference: ref(x.p1) }], content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }] } },
      ] };
    };
    const unknown = crypto.randomUUID();
    const plain = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
    const answer = async (subject: string, id: string) => (({ status, text }) => ({ status, text: text.split(id).join('ID') }))(await send('POST', '', tok.p1, submission(subject)));
    const nobody = await answer(`Patient/${unknown}`, unknown);
    expect(nobody.status).toBe(403);
    for (const [what, subject, id] of [
      ['a national record', ref(x.national), x.national.id],
      ['a national record, version-specific', `${ref(x.national)}/_history/1`, x.national.id],
      ['a plain record', ref(plain), plain.id],
    ] as const) expect([what, await answer(subject, id)]).toEqual([what, nobody]);
    expect((await send('POST', '', tok.p1, submission(ref(x.p1)))).status).toBe(200);
  });
});

describe('a plain create in a record closed to the caller', () => {
  it('is answered alike for a national record and another, valid or not', async () => {
    const answer = async (patient: Json, token: string, extra: Json) =>
      (({ status, text }) => ({ status, text: text.split(patient.id).join('ID') }))(await send('POST', 'DocumentReference', token, { ...document(patient, REPORT, ref(x.stranger)), ...extra }));
    for (const extra of [{}, { status: 'bogus' }, { date: 'yesterday' }]) {
      expect([extra, await answer(x.national, tok.stranger, extra)]).toEqual([extra, await answer(x.p1, tok.stranger, extra)]);
    }
  });
});

describe("the write rules decide before the method and the validator (decision 031, amendment)", () => {
  const PATIENT_ONLY = /^A patient changes or deletes only the documents they deposited/;
  const diagnostics = (res: { body: any }) => String(res.body?.issue?.[0]?.diagnostics ?? '');
  const fhirpathPatch = (value: string) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'DocumentReference.description' }, { name: 'value', valueString: value }] }],
  });

  it("refuses the patient a change of a professional's document with the rules' 403, not 405 or 422, on every path", async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `pro ${RUN}`), tok.gp);
    const path = ref(doc);
    const asPatch = (operations: unknown) => ({ resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(operations)).toString('base64') });
    const described = [{ op: 'replace', path: '/description', value: 'rewritten' }];
    const answers: [string, { status: number; body: any }][] = [
      ['PUT description (405 before)', await send('PUT', path, tok.p1, { ...body(doc), description: 'rewritten' })],
      ['PUT description and MASQUE_PS', await send('PUT', path, tok.p1, { ...body(doc), description: 'rewritten', meta: { security: [{ system: A07, code: 'MASQUE_PS' }] } })],
      ['PUT invalid status (422 before)', await send('PUT', path, tok.p1, { ...body(doc), status: 'not-a-status' })],
      ['PUT entered-in-error (422 before)', await send('PUT', path, tok.p1, { ...body(doc), status: 'entered-in-error' })],
      ['conditional PUT description', await send('PUT', `DocumentReference?_id=${doc.id}`, tok.p1, { ...body(doc), description: 'rewritten' })],
      ['PATCH description', await jsonPatch(path, described, tok.p1)],
      ['PATCH invalid status', await jsonPatch(path, [{ op: 'replace', path: '/status', value: 'not-a-status' }], tok.p1)],
      ['conditional PATCH description', await jsonPatch(`DocumentReference?_id=${doc.id}`, described, tok.p1)],
      ['FHIRPath Patch description', await send('PATCH', path, tok.p1, fhirpathPatch('rewritten'))],
    ];
    expect(answers.map(([what, res]) => [what, res.status, PATIENT_ONLY.test(diagnostics(res)) ? 'the rules' : diagnostics(res)])).toEqual(answers.map(([what]) => [what, 403, 'the rules']));
    const entries: [string, Json][] = [
      ['PUT', { request: { method: 'PUT', url: path }, resource: { ...body(doc), description: 'rewritten' } }],
      ['PATCH', { request: { method: 'PATCH', url: path }, resource: asPatch(described) }],
    ];
    for (const [what, entry] of entries) {
      const transaction = await send('POST', '', tok.p1, { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect([what, 'transaction', transaction.status, diagnostics(transaction)]).toEqual([what, 'transaction', 403, `Bundle.entry[0]: ${diagnostics(answers[0][1])}`]);
      const batch = await send('POST', '', tok.p1, { resourceType: 'Bundle', type: 'batch', entry: [entry] });
      const answer = batch.body.entry[0].response;
      expect([what, 'batch', answer.status, String(answer.outcome.issue[0].diagnostics)]).toEqual([what, 'batch', '403', diagnostics(answers[0][1])]);
    }
    expect(await versionOf(doc)).toBe('1');
  });

  it("refuses the patient a malformed rewrite of a professional's List with the rules' 403, not the validator's 400", async () => {
    const list = await create({ resourceType: 'List', status: 'current', mode: 'working', title: `liste ${RUN}`, subject: { reference: ref(x.p1) }, source: { reference: ref(x.gp) } }, tok.gp);
    const mine = { ...body(list), source: { reference: ref(x.p1) } };
    const answers = [
      await send('PUT', ref(list), tok.p1, { ...mine, notAnElement: true }),
      await jsonPatch(ref(list), [{ op: 'replace', path: '/source', value: { reference: ref(x.p1) } }, { op: 'replace', path: '/status', value: 'not-a-status' }], tok.p1),
    ];
    expect(answers.map((res) => [res.status, diagnostics(res).replace(/ \(source .*$/, '')])).toEqual(answers.map(() => [403, 'A patient or legal representative changes or deletes only the Lists they wrote']));
    // the author's own malformed rewrite is still the validator's
    expect((await send('PUT', ref(list), tok.gp, { ...body(list), notAnElement: true })).status).toBe(400);
    expect(await versionOf(list)).toBe('1');
  });

  it('still tells a caller the rules allow what the method or the validator refuses', async () => {
    // the patient on what they deposited: their write is allowed, the change is one only a replacement makes
    const own = await create(document(x.p1, PATIENT_DOC, ref(x.p1), [], undefined, `own ${RUN}`), tok.p1);
    const put = await send('PUT', ref(own), tok.p1, { ...body(own), description: 'rewritten' });
    expect(put.status).toBe(405);
    expect(diagnostics(put)).toContain('DocumentReference.description');
    expect((await jsonPatch(ref(own), [{ op: 'replace', path: '/description', value: 'rewritten' }], tok.p1)).status).toBe(405);
    expect((await jsonPatch(ref(own), [{ op: 'replace', path: '/status', value: 'not-a-status' }], tok.p1)).status).toBe(422);
    // the author alike
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `pro2 ${RUN}`), tok.gp);
    expect((await send('PUT', ref(doc), tok.gp, { ...body(doc), description: 'rewritten' })).status).toBe(405);
    expect((await send('PATCH', ref(doc), tok.gp, fhirpathPatch('rewritten'))).status).toBe(405);
    expect([await versionOf(own), await versionOf(doc)]).toEqual(['1', '1']);
  });

  it('decides the version the write would make: a move out of the record, or to one the caller may not write in, is 403 before the 405', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `move ${RUN}`), tok.gp);
    const { subject: _subject, ...withoutSubject } = body(doc);
    const out = await send('PUT', ref(doc), tok.gp, withoutSubject);
    expect([out.status, diagnostics(out)]).toEqual([403, 'DocumentReference outside a patient record is written by administrators']);
    const closed = await create({ resourceType: 'Patient', name: [{ family: `Ferme-${RUN}` }], birthDate: '1980-01-01' });
    const moved = await jsonPatch(ref(doc), [{ op: 'replace', path: '/subject/reference', value: ref(closed) }], tok.gp);
    expect(moved.status).toBe(403);
    expect(moved.body.issue[0].details.coding[0].code).toBe('NO_CONSENT');
    expect(await versionOf(doc)).toBe('1');
  });

  it('a document hidden from the patient is still missing to them, whatever the write', async () => {
    const hidden = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT'], undefined, `hidden ${RUN}`), tok.gp);
    expect((await get(ref(hidden), tok.p1)).status).toBe(404);
    const missing = crypto.randomUUID();
    const shape = (res: { status: number; text: string }, id: string) => ({ status: res.status, text: res.text.split(id).join('ID') });
    const probes: [string, (id: string) => Promise<{ status: number; text: string }>][] = [
      ['PATCH description', (id) => jsonPatch(`DocumentReference/${id}`, [{ op: 'replace', path: '/description', value: 'rewritten' }], tok.p1)],
      ['PATCH invalid status', (id) => jsonPatch(`DocumentReference/${id}`, [{ op: 'replace', path: '/status', value: 'not-a-status' }], tok.p1)],
      ['PUT description', (id) => send('PUT', `DocumentReference/${id}`, tok.p1, { ...body(hidden), id, description: 'rewritten' })],
    ];
    for (const [what, probe] of probes) {
      const answer = shape(await probe(hidden.id), hidden.id);
      expect([what, answer]).toEqual([what, shape(await probe(missing), missing)]);
      expect([what, answer.status]).toEqual([what, what.startsWith('PATCH') ? 404 : 403]);
    }
    expect(await versionOf(hidden)).toBe('1');
  });
});
