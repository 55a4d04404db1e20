import crypto from 'node:crypto';
import { startTarget, Target } from '../../conformance/harness';
import { newVersion } from '../interactions/common';
import { INTERNAL_ACCESS, Session } from './session';
import { actorResources, actorResourcesWithFacts, factsOfRecordsNaming, factsOfResource, recordFacts } from './accessFacts';
import { textArray } from './searchSql';
import { executeWrites } from './writeVersions';

/** The facts query passes the records as one text[] parameter: it must reach PostgreSQL intact. */
let t: Target;
let session: Session;
beforeAll(async () => {
  t = await startTarget();
  session = new Session(t.running!.ctx.db.knex, INTERNAL_ACCESS);
});
afterAll(() => t.close());

/** Written through the store: the facts statements read stored rows, whatever validation would say of them. */
const post = async (resource: Record<string, unknown>) => {
  const id = crypto.randomUUID();
  await executeWrites(t.running!.ctx.db.knex, [newVersion(t.running!.ctx, resource, { id, versionId: 1, lastUpdated: new Date().toISOString(), method: 'POST' })]);
  return { id };
};

describe('textArray', () => {
  it.each([
    [[]],
    [['a']],
    [['0f3c-1.x', 'B-2']],
    [['with "quote"', 'back\\slash', 'comma,brace}{', 'NULL', '', ' spaced ']],
  ])('%j reaches the database as the same text[]', async (values) => {
    const [row] = await session.query<{ v: string[] }>('SELECT ?::text[] AS v', [textArray(values)]);
    expect(row.v).toEqual(values);
  });
});

describe('recordFacts', () => {
  it('reads the state and Consents of each record asked for, and closes those that do not exist', async () => {
    const open = await post({ resourceType: 'Patient', active: true, generalPractitioner: [{ reference: 'Practitioner/gp-1' }] });
    const closed = await post({ resourceType: 'Patient', active: false });
    await post({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: `Patient/${open.id}` },
      performer: [{ reference: 'Practitioner/gp-1' }],
      provision: { type: 'permit', actor: [{ role: { coding: [{ code: 'IRCP' }] }, reference: { reference: 'Practitioner/gp-1' } }] },
    });
    const facts = await recordFacts(session, [open.id, closed.id, 'no-such-record']);
    expect(facts.get(open.id)).toMatchObject({ state: 'open', generalPractitioners: ['Practitioner/gp-1'] });
    expect(facts.get(open.id)!.consents.map((c) => c.performers)).toEqual([['Practitioner/gp-1']]);
    expect(facts.get(closed.id)).toMatchObject({ state: 'closed', consents: [] });
    expect(facts.get('no-such-record')).toMatchObject({ state: 'closed', consents: [] });
  });
});

describe('factsOfResource and actorResources (one statement each)', () => {

  it("gives the record of a resource and that record's facts; '' outside any record; undefined when unknown", async () => {
    const patient = await post({ resourceType: 'Patient', active: true });
    const representative = await post({ resourceType: 'RelatedPerson', patient: { reference: `Patient/${patient.id}` } });
    const doc = await post({ resourceType: 'DocumentReference', status: 'current', subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain' } }] });
    const organization = await post({ resourceType: 'Organization', name: 'o' });
    const inRecord = await factsOfResource(session, 'DocumentReference', doc.id);
    expect(inRecord.compartment).toBe(patient.id);
    expect(inRecord.facts.get(patient.id)).toMatchObject({ state: 'open', representatives: [`RelatedPerson/${representative.id}`] });
    const shared = await factsOfResource(session, 'Organization', organization.id);
    expect(shared).toEqual({ compartment: '', facts: new Map() });
    expect(await factsOfResource(session, 'DocumentReference', 'no-such-document')).toEqual({ compartment: undefined, facts: new Map() });
  });

  it("gives a practitioner with their roles, another actor without any, and nothing for an unknown one", async () => {
    const practitioner = await post({ resourceType: 'Practitioner', name: [{ family: 'p' }] });
    const role = await post({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.id}` } });
    await post({ resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/someone-else' } });
    const found = await actorResources(session, 'Practitioner', practitioner.id);
    expect(found.actor?.resource?.id).toBe(practitioner.id);
    expect(found.roles.map((r) => r.id)).toEqual([role.id]);
    const patient = await post({ resourceType: 'Patient' });
    expect((await actorResources(session, 'Patient', patient.id)).roles).toEqual([]);
    expect(await actorResources(session, 'Practitioner', 'nobody')).toEqual({ actor: undefined, roles: [] });
  });

  it('gives the actor with the facts of the addressed resource, or of the named records, as the separate statements do', async () => {
    const practitioner = await post({ resourceType: 'Practitioner', name: [{ family: 'p' }] });
    const role = await post({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.id}` } });
    const patient = await post({ resourceType: 'Patient', active: true });
    const doc = await post({ resourceType: 'DocumentReference', status: 'current', subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain' } }] });
    const organization = await post({ resourceType: 'Organization', name: 'o' });

    const addressed = await actorResourcesWithFacts(session, 'Practitioner', practitioner.id, { addressed: { resourceType: 'DocumentReference', id: doc.id } });
    expect(addressed.actor?.resource?.id).toBe(practitioner.id);
    expect(addressed.roles.map((r) => r.id)).toEqual([role.id]);
    const alone = await factsOfResource(session, 'DocumentReference', doc.id);
    expect(addressed.facts.addressed).toEqual({ resourceType: 'DocumentReference', id: doc.id, ...alone });

    const shared = await actorResourcesWithFacts(session, 'Practitioner', practitioner.id, { addressed: { resourceType: 'Organization', id: organization.id } });
    expect(shared.facts.addressed).toMatchObject({ compartment: '', facts: new Map() });
    const unknown = await actorResourcesWithFacts(session, 'Patient', patient.id, { addressed: { resourceType: 'DocumentReference', id: 'no-such-document' } });
    expect(unknown.actor?.resource?.id).toBe(patient.id);
    expect(unknown.facts.addressed).toMatchObject({ compartment: undefined, facts: new Map() });

    const named = await actorResourcesWithFacts(session, 'Patient', patient.id, { records: [patient.id, patient.id, 'no-such-record'] });
    expect(named.roles).toEqual([]);
    expect(named.facts.records).toEqual(await recordFacts(session, [patient.id, 'no-such-record']));
    expect(named.facts.records!.get(patient.id)).toMatchObject({ state: 'open' });
  });
});

describe('factsOfRecordsNaming', () => {
  it("gives the facts of the records whose Consents name the practitioner, and of the other records asked for", async () => {
    const me = `gp-${crypto.randomUUID()}`;
    const consent = (patientId: string, actor: string) => ({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: `Patient/${patientId}` },
      performer: [{ reference: `Practitioner/${actor}` }],
      provision: { type: 'permit', actor: [{ role: { coding: [{ code: 'IRCP' }] }, reference: { reference: `Practitioner/${actor}` } }] },
    });
    const mine = await post({ resourceType: 'Patient', active: true });
    await post(consent(mine.id, me));
    await post(consent(mine.id, 'someone-else'));
    const other = await post({ resourceType: 'Patient', active: true });
    await post(consent(other.id, 'someone-else'));
    const asked = await post({ resourceType: 'Patient', active: false });

    const facts = await factsOfRecordsNaming(session, me, [asked.id, 'no-such-record']);
    expect([...facts.keys()].sort()).toEqual([mine.id, asked.id, 'no-such-record'].sort());
    expect(facts).toEqual(await recordFacts(session, [mine.id, asked.id, 'no-such-record']));
    expect(facts.get(mine.id)!.consents).toHaveLength(2);
    expect((await factsOfRecordsNaming(session, me, [])).size).toBe(1);
  });

  it('narrowed to the records holding an identifier: of those naming the practitioner, only the ones with a resource of that type carrying one of the values', async () => {
    const me = `gp-${crypto.randomUUID()}`;
    const system = `urn:oid:1.2.250.1.213.1.4.10`;
    const code = () => crypto.randomUUID();
    const consent = (patientId: string, actor: string) => ({
      resourceType: 'Consent',
      status: 'active',
      patient: { reference: `Patient/${patientId}` },
      provision: { type: 'permit', actor: [{ role: { coding: [{ code: 'IRCP' }] }, reference: { reference: `Practitioner/${actor}` } }] },
    });
    const [a, b, c] = [code(), code(), code()];
    const holdsA = await post({ resourceType: 'Patient', identifier: [{ system, value: a }] });
    const holdsB = await post({ resourceType: 'Patient', identifier: [{ system, value: b }] });
    const holdsC = await post({ resourceType: 'Patient', identifier: [{ system, value: c }] });
    const holdsNone = await post({ resourceType: 'Patient', identifier: [{ system, value: code() }] });
    // a document carrying `a` in the record of holdsNone: the type decides, not the value alone
    await post({ resourceType: 'DocumentReference', status: 'current', subject: { reference: `Patient/${holdsNone.id}` }, identifier: [{ system, value: a }], content: [{ attachment: { contentType: 'text/plain' } }] });
    for (const p of [holdsA, holdsB, holdsNone]) await post(consent(p.id, me));
    // holdsC's record does not name the practitioner: holding the value opens nothing
    await post(consent(holdsC.id, 'someone-else'));
    const asked = await post({ resourceType: 'Patient', active: false });

    const narrowed = await factsOfRecordsNaming(session, me, [asked.id], { resourceType: 'Patient', values: [{ system, code: a }, { system, code: b }, { system, code: c }], returned: 'Patient' });
    expect([...narrowed.keys()].sort()).toEqual([holdsA.id, holdsB.id, asked.id].sort());
    expect(narrowed).toEqual(await recordFacts(session, [holdsA.id, holdsB.id, asked.id]));
    // the system is part of the value; another type's row is not the searched type's
    expect([...(await factsOfRecordsNaming(session, me, [], { resourceType: 'Patient', values: [{ system: 'urn:other', code: a }], returned: 'Patient' })).keys()]).toEqual([]);
    expect([...(await factsOfRecordsNaming(session, me, [], { resourceType: 'DocumentReference', values: [{ system, code: a }], returned: 'DocumentReference' })).keys()]).toEqual([holdsNone.id]);
    // not narrowed: every record naming the practitioner
    expect([...(await factsOfRecordsNaming(session, me, [])).keys()].sort()).toEqual([holdsA.id, holdsB.id, holdsNone.id].sort());
  });

  it('narrowed, still holds the records of what the resources that can be returned reference (their withheld references are decided on them)', async () => {
    const me = `gp-${crypto.randomUUID()}`;
    const system = 'urn:oid:1.2.250.1.213.1.4.10';
    const [ins, docValue] = [crypto.randomUUID(), crypto.randomUUID()];
    const consent = (patientId: string) => ({ resourceType: 'Consent', status: 'active', patient: { reference: `Patient/${patientId}` }, provision: { type: 'permit', actor: [{ reference: { reference: `Practitioner/${me}` } }] } });
    const holder = await post({ resourceType: 'Patient', identifier: [{ system, value: ins }] });
    const linked = await post({ resourceType: 'Patient' });
    const linkedByPatient = await post({ resourceType: 'Patient' });
    const unrelated = await post({ resourceType: 'Patient' });
    const observation = await post({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${linked.id}` } });
    await post({
      resourceType: 'DocumentReference',
      status: 'current',
      subject: { reference: `Patient/${holder.id}` },
      identifier: [{ system, value: docValue }],
      context: { related: [{ reference: `Observation/${observation.id}` }, { reference: `Patient/${linkedByPatient.id}` }] },
      content: [{ attachment: { contentType: 'text/plain' } }],
    });
    for (const p of [holder, linked, linkedByPatient, unrelated]) await post(consent(p.id));
    const expected = [holder.id, linked.id, linkedByPatient.id].sort();
    // a document by its identifier, and the documents of the record holding the patient's identifier (the MHD query)
    expect([...(await factsOfRecordsNaming(session, me, [], { resourceType: 'DocumentReference', values: [{ system, code: docValue }], returned: 'DocumentReference' })).keys()].sort()).toEqual(expected);
    expect([...(await factsOfRecordsNaming(session, me, [], { resourceType: 'Patient', values: [{ system, code: ins }], returned: 'DocumentReference' })).keys()].sort()).toEqual(expected);
    // the Patient itself references nothing
    expect([...(await factsOfRecordsNaming(session, me, [], { resourceType: 'Patient', values: [{ system, code: ins }], returned: 'Patient' })).keys()]).toEqual([holder.id]);
  });
});

