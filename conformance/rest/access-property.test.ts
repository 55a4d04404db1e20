import crypto from 'node:crypto';
import fc from 'fast-check';
import { http, startTarget, Target } from '../harness';
import { A03, A07, as, G15, Json, LOINC, R38, ref, requests } from '../accessFixtures';

/**
 * Property: whatever the actor and whatever the response shape, the DocumentReferences
 * that come back are exactly those the access contract lets that actor see. The world is
 * every combination of record, document type, label and author; the oracle below restates
 * the contract's rules for it independently of the policy engine; fast-check draws actors,
 * shapes and their parameters.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');

const { create } = requests(() => t);

// Document types of the world and who reads them (habilitation-matrix.json: physicians
// read all three; nurses read class 10 and 11 but the psychiatric summary).
const TYPES = [
  { code: '11488-4', cls: '10' },
  { code: '34133-9', cls: '11' },
  { code: '68599-0', cls: '11' },
];
const NURSE_CANNOT_READ = new Set(['68599-0']);
const LABELS = [[], ['MASQUE_PS'], ['INVISIBLE_PATIENT'], ['INVISIBLE_REPRESENTANTS_LEGAUX']];

interface Doc {
  id: string;
  patient: string;
  type: string;
  labels: string[];
  author: string;
}
const w: { docs: Doc[]; patients: Record<string, Json>; actors: Record<string, { token: string; kind: string; ref?: string }> } = { docs: [], patients: {}, actors: {} };

/** Records the professionals have entered: the GP by declared consent on A and as treating physician of B; the nurse by consent on A and on the minor. */
const OPEN: Record<string, { records: string[]; treating: string[] }> = { gp: { records: ['A', 'B'], treating: ['B'] }, nurse: { records: ['A', 'M'], treating: [] }, other: { records: ['A', 'B', 'M'], treating: [] } };

/** The contract, restated for this world. */
function oracle(actor: string, d: Doc): boolean {
  const a = w.actors[actor];
  const patientKey = Object.keys(w.patients).find((k) => w.patients[k].id === d.patient)!;
  switch (a.kind) {
    case 'admin':
      return false;
    case 'patient':
      return actor === `patient${patientKey}` && !d.labels.includes('INVISIBLE_PATIENT');
    case 'parent':
      return patientKey === 'M' && !d.labels.includes('INVISIBLE_PATIENT') && !d.labels.includes('INVISIBLE_REPRESENTANTS_LEGAUX');
    default: {
      const open = OPEN[actor];
      if (!open.records.includes(patientKey)) return false;
      if (actor === 'nurse' && NURSE_CANNOT_READ.has(d.type)) return false;
      if (d.labels.includes('MASQUE_PS') && d.author !== a.ref && !open.treating.includes(patientKey)) return false;
      return true;
    }
  }
}

beforeAll(async () => {
  const mint = (fhirUser: string | undefined, scope: string) => t.issuer!.mint({ sub: fhirUser ?? 'admin', ...(fhirUser ? { fhirUser } : {}), scope });
  const professional = async (key: string, profession: string, specialty?: string) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `${key}-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...(specialty ? { specialty: [{ coding: [{ system: R38, code: specialty }] }] } : {}) });
    w.actors[key] = { token: await mint(ref(p), 'user/*.cruds'), kind: 'practitioner', ref: ref(p) };
  };
  await professional('gp', '10', 'SM54');
  await professional('nurse', '60');
  await professional('other', '10');
  for (const key of ['A', 'B', 'C', 'M']) w.patients[key] = await create({ resourceType: 'Patient', name: [{ family: `${key}-${RUN}` }], birthDate: key === 'M' ? '2014-05-05' : '1975-05-05' });
  for (const key of ['A', 'B']) w.actors[`patient${key}`] = { token: await mint(ref(w.patients[key]), 'patient/*.cruds'), kind: 'patient' };
  const parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(w.patients.M) } });
  w.actors.parent = { token: await mint(ref(parent), 'patient/*.cruds'), kind: 'parent' };
  w.actors.admin = { token: await mint(undefined, 'admin'), kind: 'admin' };

  const consent = (patient: Json, performer: string, actor: Json) => ({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: LOINC, code: '59284-0' }] }],
    patient: { reference: ref(patient) },
    dateTime: new Date().toISOString(),
    performer: [{ reference: performer }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type: 'permit', actor: [actor] },
  });
  const role = (system: string, code: string, who: string) => ({ role: { coding: [{ system, code }] }, reference: { reference: who } });
  const IRCP = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
  for (const [actor, open] of Object.entries(OPEN)) {
    for (const key of open.records.filter((k) => !open.treating.includes(k))) {
      await create(consent(w.patients[key], w.actors[actor].ref!, role(IRCP, 'IRCP', w.actors[actor].ref!)), w.actors[actor].token);
    }
    for (const key of open.treating) {
      await create(consent(w.patients[key], ref(w.patients[key]), role('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'PCP', w.actors[actor].ref!)));
    }
  }
  for (const key of ['A', 'B', 'C', 'M']) {
    for (const type of TYPES) {
      for (const labels of LABELS) {
        for (const author of [w.actors.gp.ref!, w.actors.other.ref!]) {
          const doc = await create({
            resourceType: 'DocumentReference',
            status: 'current',
            ...(labels.length ? { meta: { security: labels.map((code) => ({ system: A07, code })) } } : {}),
            type: { coding: [{ system: LOINC, code: type.code }] },
            category: [{ coding: [{ system: A03, code: type.cls }] }],
            subject: { reference: ref(w.patients[key]) },
            author: [{ reference: author }],
            description: `world ${RUN}`,
            content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }],
          });
          w.docs.push({ id: doc.id, patient: w.patients[key].id, type: type.code, labels, author });
        }
      }
    }
  }
}, 120_000);

/** The DocumentReference ids in an answer, however nested. */
function documentsIn(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) documentsIn(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Json;
    if (o.resourceType === 'DocumentReference' && typeof o.id === 'string') out.add(o.id);
    for (const v of Object.values(o)) documentsIn(v, out);
  }
  return out;
}

type Shape = { name: string; path: (p: Json, docs: Doc[]) => string; batch?: boolean; complete?: boolean };
const SHAPES: Shape[] = [
  { name: 'search by patient', path: (p) => `DocumentReference?patient=${p.id}&_count=200`, complete: true },
  { name: 'search of the world', path: () => `DocumentReference?description=world%20${RUN}&_count=500`, complete: true },
  { name: '_revinclude from the Patient', path: (p) => `Patient?_id=${p.id}&_revinclude=DocumentReference:subject` },
  { name: '$everything', path: (p) => `Patient/${p.id}/$everything?_count=500` },
  { name: 'compartment search', path: (p) => `Patient/${p.id}/DocumentReference?_count=200`, complete: true },
  { name: 'type history', path: () => `DocumentReference/_history?_count=1000` },
  { name: 'search by _id', path: (_p, docs) => `DocumentReference?_id=${docs.map((d) => d.id).join(',')}`, complete: true },
  { name: 'batch of reads', path: () => '', batch: true },
];

describe('a DocumentReference comes back exactly when the contract lets the caller see it', () => {
  it('over drawn actors, shapes, records and documents', async () => {
    const actors = Object.keys(w.actors);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actors),
        fc.constantFrom(...SHAPES),
        fc.constantFrom('A', 'B', 'C', 'M'),
        fc.subarray(w.docs.map((_, i) => i), { minLength: 1, maxLength: 8 }),
        async (actor, shape, patientKey, picked) => {
          const a = w.actors[actor];
          const docs = picked.map((i) => w.docs[i]);
          const patient = w.patients[patientKey];
          const res = shape.batch
            ? await http(t.base, '', { method: 'POST', headers: as(a.token), json: { resourceType: 'Bundle', type: 'batch', entry: docs.map((d) => ({ request: { method: 'GET', url: `DocumentReference/${d.id}` } })) } })
            : await http(t.base, shape.path(patient, docs), { headers: as(a.token) });
          expect(res.status).toBeLessThan(500);
          if (res.status === 403) return; // the whole record or type closed: nothing returned
          const got = documentsIn(res.body);
          const world = new Set(w.docs.map((d) => d.id));
          for (const id of got) {
            if (!world.has(id)) continue; // documents of other suites' runs are not this world's
            const d = w.docs.find((x) => x.id === id)!;
            expect({ actor, shape: shape.name, doc: d, visible: oracle(actor, d) }).toEqual({ actor, shape: shape.name, doc: d, visible: true });
          }
          if (shape.complete || shape.batch) {
            const scope = shape.name === 'search of the world' ? w.docs : shape.name.startsWith('search by _id') || shape.batch ? docs : w.docs.filter((d) => d.patient === patient.id);
            const expected = scope.filter((d) => oracle(actor, d)).map((d) => d.id).sort();
            expect({ actor, shape: shape.name, ids: [...got].filter((id) => world.has(id)).sort() }).toEqual({ actor, shape: shape.name, ids: expected });
          }
        },
      ),
      { numRuns: 60, seed: Number(process.env.PROPERTY_SEED ?? 20261204) },
    );
  }, 240_000);

  it('counts agree with the oracle for every actor and record', async () => {
    for (const actor of Object.keys(w.actors)) {
      for (const key of ['A', 'B', 'C', 'M']) {
        const res = await http(t.base, `DocumentReference?patient=${w.patients[key].id}&_summary=count`, { headers: as(w.actors[actor].token) });
        const expected = w.docs.filter((d) => d.patient === w.patients[key].id && oracle(actor, d)).length;
        if (res.status === 403) expect({ actor, key, expected }).toEqual({ actor, key, expected: 0 });
        else expect({ actor, key, total: res.body.total }).toEqual({ actor, key, total: expected });
      }
    }
  });
});
