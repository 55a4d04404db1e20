import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { consent, G15, ircp, Json, LOINC, PATIENT_DOC, PSYCH, R38, ref, REPORT, requests, A03 , practitionerWithRole } from '../accessFixtures';

/**
 * Probes of the newest write rules (decision 008, amendment: the patient's side writes only
 * the Lists whose source names them; decision 013: a writer keeps the references they were
 * not shown, but cannot add one by guessing an id) and of the read paths around Lists.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
const MISSING = crypto.randomUUID();
let serial = 0;
const uniqueId = () => `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.${++serial}`;
const x: Json = {};
const tok: Record<string, string> = {};
const doc = (type: { system?: string; code: string; cls: string }, labels: string[] = []) => ({
  resourceType: 'DocumentReference',
  status: 'current',
  ...(labels.length ? { meta: { security: labels.map((code) => ({ system: 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument', code })) } } : {}),
  type: { coding: [{ system: type.system ?? LOINC, code: type.code }] },
  category: [{ coding: [{ system: A03, code: type.cls }] }],
  subject: { reference: ref(x.p1) },
  author: [{ reference: ref(x.gp) }],
  description: `final ${RUN}`,
  content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`final ${RUN} ${++serial}`).toString('base64') } }],
});
const list = (source: string | undefined, items: string[], code = 'submissionset', identifier = uniqueId()) => ({
  resourceType: 'List',
  identifier: [{ use: 'usual', system: 'urn:ietf:rfc:3986', value: identifier }],
  status: 'current',
  mode: 'working',
  title: `${code} ${RUN}`,
  code: { coding: [{ system: MHD_LIST_TYPES, code }] },
  subject: { reference: ref(x.p1) },
  date: new Date().toISOString(),
  ...(source ? { source: { reference: source } } : {}),
  ...(items.length ? { entry: items.map((reference) => ({ item: { reference } })) } : {}),
});
const items = (l: Json) => ((l.entry ?? []) as Json[]).map((e) => e.item.reference);

beforeAll(async () => {
  const practitioner = (name: string, profession: string) => practitionerWithRole(create, `${name}-${RUN}`, profession, profession === '10' ? 'SM54' : undefined);
  x.gp = await practitioner('Generaliste', '10');
  x.nurse = await practitioner('Infirmier', '60');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.nurse = await mint(ref(x.nurse));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  for (const [who, token] of [[x.gp, tok.gp], [x.nurse, tok.nurse]] as const) await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  x.report = await create(doc(REPORT), tok.gp);
  x.psych = await create(doc(PSYCH), tok.gp);
  x.psych2 = await create(doc(PSYCH), tok.gp);
  x.unannounced = await create(doc(REPORT, ['INVISIBLE_PATIENT']), tok.gp);
  x.setId = uniqueId();
  x.set = await create(list(ref(x.gp), [ref(x.report), ref(x.unannounced)], 'submissionset', x.setId), tok.gp);
  x.folder = await create(list(ref(x.p1), [ref(x.report)], 'folder'), tok.p1);
  expect((await get(ref(x.psych), tok.nurse)).status).toBe(404);
  expect((await get(ref(x.unannounced), tok.p1)).status).toBe(404);
});

describe("the patient's side does not write a professional's List, by any path", () => {
  const unchanged = async () => {
    const now = (await get(ref(x.set), t.token)).body;
    expect([now.meta.versionId, now.title, now.status, items(now), now.meta.security ?? [], now.meta.tag ?? []])
      .toEqual([x.set.meta.versionId, x.set.title, 'current', items(x.set), x.set.meta.security ?? [], x.set.meta.tag ?? []]);
  };
  const refused = (res: { status: number; body: any }) => {
    expect([res.status, res.body?.resourceType]).toEqual([403, 'OperationOutcome']);
  };
  const parameters = (type: string, path: string, extra: Json[] = []) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...extra] }],
  });
  const byIdentifier = () => `List?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${x.setId}`)}`;
  const mine = () => ({ ...x.set, title: 'changed', source: { reference: ref(x.p1) } });

  it('PUT, JSON Patch, FHIRPath Patch, DELETE', async () => {
    refused(await send('PUT', ref(x.set), tok.p1, mine()));
    refused(await send('PATCH', ref(x.set), tok.p1, [{ op: 'replace', path: '/source/reference', value: ref(x.p1) }], JSON_PATCH));
    refused(await send('PATCH', ref(x.set), tok.p1, [{ op: 'replace', path: '/status', value: 'retired' }], JSON_PATCH));
    refused(await send('PATCH', ref(x.set), tok.p1, parameters('replace', 'List.status', [{ name: 'value', valueCode: 'retired' }])));
    refused(await send('PATCH', ref(x.set), tok.p1, parameters('delete', 'List.source')));
    refused(await send('DELETE', ref(x.set), tok.p1));
    await unchanged();
  });

  it('conditional update, patch and delete by identifier', async () => {
    refused(await send('PUT', byIdentifier(), tok.p1, (({ id: _id, ...rest }) => rest)(mine())));
    refused(await send('PATCH', byIdentifier(), tok.p1, [{ op: 'replace', path: '/status', value: 'retired' }], JSON_PATCH));
    refused(await send('DELETE', byIdentifier(), tok.p1));
    await unchanged();
  });

  it('$meta-add and $meta-delete', async () => {
    const meta = (op: string, codes: Json) => send('POST', `${ref(x.set)}/$${op}`, tok.p1, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: codes }] });
    refused(await meta('meta-add', { tag: [{ system: 'urn:probe', code: 'x' }] }));
    refused(await meta('meta-add', { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }));
    refused(await meta('meta-delete', { tag: [{ system: 'urn:probe', code: 'x' }] }));
    await unchanged();
  });

  it('transaction and batch entries', async () => {
    const entries = () => [
      { resource: mine(), request: { method: 'PUT', url: ref(x.set) } },
      { request: { method: 'DELETE', url: ref(x.set) } },
      { request: { method: 'DELETE', url: byIdentifier() } },
      { resource: parameters('replace', 'List.status', [{ name: 'value', valueCode: 'retired' }]), request: { method: 'PATCH', url: ref(x.set) } },
    ];
    for (const entry of entries()) {
      const res = await send('POST', '', tok.p1, { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect([entry.request.method, res.status]).toEqual([entry.request.method, 403]);
    }
    const batch = await send('POST', '', tok.p1, { resourceType: 'Bundle', type: 'batch', entry: entries() });
    expect(batch.status).toBe(200);
    expect(batch.body.entry.map((e: Json) => e.response.status.slice(0, 3))).toEqual(['403', '403', '403', '403']);
    await unchanged();
  });

  it('an ITI-65 provide Bundle posted by the patient with a SubmissionSet whose source is a professional writes nothing', async () => {
    const mi = uniqueId();
    const docUrl = `urn:uuid:${crypto.randomUUID()}`;
    const setId = uniqueId();
    const d = { ...doc(PATIENT_DOC), masterIdentifier: { system: 'urn:ietf:rfc:3986', value: mi }, author: [{ reference: ref(x.p1) }] };
    const res = await send('POST', '', tok.p1, {
      resourceType: 'Bundle', type: 'transaction',
      meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] },
      entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: list(ref(x.gp), [docUrl], 'submissionset', setId), request: { method: 'POST', url: 'List' } },
        { fullUrl: docUrl, resource: d, request: { method: 'POST', url: 'DocumentReference' } },
      ],
    });
    refused(res);
    expect((await get(`List?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${setId}`)}&_summary=count`, t.token)).body.total).toBe(0);
    expect((await get(`DocumentReference?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${mi}`)}&_summary=count`, t.token)).body.total).toBe(0);
    // the same submission in the patient's own name is accepted (the probe reaches the rule)
    const own = await send('POST', '', tok.p1, {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: list(ref(x.p1), [docUrl], 'submissionset'), request: { method: 'POST', url: 'List' } },
        { fullUrl: docUrl, resource: { ...d, masterIdentifier: { system: 'urn:ietf:rfc:3986', value: uniqueId() } }, request: { method: 'POST', url: 'DocumentReference' } },
      ],
    });
    expect(own.status).toBe(200);
  });

  it("another patient's List is not known to the patient (404, not 403)", async () => {
    const p2folder = await create({ ...list(ref(x.p2), [], 'folder'), subject: { reference: ref(x.p2) } }, tok.p2);
    const missing = `List/${MISSING}`;
    for (const [method, body] of [['DELETE', undefined], ['PATCH', [{ op: 'replace', path: '/status', value: 'retired' }]]] as const) {
      const hidden = await send(method, ref(p2folder), tok.p1, body, JSON_PATCH);
      const absent = await send(method, missing, tok.p1, body, JSON_PATCH);
      expect([method, hidden.status, hidden.text.split(p2folder.id).join('ID')]).toEqual([method, absent.status, absent.text.split(MISSING).join('ID')]);
    }
  });
});

describe("conditional writes by identifier across records", () => {
  it("a patient's conditional update naming another patient's List identifier answers as for a free identifier", async () => {
    const taken = uniqueId();
    await create({ ...list(ref(x.p2), [], 'folder', taken), subject: { reference: ref(x.p2) } }, tok.p2);
    const body = (value: string) => list(ref(x.p1), [ref(x.report)], 'folder', value);
    const onTaken = await send('PUT', `List?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${taken}`)}`, tok.p1, body(taken));
    const free = uniqueId();
    const onFree = await send('PUT', `List?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${free}`)}`, tok.p1, body(free));
    expect(onFree.status).toBe(201);
    expect([onTaken.status, onTaken.text.includes(x.p2.id)]).toEqual([onFree.status, false]);
  });
});

describe('a masked document in a List', () => {
  it('another professional reads the List without it, in a read, an _include and $everything; its Binary is missing', async () => {
    const other = await create({ resourceType: 'Practitioner', name: [{ family: `Autre-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(other) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    const token = await mint(ref(other));
    await create(consent(x.p1, ref(other), { type: 'permit', actor: [ircp(ref(other))] }), token);
    const masked = (await send('POST', 'DocumentReference', undefined, doc(REPORT, ['MASQUE_PS']))).body;
    const set = await create(list(ref(x.gp), [ref(x.report), ref(masked)]), tok.gp);
    for (const path of [ref(set), `List?_id=${set.id}&_include=List:item`, `Patient/${x.p1.id}/$everything?_count=500`, `List?item=${ref(masked)}`, `DocumentReference?_has:List:item:_id=${set.id}`]) {
      const res = await get(path, token);
      expect([path, res.status, res.text.includes(masked.id)]).toEqual([path, 200, path.includes(masked.id)]);
    }
    expect((await get(`List?item=${ref(masked)}&_summary=count`, token)).body.total).toBe(0);
    const url = String(masked.content[0].attachment.url);
    expect((await get(url, tok.gp, { accept: 'text/plain' })).status).toBe(200);
    expect((await get(url, token, { accept: 'text/plain' })).status).toBe(404);
    expect(items((await get(ref(set), tok.gp)).body)).toEqual([ref(x.report), ref(masked)]);
  });
});

describe('a writer keeps the references she was not shown, and cannot add one by guessing its id', () => {
  it('an update adding a hidden document is refused as one adding a missing id, and names neither', async () => {
    const folder = await create(list(ref(x.gp), [ref(x.report), ref(x.psych)], 'folder'), tok.gp);
    const { meta: _subsetted, ...view } = (await get(ref(folder), tok.nurse)).body;
    expect(items(view)).toEqual([ref(x.report)]);
    const withItem = (reference: string) => ({ ...view, entry: [...view.entry, { item: { reference } }] });
    const hidden = await send('PUT', ref(folder), tok.nurse, withItem(ref(x.psych2)));
    const absent = await send('PUT', ref(folder), tok.nurse, withItem(`DocumentReference/${MISSING}`));
    expect(hidden.status).toBe(422);
    expect([hidden.status, hidden.text.split(x.psych2.id).join('ID')]).toEqual([absent.status, absent.text.split(MISSING).join('ID')]);
    // by JSON Patch and FHIRPath Patch alike
    const jp = (reference: string) => send('PATCH', ref(folder), tok.nurse, [{ op: 'add', path: '/entry/-', value: { item: { reference } } }], JSON_PATCH);
    const fp = (reference: string) => send('PATCH', ref(folder), tok.nurse, {
      resourceType: 'Parameters',
      parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'List' }, { name: 'name', valueString: 'entry' }, { name: 'value', part: [{ name: 'item', valueReference: { reference } }] }] }],
    });
    for (const patch of [jp, fp]) {
      const h = await patch(ref(x.psych2));
      const a = await patch(`DocumentReference/${MISSING}`);
      expect(h.status).toBe(422);
      expect([h.status, h.text.split(x.psych2.id).join('ID')]).toEqual([a.status, a.text.split(MISSING).join('ID')]);
    }
    // the stored List is as the GP wrote it; the hidden entry the nurse kept was not shown, so re-adding it is no new reference
    const stored = (await get(ref(folder), t.token)).body;
    expect([stored.meta.versionId, items(stored)]).toEqual([folder.meta.versionId, [ref(x.report), ref(x.psych)]]);
    const kept = await send('PUT', ref(folder), tok.nurse, { ...view, title: `Renamed ${RUN}` });
    expect(kept.status).toBe(200);
    expect(kept.text).not.toContain(x.psych.id);
    expect(items((await get(ref(folder), t.token)).body)).toEqual([ref(x.report), ref(x.psych)]);
  });

  it('naming the hidden entry the stored version holds (a guess) is refused as a missing id: it is not confirmed', async () => {
    const folder = await create(list(ref(x.gp), [ref(x.report), ref(x.psych)], 'folder'), tok.gp);
    const { meta: _subsetted, ...view } = (await get(ref(folder), tok.nurse)).body;
    const withItem = (reference: string) => ({ ...view, entry: [...view.entry, { item: { reference } }] });
    const jp = (reference: string) => send('PATCH', ref(folder), tok.nurse, [{ op: 'add', path: '/entry/-', value: { item: { reference } } }], JSON_PATCH);
    const fp = (reference: string) => send('PATCH', ref(folder), tok.nurse, {
      resourceType: 'Parameters',
      parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'List' }, { name: 'name', valueString: 'entry' }, { name: 'value', part: [{ name: 'item', valueReference: { reference } }] }] }],
    });
    for (const write of [(r: string) => send('PUT', ref(folder), tok.nurse, withItem(r)), jp, fp]) {
      const guessed = await write(ref(x.psych));
      const absent = await write(`DocumentReference/${MISSING}`);
      expect(guessed.status).toBe(422);
      expect([guessed.status, guessed.text.split(x.psych.id).join('ID')]).toEqual([absent.status, absent.text.split(MISSING).join('ID')]);
    }
    const stored = (await get(ref(folder), t.token)).body;
    expect([stored.meta.versionId, items(stored)]).toEqual([folder.meta.versionId, [ref(x.report), ref(x.psych)]]);
  });

  it('a new List naming a hidden document is refused as one naming a missing id', async () => {
    const hidden = await send('POST', 'List', tok.nurse, list(ref(x.nurse), [ref(x.psych2)], 'folder', 'urn:oid:1.2.3'));
    const absent = await send('POST', 'List', tok.nurse, list(ref(x.nurse), [`DocumentReference/${MISSING}`], 'folder', 'urn:oid:1.2.3'));
    expect(hidden.status).toBe(422);
    expect([hidden.status, hidden.text.split(x.psych2.id).join('ID')]).toEqual([absent.status, absent.text.split(MISSING).join('ID')]);
  });
});

describe('read paths around Lists leak nothing new', () => {
  const paths = () => [
    ref(x.set), `${ref(x.set)}/_history/1`, `${ref(x.set)}/_history`, `List?_id=${x.set.id}`,
    `List?subject=${ref(x.p1)}&_count=100`, `List?item=${ref(x.report)}`, `DocumentReference?_has:List:item:_id=${x.set.id}`,
    `List?_id=${x.set.id}&_include=List:item`, `DocumentReference?_id=${x.report.id}&_revinclude=List:item`,
    `Patient/${x.p1.id}/$everything?_count=500`, `List?subject=${ref(x.p1)}&_summary=count`, `List?code=${MHD_LIST_TYPES}|submissionset&patient=${ref(x.p1)}`,
  ];
  it('the patient reads the professional\'s SubmissionSet without the document invisible to them, in every read path and in a batch', async () => {
    for (const path of paths()) {
      const res = await get(path, tok.p1);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, res.text.includes(x.unannounced.id)]).toEqual([path, false]);
    }
    const batch = await send('POST', '', tok.p1, { resourceType: 'Bundle', type: 'batch', entry: paths().map((url) => ({ request: { method: 'GET', url } })) });
    expect(batch.status).toBe(200);
    expect(batch.text).not.toContain(x.unannounced.id);
    // searching by the withheld id matches nothing
    expect((await get(`List?item=${ref(x.unannounced)}&_summary=count`, tok.p1)).body.total).toBe(0);
    expect((await get(`List?item=${ref(x.unannounced)}&_summary=count`, tok.gp)).body.total).toBeGreaterThan(0);
    // a conditional write matching on it finds nothing either: the create goes ahead as for a missing id
    const cond = await send('POST', 'List', tok.p1, list(ref(x.p1), [], 'folder'), { 'if-none-exist': `item=${ref(x.unannounced)}` });
    const condMissing = await send('POST', 'List', tok.p1, list(ref(x.p1), [], 'folder'), { 'if-none-exist': `item=DocumentReference/${MISSING}` });
    expect([cond.status, condMissing.status]).toEqual([201, 201]);
  });

  it("another patient's Lists are missing for the patient, in reads, searches and counts", async () => {
    for (const path of [ref(x.folder), `${ref(x.folder)}/_history`, `${ref(x.folder)}/_history/1`, `List?_id=${x.folder.id}`, `List?_id=${x.folder.id}&_summary=count`]) {
      const hidden = await get(path, tok.p2);
      const absent = await get(path.replace(x.folder.id, MISSING), tok.p2);
      expect([path, hidden.status, hidden.text.split(x.folder.id).join('ID')]).toEqual([path, absent.status, absent.text.split(MISSING).join('ID')]);
    }
    const count = await get(`List?subject=${ref(x.p1)}&_summary=count`, tok.p2);
    expect([count.status, count.text.includes(x.folder.id), count.body?.total ?? 0]).toEqual([count.status, false, 0]);
  });
});
