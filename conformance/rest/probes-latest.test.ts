import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { A03, A07, consent, G15, ircp, Json, LOINC, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes of the newest read and write paths (MHD submissions and retrieval, ranges and
 * validators on Binary, the MHD search parameters, XML answers, $validate of a stored id,
 * duplicate and reference refusals) for resources hidden from the caller: a masked
 * (MASQUE_PS) document for a professional who is not its author, an INVISIBLE_PATIENT
 * document for the patient, another patient's record. Each answer about a hidden resource
 * must be the answer about a missing one (ACCESS.md: a hidden resource does not exist for
 * the caller), and no body, count or message may name it.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const MHD = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/';
const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
let serial = 0;
const uniqueId = () => `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.${++serial}`;
const MISSING = crypto.randomUUID();

const x: Json = {};
const tok: Record<string, string> = {};

/** An ITI-105 publication: the document with its bytes inline. */
function publication(patient: Json, author: Json, o: { labels?: string[]; masterIdentifier?: string; extra?: Json; text?: string } = {}): Json {
  return {
    resourceType: 'DocumentReference',
    ...(o.labels ? { meta: { security: o.labels.map((code) => ({ system: A07, code })) } } : {}),
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: o.masterIdentifier ?? uniqueId() },
    status: 'current',
    type: { coding: [{ system: LOINC, code: REPORT.code }] },
    category: [{ coding: [{ system: A03, code: REPORT.cls }] }],
    subject: { reference: ref(patient) },
    author: [{ reference: ref(author) }],
    date: '2024-03-01T10:00:00+01:00',
    context: { period: { start: '2024-02-01', end: '2024-02-02' } },
    description: `probe ${RUN}`,
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(o.text ?? `contenu ${RUN} ${++serial}`).toString('base64') } }],
    ...(o.extra ?? {}),
  };
}

/** An answer with every occurrence of `id` replaced, to compare answers about two ids. */
const masked = (res: { status: number; text: string; headers: Headers }, id: string) => ({
  status: res.status,
  body: res.text.split(id).join('ID'),
  contentRange: res.headers.get('content-range'),
  etag: res.headers.get('etag'),
});
const ids = (res: { body: any }) => ((res.body?.entry ?? []) as Json[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`);

beforeAll(async () => {
  const practitioner = async (name: string, profession = '10') => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
    await create({
      resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) },
      code: [{ coding: [{ system: G15, code: profession }] }],
      ...(profession === '10' ? { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] } : {}),
    });
    return p;
  };
  x.gp = await practitioner('Auteur');
  x.other = await practitioner('Autre');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.other = await mint(ref(x.other));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  for (const [who, token] of [[x.gp, tok.gp], [x.other, tok.other]] as const) await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);

  // documents published by their author; the mask is set by the unrestricted client (the patient's choice)
  x.visibleMI = uniqueId();
  x.visible = (await send('POST', 'DocumentReference', tok.gp, publication(x.p1, x.gp, { masterIdentifier: x.visibleMI }))).body;
  x.maskedMI = uniqueId();
  const maskedRes = await send('POST', 'DocumentReference', undefined, publication(x.p1, x.gp, { labels: ['MASQUE_PS'], masterIdentifier: x.maskedMI }));
  expect(maskedRes.status).toBe(201);
  x.masked = maskedRes.body;
  x.maskedBinary = x.masked.content[0].attachment.url;
  x.secretMI = uniqueId();
  const secretRes = await send('POST', 'DocumentReference', tok.gp, publication(x.p1, x.gp, { labels: ['INVISIBLE_PATIENT'], masterIdentifier: x.secretMI }));
  expect(secretRes.status).toBe(201);
  x.secret = secretRes.body;
  x.secretBinary = x.secret.content[0].attachment.url;
  x.p2doc = (await send('POST', 'DocumentReference', undefined, publication(x.p2, x.gp))).body;
  x.p2Binary = x.p2doc.content[0].attachment.url;
  // the author reads them all, the other professional the visible one only, the patient not the secret one
  expect((await get(ref(x.masked), tok.gp)).status).toBe(200);
  expect((await get(x.maskedBinary, tok.gp, { accept: 'text/plain' })).status).toBe(200);
  expect((await get(ref(x.visible), tok.other)).status).toBe(200);
  expect((await get(ref(x.masked), tok.other)).status).toBe(404);
  expect((await get(ref(x.secret), tok.p1)).status).toBe(404);
});

describe('ITI-68 Binary retrieval: ranges and validators', () => {
  const cases = () => [
    ['a masked document for another professional', tok.other, () => x.maskedBinary],
    ['an INVISIBLE_PATIENT document for the patient', tok.p1, () => x.secretBinary],
    ["another patient's document for a patient", tok.p2, () => x.visible.content[0].attachment.url],
  ] as const;
  it.each([
    ['Range', { range: 'bytes=0-3', accept: 'text/plain' }],
    ['an unsatisfiable Range', { range: 'bytes=90000-', accept: 'text/plain' }],
    ['If-None-Match *', { 'if-none-match': '*', accept: 'text/plain' }],
    ['If-None-Match W/"1"', { 'if-none-match': 'W/"1"', accept: 'text/plain' }],
    ['If-Range', { range: 'bytes=0-3', 'if-range': 'W/"1"', accept: 'text/plain' }],
  ])('%s on a hidden Binary answers as on a missing one', async (_name, headers) => {
    for (const [who, token, url] of cases()) {
      const id = url().split('/')[1];
      for (const path of [url(), `${url()}/_history/1`]) {
        const hidden = masked(await get(path, token, headers), id);
        const missing = masked(await get(path.replace(id, MISSING), token, headers), MISSING);
        expect([who, path.replace(id, 'ID'), hidden]).toEqual([who, path.replace(id, 'ID'), missing]);
      }
    }
  });

  it('the author gets the range (the probe reaches the bytes)', async () => {
    const res = await get(x.maskedBinary, tok.gp, { range: 'bytes=0-3', accept: 'text/plain' });
    expect([res.status, res.text]).toEqual([206, 'cont']);
  });
});

describe('ITI-65 and ITI-105 refusals name nothing hidden', () => {
  it('a duplicate uniqueId of a hidden document is refused naming only the submitted entry, as for a visible one', async () => {
    for (const [who, token, mi, hiddenDoc] of [
      ['other', tok.other, () => x.maskedMI, () => x.masked],
      ['p1', tok.p1, () => x.secretMI, () => x.secret],
    ] as const) {
      const hidden = await send('POST', 'DocumentReference', token, publication(x.p1, x.gp, { masterIdentifier: mi() }));
      const shown = await send('POST', 'DocumentReference', token, publication(x.p1, x.gp, { masterIdentifier: x.visibleMI }));
      if (who === 'other') expect([who, hidden.status]).toEqual([who, 409]);
      expect(hidden.text).not.toContain(hiddenDoc().id);
      expect(hidden.text).not.toContain(hiddenDoc().content[0].attachment.url.split('/')[1]);
      expect(hidden.text).not.toContain(x.p1.id);
      expect(hidden.text.split(mi()).join('MI')).toBe(shown.text.split(x.visibleMI).join('MI'));
    }
  });

  it('replacing a hidden document answers as replacing a missing one (ITI-105)', async () => {
    for (const [who, token, patient, target] of [
      ['other', tok.other, () => x.p1, () => x.masked.id],
      ['p2', tok.p2, () => x.p2, () => x.visible.id],
    ] as const) {
      const body = (id: string) => publication(patient(), x.gp, { extra: { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${id}` } }] } });
      const hidden = masked(await send('POST', 'DocumentReference', token, body(target())), target());
      const missing = masked(await send('POST', 'DocumentReference', token, body(MISSING)), MISSING);
      expect([who, hidden.status, hidden.body.replace(/urn:oid:[0-9.]+/g, 'MI')]).toEqual([who, missing.status, missing.body.replace(/urn:oid:[0-9.]+/g, 'MI')]);
    }
    expect((await get(ref(x.masked), tok.gp)).body.status).toBe('current');
  });

  it('an ITI-65 Bundle replacing or appending to a hidden document answers as for a missing one, writing nothing', async () => {
    const bundle = (id: string, code: string) => {
      const doc = `urn:uuid:${crypto.randomUUID()}`;
      const bin = `urn:uuid:${crypto.randomUUID()}`;
      const d = publication(x.p1, x.other, { extra: { relatesTo: [{ code, target: { reference: `DocumentReference/${id}` } }] } });
      d.content = [{ attachment: { contentType: 'text/plain', url: bin } }];
      return {
        resourceType: 'Bundle', type: 'transaction',
        meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] },
        entry: [
          {
            fullUrl: `urn:uuid:${crypto.randomUUID()}`,
            resource: {
              resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }], status: 'current', mode: 'working',
              code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: ref(x.p1) }, date: new Date().toISOString(),
              entry: [{ item: { reference: doc } }],
            },
            request: { method: 'POST', url: 'List' },
          },
          { fullUrl: doc, resource: d, request: { method: 'POST', url: 'DocumentReference' } },
          { fullUrl: bin, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(`b ${RUN}`).toString('base64') }, request: { method: 'POST', url: 'Binary' } },
        ],
      };
    };
    for (const code of ['replaces', 'appends', 'transforms']) {
      const hidden = masked(await send('POST', '', tok.other, bundle(x.masked.id, code)), x.masked.id);
      const missing = masked(await send('POST', '', tok.other, bundle(MISSING, code), {}), MISSING);
      const norm = (s: string) => s.replace(/urn:(oid|uuid):[0-9a-f.-]+/g, 'U');
      expect([code, hidden.status, norm(hidden.body)]).toEqual([code, missing.status, norm(missing.body)]);
    }
    expect((await get(ref(x.masked), tok.gp)).body.status).toBe('current');
  });
});

describe('the MHD search parameters', () => {
  it.each([
    'creation=ge2000-01-01',
    'period-start=2024-02-01',
    'period-end=le2030-01-01',
    'isArchived=false',
    'isArchived:missing=true',
    'isArchived:not=true',
    'relatesto:missing=true',
  ])('%s finds no hidden document, in entries or counts, in JSON or XML', async (param) => {
    for (const [who, token, hidden] of [
      ['other', tok.other, () => x.masked],
      ['p1', tok.p1, () => x.secret],
    ] as const) {
      const path = `DocumentReference?subject=${ref(x.p1)}&${param}&_count=100`;
      const res = await get(path, token);
      expect([who, param, res.status]).toEqual([who, param, 200]);
      expect(ids(res)).not.toContain(ref(hidden()));
      const count = await get(`${path}&_summary=count`, token);
      expect([who, param, count.body.total]).toEqual([who, param, res.body.entry?.length ?? 0]);
      const xml = await get(`${path}&_format=xml`, token);
      expect(xml.text).not.toContain(hidden().id);
      expect(xml.text).not.toContain(hidden().content[0].attachment.url.split('/')[1]);
    }
  });
});

describe('FHIR XML answers', () => {
  it.each(['_format=xml', 'accept'])('a hidden document read in XML (%s) answers as a missing one', async (how) => {
    for (const [who, token, doc] of [
      ['other', tok.other, () => x.masked],
      ['p1', tok.p1, () => x.secret],
      ['p2', tok.p2, () => x.visible],
    ] as const) {
      const headers: Record<string, string> = how === 'accept' ? { accept: 'application/fhir+xml' } : {};
      const q = how === 'accept' ? '' : '?_format=xml';
      for (const path of [`DocumentReference/${doc().id}${q}`, `DocumentReference/${doc().id}/_history${q}`, `DocumentReference/${doc().id}/_history/1${q}`]) {
        const hidden = masked(await get(path, token, headers), doc().id);
        const missing = masked(await get(path.replace(doc().id, MISSING), token, headers), MISSING);
        expect([who, path, hidden]).toEqual([who, path, missing]);
      }
    }
  });
});

describe('$validate of a stored id', () => {
  it.each(['update', 'delete'])('mode %s on a hidden document answers as on a missing one', async (mode) => {
    for (const [who, token, doc] of [
      ['other', tok.other, () => x.masked],
      ['p1', tok.p1, () => x.secret],
      ['p2', tok.p2, () => x.visible],
    ] as const) {
      const params = (id: string) => ({
        resourceType: 'Parameters',
        parameter: [
          { name: 'mode', valueCode: mode },
          ...(mode === 'update' ? [{ name: 'resource', resource: { ...publication(x.p1, x.gp), id } }] : []),
        ],
      });
      const path = (id: string) => `DocumentReference/${id}/$validate`;
      const hidden = masked(await send('POST', path(doc().id), token, params(doc().id)), doc().id);
      const missing = masked(await send('POST', path(MISSING), token, params(MISSING)), MISSING);
      const norm = (s: string) => s.replace(/urn:oid:[0-9.]+/g, 'MI');
      expect([who, mode, hidden.status, norm(hidden.body)]).toEqual([who, mode, missing.status, norm(missing.body)]);
    }
  });
});

describe('writes onto hidden ids', () => {
  it('PUT onto a hidden id answers as PUT onto a free id', async () => {
    for (const [who, token, patient, doc] of [
      ['other', tok.other, () => x.p1, () => x.masked],
      ['p1', tok.p1, () => x.p1, () => x.secret],
      ['p2', tok.p2, () => x.p2, () => x.p2doc],
    ] as const) {
      if (who === 'p2') continue; // p2's own document: not hidden from them
      const body = (id: string) => ({ ...publication(patient(), x.gp), id });
      const free = crypto.randomUUID();
      const hidden = masked(await send('PUT', `DocumentReference/${doc().id}`, token, body(doc().id)), doc().id);
      const missing = masked(await send('PUT', `DocumentReference/${free}`, token, body(free)), free);
      const norm = (s: string) => s.replace(/urn:oid:[0-9.]+/g, 'MI').replace(/[0-9a-f-]{36}/g, 'UUID');
      expect([who, hidden.status, norm(hidden.body)]).toEqual([who, missing.status, norm(missing.body)]);
    }
  });
});

describe('references to hidden documents', () => {
  it('a List naming a masked document shows it to no one but those who may read it, tagged SUBSETTED', async () => {
    const list = await create({
      resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) },
      identifier: [{ system: 'urn:ietf:rfc:3986', value: uniqueId() }],
      extension: [{ url: `${MHD}ihe-sourceId`, valueIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.3.${RUN.length}` } }],
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'folder' }] },
      entry: [ref(x.visible), ref(x.masked)].map((r) => ({ item: { reference: r } })),
    });
    for (const path of [`List/${list.id}`, `List/${list.id}?_format=xml`, `List?_id=${list.id}&_include=List:item`, `List?subject=${ref(x.p1)}&code=folder&_count=100`]) {
      const res = await get(path, tok.other);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, res.text.includes(x.masked.id)]).toEqual([path, false]);
      expect([path, res.text.includes('SUBSETTED')]).toEqual([path, true]);
    }
    expect((await get(`List/${list.id}`, tok.gp)).text).toContain(x.masked.id);
  });

  it("the referrer named by a delete's 409 is not a hidden document", async () => {
    const target = (await send('POST', 'DocumentReference', tok.other, publication(x.p1, x.other))).body;
    const referrer = await send('POST', 'DocumentReference', undefined, publication(x.p1, x.gp, { labels: ['MASQUE_PS'], extra: { relatesTo: [{ code: 'appends', target: { reference: ref(target) } }] } }));
    expect(referrer.status).toBe(201);
    const del = await send('DELETE', ref(target), tok.other);
    expect(del.text).not.toContain(referrer.body.id);
    const v = await send('POST', `${ref(target)}/$validate`, tok.other, { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
    expect(v.text).not.toContain(referrer.body.id);
  });
});

describe("the patient's trail and notices", () => {
  it('never name an INVISIBLE_PATIENT document or its Binary, in JSON or XML', async () => {
    for (const path of [`AuditEvent?patient=${ref(x.p1)}&_count=200`, `AuditEvent?_count=200`, `Communication?_count=200`, `Patient/${x.p1.id}/$everything?_count=500`]) {
      for (const q of ['', '&_format=xml']) {
        const res = await get(`${path}${q}`, tok.p1);
        expect([path + q, res.text.includes(x.secret.id), res.text.includes(x.secretBinary.split('/')[1])]).toEqual([path + q, false, false]);
      }
    }
  });
});

describe('Subscriptions', () => {
  it('a professional reads back their own Subscription, by id and by search', async () => {
    const s = await send('POST', 'Subscription', tok.gp, {
      resourceType: 'Subscription', status: 'requested', reason: `probe ${RUN}`, criteria: `DocumentReference?subject=${ref(x.p1)}`,
      channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook', payload: 'application/fhir+json' },
    });
    expect(s.status).toBe(201);
    expect((await get(`Subscription/${s.body.id}`, tok.gp)).status).toBe(200);
    expect(ids(await get(`Subscription?_count=100`, tok.gp))).toContain(`Subscription/${s.body.id}`);
    expect((await get(`Subscription/${s.body.id}`, tok.other)).status).toBe(404);
  });
});

describe('more refusals and deletes around hidden documents', () => {
  it('deleting with _cascade=delete never deletes a document the caller cannot read', async () => {
    const target = (await send('POST', 'DocumentReference', tok.other, publication(x.p1, x.other))).body;
    const referrer = await send('POST', 'DocumentReference', undefined, publication(x.p1, x.gp, { labels: ['MASQUE_PS'], extra: { relatesTo: [{ code: 'appends', target: { reference: ref(target) } }] } }));
    expect(referrer.status).toBe(201);
    const del = await send('DELETE', `${ref(target)}?_cascade=delete`, tok.other);
    expect(del.text).not.toContain(referrer.body.id);
    expect((await get(ref(referrer.body), tok.gp)).status).toBe(200);
  });

  it('a SubmissionSet naming a hidden document is refused as one naming a missing one', async () => {
    const list = (id: string) => ({
      resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }], status: 'current', mode: 'working',
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: ref(x.p1) }, date: new Date().toISOString(),
      entry: [{ item: { reference: `DocumentReference/${id}` } }],
    });
    const bundle = (id: string) => ({ resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: list(id), request: { method: 'POST', url: 'List' } }] });
    const norm = (s: string) => s.replace(/urn:(oid|uuid):[0-9a-f.-]+/g, 'U');
    for (const [who, token, doc] of [['other', tok.other, () => x.masked], ['p2', tok.p2, () => x.visible]] as const) {
      const hidden = masked(await send('POST', '', token, bundle(doc().id)), doc().id);
      const missing = masked(await send('POST', '', token, bundle(MISSING)), MISSING);
      expect([who, hidden.status, norm(hidden.body)]).toEqual([who, missing.status, norm(missing.body)]);
    }
  });

  it('the MHD List search parameters with _include=List:item return no hidden document', async () => {
    const J03 = 'https://mos.esante.gouv.fr/NOS/TRE_J03-ClasseDocument/FHIR/TRE-J03-ClasseDocument';
    const org = await create({ resourceType: 'Organization', name: `Org ${RUN}` });
    const set = await create({
      resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) }, date: new Date().toISOString(),
      identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }],
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] },
      extension: [
        { url: `${MHD}ihe-designationType`, valueCodeableConcept: { coding: [{ system: J03, code: 'CR-URG' }] } },
        { url: `${MHD}ihe-sourceId`, valueIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.3.${parseInt(RUN, 16)}` } },
      ],
      source: { reference: ref(x.gp), extension: [{ url: `${MHD}ihe-authorOrg`, valueReference: { reference: ref(org) } }] },
      entry: [ref(x.visible), ref(x.masked), ref(x.secret)].map((r) => ({ item: { reference: r } })),
    });
    for (const param of [`designationType=${J03}|CR-URG`, `sourceId=urn:oid:1.2.3.${parseInt(RUN, 16)}`, `authorOrg=${ref(org)}`]) {
      for (const [who, token, hidden] of [['other', tok.other, () => x.masked], ['p1', tok.p1, () => x.secret]] as const) {
        const res = await get(`List?${param}&_include=List:item`, token);
        expect([param, who, res.status]).toEqual([param, who, 200]);
        expect(ids(res)).toContain(ref(set));
        expect([param, who, res.text.includes(hidden().id)]).toEqual([param, who, false]);
      }
      const p2 = await get(`List?${param}&_include=List:item`, tok.p2);
      expect([param, ids(p2)]).toEqual([param, []]);
    }
  });

  it("a caller writing another patient's INS into a record they may write is not told which Patient holds it", async () => {
    const { withIns, freshNir } = await import('../frenchFixtures');
    const nir = freshNir();
    const holder = await create(withIns({ resourceType: 'Patient', name: [{ family: `Ins-${RUN}`, given: ['Jean'] }], birthDate: '1970-01-01', gender: 'male' }, 'urn:oid:1.2.250.1.213.1.4.8', nir));
    const own = (await get(ref(x.p1), tok.p1)).body;
    for (const [who, token] of [['p1', tok.p1], ['gp', tok.gp]] as const) {
      const res = await send('PUT', ref(x.p1), token, withIns(own, 'urn:oid:1.2.250.1.213.1.4.8', nir));
      expect([who, res.text.includes(holder.id)]).toEqual([who, false]);
    }
  });
});

describe('validation and XML bodies around hidden documents', () => {
  const norm = (s: string) => s.replace(/urn:(oid|uuid):[0-9a-f.-]+/g, 'U');
  it('$validate of a document relating to a hidden one answers as for a missing one', async () => {
    for (const path of ['$validate', 'DocumentReference/$validate']) {
      for (const [who, token, doc] of [['other', tok.other, () => x.masked], ['p1', tok.p1, () => x.secret], ['p2', tok.p2, () => x.visible]] as const) {
        const body = (id: string) => publication(who === 'p2' ? x.p2 : x.p1, x.gp, { masterIdentifier: 'urn:oid:1.2.3', extra: { relatesTo: [{ code: 'appends', target: { reference: `DocumentReference/${id}` } }] } });
        const hidden = masked(await send('POST', path, token, body(doc().id)), doc().id);
        const missing = masked(await send('POST', path, token, body(MISSING)), MISSING);
        expect([path, who, hidden.status, norm(hidden.body)]).toEqual([path, who, missing.status, norm(missing.body)]);
      }
    }
  });

  it('an XML publication replacing a hidden document is refused, in XML, as one replacing a missing one', async () => {
    const xml = (id: string) => `<DocumentReference xmlns="http://hl7.org/fhir">
  <masterIdentifier><system value="urn:ietf:rfc:3986"/><value value="${uniqueId()}"/></masterIdentifier>
  <status value="current"/>
  <type><coding><system value="${LOINC}"/><code value="${REPORT.code}"/></coding></type>
  <category><coding><system value="${A03}"/><code value="${REPORT.cls}"/></coding></category>
  <subject><reference value="${ref(x.p1)}"/></subject>
  <author><reference value="${ref(x.other)}"/></author>
  <relatesTo><code value="replaces"/><target><reference value="DocumentReference/${id}"/></target></relatesTo>
  <content><attachment><contentType value="text/plain"/><data value="${Buffer.from(`xml ${RUN}`).toString('base64')}"/></attachment></content>
</DocumentReference>`;
    const post = (id: string) => http(t.base, 'DocumentReference', { method: 'POST', body: xml(id), headers: { authorization: `Bearer ${tok.other}`, 'content-type': 'application/fhir+xml', accept: 'application/fhir+xml' } });
    const hidden = masked(await post(x.masked.id), x.masked.id);
    const missing = masked(await post(MISSING), MISSING);
    expect(hidden.body.startsWith('<OperationOutcome')).toBe(true);
    expect([hidden.status, norm(hidden.body)]).toEqual([missing.status, norm(missing.body)]);
  });

  it("a SubmissionSet identifier taken in another record is refused naming only the submitted entry", async () => {
    const setOf = (patient: Json, value: string) => ({
      resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value }], status: 'current', mode: 'working',
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: ref(patient) }, date: new Date().toISOString(),
    });
    const elsewhere = uniqueId();
    const here = uniqueId();
    const stored = await create(setOf(x.p2, elsewhere));
    const mine = await create(setOf(x.p1, here), tok.other);
    const submit = (value: string) => send('POST', '', tok.other, { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: setOf(x.p1, value), request: { method: 'POST', url: 'List' } }] });
    const hidden = await submit(elsewhere);
    const shown = await submit(here);
    expect(hidden.status).toBe(409);
    expect(hidden.text).not.toContain(stored.id);
    expect(hidden.text).not.toContain(x.p2.id);
    expect(norm(hidden.text.split(elsewhere).join('S'))).toBe(norm(shown.text.split(here).join('S').split(mine.id).join(stored.id)));
  });
});

describe('ITI-68 retrieval semantics (RFC 9110)', () => {
  it('416 names the full length, 304 answers a matching If-None-Match, a CDA document comes as XML', async () => {
    const url = x.visible.content[0].attachment.url;
    const size = x.visible.content[0].attachment.size;
    const whole = await get(url, tok.other, { accept: 'text/plain' });
    expect(whole.status).toBe(200);
    const etag = whole.headers.get('etag');
    expect(etag).toBeTruthy();
    const unsatisfiable = await get(url, tok.other, { accept: 'text/plain', range: `bytes=${size + 10}-` });
    expect([unsatisfiable.status, unsatisfiable.headers.get('content-range')]).toEqual([416, `bytes */${size}`]);
    const same = await get(url, tok.other, { accept: 'text/plain', 'if-none-match': etag! });
    expect([same.status, same.text]).toEqual([304, '']);
    const stale = await get(url, tok.other, { accept: 'text/plain', range: 'bytes=0-3', 'if-range': 'W/"999"' });
    expect(stale.status).toBe(200);
    expect(stale.text.length).toBe(size);
    const cda = '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title></ClinicalDocument>';
    const doc = await send('POST', 'DocumentReference', tok.other, {
      ...publication(x.p1, x.other),
      content: [{ attachment: { contentType: 'text/xml', data: Buffer.from(cda).toString('base64') }, format: { system: 'urn:oid:1.3.6.1.4.1.19376.1.2.3', code: 'urn:ihe:iti:xds-sd:text:2008' } }],
    });
    expect(doc.status).toBe(201);
    const raw = await get(doc.body.content[0].attachment.url, tok.other, { accept: '*/*' });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toMatch(/xml/);
    expect(raw.text).toBe(cda);
  });
});

describe('a replacement of a hidden document', () => {
  it('shows its replaced document to no reader who may not read it, in JSON, XML, search and history', async () => {
    for (const [who, token, labels, author] of [['other', tok.other, ['MASQUE_PS'], undefined], ['p1', tok.p1, ['INVISIBLE_PATIENT'], tok.gp]] as const) {
      const old = await send('POST', 'DocumentReference', author, publication(x.p1, x.gp, { labels: [...labels] }));
      expect(old.status).toBe(201);
      const replacement = await send('POST', 'DocumentReference', tok.gp, publication(x.p1, x.gp, { extra: { relatesTo: [{ code: 'replaces', target: { reference: ref(old.body) } }] } }));
      expect([who, replacement.status]).toEqual([who, 201]);
      expect((await get(ref(old.body), tok.gp)).body.status).toBe('superseded');
      const id = replacement.body.id;
      for (const path of [
        `DocumentReference/${id}`, `DocumentReference/${id}?_format=xml`, `DocumentReference/${id}/_history/1`, `DocumentReference/${id}/_history?_format=xml`,
        `DocumentReference?_id=${id}`, `DocumentReference?_id=${id}&_format=xml`, `DocumentReference?subject=${ref(x.p1)}&creation=ge2000-01-01&_count=200`,
      ]) {
        const res = await get(path, token);
        expect([who, path, res.status, res.text.includes(old.body.id)]).toEqual([who, path, 200, false]);
      }
      const one = await get(`DocumentReference/${id}`, token);
      expect([who, one.body.relatesTo, (one.body.meta.tag ?? []).some((c: Json) => c.code === 'SUBSETTED')]).toEqual([who, undefined, true]);
    }
  });
});

describe('searching by a withheld reference', () => {
  it('finds no referrer of a hidden document: it answers as for an id nobody holds', async () => {
    const hidden = (await send('POST', 'DocumentReference', undefined, publication(x.p1, x.gp, { labels: ['MASQUE_PS'] }))).body;
    const appender = await send('POST', 'DocumentReference', tok.gp, publication(x.p1, x.gp, { extra: { relatesTo: [{ code: 'appends', target: { reference: ref(hidden) } }] } }));
    expect(appender.status).toBe(201);
    const list = await create({ resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(x.p1) }, entry: [{ item: { reference: ref(hidden) } }] }, tok.gp);
    const secretEvents = await get(`AuditEvent?entity=${ref(x.secret)}&_summary=count`, tok.admin);
    expect(secretEvents.body.total).toBeGreaterThan(0);
    for (const [who, token, id, queries] of [
      ['other', tok.other, hidden.id, ['DocumentReference?relatesto=DocumentReference/ID', 'DocumentReference?relatesto=ID', 'List?item=DocumentReference/ID', 'List?item=ID']],
      ['p1', tok.p1, x.secret.id, ['AuditEvent?entity=DocumentReference/ID', `AuditEvent?entity=ID`]],
    ] as const) {
      for (const q of queries) {
        for (const summary of ['', '&_summary=count']) {
          const found = await get(q.replace('ID', id) + summary, token);
          const none = await get(q.replace('ID', MISSING) + summary, token);
          expect([who, q + summary, found.status, found.body.total, ids(found)]).toEqual([who, q + summary, none.status, none.body.total, ids(none)]);
        }
      }
    }
    // the author, who reads the hidden document, finds its referrers
    expect(ids(await get(`DocumentReference?relatesto=${ref(hidden)}`, tok.gp))).toEqual([`DocumentReference/${appender.body.id}`]);
    expect(ids(await get(`List?item=${ref(hidden)}`, tok.gp))).toEqual([ref(list)]);
  });
});

describe('spec behaviour of the new paths', () => {
  const sha1 = (b: Buffer) => crypto.createHash('sha1').update(b).digest('base64');
  const provide = (docs: { mi: string; bytes: Buffer; size?: number; hash?: string }[]) => {
    const entry: Json[] = [];
    const set = `urn:uuid:${crypto.randomUUID()}`;
    const urls = docs.map(() => ({ doc: `urn:uuid:${crypto.randomUUID()}`, bin: `urn:uuid:${crypto.randomUUID()}` }));
    entry.push({
      fullUrl: set, request: { method: 'POST', url: 'List' },
      resource: {
        resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }], status: 'current', mode: 'working',
        code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: ref(x.p1) }, date: new Date().toISOString(),
        entry: urls.map((u) => ({ item: { reference: u.doc } })),
      },
    });
    docs.forEach((d, i) => {
      const doc = publication(x.p1, x.gp, { masterIdentifier: d.mi });
      doc.content = [{ attachment: { contentType: 'text/plain', url: urls[i].bin, ...(d.size !== undefined ? { size: d.size } : {}), ...(d.hash ? { hash: d.hash } : {}) } }];
      entry.push({ fullUrl: urls[i].doc, resource: doc, request: { method: 'POST', url: 'DocumentReference' } });
      entry.push({ fullUrl: urls[i].bin, resource: { resourceType: 'Binary', contentType: 'text/plain', data: d.bytes.toString('base64') }, request: { method: 'POST', url: 'Binary' } });
    });
    return send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] }, entry });
  };
  const stored = async (mi: string) => (await get(`DocumentReference?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${mi}`)}&_summary=count`)).body.total;
  const binaries = async () => (await get('Binary?_summary=count')).body.total;

  it('ITI-65: a wrong size and a wrong hash are both named in one OperationOutcome, and nothing is written', async () => {
    const a = Buffer.from(`a ${RUN}`);
    const b = Buffer.from(`b ${RUN}`);
    const [mi1, mi2] = [uniqueId(), uniqueId()];
    const before = await binaries();
    const res = await provide([{ mi: mi1, bytes: a, size: a.length + 1 }, { mi: mi2, bytes: b, hash: sha1(a) }]);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const where = res.body.issue.filter((i: Json) => i.severity === 'error').map((i: Json) => i.expression?.[0]);
    expect(where).toEqual([expect.stringMatching(/^Bundle\.entry\[1\]\.resource\.content\[0\]\.attachment\.size/), expect.stringMatching(/^Bundle\.entry\[3\]\.resource\.content\[0\]\.attachment\.hash/)]);
    expect([await stored(mi1), await stored(mi2), await binaries()]).toEqual([0, 0, before]);
  });

  it('ITI-65: the same uniqueId twice in one submission is refused, nothing written', async () => {
    const mi = uniqueId();
    const before = await binaries();
    const res = await provide([{ mi, bytes: Buffer.from(`c ${RUN}`) }, { mi, bytes: Buffer.from(`d ${RUN}`) }]);
    expect([409, 422]).toContain(res.status);
    expect([await stored(mi), await binaries()]).toEqual([0, before]);
  });

  it('$validate answers 200 with the errors for an invalid resource of any R4 type, and never passes an unknown type', async () => {
    for (const resource of [{ resourceType: 'ImagingStudy', subject: { reference: ref(x.p1) } }, { resourceType: 'MedicationRequest', subject: { reference: ref(x.p1) } }]) {
      for (const path of ['$validate', `${resource.resourceType}/$validate`]) {
        const res = await send('POST', path, undefined, resource);
        expect([path, res.status, res.body.resourceType]).toEqual([path, 200, 'OperationOutcome']);
        expect(res.body.issue.some((i: Json) => i.severity === 'error')).toBe(true);
      }
    }
    const unknown = await send('POST', '$validate', undefined, { resourceType: 'NotAType' });
    // an unknown type is a verdict (200, with an error) or a refusal of the request (4xx), never a pass
    expect(unknown.status === 200 ? unknown.body.issue.some((i: Json) => i.severity === 'error') : unknown.status >= 400 && unknown.status < 500).toBe(true);
  });

  it('a reference to nothing is refused with 422 and the expression of the element; an XML error answers in XML', async () => {
    const res = await send('POST', 'Observation', undefined, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${MISSING}` } });
    expect(res.status).toBe(422);
    expect(res.body.issue.map((i: Json) => i.expression?.[0])).toContain('Observation.subject');
    const xml = await http(t.base, 'Observation', { method: 'POST', body: '<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code><subject><reference value="Patient/' + MISSING + '"/></subject></Observation>', headers: { 'content-type': 'application/fhir+xml', accept: 'application/fhir+xml' } });
    expect(xml.status).toBe(422);
    expect(xml.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(xml.text).toMatch(/^(<\?xml[^>]*>\s*)?<OperationOutcome xmlns="http:\/\/hl7.org\/fhir">/);
    const broken = await http(t.base, 'Observation', { method: 'POST', body: '<Observation xmlns="http://hl7.org/fhir"><status value="final"', headers: { 'content-type': 'application/fhir+xml', accept: 'application/fhir+xml' } });
    expect(broken.status).toBe(400);
    expect(broken.text).toContain('<OperationOutcome');
  });
});
