import crypto from 'node:crypto';
import { DOCUMENT_CODES } from '../../conformance/frenchFixtures';
import { http, startTarget, Target } from '../../conformance/harness';
import { everything } from '../operations/everything';
import type { SearchConstraints } from '../store/searchSql';
import { UNRESTRICTED } from '../store/visibility';
import { readingAs } from '../store/session';
import { Session } from '../store/session';
import { stringifyJson } from '../json/rawJson';
import { executeSearch, parseRequestSearch, searchBundle } from './search';
import { searchCompartment } from './searchCompartment';
import type { FhirRequest, InteractionContext } from './types';

/**
 * Access constraints (the Visibility a Session carries, set by access control)
 * as data, set here by hand: a hidden row is never returned, counted, included, found
 * through a chain or a _has sub-query, nor returned by $everything. Every probe also runs
 * without constraints, where it must reach the hidden row: a probe that cannot see the
 * row proves nothing.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const ctx = (): InteractionContext => t.running!.ctx;
const session = (constraints: SearchConstraints = UNRESTRICTED) => new Session(ctx().db.knex, readingAs(constraints));

const RUN = crypto.randomBytes(4).toString('hex');
const TAG_SYSTEM = 'urn:test:search-constraints';
const TAG = `${TAG_SYSTEM}|${RUN}`;
const LOINC = 'http://loinc.org';
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const VISIBLE_TYPE = '11488-4';
const OTHER_TYPE = '34133-9';

type Pairs = [string, string][];
const key = (x: { resourceType?: string; resource_type?: string; id: string }) => `${x.resourceType ?? x.resource_type}/${x.id}`;

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), {
    method: 'POST',
    json: { ...resource, meta: { ...((resource.meta as object) ?? {}), tag: [{ system: TAG_SYSTEM, code: RUN }] } },
  });
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} answered ${res.status}: ${res.text}`);
  return res.body;
}

// ---------------------------------------------------------------------------
// Data set: two patients; documents of several types, one confidential (R); shared
// practitioners (one of them confidential too), a Provenance and a List outside any
// patient compartment pointing at everything.
// ---------------------------------------------------------------------------
const r: Record<string, any> = {};

beforeAll(async () => {
  r.P = await create({ resourceType: 'Practitioner', name: [{ family: 'Praticien' }] });
  r.Psec = await create({ resourceType: 'Practitioner', name: [{ family: 'Confidentiel' }], meta: { security: [{ system: CONFIDENTIALITY, code: 'R' }] } });
  r.A = await create({ resourceType: 'Patient', name: [{ family: 'Alpha' }], generalPractitioner: [{ reference: `Practitioner/${r.P.id}` }] });
  r.B = await create({ resourceType: 'Patient', name: [{ family: 'Bravo' }], generalPractitioner: [{ reference: `Practitioner/${r.P.id}` }] });
  const doc = (subject: any, type: string, extra: Record<string, unknown> = {}) =>
    create({
      resourceType: 'DocumentReference',
      status: 'current',
      type: { coding: [{ system: LOINC, code: type }] },
      // every document carries its class (dmp-document-entry applies by default)
      category: DOCUMENT_CODES.category,
      subject: { reference: `Patient/${subject.id}` },
      author: [{ reference: `Practitioner/${r.P.id}` }],
      content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }],
      ...extra,
    });
  r.docA2 = await doc(r.A, VISIBLE_TYPE, { meta: { security: [{ system: CONFIDENTIALITY, code: 'R' }] } });
  r.docA3 = await doc(r.A, OTHER_TYPE);
  r.docB1 = await doc(r.B, VISIBLE_TYPE);
  // docA1 is the document every constraint kind (but resourceTypes) lets through; it
  // points at every other document of its record (a document relates only to documents of
  // its own record: docs/decisions/029-dmp-submissions.md; the List and the Provenance
  // below point at B's too) and at the confidential practitioner.
  r.docA1 = await doc(r.A, VISIBLE_TYPE, {
    author: [{ reference: `Practitioner/${r.P.id}` }, { reference: `Practitioner/${r.Psec.id}` }],
    relatesTo: [r.docA2, r.docA3].map((d) => ({ code: 'appends', target: { reference: key(d) } })),
  });
  const docs = [r.docA1, r.docA2, r.docA3, r.docB1];
  r.prov = await create({
    resourceType: 'Provenance',
    target: docs.map((d) => ({ reference: key(d) })),
    recorded: '2024-01-01T00:00:00Z',
    agent: [{ who: { reference: `Practitioner/${r.P.id}` } }],
  });
  r.list = await create({
    resourceType: 'List',
    status: 'current',
    mode: 'working',
    entry: [...docs, r.B].map((d) => ({ item: { reference: key(d) } })),
  });
  // in A's compartment, pointing at patient B
  r.obsA = await create({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '8480-6' }] },
    subject: { reference: `Patient/${r.A.id}` },
    focus: [{ reference: `Patient/${r.B.id}` }, { reference: key(r.docB1) }],
  });
  r.ae = await create({
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    recorded: '2024-01-01T00:00:00Z',
    agent: [{ who: { reference: `Practitioner/${r.P.id}` }, requestor: true }],
    source: { observer: { display: 'test' } },
    entity: [{ what: { reference: key(r.docA1) } }, { what: { reference: `Patient/${r.A.id}` } }],
  });
});

const ALL_TYPES = () => [...ctx().registry.types.keys()];

interface Kind {
  name: string;
  constraints: () => SearchConstraints;
  /** Rows the constraints hide. */
  hidden: () => any[];
}

const KINDS: Kind[] = [
  {
    name: 'compartments (patient A and shared resources)',
    constraints: () => ({ compartments: [r.A.id, ''] }),
    hidden: () => [r.B, r.docB1],
  },
  {
    name: 'compartments (patient A only)',
    constraints: () => ({ compartments: [r.A.id] }),
    hidden: () => [r.B, r.docB1, r.P, r.Psec, r.prov, r.list],
  },
  {
    name: 'excludedSecurityLabels',
    constraints: () => ({ excludedSecurityLabels: [{ system: CONFIDENTIALITY, code: 'R' }] }),
    hidden: () => [r.docA2, r.Psec],
  },
  {
    name: 'excludedSecurityLabels (code only)',
    constraints: () => ({ excludedSecurityLabels: [{ code: 'R' }] }),
    hidden: () => [r.docA2, r.Psec],
  },
  {
    name: 'requiredTokens on DocumentReference type',
    constraints: () => ({ requiredTokens: [{ resourceType: 'DocumentReference', param: 'type', codes: [{ system: LOINC, code: VISIBLE_TYPE }] }] }),
    hidden: () => [r.docA3],
  },
  {
    name: 'compartments (patient A) with the directory shared',
    constraints: () => ({ compartments: [r.A.id], sharedTypes: ['Practitioner'] }),
    hidden: () => [r.B, r.docB1, r.prov, r.list],
  },
  {
    name: 'excludedSecurityLabels except for the author',
    constraints: () => ({ excludedSecurityLabels: [{ system: CONFIDENTIALITY, code: 'R', exceptAuthors: [`Practitioner/${r.P.id}`] }] }),
    hidden: () => [r.Psec],
  },
  {
    name: 'excludedSecurityLabels except for another author',
    constraints: () => ({ excludedSecurityLabels: [{ system: CONFIDENTIALITY, code: 'R', exceptAuthors: [`Practitioner/${r.Psec.id}`] }] }),
    hidden: () => [r.docA2, r.Psec],
  },
  {
    name: 'excludedSecurityLabels except in the compartment of A',
    constraints: () => ({ excludedSecurityLabels: [{ code: 'R', exceptCompartments: [r.A.id] }] }),
    hidden: () => [r.Psec],
  },
  {
    name: 'excludedSecurityLabels except in the compartment of B',
    constraints: () => ({ excludedSecurityLabels: [{ code: 'R', exceptCompartments: [r.B.id] }] }),
    hidden: () => [r.docA2, r.Psec],
  },
  {
    name: 'resourceTypes (no DocumentReference)',
    constraints: () => ({ resourceTypes: ALL_TYPES().filter((x) => x !== 'DocumentReference') }),
    hidden: () => [r.docA1, r.docA2, r.docA3, r.docB1],
  },
];

interface Result {
  matches: string[];
  included: string[];
  total?: number;
}

/** Runs a search through the engine, strict so that a typo in a probe fails loudly. */
/** The Bundle as the client receives it: stored resources are spliced in as text when sent. */
const asSent = (resource: unknown): any => JSON.parse(stringifyJson(resource));

async function run(type: string, pairs: Pairs, constraints?: SearchConstraints): Promise<Result> {
  const search = parseRequestSearch(ctx(), type, pairs, true);
  const page = await executeSearch(ctx(), session(constraints), search, { withTotal: true });
  return { matches: page.rows.map(key), included: page.included.map(key), total: page.total };
}

const visible = (kind: Kind, x: any) => !kind.hidden().map(key).includes(key(x));

describe.each(KINDS)('constraint: $name', (kind) => {
  const hiddenKeys = () => kind.hidden().map(key);
  const hiddenOfType = (type: string) => kind.hidden().filter((x) => x.resourceType === type).map(key);

  it('a hidden row is never returned nor counted by a type search', async () => {
    for (const type of ['DocumentReference', 'Patient', 'Practitioner', 'Provenance', 'List']) {
      const open = await run(type, [['_tag', TAG]]);
      const closed = await run(type, [['_tag', TAG]], kind.constraints());
      for (const h of hiddenOfType(type)) expect(open.matches).toContain(h);
      const expected = open.matches.filter((m) => !hiddenKeys().includes(m));
      expect(closed.matches.sort()).toEqual(expected.sort());
      expect(closed.total).toBe(expected.length);
      // the count statement alone (no page) and _summary=count
      expect((await run(type, [['_tag', TAG], ['_count', '0']], kind.constraints())).total).toBe(expected.length);
      expect((await run(type, [['_tag', TAG], ['_summary', 'count']], kind.constraints())).total).toBe(expected.length);
      // a one-row page: the total comes from the count statement
      const paged = await run(type, [['_tag', TAG], ['_count', '1'], ['_total', 'accurate']], kind.constraints());
      expect(paged.total).toBe(expected.length);
      for (const h of hiddenKeys()) expect(paged.matches).not.toContain(h);
    }
  });

  it('searchBundle: _total=accurate and every page of a paged search leave the hidden rows out', async () => {
    const constraints = kind.constraints();
    const expected = (await run('DocumentReference', [['_tag', TAG]])).matches.filter((m) => !hiddenKeys().includes(m));
    let pairs: Pairs = [['_tag', TAG], ['_count', '1'], ['_total', 'accurate'], ['_sort', '_id']];
    const seen: string[] = [];
    for (let guard = 0; ; guard++) {
      if (guard > 10) throw new Error('too many pages');
      const search = parseRequestSearch(ctx(), 'DocumentReference', pairs, true);
      const out = await searchBundle(ctx(), session(constraints), search, { path: 'DocumentReference' });
      const bundle = asSent(out.resource);
      expect(bundle.total).toBe(expected.length);
      seen.push(...(bundle.entry ?? []).map((e: any) => key(e.resource)));
      const next = bundle.link.find((l: any) => l.relation === 'next')?.url;
      if (!next) break;
      pairs = [...new URL(next).searchParams] as Pairs;
    }
    expect(seen.sort()).toEqual([...expected].sort());
  });

  it('a hidden row is never included by _include, _include:iterate or _revinclude', async () => {
    const probes: [string, Pairs][] = [
      ['Provenance', [['_tag', TAG], ['_include', 'Provenance:target']]],
      ['List', [['_tag', TAG], ['_include', 'List:item'], ['_include:iterate', 'DocumentReference:author']]],
      ['DocumentReference', [['_id', r.docA1.id], ['_include', 'DocumentReference:author'], ['_include', 'DocumentReference:relatesto']]],
      ['DocumentReference', [['_id', r.docA1.id], ['_include', '*']]],
      ['DocumentReference', [['_id', r.docA1.id], ['_revinclude', 'Provenance:target'], ['_revinclude', 'List:item'], ['_revinclude', 'AuditEvent:entity']]],
      ['Practitioner', [['_id', r.P.id], ['_revinclude', 'DocumentReference:author'], ['_revinclude:iterate', 'Provenance:target']]],
      ['Patient', [['_id', `${r.A.id},${r.B.id}`], ['_revinclude', 'DocumentReference:subject'], ['_revinclude', 'List:item'], ['_include', 'Patient:general-practitioner']]],
      ['AuditEvent', [['_tag', TAG], ['_include', 'AuditEvent:entity'], ['_include:iterate', 'DocumentReference:relatesto']]],
    ];
    const reachedOpen = new Set<string>();
    for (const [type, pairs] of probes) {
      const open = await run(type, pairs);
      for (const k of open.included) reachedOpen.add(k);
      const closed = await run(type, pairs, kind.constraints());
      for (const h of hiddenKeys()) {
        expect(closed.included).not.toContain(h);
        expect(closed.matches).not.toContain(h);
      }
      // what is visible and was included without constraints is still included (with
      // :iterate, only if it is still reachable through visible rows)
      const visibleIncluded = open.included.filter((k) => !hiddenKeys().includes(k));
      for (const k of closed.included) expect(visibleIncluded).toContain(k);
      const iterates = pairs.some(([name]) => name.endsWith(':iterate'));
      if (!iterates && closed.matches.length === open.matches.length) expect(closed.included.sort()).toEqual(visibleIncluded.sort());
    }
    // the probes do reach every hidden row when nothing is hidden
    for (const h of hiddenKeys()) expect(reachedOpen).toContain(h);
  });

  /** Visible anchors found only through the hidden row `x` (chains and _has). */
  function throughProbes(x: any): { type: string; pairs: Pairs; anchor: any }[] {
    const probes: { type: string; pairs: Pairs; anchor: any }[] = [];
    if (x.resourceType === 'DocumentReference') {
      probes.push({ type: 'Provenance', pairs: [['_tag', TAG], ['target:DocumentReference._id', x.id]], anchor: r.prov });
      probes.push({ type: 'List', pairs: [['_tag', TAG], ['item:DocumentReference._id', x.id]], anchor: r.list });
      probes.push({ type: 'Practitioner', pairs: [['_id', r.P.id], ['_has:DocumentReference:author:_id', x.id]], anchor: r.P });
      const subject = x.subject.reference.endsWith(r.A.id) ? r.A : r.B;
      probes.push({ type: 'Patient', pairs: [['_id', subject.id], ['_has:DocumentReference:subject:_id', x.id]], anchor: subject });
      if (x.id !== r.docA1.id && subject === r.A) {
        probes.push({ type: 'DocumentReference', pairs: [['_id', r.docA1.id], ['relatesto:DocumentReference._id', x.id]], anchor: r.docA1 });
        // a chain inside a _has
        probes.push({ type: 'Patient', pairs: [['_id', r.A.id], ['_has:DocumentReference:subject:relatesto:DocumentReference._id', x.id]], anchor: r.A });
      } else if (x.id !== r.docA1.id) {
        // another record's document is named from A's record by an Observation's focus (relatesTo stays within a record)
        probes.push({ type: 'Observation', pairs: [['_tag', TAG], ['focus:DocumentReference._id', x.id]], anchor: r.obsA });
        probes.push({ type: 'Patient', pairs: [['_id', r.A.id], ['_has:Observation:subject:focus:DocumentReference._id', x.id]], anchor: r.A });
      } else {
        probes.push({ type: 'AuditEvent', pairs: [['_tag', TAG], ['entity:DocumentReference._id', x.id]], anchor: r.ae });
      }
    }
    if (x.resourceType === 'Practitioner') {
      probes.push({ type: 'DocumentReference', pairs: [['_id', r.docA1.id], ['author:Practitioner._id', x.id]], anchor: r.docA1 });
      probes.push({ type: 'Patient', pairs: [['_id', r.A.id], ['_has:DocumentReference:subject:author:Practitioner._id', x.id]], anchor: r.A });
    }
    if (x.resourceType === 'Patient') {
      probes.push({ type: 'List', pairs: [['_tag', TAG], ['item:Patient._id', x.id]], anchor: r.list });
      probes.push({ type: 'Observation', pairs: [['_tag', TAG], ['focus:Patient._id', x.id]], anchor: r.obsA });
      probes.push({ type: 'Practitioner', pairs: [['_id', r.P.id], ['_has:Patient:general-practitioner:_id', x.id]], anchor: r.P });
    }
    if (x.resourceType === 'Provenance') {
      probes.push({ type: 'DocumentReference', pairs: [['_id', r.docA1.id], ['_has:Provenance:target:_id', x.id]], anchor: r.docA1 });
    }
    if (x.resourceType === 'List') {
      probes.push({ type: 'DocumentReference', pairs: [['_id', r.docA1.id], ['_has:List:item:_id', x.id]], anchor: r.docA1 });
      probes.push({ type: 'Patient', pairs: [['_id', r.B.id], ['_has:List:item:_id', x.id]], anchor: r.B });
    }
    return probes;
  }

  it('a hidden row never lets a visible resource be found through a chain or a _has sub-query', async () => {
    for (const x of kind.hidden()) {
      const probes = throughProbes(x);
      expect(probes.length).toBeGreaterThan(0);
      let meaningful = 0;
      for (const p of probes) {
        const open = await run(p.type, p.pairs);
        expect(open.matches).toEqual([key(p.anchor)]);
        const closed = await run(p.type, p.pairs, kind.constraints());
        expect({ probe: p.pairs, hidden: key(x), matches: closed.matches }).toEqual({ probe: p.pairs, hidden: key(x), matches: [] });
        expect(closed.total).toBe(0);
        if (visible(kind, p.anchor)) meaningful++;
      }
      // at least one anchor is itself visible: its absence is due to the hidden row
      expect(meaningful).toBeGreaterThan(0);
    }
  });

  it('the same probes find the anchor through a visible row', async () => {
    // control: the constraint does not simply hide everything
    const visibleDoc = [r.docA1, r.docA2, r.docA3, r.docB1].find((d) => visible(kind, d));
    if (!visibleDoc) {
      expect(kind.constraints().resourceTypes).toBeDefined();
      return;
    }
    const closed = await run('Practitioner', [['_id', r.P.id], ['_has:DocumentReference:author:_id', visibleDoc.id]], kind.constraints());
    expect(closed.matches).toEqual(visible(kind, r.P) ? [key(r.P)] : []);
    const viaChain = await run('DocumentReference', [['_id', visibleDoc.id], ['subject:Patient.name', 'alpha,bravo']], kind.constraints());
    expect(viaChain.matches).toEqual([key(visibleDoc)]);
  });

  it('$everything never returns a hidden row', async () => {
    const request = (patient: any): FhirRequest => ({
      method: 'GET',
      resourceType: 'Patient',
      id: patient.id,
      query: [],
      headers: {},
      prefer: {},
    });
    const reachedOpen = new Set<string>();
    for (const patient of [r.A, r.B]) {
      const open = asSent((await everything(ctx(), session(), request(patient))).resource);
      for (const e of open.entry ?? []) reachedOpen.add(key(e.resource));
      if (!visible(kind, patient)) {
        // a patient hidden from the caller has no $everything: 404, as if unknown
        await expect(everything(ctx(), session(kind.constraints()), request(patient))).rejects.toMatchObject({ status: 404 });
        continue;
      }
      const closed = asSent((await everything(ctx(), session(kind.constraints()), request(patient))).resource);
      const got: string[] = (closed.entry ?? []).map((e: any) => key(e.resource));
      for (const h of hiddenKeys()) expect(got).not.toContain(h);
      // the visible matches of the open answer are all still there; referenced resources
      // only if still referenced by a visible row
      const keysOf = (bundle: any, mode: string): string[] =>
        (bundle.entry ?? []).filter((e: any) => e.search?.mode === mode).map((e: any) => key(e.resource)).filter((k: string) => !hiddenKeys().includes(k));
      const gotMatches = (closed.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => key(e.resource));
      expect(gotMatches.sort()).toEqual(keysOf(open, 'match').sort());
      for (const k of got) expect([...keysOf(open, 'match'), ...keysOf(open, 'include')]).toContain(k);
      // the general practitioner of a visible patient is still referenced by a visible row
      if (visible(kind, patient) && visible(kind, r.P)) expect(got).toContain(key(r.P));
      if (closed.total !== undefined) expect(closed.total).toBe((closed.entry ?? []).filter((e: any) => e.search?.mode === 'match').length);
    }
    expect(hiddenKeys().some((h) => reachedOpen.has(h))).toBe(true);
  });

  it('compartment search never returns a hidden row', async () => {
    for (const patient of [r.A, r.B]) {
      const req: FhirRequest = { method: 'GET', resourceType: 'Patient', id: patient.id, query: [['_total', 'accurate']], headers: {}, prefer: {} };
      const open = asSent((await searchCompartment(ctx(), session(), req, 'DocumentReference')).resource);
      const closed = asSent((await searchCompartment(ctx(), session(kind.constraints()), req, 'DocumentReference')).resource);
      const openKeys: string[] = (open.entry ?? []).map((e: any) => key(e.resource));
      const closedKeys: string[] = (closed.entry ?? []).map((e: any) => key(e.resource));
      expect(closedKeys.sort()).toEqual(openKeys.filter((k) => !hiddenKeys().includes(k)).sort());
      expect(closed.total).toBe(closedKeys.length);
    }
  });
});
