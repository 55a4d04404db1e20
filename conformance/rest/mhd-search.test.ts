import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { consent, document as documentResource, G15, ircp, Json, R38, ref, REPORT, requests } from '../accessFixtures';
import { freshNir, withIns } from '../frenchFixtures';

/**
 * ITI-67 Find Document References and ITI-66 Find Lists: the parameters IHE MHD and PDSm add
 * (profiles/SearchParameter), the INS through patient.identifier, archived documents left
 * out unless asked, and a document the caller may not see never found through them.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, mint } = requests(() => t);
const ARCHIVED = 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived';
const MHD = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/';
const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const J03 = 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire';

interface DocOptions {
  creation?: string;
  period?: { start?: string; end?: string };
  archived?: boolean;
  labels?: string[];
  author?: string;
  patient?: Json;
}
const x: Record<string, Json> = {};
const tok: Record<string, string> = {};
const ins = freshNir();

function doc(o: DocOptions): Json {
  const d = documentResource(o.patient ?? x.p1, REPORT, o.author ?? ref(x.gp), o.labels ?? [], undefined, `mhd ${RUN}`);
  if (o.creation) d.content[0].attachment.creation = o.creation;
  if (o.period) d.context = { period: o.period };
  if (o.archived !== undefined) d.extension = [{ url: ARCHIVED, valueBoolean: o.archived }];
  return d;
}

function submissionSet(patient: Json, o: { designation: string; sourceId: string; org?: Json; archived?: boolean }): Json {
  return {
    resourceType: 'List',
    status: 'current',
    mode: 'working',
    title: `lot ${RUN}`,
    code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code: 'submissionset' }] },
    subject: { reference: ref(patient) },
    date: '2024-03-01T10:00:00+01:00',
    extension: [
      { url: `${MHD}ihe-designationType`, valueCodeableConcept: { coding: [{ system: J03, code: o.designation }] } },
      { url: `${MHD}ihe-sourceId`, valueIdentifier: { system: 'urn:ietf:rfc:3986', value: o.sourceId } },
      ...(o.archived !== undefined ? [{ url: ARCHIVED, valueBoolean: o.archived }] : []),
    ],
    source: { reference: ref(x.gp), ...(o.org ? { extension: [{ url: `${MHD}ihe-authorOrg`, valueReference: { reference: ref(o.org) } }] } : {}) },
  };
}

beforeAll(async () => {
  const practitioner = (family: string) => create({ resourceType: 'Practitioner', name: [{ family: `${family}-${RUN}` }] });
  const role = (p: Json) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.gp = await practitioner('Generaliste');
  await role(x.gp);
  x.other = await practitioner('Autre');
  await role(x.other);
  x.org = await create({ resourceType: 'Organization', name: `Clinique ${RUN}` });
  x.p1 = await create(withIns({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' }, INS_NIR, ins));
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.other = await mint(ref(x.other));
  for (const [who, token] of [[x.gp, tok.gp], [x.other, tok.other]] as const) await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  await create(consent(x.p2, ref(x.other), { type: 'permit', actor: [ircp(ref(x.other))] }), tok.other);

  x.jan = await create(doc({ creation: '2020-01-10T09:00:00+01:00', period: { start: '2020-01-01', end: '2020-01-05' } }));
  x.june = await create(doc({ creation: '2021-06-01T09:00:00+02:00', period: { start: '2021-05-01', end: '2021-05-31' }, archived: false }));
  x.archived = await create(doc({ creation: '2020-01-10T10:00:00+01:00', period: { start: '2020-01-01', end: '2020-01-05' }, archived: true }));
  // same metadata as the January document, masked from professionals but its author
  x.masked = await create(doc({ creation: '2020-01-10T11:00:00+01:00', period: { start: '2020-01-01', end: '2020-01-05' }, labels: ['MASQUE_PS'], author: ref(x.other) }), tok.other);
  x.maskedArchived = await create(doc({ creation: '2020-01-10T12:00:00+01:00', period: { start: '2020-01-01' }, labels: ['MASQUE_PS'], author: ref(x.other), archived: true }), tok.other);
  // a record the general practitioner has no access to
  x.elsewhere = await create(doc({ patient: x.p2, creation: '2020-01-10T09:00:00+01:00', period: { start: '2020-01-01', end: '2020-01-05' }, author: ref(x.other) }), tok.other);

  x.set = await create(submissionSet(x.p1, { designation: 'CR-URG', sourceId: `urn:oid:1.2.3.${RUN.length}`, org: x.org }));
  x.setArchived = await create(submissionSet(x.p1, { designation: 'CR-URG', sourceId: `urn:oid:1.2.3.${RUN.length}`, org: x.org, archived: true }));
  x.setElsewhere = await create(submissionSet(x.p2, { designation: 'CR-URG', sourceId: `urn:oid:1.2.3.${RUN.length}`, org: x.org }), tok.other);
});

/** The ids a search answers, sorted, or the failure with its outcome. */
async function found(path: string, token = tok.gp): Promise<string[]> {
  const res = await get(path, token);
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${res.text}`);
  return (res.body.entry ?? []).filter((e: Json) => e.search?.mode === 'match').map((e: Json) => ref(e.resource)).sort();
}
const ids = (...rs: Json[]) => rs.map(ref).sort();
const DOCS = () => `DocumentReference?description=${encodeURIComponent(`mhd ${RUN}`)}`;
const q = encodeURIComponent;

describe('ITI-67 Find Document References', () => {
  it('creation: by attachment.creation, with prefixes', async () => {
    expect(await found(`${DOCS()}&creation=2020-01-10`)).toEqual(ids(x.jan));
    expect(await found(`${DOCS()}&creation=gt2021-01-01`)).toEqual(ids(x.june));
    expect(await found(`${DOCS()}&creation=${q('lt2020-01-10T09:30:00+01:00')}`)).toEqual(ids(x.jan));
  });

  it('period-start and period-end: by context.period', async () => {
    expect(await found(`${DOCS()}&period-start=2020-01-01`)).toEqual(ids(x.jan));
    expect(await found(`${DOCS()}&period-start=ge2021-01-01`)).toEqual(ids(x.june));
    expect(await found(`${DOCS()}&period-end=le2020-01-31`)).toEqual(ids(x.jan));
    expect(await found(`${DOCS()}&period-end=2021-05-31&period-start=2021-05-01`)).toEqual(ids(x.june));
  });

  it('isArchived: archived documents are left out unless asked', async () => {
    expect(await found(DOCS())).toEqual(ids(x.jan, x.june));
    expect(await found(`${DOCS()}&isArchived=true`)).toEqual(ids(x.archived));
    expect(await found(`${DOCS()}&isArchived=false`)).toEqual(ids(x.june));
    expect(await found(`${DOCS()}&isArchived:missing=true`)).toEqual(ids(x.jan));
    expect(await found(`${DOCS()}&isArchived:not=false`)).toEqual(ids(x.jan, x.archived));
    expect(await found(`Patient/${x.p1.id}/${DOCS()}`)).toEqual(ids(x.jan, x.june));
    const posted = await http(t.base, 'DocumentReference/_search', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.gp}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ description: `mhd ${RUN}` }).toString(),
    });
    expect(posted.status).toBe(200);
    expect(posted.body.entry.map((e: Json) => ref(e.resource)).sort()).toEqual(ids(x.jan, x.june));
    // an archived document stays readable by id
    expect((await get(ref(x.archived), tok.gp)).status).toBe(200);
  });

  it('says in the self link that archived documents were left out', async () => {
    const res = await get(DOCS(), tok.gp);
    const self = res.body.link.find((l: Json) => l.relation === 'self').url;
    expect(decodeURIComponent(self)).toContain('isArchived:not=true');
  });

  it('patient.identifier: the record found by its INS', async () => {
    expect(await found(`${DOCS()}&patient.identifier=${q(`${INS_NIR}|${ins}`)}`)).toEqual(ids(x.jan, x.june));
    expect(await found(`${DOCS()}&patient.identifier=${q(`${INS_NIR}|${ins}`)}&isArchived=true`)).toEqual(ids(x.archived));
    expect(await found(`${DOCS()}&patient.identifier=${q(`${INS_NIR}|${freshNir()}`)}`)).toEqual([]);
  });

  it('author chains (author.family, author:Practitioner.given) reach an author that is not contained', async () => {
    expect(await found(`${DOCS()}&author.family=${q(`Generaliste-${RUN}`)}`)).toEqual(ids(x.jan, x.june));
    expect(await found(`${DOCS()}&author:Practitioner.family=${q(`Autre-${RUN}`)}&isArchived:not=false`)).toEqual([]);
    expect(await found(`${DOCS()}&author:Practitioner.family=${q(`Autre-${RUN}`)}&isArchived:not=false`, tok.other)).toEqual(ids(x.masked, x.maskedArchived, x.elsewhere));
  });

  it('the author sees their masked documents through the same parameters', async () => {
    expect(await found(`${DOCS()}&creation=2020-01-10`, tok.other)).toEqual(ids(x.jan, x.masked, x.elsewhere).sort());
    expect(await found(`${DOCS()}&isArchived=true`, tok.other)).toEqual(ids(x.archived, x.maskedArchived));
  });

  it('a document the caller may not see never comes back through the new parameters', async () => {
    const hidden = [ref(x.masked), ref(x.maskedArchived), ref(x.elsewhere)];
    for (const path of [
      `${DOCS()}&creation=2020-01-10`,
      `${DOCS()}&creation=ge2000-01-01`,
      `${DOCS()}&period-start=2020-01-01`,
      `${DOCS()}&period-end=le2030-01-01`,
      `${DOCS()}&period-end:missing=true`,
      `${DOCS()}&isArchived=true`,
      `${DOCS()}&isArchived:missing=true`,
      `${DOCS()}&isArchived:not=false`,
      `${DOCS()}&patient.identifier=${q(`${INS_NIR}|${ins}`)}&isArchived:not=false`,
    ]) {
      const res = await get(`${path}&_total=accurate`, tok.gp);
      expect(res.status).toBe(200);
      const returned = (res.body.entry ?? []).map((e: Json) => ref(e.resource));
      for (const h of hidden) expect(returned).not.toContain(h);
      expect(res.body.total).toBe(returned.length);
    }
  });
});

describe('ITI-66 Find Lists', () => {
  const LISTS = () => `List?title=${q(`lot ${RUN}`)}`;

  it('designationType, sourceId and authorOrg: by the MHD extensions', async () => {
    expect(await found(`${LISTS()}&designationType=${q(`${J03}|CR-URG`)}`)).toEqual(ids(x.set));
    expect(await found(`${LISTS()}&designationType=OTHER`)).toEqual([]);
    expect(await found(`${LISTS()}&sourceId=${q(`urn:oid:1.2.3.${RUN.length}`)}`)).toEqual(ids(x.set));
    expect(await found(`${LISTS()}&authorOrg=${ref(x.org)}`)).toEqual(ids(x.set));
    expect(await found(`${LISTS()}&authorOrg:Organization.name=${q(`Clinique ${RUN}`)}`)).toEqual(ids(x.set));
  });

  it('source chains reach the submitting author, patient.identifier the record by its INS', async () => {
    expect(await found(`${LISTS()}&source:Practitioner.family=${q(`Generaliste-${RUN}`)}`)).toEqual(ids(x.set));
    expect(await found(`${LISTS()}&patient.identifier=${q(`${INS_NIR}|${ins}`)}`)).toEqual(ids(x.set));
  });

  it('isArchived: archived submission sets are left out unless asked', async () => {
    expect(await found(LISTS())).toEqual(ids(x.set));
    expect(await found(`${LISTS()}&isArchived=true`)).toEqual(ids(x.setArchived));
    expect(await found(`${LISTS()}&patient.identifier=${q(`${INS_NIR}|${ins}`)}&isArchived:not=false`)).toEqual(ids(x.set, x.setArchived));
  });

  it('a List of a record the caller may not see never comes back through the new parameters', async () => {
    expect(await found(`${LISTS()}&sourceId=${q(`urn:oid:1.2.3.${RUN.length}`)}`, tok.other)).toEqual(ids(x.set, x.setElsewhere));
    for (const path of [`designationType=CR-URG`, `sourceId=${q(`urn:oid:1.2.3.${RUN.length}`)}`, `authorOrg=${ref(x.org)}`, 'isArchived:missing=true']) {
      expect(await found(`${LISTS()}&${path}`)).not.toContain(ref(x.setElsewhere));
    }
  });
});

describe('the CapabilityStatement', () => {
  it('lists the MHD and PDSm parameters with their definitions', async () => {
    const res = await get('metadata');
    const params = (type: string) => res.body.rest[0].resource.find((r: Json) => r.type === type).searchParam.map((p: Json) => p.name);
    expect(params('DocumentReference')).toEqual(expect.arrayContaining(['creation', 'period-start', 'period-end', 'isArchived']));
    expect(params('List')).toEqual(expect.arrayContaining(['designationType', 'sourceId', 'authorOrg', 'isArchived']));
  });
});
