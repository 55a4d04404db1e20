import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { A07, as, consent as consentResource, document as documentResource, G15, ircp, Json, pcp, PSYCH, practitionerWithRole, ref, REPORT, requests } from '../accessFixtures';

/**
 * $meta, $meta-add and $meta-delete (R4 resource-operation-meta*.html) and the national
 * record's flows built on them, with real actors' tokens: the patient masks and unmasks
 * the documents of their record, one by one or all at once; the author of a document
 * removes the invisibility labels they set; nobody else moves either.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const post = (path: string, body: Json | undefined, token?: string, headers: Record<string, string> = {}) => send('POST', path, token, body, headers);

const label = (code: string) => ({ system: A07, code });
const metaParameters = (meta: Json) => ({ resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: meta }] });
/** $meta-add / $meta-delete of TRE_A07 labels on a resource. */
const labels = (op: 'meta-add' | 'meta-delete', resource: Json, codes: string[], token?: string) => post(`${ref(resource)}/$${op}`, metaParameters({ security: codes.map(label) }), token);
const returned = (res: { body: Json }): Json => {
  expect(res.body.resourceType).toBe('Parameters');
  expect(res.body.parameter).toHaveLength(1);
  expect(res.body.parameter[0].name).toBe('return');
  return res.body.parameter[0].valueMeta;
};
const codesOf = (meta: Json | undefined): string[] => (meta?.security ?? []).filter((c: Json) => c.system === A07).map((c: Json) => c.code).sort();

/** A declared consent or a designation: one permitted actor. */
const consent = (patient: Json, performer: string, actor: Json): Json => consentResource(patient, performer, { type: 'permit', actor: [actor] });
const document = (patient: Json, type: { code: string; cls: string }, author: string, codes: string[] = [], binary?: Json) =>
  documentResource(patient, type, author, codes, binary ? ref(binary) : undefined, `doc ${RUN}`);
const binaryOf = (patient: Json, text: string) =>
  create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(patient) }, data: Buffer.from(`${text} ${RUN}`).toString('base64') });

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  const practitioner = (name: string, profession: string) => practitionerWithRole(create, `${name}-${RUN}`, profession);
  x.author = await practitioner('Auteur', '10');
  x.colleague = await practitioner('Confrere', '10');
  x.treating = await practitioner('Traitant', '10');
  x.nurse = await practitioner('Infirmier', '60');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) } });
  for (const who of ['author', 'colleague', 'treating', 'nurse']) tok[who] = await mint(ref(x[who]));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.minor = await mint(ref(x.minor), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');

  // declared consents (the treating physician needs none); the patient designates their treating physician
  for (const who of ['author', 'colleague', 'nurse']) await create(consent(x.p1, ref(x[who]), ircp(ref(x[who]))), tok[who]);
  await create(consent(x.minor, ref(x.author), ircp(ref(x.author))), tok.author);
  await create(consent(x.p1, ref(x.p1), pcp(ref(x.treating))), tok.p1);

  // the author deposits: a report with its Binary, a psychiatric summary, one awaiting the announcement consultation
  x.reportBinary = await binaryOf(x.p1, 'report');
  x.report = await create(document(x.p1, REPORT, ref(x.author), [], x.reportBinary), tok.author);
  x.psych = await create({ ...document(x.p1, PSYCH, ref(x.author)), meta: { tag: [{ system: 'urn:test', code: `psych-${RUN}` }] } }, tok.author);
  x.unannounced = await create(document(x.p1, REPORT, ref(x.author), ['INVISIBLE_PATIENT']), tok.author);
  x.byColleague = await create(document(x.p1, REPORT, ref(x.colleague)), tok.colleague);
  x.minorSecret = await create(document(x.minor, REPORT, ref(x.author), ['INVISIBLE_REPRESENTANTS_LEGAUX']), tok.author);
  x.minorReport = await create(document(x.minor, REPORT, ref(x.author)), tok.author);
});

describe('$meta, $meta-add and $meta-delete (R4)', () => {
  let org: Json;
  beforeAll(async () => {
    org = await create({ resourceType: 'Organization', name: `Org ${RUN}`, meta: { tag: [{ system: 'urn:test', code: 'kept' }] } });
  });

  it('the CapabilityStatement declares them, and the masking operations with their definitions', async () => {
    const cs = (await http(t.base, 'metadata', { headers: { authorization: '' } })).body;
    const documents = cs.rest[0].resource.find((r: Json) => r.type === 'DocumentReference').operation.map((o: Json) => `${o.name} ${o.definition}`);
    expect(documents).toEqual(
      expect.arrayContaining([
        'meta http://hl7.org/fhir/OperationDefinition/Resource-meta',
        'meta-add http://hl7.org/fhir/OperationDefinition/Resource-meta-add',
        'meta-delete http://hl7.org/fhir/OperationDefinition/Resource-meta-delete',
        'mask-all https://fhir.dmp.esante.example/OperationDefinition/DocumentReference-mask-all',
        'unmask-all https://fhir.dmp.esante.example/OperationDefinition/DocumentReference-unmask-all',
      ]),
    );
    expect(cs.rest[0].operation.map((o: Json) => o.name)).toContain('meta');
  });

  it('$meta of an instance answers a Parameters whose "return" is the meta, by GET and by POST', async () => {
    for (const res of [await get(`Organization/${org.id}/$meta`), await post(`Organization/${org.id}/$meta`, { resourceType: 'Parameters' })]) {
      expect(res.status).toBe(200);
      const meta = returned(res);
      expect(meta.versionId).toBe('1');
      expect(meta.tag).toEqual([{ system: 'urn:test', code: 'kept' }]);
    }
  });

  it('$meta-add adds to the sets as a new version; a second identical call changes nothing', async () => {
    const tag = { system: 'urn:test', code: `added-${RUN}`, display: 'Added' };
    const first = await post(`Organization/${org.id}/$meta-add`, metaParameters({ tag: [tag], profile: ['http://hl7.org/fhir/StructureDefinition/Organization'] }));
    expect(first.status).toBe(200);
    const meta = returned(first);
    expect(meta.tag).toEqual([{ system: 'urn:test', code: 'kept' }, tag]);
    expect(meta.profile).toEqual(['http://hl7.org/fhir/StructureDefinition/Organization']);
    expect(meta.versionId).toBe('2');
    // the content is unchanged; the previous version keeps its meta
    const read = await get(`Organization/${org.id}`);
    expect(read.body.name).toBe(org.name);
    expect(read.body.meta.tag).toEqual(meta.tag);
    expect((await get(`Organization/${org.id}/_history/1`)).body.meta.tag).toEqual([{ system: 'urn:test', code: 'kept' }]);
    // idempotent: a tag matches by system and code, display ignored
    const again = await post(`Organization/${org.id}/$meta-add`, metaParameters({ tag: [{ ...tag, display: 'Other display' }] }));
    expect(again.status).toBe(200);
    expect(returned(again)).toEqual(meta);
    expect((await get(`Organization/${org.id}/_history`)).body.total).toBe(2);
  });

  it('$meta-delete of an absent label is not an error and makes no version; of a present one removes it', async () => {
    const before = returned(await get(`Organization/${org.id}/$meta`));
    const absent = await post(`Organization/${org.id}/$meta-delete`, metaParameters({ security: [label('MASQUE_PS')], tag: [{ system: 'urn:other', code: 'kept' }] }));
    expect(absent.status).toBe(200);
    expect(returned(absent)).toEqual(before);
    const removed = await post(`Organization/${org.id}/$meta-delete`, metaParameters({ tag: [{ system: 'urn:test', code: 'kept' }] }));
    expect(removed.status).toBe(200);
    const meta = returned(removed);
    expect(meta.tag.map((c: Json) => c.code)).toEqual([`added-${RUN}`]);
    expect(Number(meta.versionId)).toBe(Number(before.versionId) + 1);
  });

  it('a new version of a Binary keeps its content', async () => {
    const binary = await binaryOf(x.p2, 'content kept');
    const res = await post(`Binary/${binary.id}/$meta-add`, metaParameters({ tag: [{ system: 'urn:test', code: 'binary' }] }));
    expect(res.status).toBe(200);
    expect(returned(res).versionId).toBe('2');
    const read = await get(`Binary/${binary.id}`);
    expect(read.body.meta.tag).toEqual([{ system: 'urn:test', code: 'binary' }]);
    expect(Buffer.from(read.body.data, 'base64').toString()).toBe(`content kept ${RUN}`);
  });

  it('If-Match is honoured', async () => {
    const res = await post(`Organization/${org.id}/$meta-add`, metaParameters({ tag: [{ code: 'late' }] }), undefined, { 'if-match': 'W/"1"' });
    expect(res.status).toBe(412);
  });

  it.each([
    ['by GET', (id: string) => get(`Organization/${id}/$meta-add`), 405],
    ['without a Parameters body', (id: string) => post(`Organization/${id}/$meta-add`, { resourceType: 'Organization' }), 400],
    ['with a Parameters lacking "meta"', (id: string) => post(`Organization/${id}/$meta-add`, { resourceType: 'Parameters', parameter: [{ name: 'x', valueString: 'y' }] }), 400],
    ['with a label without code', (id: string) => post(`Organization/${id}/$meta-delete`, metaParameters({ security: [{ system: A07 }] })), 400],
    ['at type level', () => post(`Organization/$meta-add`, metaParameters({ tag: [{ code: 'x' }] })), 400],
    ['on an unknown id', () => post(`Organization/unknown-${RUN}/$meta-add`, metaParameters({ tag: [{ code: 'x' }] })), 404],
  ] as [string, (id: string) => ReturnType<typeof get>, number][])('$meta-add %s is refused', async (_n, call, status) => {
    const res = await call(org.id);
    expect(res.status).toBe(status);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('$meta at type and system level lists only what the caller may read', async () => {
    const tag = `psych-${RUN}`;
    const author = await get('DocumentReference/$meta', tok.author);
    expect(author.status).toBe(200);
    expect(returned(author).tag).toEqual(expect.arrayContaining([{ system: 'urn:test', code: tag }]));
    expect(codesOf(returned(author))).toEqual(expect.arrayContaining(['INVISIBLE_PATIENT', 'INVISIBLE_REPRESENTANTS_LEGAUX']));
    // the nurse may not read the psychiatric summary: its tag is not revealed
    const nurse = await get('DocumentReference/$meta', tok.nurse);
    expect(nurse.status).toBe(200);
    expect(JSON.stringify(returned(nurse))).not.toContain(tag);
    // the patient does not learn the labels of documents invisible to them
    const system = await get('$meta', tok.p1);
    expect(system.status).toBe(200);
    expect(codesOf(returned(system))).not.toContain('INVISIBLE_PATIENT');
  });
});

describe('the patient masks and unmasks a document of their record', () => {
  it('masking hides the document and its Binary from a professional with consent; the author and the treating physician still read them', async () => {
    const res = await labels('meta-add', x.report, ['MASQUE_PS'], tok.p1);
    expect(res.status).toBe(200);
    expect(codesOf(returned(res))).toEqual(['MASQUE_PS']);
    expect(returned(res).versionId).toBe('2');
    expect((await get(`DocumentReference/${x.report.id}`, tok.colleague)).status).toBe(404);
    expect((await get(`Binary/${x.reportBinary.id}`, tok.colleague)).status).toBe(404);
    const search = await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.colleague);
    expect(search.text).not.toContain(x.report.id);
    for (const who of ['author', 'treating']) {
      expect([who, (await get(`DocumentReference/${x.report.id}`, tok[who])).status]).toEqual([who, 200]);
      expect([who, (await get(`Binary/${x.reportBinary.id}`, tok[who])).status]).toEqual([who, 200]);
    }
    // the patient still reads it, with its label; the previous version is in history
    const own = await get(`DocumentReference/${x.report.id}`, tok.p1);
    expect(codesOf(own.body.meta)).toEqual(['MASQUE_PS']);
    expect((await get(`DocumentReference/${x.report.id}/_history`, tok.p1)).body.total).toBe(2);
  });

  it('masking again changes nothing; unmasking shows the document again', async () => {
    const again = await labels('meta-add', x.report, ['MASQUE_PS'], tok.p1);
    expect(again.status).toBe(200);
    expect(returned(again).versionId).toBe('2');
    const res = await labels('meta-delete', x.report, ['MASQUE_PS'], tok.p1);
    expect(res.status).toBe(200);
    expect(codesOf(returned(res))).toEqual([]);
    expect((await get(`DocumentReference/${x.report.id}`, tok.colleague)).status).toBe(200);
    expect((await get(`Binary/${x.reportBinary.id}`, tok.colleague)).status).toBe(200);
  });

  it('the patient changes nothing else of a professional\'s document (403), and nothing in another record (404)', async () => {
    const tag = await post(`${ref(x.byColleague)}/$meta-add`, metaParameters({ tag: [{ system: 'urn:test', code: 'mine' }] }), tok.p1);
    expect(tag.status).toBe(403);
    expect(tag.body.resourceType).toBe('OperationOutcome');
    expect((await labels('meta-add', x.report, ['MASQUE_PS'], tok.p2)).status).toBe(404);
  });

  it('in a transaction Bundle, a refused change leaves the others unwritten', async () => {
    const entry = (doc: Json, code: string) => ({ request: { method: 'POST', url: `${ref(doc)}/$meta-add` }, resource: metaParameters({ security: [label(code)] }) });
    const refused = await post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry(x.report, 'MASQUE_PS'), entry(x.psych, 'INVISIBLE_PATIENT')] }, tok.p1);
    expect(refused.status).toBe(403);
    expect(codesOf((await get(`DocumentReference/${x.report.id}`, tok.p1)).body.meta)).toEqual([]);
    const done = await post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry(x.report, 'MASQUE_PS')] }, tok.p1);
    expect(done.status).toBe(200);
    expect(done.body.entry[0].response.status).toMatch(/^200/);
    expect((await get(`DocumentReference/${x.report.id}`, tok.colleague)).status).toBe(404);
    expect((await labels('meta-delete', x.report, ['MASQUE_PS'], tok.p1)).status).toBe(200);
  });

  it('a professional does not move the patient\'s mask, not even the author', async () => {
    expect((await labels('meta-add', x.byColleague, ['MASQUE_PS'], tok.p1)).status).toBe(200);
    expect((await labels('meta-delete', x.byColleague, ['MASQUE_PS'], tok.colleague)).status).toBe(403);
    expect((await labels('meta-add', x.psych, ['MASQUE_PS'], tok.author)).status).toBe(403);
    // a professional who cannot see the masked document is answered as for an unknown one
    expect((await labels('meta-delete', x.byColleague, ['MASQUE_PS'], tok.author)).status).toBe(404);
    expect((await labels('meta-delete', x.byColleague, ['MASQUE_PS'], tok.p1)).status).toBe(200);
  });
});

describe('masking every document of the record in one call', () => {
  /** What a professional with consent sees of p1's documents. */
  const seenBy = async (who: string) => ((await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok[who])).body.entry ?? []).map((e: Json) => e.resource.id);

  it('a professional, an administrator and a client acting for nobody are refused (403)', async () => {
    for (const token of [tok.colleague, tok.treating, tok.admin, undefined]) {
      const res = await post('DocumentReference/$mask-all', { resourceType: 'Parameters', parameter: [{ name: 'patient', valueReference: { reference: ref(x.p1) } }] }, token);
      expect(res.status).toBe(403);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    expect(await seenBy('colleague')).toContain(x.report.id);
  });

  it('a patient app whose scopes do not let it update documents is refused (403)', async () => {
    const narrow = await mint(ref(x.p1), 'patient/DocumentReference.rs');
    expect((await post('DocumentReference/$mask-all', { resourceType: 'Parameters' }, narrow)).status).toBe(403);
  });

  it('the patient masks all their documents: a professional with consent then sees only their own', async () => {
    const res = await post('DocumentReference/$mask-all', { resourceType: 'Parameters' }, tok.p1);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Parameters');
    const count = res.body.parameter.find((p: Json) => p.name === 'count').valueInteger;
    const masked = res.body.parameter.filter((p: Json) => p.name === 'document').map((p: Json) => p.valueReference.reference);
    expect(masked).toEqual(expect.arrayContaining([ref(x.report), ref(x.psych), ref(x.byColleague)]));
    expect(masked).toHaveLength(count);
    // the document invisible to the patient is left as it is
    expect(masked).not.toContain(ref(x.unannounced));
    expect(codesOf((await get(`DocumentReference/${x.unannounced.id}`, tok.author)).body.meta)).toEqual(['INVISIBLE_PATIENT']);
    // the colleague sees only the document they wrote (and the one the patient could not see, so could not mask);
    // the author sees theirs; the treating physician sees them all
    expect((await seenBy('colleague')).sort()).toEqual([x.byColleague.id, x.unannounced.id].sort());
    expect(await seenBy('author')).toEqual(expect.arrayContaining([x.report.id, x.psych.id, x.unannounced.id]));
    expect(await seenBy('author')).not.toContain(x.byColleague.id);
    expect(await seenBy('treating')).toEqual(expect.arrayContaining([x.report.id, x.psych.id, x.byColleague.id]));
    expect((await get(`Binary/${x.reportBinary.id}`, tok.colleague)).status).toBe(404);
    // once more: nothing left to mask
    const again = await post('DocumentReference/$mask-all', { resourceType: 'Parameters' }, tok.p1);
    expect(again.body.parameter).toEqual([{ name: 'count', valueInteger: 0 }]);
  });

  it('the patient unmasks them all', async () => {
    const res = await post('DocumentReference/$unmask-all', { resourceType: 'Parameters', parameter: [{ name: 'patient', valueReference: { reference: ref(x.p1) } }] }, tok.p1);
    expect(res.status).toBe(200);
    expect(res.body.parameter[0].valueInteger).toBeGreaterThanOrEqual(3);
    expect(await seenBy('colleague')).toEqual(expect.arrayContaining([x.report.id, x.psych.id, x.byColleague.id]));
    expect((await get(`Binary/${x.reportBinary.id}`, tok.colleague)).status).toBe(200);
  });

  it('a patient naming another record is answered as for an unknown one (404)', async () => {
    const res = await post('DocumentReference/$mask-all', { resourceType: 'Parameters', parameter: [{ name: 'patient', valueReference: { reference: ref(x.p2) } }] }, tok.p1);
    expect(res.status).toBe(404);
  });

  it("a legal representative masks the minor's documents they can see, not the protected one", async () => {
    const res = await post('DocumentReference/$mask-all', { resourceType: 'Parameters' }, tok.parent);
    expect(res.status).toBe(200);
    const masked = res.body.parameter.filter((p: Json) => p.name === 'document').map((p: Json) => p.valueReference.reference);
    expect(masked).toEqual([ref(x.minorReport)]);
    expect(codesOf((await get(`DocumentReference/${x.minorSecret.id}`, tok.author)).body.meta)).toEqual(['INVISIBLE_REPRESENTANTS_LEGAUX']);
    expect((await post('DocumentReference/$unmask-all', { resourceType: 'Parameters' }, tok.parent)).body.parameter[0].valueInteger).toBe(1);
  });
});

describe('the invisibility labels are the author\'s', () => {
  it('the patient neither adds nor removes them (403), and a document invisible to them stays unknown (404)', async () => {
    expect((await labels('meta-add', x.report, ['INVISIBLE_PATIENT'], tok.p1)).status).toBe(403);
    expect((await labels('meta-add', x.report, ['INVISIBLE_REPRESENTANTS_LEGAUX'], tok.p1)).status).toBe(403);
    expect((await labels('meta-delete', x.unannounced, ['INVISIBLE_PATIENT'], tok.p1)).status).toBe(404);
    // the minor reads their protected document but may not lift its protection
    expect((await get(`DocumentReference/${x.minorSecret.id}`, tok.minor)).status).toBe(200);
    expect((await labels('meta-delete', x.minorSecret, ['INVISIBLE_REPRESENTANTS_LEGAUX'], tok.minor)).status).toBe(403);
    // nor may a patient deposit a document carrying one
    const own = await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, REPORT, ref(x.p1), ['INVISIBLE_PATIENT']), headers: as(tok.p1) });
    expect(own.status).toBe(403);
  });

  it('another professional with write access to the record may not remove INVISIBLE_PATIENT (403)', async () => {
    expect((await get(`DocumentReference/${x.unannounced.id}`, tok.colleague)).status).toBe(200);
    expect((await labels('meta-delete', x.unannounced, ['INVISIBLE_PATIENT'], tok.colleague)).status).toBe(403);
  });

  it('the author removes INVISIBLE_PATIENT after the announcement: the patient then reads the document', async () => {
    expect((await get(`DocumentReference/${x.unannounced.id}`, tok.p1)).status).toBe(404);
    const res = await labels('meta-delete', x.unannounced, ['INVISIBLE_PATIENT'], tok.author);
    expect(res.status).toBe(200);
    expect(codesOf(returned(res))).toEqual([]);
    const read = await get(`DocumentReference/${x.unannounced.id}`, tok.p1);
    expect(read.status).toBe(200);
    expect(read.body.meta.versionId).toBe('2');
    const search = await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.p1);
    expect(search.text).toContain(x.unannounced.id);
  });
});
