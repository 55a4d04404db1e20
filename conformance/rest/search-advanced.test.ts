import crypto from 'node:crypto';
import { DOCUMENT_CODES, withIns } from '../frenchFixtures';
import { http, startTarget, Target } from '../harness';

/**
 * Advanced search (http://hl7.org/fhir/R4/search.html) over HTTP: chaining, reverse
 * chaining (_has), _include / _revinclude (:iterate), composite parameters, modifiers,
 * date precision and prefixes, _sort, compartment search
 * (http://hl7.org/fhir/R4/http.html#vsearch) and Patient/[id]/$everything
 * (http://hl7.org/fhir/R4/patient-operation-everything.html). Every resource of the
 * data set carries a meta.tag unique to this run, so that the suite also runs against
 * a shared server (FHIR_BASE_URL).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const TAG_SYSTEM = 'urn:test:search-advanced';
const TAG = `${TAG_SYSTEM}|${RUN}`;
const meta = (extra: Record<string, unknown> = {}) => ({ tag: [{ system: TAG_SYSTEM, code: RUN }], ...extra });

const INS = 'urn:oid:1.2.250.1.213.1.4.8';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const PROFILE = `http://example.org/fhir/StructureDefinition/dr-test-${RUN}`;
const MRN = `446053${RUN}`;
/** A NIR unique to this run, with a valid key (97 - body mod 97), as an INS identifier must have. */
const RUN_DIGITS = String(parseInt(RUN, 16) % 1_000_000).padStart(6, '0');
const nir = (n: string) => {
  const body = `1${RUN_DIGITS.slice(0, 2)}0575${RUN_DIGITS.slice(2)}${n}`;
  return body + String(97n - (BigInt(body) % 97n)).padStart(2, '0');
};

type Pairs = [string, string][];
const qs = (pairs: Pairs) => new URLSearchParams(pairs).toString();
const sorted = (a: string[]) => [...a].sort();

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} answered ${res.status}: ${res.text}`);
  return res.body;
}

/** GET path?pairs, expecting a searchset Bundle. */
async function get(path: string, pairs: Pairs = [], headers: Record<string, string> = {}): Promise<any> {
  const url = pairs.length ? `${path}?${qs(pairs)}` : path;
  const res = await http(t.base, url, { headers });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.text}`);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('searchset');
  return res.body;
}

/** A search of this run's resources of `type`. */
const search = (type: string, pairs: Pairs = [], headers: Record<string, string> = {}) => get(type, [['_tag', TAG], ...pairs], headers);

const entries = (bundle: any, mode: string): any[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode === mode);
const matchIds = (bundle: any): string[] => entries(bundle, 'match').map((e) => e.resource.id);
const includeKeys = (bundle: any): string[] => entries(bundle, 'include').map((e) => `${e.resource.resourceType}/${e.resource.id}`);
const keys = (bundle: any): string[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'outcome').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
const link = (bundle: any, relation: string): string | undefined => bundle.link?.find((l: any) => l.relation === relation)?.url;
const outcome = (bundle: any) => entries(bundle, 'outcome')[0]?.resource;
const key = (r: any) => `${r.resourceType}/${r.id}`;

/** Matching ids of this run's resources of `type`, sorted. */
const found = async (type: string, ...pairs: Pairs) => sorted(matchIds(await search(type, pairs)));
const idsOf = (...resources: any[]) => sorted(resources.map((r) => r.id));

async function follow(url: string): Promise<any> {
  expect(url.startsWith(`${t.base}/`)).toBe(true);
  const res = await http(t.base, url.slice(t.base.length + 1));
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.text}`);
  return res.body;
}

/** No entry (match or include) appears twice in a Bundle; matches are never repeated as includes. */
function expectNoDuplicates(bundle: any): void {
  const all = keys(bundle);
  expect(new Set(all).size).toBe(all.length);
  const fullUrls = (bundle.entry ?? []).filter((e: any) => e.fullUrl).map((e: any) => e.fullUrl);
  expect(new Set(fullUrls).size).toBe(fullUrls.length);
}

// ---------------------------------------------------------------------------
// Data set
// ---------------------------------------------------------------------------

const r: Record<string, any> = {};

beforeAll(async () => {
  r.org = await create({ resourceType: 'Organization', meta: meta(), name: 'Clinique du Parc' });
  r.gp1 = await create({ resourceType: 'Practitioner', meta: meta(), name: [{ family: 'Généraliste', given: ['Gaston'] }] });
  r.gp2 = await create({ resourceType: 'Practitioner', meta: meta(), name: [{ family: 'Docteur', given: ['Daphné'] }] });
  r.author1 = await create({ resourceType: 'Practitioner', meta: meta(), name: [{ family: 'Auteur', given: ['Alain'] }] });

  // an INS comes with the INS traits (the INS profile applies by default)
  r.pA = await create(withIns({
    resourceType: 'Patient',
    meta: meta(),
    identifier: [
      { system: INS, value: nir('01') },
      { type: { coding: [{ system: V2_0203, code: 'MR' }] }, system: 'urn:oid:1.2.250.1.71.4.2.7', value: MRN },
    ],
    name: [{ family: 'Martin', given: ['Léa'] }],
    gender: 'female',
    birthDate: '1990-05-17',
    generalPractitioner: [{ reference: `Practitioner/${r.gp1.id}` }],
    managingOrganization: { reference: `Organization/${r.org.id}` },
  }, INS, nir('01')));
  r.pB = await create(withIns({
    resourceType: 'Patient',
    meta: meta(),
    // same value as pA's MR, under another identifier type
    identifier: [
      { system: INS, value: nir('02') },
      { type: { coding: [{ system: V2_0203, code: 'PI' }] }, system: 'urn:oid:1.2.250.1.71.4.2.7', value: MRN },
    ],
    name: [{ family: 'Dupont', given: ['Léon'] }],
    gender: 'male',
    birthDate: '1985-11-02',
    generalPractitioner: [{ reference: `Practitioner/${r.gp2.id}` }],
  }, INS, nir('02')));
  // no INS: an identity without the INS traits (gender, birth date) carries a local identifier only
  r.pC = await create({ resourceType: 'Patient', meta: meta(), identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.7', value: `IPP-${nir('03')}` }], name: [{ family: 'Bernard' }] });

  const content = [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }];
  r.d1 = await create({
    resourceType: 'DocumentReference',
    meta: meta({ security: [{ system: CONFIDENTIALITY, code: 'R' }], profile: [PROFILE] }),
    status: 'current',
    category: DOCUMENT_CODES.category,
    type: { coding: [{ system: LOINC, code: '11488-4', display: 'Consultation note' }], text: 'Compte rendu de consultation' },
    subject: { reference: `Patient/${r.pA.id}` },
    date: '2024-03-15T10:00:00Z',
    author: [{ reference: `Practitioner/${r.author1.id}` }],
    custodian: { reference: `Organization/${r.org.id}` },
    context: { period: { start: '2024-03-01', end: '2024-03-31' } },
    content,
  });
  r.d2 = await create({
    resourceType: 'DocumentReference',
    meta: meta(),
    status: 'current',
    category: DOCUMENT_CODES.category,
    type: { coding: [{ system: LOINC, code: '34133-9', display: 'Summary of episode note' }] },
    subject: { reference: `Patient/${r.pA.id}` },
    date: '2024-06-01T08:00:00Z',
    author: [{ reference: `Practitioner/${r.gp1.id}` }],
    relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${r.d1.id}` } }],
    content,
  });
  r.d3 = await create({
    resourceType: 'DocumentReference',
    meta: meta(),
    status: 'current',
    category: DOCUMENT_CODES.category,
    type: { coding: [{ system: LOINC, code: '11488-4', display: 'Consultation note' }] },
    subject: { reference: `Patient/${r.pB.id}` },
    date: '2023-11-20T09:00:00Z',
    author: [{ reference: `Practitioner/${r.author1.id}` }],
    custodian: { reference: `Organization/${r.org.id}` },
    content,
  });
  r.d4 = await create({
    resourceType: 'DocumentReference',
    meta: meta(),
    status: 'current',
    category: DOCUMENT_CODES.category,
    // every document carries a type (dmp-document-entry applies by default): another one than the others'
    type: { coding: [{ system: LOINC, code: '60591-5', display: 'Patient summary Document' }] },
    subject: { reference: `Patient/${r.pC.id}` },
    date: '2025-01-05T00:00:00Z',
    content,
  });

  r.list1 = await create({
    resourceType: 'List',
    meta: meta(),
    status: 'current',
    mode: 'working',
    subject: { reference: `Patient/${r.pA.id}` },
    // a List of pA gathers documents of pA's record (docs/decisions/029-dmp-submissions.md)
    entry: [{ item: { reference: `DocumentReference/${r.d1.id}` } }, { item: { reference: `DocumentReference/${r.d2.id}` } }],
  });

  const mmHg = (value: number) => ({ value, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' });
  const code = (c: string, display: string) => ({ coding: [{ system: LOINC, code: c, display }] });
  const SYSTOLIC = code('8480-6', 'Systolic blood pressure');
  const DIASTOLIC = code('8462-4', 'Diastolic blood pressure');
  const obs = (subject: any, rest: Record<string, unknown>) =>
    create({ resourceType: 'Observation', meta: meta(), status: 'final', subject: { reference: `Patient/${subject.id}` }, ...rest });
  r.oSys = await obs(r.pA, { code: SYSTOLIC, valueQuantity: mmHg(120), effectiveDateTime: '2024-03-15T10:00:00Z' });
  r.oBP = await obs(r.pA, {
    code: code('85354-9', 'Blood pressure panel'),
    effectiveDateTime: '2024-03',
    component: [
      { code: SYSTOLIC, valueQuantity: mmHg(120) },
      { code: DIASTOLIC, valueQuantity: mmHg(50) },
    ],
  });
  r.oLow = await obs(r.pB, { code: SYSTOLIC, valueQuantity: mmHg(95), effectivePeriod: { start: '2024-02-20', end: '2024-04-10' } });
  r.oOld = await obs(r.pB, { code: SYSTOLIC, valueQuantity: mmHg(140), effectiveDateTime: '2023-12-31T12:00:00Z' });
  r.oAncient = await obs(r.pC, { code: SYSTOLIC, effectiveDateTime: '2010-01-01' });
  r.oBP2 = await obs(r.pB, {
    code: code('85354-9', 'Blood pressure panel'),
    effectiveDateTime: '2024-07-01',
    component: [
      { code: SYSTOLIC, valueQuantity: mmHg(55) },
      { code: DIASTOLIC, valueQuantity: mmHg(40) },
    ],
  });

  const audit = (who: any, what: any[], patient: any) =>
    create({
      resourceType: 'AuditEvent',
      meta: meta(),
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
      action: 'R',
      recorded: '2024-03-16T10:00:00Z',
      agent: [{ who: { reference: `Practitioner/${who.id}` }, requestor: true }],
      source: { observer: { display: 'search-advanced test' } },
      entity: [...what.map((w) => ({ what: { reference: key(w) } })), { what: { reference: `Patient/${patient.id}` } }],
    });
  r.ae1 = await audit(r.author1, [r.d1], r.pA);
  r.ae2 = await audit(r.gp2, [r.oLow], r.pB);
  r.ae3 = await audit(r.gp1, [r.d2], r.pA);

  const provenance = (targets: any[], who: any) =>
    create({ resourceType: 'Provenance', meta: meta(), target: targets.map((x) => ({ reference: key(x) })), recorded: '2024-03-15T10:05:00Z', agent: [{ who: { reference: key(who) } }] });
  r.prov1 = await provenance([r.d1], r.author1);
  r.prov2 = await provenance([r.d2, r.d3], r.gp1);

  const questionnaire = (url?: string) => create({ resourceType: 'Questionnaire', meta: meta(), status: 'active', ...(url ? { url } : {}) });
  r.q1 = await questionnaire(`http://acme.org/${RUN}/fhir/Questionnaire/123`);
  r.q2 = await questionnaire(`http://acme.org/${RUN}/fhir/`);
  r.q3 = await questionnaire(`http://acme.org/${RUN}/other/Questionnaire/9`);
  r.q4 = await questionnaire();
});

const ALL_DOCS = () => idsOf(r.d1, r.d2, r.d3, r.d4);

// ---------------------------------------------------------------------------

describe('chaining', () => {
  it('subject.identifier=system|value finds the documents of the patient with that identifier', async () => {
    expect(await found('DocumentReference', ['subject.identifier', `${INS}|${nir('01')}`])).toEqual(idsOf(r.d1, r.d2));
    expect(await found('DocumentReference', ['subject.identifier', `${INS}|${nir('02')}`])).toEqual(idsOf(r.d3));
    expect(await found('DocumentReference', ['subject.identifier', `${INS}|no-such-ins`])).toEqual([]);
    // subject:Patient restricts the chain to Patient targets
    expect(await found('DocumentReference', ['subject:Patient.identifier', `${INS}|${nir('01')}`])).toEqual(idsOf(r.d1, r.d2));
  });

  it('subject:Patient.name and an untyped chain with several possible targets', async () => {
    expect(await found('DocumentReference', ['subject:Patient.name', 'martin'])).toEqual(idsOf(r.d1, r.d2));
    expect(await found('DocumentReference', ['subject:Patient.name', 'DUPONT'])).toEqual(idsOf(r.d3));
    expect(await found('DocumentReference', ['subject.name', 'bern'])).toEqual(idsOf(r.d4));
    // a type modifier that is not the type of the target finds nothing
    expect(await found('DocumentReference', ['subject:Practitioner.name', 'martin'])).toEqual([]);
    // OR inside a chain, AND between chains
    expect(await found('DocumentReference', ['subject:Patient.name', 'martin,dupont'])).toEqual(idsOf(r.d1, r.d2, r.d3));
    expect(await found('DocumentReference', ['subject:Patient.name', 'martin'], ['author:Practitioner.name', 'auteur'])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['custodian.name', 'clinique'])).toEqual(idsOf(r.d1, r.d3));
  });

  it('chains over two levels: subject:Patient.general-practitioner:Practitioner.name', async () => {
    expect(await found('DocumentReference', ['subject:Patient.general-practitioner:Practitioner.name', 'généraliste'])).toEqual(idsOf(r.d1, r.d2));
    expect(await found('DocumentReference', ['subject:Patient.general-practitioner:Practitioner.name', 'docteur'])).toEqual(idsOf(r.d3));
    expect(await found('DocumentReference', ['subject:Patient.general-practitioner:Organization.name', 'docteur'])).toEqual([]);
    expect(await found('DocumentReference', ['subject:Patient.general-practitioner.name', 'gaston'])).toEqual(idsOf(r.d1, r.d2));
  });

  it('a chain to a parameter the target does not have is ignored with a warning, or refused under handling=strict', async () => {
    const lenient = await search('DocumentReference', [['subject:Patient.shoe-size', '42']]);
    expect(sorted(matchIds(lenient))).toEqual(ALL_DOCS());
    expect(outcome(lenient)?.resourceType).toBe('OperationOutcome');
    expect(outcome(lenient).issue[0].severity).toBe('warning');
    expect(JSON.stringify(outcome(lenient).issue)).toMatch(/shoe-size/);
    // the ignored parameter is not part of the self link
    expect(link(lenient, 'self')).not.toMatch(/shoe-size/);

    for (const name of ['subject:Patient.shoe-size', 'subject.shoe-size', 'subject:Patient.general-practitioner.shoe-size']) {
      const strict = await http(t.base, `DocumentReference?${qs([['_tag', TAG], [name, '42']])}`, { headers: { prefer: 'handling=strict' } });
      expect(strict.status).toBe(400);
      expect(strict.body.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(strict.body.issue)).toMatch(/shoe-size/);
    }
  });

  it('chaining through a parameter that is not a reference is an error', async () => {
    const res = await http(t.base, `DocumentReference?${qs([['_tag', TAG], ['date.name', 'x']])}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('reverse chaining (_has)', () => {
  it('Patient?_has:DocumentReference:subject:type=… finds the patients with such a document', async () => {
    expect(await found('Patient', ['_has:DocumentReference:subject:type', `${LOINC}|34133-9`])).toEqual(idsOf(r.pA));
    expect(await found('Patient', ['_has:DocumentReference:subject:type', `${LOINC}|11488-4`])).toEqual(idsOf(r.pA, r.pB));
    expect(await found('Patient', ['_has:DocumentReference:subject:type', `${LOINC}|00000-0`])).toEqual([]);
    // the spec's example shape: _has:Observation:patient:code
    expect(await found('Patient', ['_has:Observation:patient:code', `${LOINC}|85354-9`])).toEqual(idsOf(r.pA, r.pB));
    expect(await found('Patient', ['_has:Observation:patient:value-quantity', 'gt130'])).toEqual(idsOf(r.pB));
    // AND of two _has
    expect(await found('Patient', ['_has:Observation:patient:value-quantity', 'gt130'], ['_has:DocumentReference:subject:type', `${LOINC}|34133-9`])).toEqual([]);
  });

  it('nested _has: Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=…', async () => {
    expect(await found('Patient', ['_has:Observation:patient:_has:AuditEvent:entity:agent', `Practitioner/${r.gp2.id}`])).toEqual(idsOf(r.pB));
    expect(await found('Patient', ['_has:Observation:patient:_has:AuditEvent:entity:agent', `Practitioner/${r.gp1.id}`])).toEqual([]);
    expect(await found('Patient', ['_has:DocumentReference:subject:_has:AuditEvent:entity:agent', `Practitioner/${r.gp1.id}`])).toEqual(idsOf(r.pA));
  });

  it('AuditEvent.entity targets any resource type: _has:AuditEvent:entity works on documents, observations and patients', async () => {
    expect(await found('DocumentReference', ['_has:AuditEvent:entity:agent', `Practitioner/${r.author1.id}`])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['_has:AuditEvent:entity:agent', `Practitioner/${r.gp1.id}`])).toEqual(idsOf(r.d2));
    expect(await found('Observation', ['_has:AuditEvent:entity:agent', `Practitioner/${r.gp2.id}`])).toEqual(idsOf(r.oLow));
    expect(await found('Patient', ['_has:AuditEvent:entity:action', 'R'])).toEqual(idsOf(r.pA, r.pB));
    expect(await found('AuditEvent', ['entity', `DocumentReference/${r.d1.id}`])).toEqual(idsOf(r.ae1));
    expect(await found('AuditEvent', ['entity', `Observation/${r.oLow.id}`])).toEqual(idsOf(r.ae2));
    expect(await found('AuditEvent', ['patient', `Patient/${r.pA.id}`])).toEqual(idsOf(r.ae1, r.ae3));
  });

  it('an unknown parameter inside _has is refused under handling=strict and ignored with a warning otherwise', async () => {
    const name = '_has:DocumentReference:subject:shoe-size';
    const strict = await http(t.base, `Patient?${qs([['_tag', TAG], [name, '1']])}`, { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
    const lenient = await search('Patient', [[name, '1']]);
    expect(sorted(matchIds(lenient))).toEqual(idsOf(r.pA, r.pB, r.pC));
    expect(outcome(lenient)?.issue[0].severity).toBe('warning');
  });

  it('_has through a parameter that cannot reference the searched type is an error', async () => {
    // Observation.performer cannot reference a DocumentReference
    const res = await http(t.base, `DocumentReference?${qs([['_tag', TAG], ['_has:Observation:performer:code', '1']])}`);
    expect(res.status).toBe(400);
  });
});

describe('_include and _revinclude', () => {
  it('_include=DocumentReference:subject adds each patient once, with search.mode include', async () => {
    const bundle = await search('DocumentReference', [['_id', `${r.d1.id},${r.d2.id},${r.d3.id}`], ['_include', 'DocumentReference:subject']]);
    expect(sorted(matchIds(bundle))).toEqual(idsOf(r.d1, r.d2, r.d3));
    expect(sorted(includeKeys(bundle))).toEqual(sorted([key(r.pA), key(r.pB)]));
    for (const e of entries(bundle, 'include')) expect(e.fullUrl).toBe(`${t.base}/${key(e.resource)}`);
    expectNoDuplicates(bundle);
    // the total counts matches only
    expect(bundle.total).toBe(3);
  });

  it('_include with a target type keeps only references to that type', async () => {
    const authors = await search('DocumentReference', [['_id', `${r.d1.id},${r.d2.id}`], ['_include', 'DocumentReference:author:Practitioner']]);
    expect(sorted(includeKeys(authors))).toEqual(sorted([key(r.author1), key(r.gp1)]));
    const none = await search('DocumentReference', [['_id', `${r.d1.id},${r.d2.id}`], ['_include', 'DocumentReference:subject:Practitioner']]);
    expect(includeKeys(none)).toEqual([]);
    expect(sorted(matchIds(none))).toEqual(idsOf(r.d1, r.d2));
  });

  it('_include=DocumentReference:* and _include=* follow every reference parameter', async () => {
    const expected = sorted([key(r.pA), key(r.author1), key(r.gp1), key(r.org)]);
    for (const value of ['DocumentReference:*', '*']) {
      const bundle = await search('DocumentReference', [['_id', `${r.d1.id},${r.d2.id}`], ['_include', value]]);
      expect(sorted(matchIds(bundle))).toEqual(idsOf(r.d1, r.d2));
      // d2 relatesTo d1: d1 is a match and is not repeated as an include
      expect(sorted(includeKeys(bundle))).toEqual(expected);
      expectNoDuplicates(bundle);
    }
  });

  it('a match referenced by another match is never repeated as an include', async () => {
    const bundle = await search('DocumentReference', [['_include', 'DocumentReference:relatesto']]);
    expect(sorted(matchIds(bundle))).toEqual(ALL_DOCS());
    expect(includeKeys(bundle)).toEqual([]);
    const only = await search('DocumentReference', [['_id', r.d2.id], ['_include', 'DocumentReference:relatesto']]);
    expect(includeKeys(only)).toEqual([key(r.d1)]);
  });

  it('_include:iterate follows references of included resources (DocumentReference → Patient → general practitioner)', async () => {
    const bundle = await search('DocumentReference', [
      ['_id', r.d3.id],
      ['_include', 'DocumentReference:subject'],
      ['_include:iterate', 'Patient:general-practitioner'],
    ]);
    expect(matchIds(bundle)).toEqual([r.d3.id]);
    expect(sorted(includeKeys(bundle))).toEqual(sorted([key(r.pB), key(r.gp2)]));
    // without :iterate, Patient:general-practitioner does not apply to the included patients
    const plain = await http(t.base, `DocumentReference?${qs([['_tag', TAG], ['_id', r.d3.id], ['_include', 'DocumentReference:subject'], ['_include', 'Patient:general-practitioner']])}`);
    expect(plain.status).toBe(200);
    expect(includeKeys(plain.body)).not.toContain(key(r.gp2));
    expect(includeKeys(plain.body)).toContain(key(r.pB));
  });

  it('_revinclude=Provenance:target and AuditEvent:entity add the resources pointing at the matches', async () => {
    const bundle = await search('DocumentReference', [
      ['_id', `${r.d1.id},${r.d2.id}`],
      ['_revinclude', 'Provenance:target'],
      ['_revinclude', 'AuditEvent:entity'],
    ]);
    expect(sorted(matchIds(bundle))).toEqual(idsOf(r.d1, r.d2));
    expect(sorted(includeKeys(bundle))).toEqual(sorted([key(r.prov1), key(r.prov2), key(r.ae1), key(r.ae3)]));
    for (const e of entries(bundle, 'include')) expect(e.search.mode).toBe('include');
    expectNoDuplicates(bundle);
    // prov2 also targets d3: searching d3 alone still includes it, once
    const d3 = await search('DocumentReference', [['_id', r.d3.id], ['_revinclude', 'Provenance:target']]);
    expect(includeKeys(d3)).toEqual([key(r.prov2)]);
  });

  it('_include and _revinclude together, on a Patient search', async () => {
    const bundle = await search('Patient', [
      ['_id', r.pA.id],
      ['_include', 'Patient:general-practitioner'],
      ['_include', 'Patient:organization'],
      ['_revinclude', 'DocumentReference:subject'],
    ]);
    expect(matchIds(bundle)).toEqual([r.pA.id]);
    expect(sorted(includeKeys(bundle))).toEqual(sorted([key(r.gp1), key(r.org), key(r.d1), key(r.d2)]));
    expectNoDuplicates(bundle);
  });

  it('an _include on a parameter that is not a reference is refused under handling=strict', async () => {
    const strict = await http(t.base, `DocumentReference?${qs([['_tag', TAG], ['_include', 'DocumentReference:shoe-size']])}`, { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    const lenient = await search('DocumentReference', [['_include', 'DocumentReference:shoe-size']]);
    expect(sorted(matchIds(lenient))).toEqual(ALL_DOCS());
    expect(includeKeys(lenient)).toEqual([]);
    expect(outcome(lenient)?.issue[0].severity).toBe('warning');
  });
});

describe('composite parameters', () => {
  it('Observation?code-value-quantity=http://loinc.org|8480-6$gt100', async () => {
    expect(await found('Observation', ['code-value-quantity', `${LOINC}|8480-6$gt100`])).toEqual(idsOf(r.oSys, r.oOld));
    expect(await found('Observation', ['code-value-quantity', `${LOINC}|8480-6$gt100|${UCUM}|mm[Hg]`])).toEqual(idsOf(r.oSys, r.oOld));
    expect(await found('Observation', ['code-value-quantity', `${LOINC}|8480-6$lt100`])).toEqual(idsOf(r.oLow));
    expect(await found('Observation', ['code-value-quantity', `${LOINC}|8462-4$gt100`])).toEqual([]);
    // OR of two composite values
    expect(await found('Observation', ['code-value-quantity', `${LOINC}|8480-6$lt100,${LOINC}|8480-6$gt130`])).toEqual(idsOf(r.oLow, r.oOld));
  });

  it('component-code-value-quantity matches code and value within the same component (spec: systolic < 60)', async () => {
    // oBP: systolic 120, diastolic 50; oBP2: systolic 55, diastolic 40
    expect(await found('Observation', ['component-code-value-quantity', `${LOINC}|8480-6$lt60`])).toEqual(idsOf(r.oBP2));
    expect(await found('Observation', ['component-code-value-quantity', `${LOINC}|8480-6$gt100`])).toEqual(idsOf(r.oBP));
    expect(await found('Observation', ['component-code-value-quantity', `${LOINC}|8462-4$gt45`])).toEqual(idsOf(r.oBP));
    expect(await found('Observation', ['component-code-value-quantity', `${LOINC}|8462-4$gt100`])).toEqual([]);
    expect(await found('Observation', ['component-code-value-quantity', `${LOINC}|8462-4$gt45,${LOINC}|8480-6$lt60`])).toEqual(idsOf(r.oBP, r.oBP2));
  });

  it('a composite value with the wrong number of components is an error', async () => {
    const res = await http(t.base, `Observation?${qs([['_tag', TAG], ['code-value-quantity', `${LOINC}|8480-6`]])}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('modifiers and prefixes', () => {
  it('token :of-type matches the identifier type and value (spec example shape)', async () => {
    expect(await found('Patient', ['identifier:of-type', `${V2_0203}|MR|${MRN}`])).toEqual(idsOf(r.pA));
    expect(await found('Patient', ['identifier:of-type', `${V2_0203}|PI|${MRN}`])).toEqual(idsOf(r.pB));
    expect(await found('Patient', ['identifier:of-type', `${V2_0203}|MR|other`])).toEqual([]);
    expect(await found('Patient', ['identifier', MRN])).toEqual(idsOf(r.pA, r.pB));
  });

  it('token :above and :below, which this server does not answer, are refused whatever the handling: ignored, they would widen the answer', async () => {
    for (const path of ['Patient?identifier:above=x', 'Patient?identifier:below=x&family=Nobody', `Patient/${r.pA.id}/*?identifier:above=x`]) {
      for (const handling of ['lenient', 'strict']) {
        const res = await http(t.base, path, { headers: { prefer: `handling=${handling}` } });
        expect([path, handling, res.status, res.body.resourceType]).toEqual([path, handling, 400, 'OperationOutcome']);
        expect(res.body.issue[0].code).toBe('not-supported');
      }
    }
  });

  it('token :not returns resources without the code, including those without a value', async () => {
    expect(await found('DocumentReference', ['type:not', `${LOINC}|11488-4`])).toEqual(idsOf(r.d2, r.d4));
    expect(await found('Patient', ['gender:not', 'male'])).toEqual(idsOf(r.pA, r.pC));
    expect(await found('DocumentReference', ['_security:not', `${CONFIDENTIALITY}|R`])).toEqual(idsOf(r.d2, r.d3, r.d4));
  });

  it('token :text searches the CodeableConcept text and the codings displays', async () => {
    expect(await found('DocumentReference', ['type:text', 'compte rendu'])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['type:text', 'Summary'])).toEqual(idsOf(r.d2));
    expect(await found('DocumentReference', ['type:text', 'consultation'])).toEqual(idsOf(r.d1, r.d3));
    expect(await found('DocumentReference', ['type:text', 'ordonnance'])).toEqual([]);
  });

  it('string :contains and :exact', async () => {
    expect(await found('Patient', ['family:contains', 'UPO'])).toEqual(idsOf(r.pB));
    expect(await found('Patient', ['name:contains', 'éa'])).toEqual(idsOf(r.pA));
    expect(await found('Patient', ['family:exact', 'Dupont'])).toEqual(idsOf(r.pB));
    expect(await found('Patient', ['family:exact', 'dupont'])).toEqual([]);
    expect(await found('Patient', ['family:exact', 'Dupon'])).toEqual([]);
  });

  it('quantity with prefixes and units', async () => {
    const q = (v: string) => found('Observation', ['value-quantity', v]);
    expect(await q(`gt100|${UCUM}|mm[Hg]`)).toEqual(idsOf(r.oSys, r.oOld));
    expect(await q(`lt100|${UCUM}|mm[Hg]`)).toEqual(idsOf(r.oLow));
    expect(await q(`ge140|${UCUM}|mm[Hg]`)).toEqual(idsOf(r.oOld));
    expect(await q(`le95`)).toEqual(idsOf(r.oLow));
    expect(await q('120')).toEqual(idsOf(r.oSys));
    expect(await q('120||mm[Hg]')).toEqual(idsOf(r.oSys));
    expect(await q(`ap118|${UCUM}|mm[Hg]`)).toEqual(idsOf(r.oSys));
    expect(await q(`gt100|${UCUM}|kg`)).toEqual([]);
    const ne = await q('ne120');
    expect(ne).toEqual(expect.arrayContaining(idsOf(r.oLow, r.oOld)));
    expect(ne).not.toContain(r.oSys.id);
    expect(await found('Observation', ['component-value-quantity', 'lt45'])).toEqual(idsOf(r.oBP2));
  });

  it('uri :below and :above (spec examples on a url parameter)', async () => {
    const base = `http://acme.org/${RUN}`;
    expect(await found('Questionnaire', ['url', `${base}/fhir/Questionnaire/123`])).toEqual(idsOf(r.q1));
    expect(await found('Questionnaire', ['url', `${base}/fhir/Questionnaire`])).toEqual([]);
    expect(await found('Questionnaire', ['url:below', `${base}/fhir/`])).toEqual(idsOf(r.q1, r.q2));
    expect(await found('Questionnaire', ['url:below', `${base}/`])).toEqual(idsOf(r.q1, r.q2, r.q3));
    expect(await found('Questionnaire', ['url:above', `${base}/fhir/Questionnaire/123/_history/5`])).toEqual(idsOf(r.q1, r.q2));
    expect(await found('Questionnaire', ['url:above', `${base}/other/Questionnaire/9`])).toEqual(idsOf(r.q3));
  });

  it(':missing=true/false on token, date, string, reference, quantity and uri parameters', async () => {
    expect(await found('Patient', ['gender:missing', 'true'])).toEqual(idsOf(r.pC));
    expect(await found('Patient', ['gender:missing', 'false'])).toEqual(idsOf(r.pA, r.pB));
    expect(await found('Patient', ['birthdate:missing', 'true'])).toEqual(idsOf(r.pC));
    expect(await found('Patient', ['general-practitioner:missing', 'true'])).toEqual(idsOf(r.pC));
    expect(await found('Patient', ['general-practitioner:missing', 'false'])).toEqual(idsOf(r.pA, r.pB));
    expect(await found('Patient', ['family:missing', 'false'])).toEqual(idsOf(r.pA, r.pB, r.pC));
    expect(await found('Patient', ['family:missing', 'true'])).toEqual([]);
    // every document carries a type (dmp-document-entry applies by default)
    expect(await found('DocumentReference', ['type:missing', 'true'])).toEqual([]);
    expect(await found('DocumentReference', ['type:missing', 'false'])).toEqual(ALL_DOCS());
    expect(await found('DocumentReference', ['custodian:missing', 'false'])).toEqual(idsOf(r.d1, r.d3));
    expect(await found('Observation', ['value-quantity:missing', 'true'])).toEqual(idsOf(r.oBP, r.oAncient, r.oBP2));
    expect(await found('Observation', ['value-quantity:missing', 'false'])).toEqual(idsOf(r.oSys, r.oLow, r.oOld));
    expect(await found('Questionnaire', ['url:missing', 'true'])).toEqual(idsOf(r.q4));
    expect(await found('Questionnaire', ['url:missing', 'false'])).toEqual(idsOf(r.q1, r.q2, r.q3));
    const bad = await http(t.base, `Patient?${qs([['gender:missing', 'maybe']])}`);
    expect(bad.status).toBe(400);
  });

  it('_list returns the resources listed in a List', async () => {
    expect(await found('DocumentReference', ['_list', r.list1.id])).toEqual(idsOf(r.d1, r.d2));
    expect(await found('DocumentReference', ['_list', r.list1.id], ['_security', `${CONFIDENTIALITY}|R`])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['_list', 'no-such-list'])).toEqual([]);
    // the list references documents: no patient is a member
    expect(await found('Patient', ['_list', r.list1.id])).toEqual([]);
  });

  it('_tag, _security and _profile search meta', async () => {
    expect(await found('DocumentReference', ['_security', `${CONFIDENTIALITY}|R`])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['_security', 'R'])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['_security', `${CONFIDENTIALITY}|N`])).toEqual([]);
    expect(await found('DocumentReference', ['_profile', PROFILE])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['_profile', `${PROFILE}-other`])).toEqual([]);
    expect(sorted(matchIds(await get('DocumentReference', [['_tag', `${TAG_SYSTEM}|${RUN}`]])))).toEqual(ALL_DOCS());
    expect(matchIds(await get('DocumentReference', [['_tag', `${TAG_SYSTEM}|other-${RUN}`]]))).toEqual([]);
  });
});

describe('dates: precision and prefixes', () => {
  // oSys 2024-03-15T10:00Z, oBP 2024-03, oLow period 2024-02-20..2024-04-10,
  // oOld 2023-12-31T12:00Z, oAncient 2010-01-01, oBP2 2024-07-01
  const d = (...pairs: Pairs) => found('Observation', ...pairs);

  it('eq with a partial date matches values entirely within that period', async () => {
    expect(await d(['date', '2024'])).toEqual(idsOf(r.oSys, r.oBP, r.oLow, r.oBP2));
    expect(await d(['date', '2024-03'])).toEqual(idsOf(r.oSys, r.oBP));
    expect(await d(['date', 'eq2024-03-15'])).toEqual(idsOf(r.oSys));
    expect(await d(['date', '2024-03-15T10:00:00Z'])).toEqual(idsOf(r.oSys));
    // a Period (or a month) that only overlaps the day does not equal it
    expect(await d(['date', '2024-03-20'])).toEqual([]);
  });

  it('ne is the negation of eq', async () => {
    expect(await d(['date', 'ne2024-03'])).toEqual(idsOf(r.oLow, r.oOld, r.oAncient, r.oBP2));
  });

  it('sa and eb: starts after / ends before the searched range', async () => {
    expect(await d(['date', 'sa2024-03-01'])).toEqual(idsOf(r.oSys, r.oBP2));
    expect(await d(['date', 'eb2024-03-01'])).toEqual(idsOf(r.oOld, r.oAncient));
  });

  it('gt, lt, ge, le compare ranges: a Period overlapping the boundary matches both sides', async () => {
    expect(await d(['date', 'gt2024-03-31'])).toEqual(idsOf(r.oLow, r.oBP2));
    expect(await d(['date', 'lt2024-02-21'])).toEqual(idsOf(r.oLow, r.oOld, r.oAncient));
    expect(await d(['date', 'ge2024-04-01'])).toEqual(idsOf(r.oLow, r.oBP2));
    expect(await d(['date', 'ge2024-03-20'], ['date', 'le2024-03-20'])).toEqual(idsOf(r.oBP, r.oLow));
  });

  it('ap matches values near the date and not far ones', async () => {
    const near = await d(['date', 'ap2024-03-15']);
    expect(near).toContain(r.oSys.id);
    expect(near).not.toContain(r.oAncient.id);
  });

  it('DocumentReference: instant date and Period (context.period)', async () => {
    expect(await found('DocumentReference', ['date', '2024'])).toEqual(idsOf(r.d1, r.d2));
    expect(await found('DocumentReference', ['date', 'lt2024'])).toEqual(idsOf(r.d3));
    expect(await found('DocumentReference', ['date', 'ge2024-06-01T08:00:00Z'])).toEqual(idsOf(r.d2, r.d4));
    expect(await found('DocumentReference', ['period', '2024-03'])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['period', '2024-03-15'])).toEqual([]);
    expect(await found('DocumentReference', ['period', 'ge2024-03-15'])).toEqual(idsOf(r.d1));
    expect(await found('DocumentReference', ['period', 'sa2024-03-15'])).toEqual([]);
    expect(await found('DocumentReference', ['period', 'sa2024-02-28'])).toEqual(idsOf(r.d1));
  });
});

describe('_sort', () => {
  it('on a token', async () => {
    // d4 (another type) is left out so that the three others sort among themselves
    const asc = matchIds(await search('DocumentReference', [['type:not', `${LOINC}|60591-5`], ['_sort', 'type']]));
    expect(sorted(asc.slice(0, 2))).toEqual(idsOf(r.d1, r.d3));
    expect(asc[2]).toBe(r.d2.id);
    const desc = matchIds(await search('DocumentReference', [['type:not', `${LOINC}|60591-5`], ['_sort', '-type']]));
    expect(desc[0]).toBe(r.d2.id);
    expect(sorted(desc.slice(1))).toEqual(idsOf(r.d1, r.d3));
  });

  it('on several keys with -', async () => {
    expect(matchIds(await search('DocumentReference', [['type:not', `${LOINC}|60591-5`], ['_sort', 'type,-date']]))).toEqual([r.d1.id, r.d3.id, r.d2.id]);
    expect(matchIds(await search('DocumentReference', [['type:not', `${LOINC}|60591-5`], ['_sort', 'type,date']]))).toEqual([r.d3.id, r.d1.id, r.d2.id]);
    expect(matchIds(await search('DocumentReference', [['type:not', `${LOINC}|60591-5`], ['_sort', '-type,date']]))).toEqual([r.d2.id, r.d3.id, r.d1.id]);
    expect(matchIds(await search('DocumentReference', [['_sort', '-date']]))).toEqual([r.d4.id, r.d2.id, r.d1.id, r.d3.id]);
  });

  it('on a reference: resources with the same target are together, - reverses the groups', async () => {
    const subjectOf: Record<string, string> = { [r.d1.id]: r.pA.id, [r.d2.id]: r.pA.id, [r.d3.id]: r.pB.id, [r.d4.id]: r.pC.id };
    const groups = (ids: string[]) => ids.map((id) => subjectOf[id]).filter((s, i, a) => i === 0 || a[i - 1] !== s);
    const asc = matchIds(await search('DocumentReference', [['_sort', 'subject']]));
    const desc = matchIds(await search('DocumentReference', [['_sort', '-subject']]));
    expect(sorted(asc)).toEqual(ALL_DOCS());
    expect(groups(asc)).toHaveLength(3);
    expect(groups(desc)).toEqual([...groups(asc)].reverse());
    // second key inside a group
    const byDate = matchIds(await search('DocumentReference', [['_sort', 'subject,-date']]));
    expect(byDate.indexOf(r.d2.id)).toBe(byDate.indexOf(r.d1.id) - 1);
    const byDateAsc = matchIds(await search('DocumentReference', [['_sort', '-subject,date']]));
    expect(byDateAsc.indexOf(r.d1.id)).toBe(byDateAsc.indexOf(r.d2.id) - 1);
  });
});

describe('compartment search', () => {
  it('Patient/[id]/DocumentReference?type=… searches inside the patient compartment', async () => {
    const typed = await get(`Patient/${r.pA.id}/DocumentReference`, [['_tag', TAG], ['type', `${LOINC}|11488-4`]]);
    expect(matchIds(typed)).toEqual([r.d1.id]);
    const all = await get(`Patient/${r.pA.id}/DocumentReference`);
    expect(sorted(matchIds(all))).toEqual(idsOf(r.d1, r.d2));
    expect(all.total).toBe(2);
    // the same as the type search on the compartment parameter
    const plain = await get('DocumentReference', [['subject', `Patient/${r.pA.id}`]]);
    expect(sorted(matchIds(plain))).toEqual(sorted(matchIds(all)));
    const obs = await get(`Patient/${r.pB.id}/Observation`, [['_sort', 'date']]);
    expect(matchIds(obs)).toEqual([r.oOld.id, r.oLow.id, r.oBP2.id]);
    const ae = await get(`Patient/${r.pA.id}/AuditEvent`);
    expect(sorted(matchIds(ae))).toEqual(idsOf(r.ae1, r.ae3));
  });

  it('Patient/[id]/* returns the resources of every type in the compartment, and nothing else', async () => {
    const bundle = await get(`Patient/${r.pA.id}/*`);
    const got = keys(bundle);
    for (const x of [r.d1, r.d2, r.oSys, r.oBP, r.ae1, r.ae3, r.list1]) expect(got).toContain(key(x));
    for (const x of [r.d3, r.d4, r.oLow, r.oOld, r.oAncient, r.oBP2, r.ae2, r.pB, r.pC, r.gp1, r.gp2, r.author1, r.org, r.prov1]) expect(got).not.toContain(key(x));
    expect(new Set(got).size).toBe(got.length);
  });

  it('Patient/[id]/* pages across types with _count, and the pages hold exactly the unpaged result', async () => {
    const whole = keys(await get(`Patient/${r.pA.id}/*`, [['_count', '1000']]));
    expect(whole.length).toBeGreaterThan(4);
    const paged: string[] = [];
    let page = await get(`Patient/${r.pA.id}/*`, [['_count', '2']]);
    for (let guard = 0; guard < 100; guard++) {
      const got = keys(page);
      expect(got.length).toBeLessThanOrEqual(2);
      paged.push(...got);
      const next = link(page, 'next');
      if (!next) break;
      page = await follow(next);
    }
    expect(paged).toEqual(whole);
    const counted = await get(`Patient/${r.pA.id}/*`, [['_count', '0']]);
    expect(counted.total).toBe(whole.length);
    expect(counted.entry).toBeUndefined();
  });

  it('Patient/[id]/* with _type, and with a parameter only some types define', async () => {
    const typed = keys(await get(`Patient/${r.pA.id}/*`, [['_type', 'DocumentReference,AuditEvent']]));
    expect(sorted(typed)).toEqual(sorted([r.d1, r.d2, r.ae1, r.ae3].map(key)));
    // DocumentReference defines "type": only its resources can match
    const byType = keys(await get(`Patient/${r.pA.id}/*`, [['type', `${LOINC}|11488-4`]]));
    expect(byType).toEqual([key(r.d1)]);
  });

  it('Patient/[id]/* applies result parameters to every type without narrowing the types', async () => {
    const all = sorted(keys(await get(`Patient/${r.pA.id}/*`, [['_count', '1000']])));
    const counted = await get(`Patient/${r.pA.id}/*`, [['_summary', 'count']]);
    expect(counted.total).toBe(all.length);
    const sortedByDate = await get(`Patient/${r.pA.id}/*`, [['_sort', '-_lastUpdated'], ['_count', '1000']]);
    expect(sorted(keys(sortedByDate))).toEqual(all);
    const withTotal = await get(`Patient/${r.pA.id}/*`, [['_count', '2'], ['_total', 'accurate']]);
    expect(withTotal.total).toBe(all.length);
    expect(entries(withTotal, 'match')).toHaveLength(2);
  });

  it('Patient/[id]/* checks result parameters as a type search does', async () => {
    expect((await http(t.base, `Patient/${r.pA.id}/*?_sort=bogus`, { headers: { prefer: 'handling=strict' } })).status).toBe(400);
    expect((await http(t.base, `Patient/${r.pA.id}/*?_total=bogus`)).status).toBe(400);
    const page = await get(`Patient/${r.pA.id}/*`, [['_count', '2'], ['_total', 'accurate']]);
    expect(link(page, 'next')).toContain('_total=accurate');
  });

  it('Patient/[id]/* refuses a parameter no type defines under strict handling, and warns otherwise', async () => {
    const strict = await http(t.base, `Patient/${r.pA.id}/*?nonsense=1`, { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    const lenient = await get(`Patient/${r.pA.id}/*`, [['nonsense', '1']]);
    expect(outcome(lenient)?.issue[0].diagnostics).toMatch(/nonsense/);
    expect(sorted(keys(lenient))).toEqual(sorted(keys(await get(`Patient/${r.pA.id}/*`))));
  });

  it('a type outside the Patient compartment is refused with 400', async () => {
    const res = await http(t.base, `Patient/${r.pA.id}/Practitioner`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const org = await http(t.base, `Patient/${r.pA.id}/Organization`);
    expect(org.status).toBe(400);
  });

  it('an unknown patient yields no resource', async () => {
    const res = await http(t.base, `Patient/no-such-patient-${RUN}/DocumentReference`);
    // the spec does not say whether this is an empty searchset or 404: either, never a match
    expect([200, 404]).toContain(res.status);
    if (res.status === 200) {
      expect(res.body.type).toBe('searchset');
      expect(matchIds(res.body)).toEqual([]);
    } else expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('Patient/[id]/$everything', () => {
  const inCompartmentA = () => [r.pA, r.d1, r.d2, r.oSys, r.oBP, r.ae1, r.ae3, r.list1].map(key);
  const referencedByA = () => [r.gp1, r.author1, r.org].map(key);
  const notForA = () => [r.pB, r.pC, r.d3, r.d4, r.oLow, r.oOld, r.oAncient, r.oBP2, r.ae2, r.gp2].map(key);

  function expectEverythingOfA(bundle: any): void {
    const got = keys(bundle);
    for (const k of inCompartmentA()) expect(got).toContain(k);
    for (const k of referencedByA()) expect(got).toContain(k);
    for (const k of notForA()) expect(got).not.toContain(k);
    expect(new Set(got).size).toBe(got.length);
  }

  it('GET returns the patient, its compartment and the resources they reference, each once', async () => {
    const bundle = await get(`Patient/${r.pA.id}/$everything`);
    expectEverythingOfA(bundle);
    expect(entries(bundle, 'match').map((e) => key(e.resource))).toContain(key(r.pA));
  });

  it('POST gives the same result as GET', async () => {
    const res = await http(t.base, `Patient/${r.pA.id}/$everything`, { method: 'POST', json: { resourceType: 'Parameters' } });
    expect(res.status).toBe(200);
    expectEverythingOfA(res.body);
    const viaGet = await get(`Patient/${r.pA.id}/$everything`);
    expect(sorted(keys(res.body))).toEqual(sorted(keys(viaGet)));
  });

  it('POST takes its parameters from a Parameters body', async () => {
    const res = await http(t.base, `Patient/${r.pA.id}/$everything`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: '_type', valueCode: 'DocumentReference' }] },
    });
    expect(res.status).toBe(200);
    expect(sorted(keys(res.body))).toEqual(sorted([key(r.d1), key(r.d2)]));
  });

  it('_type restricts the resource types', async () => {
    const bundle = await get(`Patient/${r.pA.id}/$everything`, [['_type', 'DocumentReference,Observation']]);
    const got = keys(bundle);
    expect(sorted(got)).toEqual(sorted([r.d1, r.d2, r.oSys, r.oBP].map(key)));
    const withGp = await get(`Patient/${r.pA.id}/$everything`, [['_type', 'Patient,Practitioner']]);
    expect(keys(withGp)).toContain(key(r.pA));
    for (const k of keys(withGp)) expect(k).toMatch(/^(Patient|Practitioner)\//);
    expect(keys(withGp)).not.toContain(key(r.pB));
  });

  it('_count pages through every resource exactly once', async () => {
    const all = sorted(keys(await get(`Patient/${r.pA.id}/$everything`)));
    const first = await get(`Patient/${r.pA.id}/$everything`, [['_count', '3']]);
    expect(entries(first, 'match').length).toBeLessThanOrEqual(3);
    expect(link(first, 'next')).toBeDefined();
    const matches: string[] = [];
    const seen = new Set<string>();
    let bundle = first;
    for (let guard = 0; ; guard++) {
      if (guard > 20) throw new Error('too many pages');
      expectNoDuplicates(bundle);
      matches.push(...entries(bundle, 'match').map((e) => key(e.resource)));
      for (const k of keys(bundle)) seen.add(k);
      const next = link(bundle, 'next');
      if (!next) break;
      bundle = await follow(next);
    }
    expect(new Set(matches).size).toBe(matches.length);
    for (const k of inCompartmentA()) expect(matches.filter((m) => m === k)).toHaveLength(1);
    expect(sorted([...seen])).toEqual(all);
  });

  it('previous goes back to the same page, from the second page and from the last', async () => {
    const page = (b: Parameters<typeof entries>[0]) => entries(b, 'match').map((e) => key(e.resource));
    const first = await get(`Patient/${r.pA.id}/$everything`, [['_count', '2']]);
    const second = await follow(link(first, 'next')!);
    expect(page(second).length).toBeGreaterThan(0);
    expect(page(await follow(link(second, 'previous')!))).toEqual(page(first));
    let last = second;
    let before = first;
    while (link(last, 'next')) [before, last] = [last, await follow(link(last, 'next')!)];
    expect(page(await follow(link(last, 'previous')!))).toEqual(page(before));
  });

  it('POST takes a Parameters resource or no body; anything else is 400', async () => {
    for (const json of [{ resourceType: 'Patient' }, [], 'text']) {
      const res = await http(t.base, `Patient/${r.pA.id}/$everything`, { method: 'POST', json });
      expect([JSON.stringify(json), res.status, res.body.resourceType]).toEqual([JSON.stringify(json), 400, 'OperationOutcome']);
    }
    expect((await http(t.base, `Patient/${r.pA.id}/$everything`, { method: 'POST' })).status).toBe(200);
  });

  it('an unknown parameter: 400 under strict handling, ignored with a warning entry under lenient', async () => {
    const strict = await http(t.base, `Patient/${r.pA.id}/$everything?nonsense=1`, { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    const lenient = await http(t.base, `Patient/${r.pA.id}/$everything?nonsense=1`, { headers: { prefer: 'handling=lenient' } });
    expect(lenient.status).toBe(200);
    const outcome = entries(lenient.body, 'outcome');
    expect(outcome).toHaveLength(1);
    expect(JSON.stringify(outcome[0].resource.issue)).toContain('nonsense');
    expect(entries(lenient.body, 'match').length).toBe(entries((await http(t.base, `Patient/${r.pA.id}/$everything`)).body, 'match').length);
  });

  it('an unknown patient is 404', async () => {
    const res = await http(t.base, `Patient/no-such-patient-${RUN}/$everything`);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  // Last: it updates d2.
  it('_since returns only the resources updated since that instant', async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { meta: _m, ...body } = r.d2;
    const updated = await http(t.base, `DocumentReference/${r.d2.id}`, { method: 'PUT', json: { ...body, meta: meta() } });
    expect(updated.status).toBe(200);
    // the server's own clock: the instant of the update
    const since = updated.body.meta.lastUpdated as string;
    expect(Date.parse(since)).toBeGreaterThan(Date.parse(r.q4.meta.lastUpdated));
    const bundle = await get(`Patient/${r.pA.id}/$everything`, [['_since', since]]);
    const got = keys(bundle);
    expect(got).toContain(key(r.d2));
    expect(got).not.toContain(key(r.d1));
    expect(got).not.toContain(key(r.oSys));
    // nothing older than _since, whether a match or a referenced (include) resource
    const older = (bundle.entry ?? []).filter((e: any) => Date.parse(e.resource.meta.lastUpdated) < Date.parse(since)).map((e: any) => `${e.search?.mode} ${key(e.resource)}`);
    expect(older).toEqual([]);
  });
});
