import type { Actor } from '../access/actor';
import { attachmentsOf, decideClose, decideDeleteCopy, decideDeleteMessageCopy, decideMessage, identitiesOf, isRecipient, participantsOfOpening, ThreadFacts, threadNamed } from './messageRules';

const BASE = 'https://fhir.example/fhir';
const common = { subject: 's', scopes: [], authenticatedBy: 'token' as const };
const doc: Actor = { ...common, kind: 'practitioner', id: 'doc', roles: [{ roleId: 'r1', specialties: [], organization: 'Organization/o1' }] };
const other: Actor = { ...common, kind: 'practitioner', id: 'other', roles: [{ roleId: 'r2', specialties: [] }] };
const noRole: Actor = { ...common, kind: 'practitioner', id: 'nr', roles: [] };
const engine: Actor = { ...common, kind: 'device', id: 'eng', organization: 'Organization/o1' };
const patient: Actor = { ...common, kind: 'patient', id: 'p1' };
const stranger: Actor = { ...common, kind: 'patient', id: 'p2' };
const parent: Actor = { ...common, kind: 'related-person', id: 'rp', patientId: 'p1' };
const admin: Actor = { ...common, kind: 'admin' };

const msg = (sender: string, recipients: string[], thread?: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Communication',
  status: thread ? 'completed' : 'in-progress',
  subject: { reference: 'Patient/p1' },
  sender: { reference: sender },
  recipient: recipients.map((reference) => ({ reference })),
  ...(thread ? { partOf: [{ reference: `Communication/${thread}` }] } : {}),
  ...extra,
});

const thread = (overrides: Partial<ThreadFacts> = {}): ThreadFacts => ({
  id: 't1',
  compartment: 'p1',
  closed: false,
  participants: [
    { reference: 'Practitioner/doc', removed: false },
    { reference: 'Patient/p1', removed: false },
  ],
  messages: ['t1', 'm2'],
  ...overrides,
});

describe('identitiesOf: who a caller is in a conversation', () => {
  it.each([
    [doc, ['Practitioner/doc', 'PractitionerRole/r1', 'Organization/o1']],
    [engine, ['Device/eng', 'Organization/o1']],
    [patient, ['Patient/p1']],
    [parent, ['RelatedPerson/rp', 'Patient/p1']],
    [admin, []],
  ])('%#', (actor, expected) => expect(identitiesOf(actor as Actor)).toEqual(expected));
});

describe('decideMessage', () => {
  const cases: [string, Actor, Record<string, unknown>, ThreadFacts | undefined, number | 'opening' | 'reply'][] = [
    ['a practitioner in a role opens', doc, msg('Practitioner/doc', ['Patient/p1']), undefined, 'opening'],
    ['in the name of their role', doc, msg('PractitionerRole/r1', ['Patient/p1', 'Practitioner/other']), undefined, 'opening'],
    ['a system opens for its organisation', engine, msg('Device/eng', ['Patient/p1']), undefined, 'opening'],
    ['a practitioner without a role does not open', noRole, msg('Practitioner/nr', ['Patient/p1']), undefined, 403],
    ['the patient does not open', patient, msg('Patient/p1', ['Practitioner/doc']), undefined, 403],
    ['the representative does not open', parent, msg('RelatedPerson/rp', ['Practitioner/doc']), undefined, 403],
    ['an administrator does not open', admin, msg('Practitioner/doc', ['Patient/p1']), undefined, 403],
    ["in another's name", other, msg('Practitioner/doc', ['Patient/p1']), undefined, 403],
    ['an opening not addressed to the patient', doc, msg('Practitioner/doc', ['Practitioner/other']), undefined, 422],
    ['an opening to another patient', doc, msg('Practitioner/doc', ['Patient/p1', 'Patient/p2']), undefined, 422],
    ['an opening that is not in progress', doc, msg('Practitioner/doc', ['Patient/p1'], undefined, { status: 'completed' }), undefined, 422],
    ['the patient answers in the thread', patient, msg('Patient/p1', ['Practitioner/doc'], 't1'), thread(), 'reply'],
    ['the representative answers for the patient', parent, msg('RelatedPerson/rp', ['Practitioner/doc'], 't1'), thread(), 'reply'],
    ['the professional answers', doc, msg('Practitioner/doc', ['Patient/p1'], 't1'), thread(), 'reply'],
    ['the patient writes to someone outside the thread', patient, msg('Patient/p1', ['Practitioner/other'], 't1'), thread(), 403],
    ['the patient writes to themselves', patient, msg('Patient/p1', ['Patient/p1'], 't1'), thread(), 403],
    ['the patient names an unknown thread', patient, msg('Patient/p1', ['Practitioner/doc'], 'nope'), undefined, 403],
    ['another patient in the thread', stranger, msg('Patient/p2', ['Practitioner/doc'], 't1'), thread(), 403],
    ['a professional outside the thread', other, msg('Practitioner/other', ['Patient/p1'], 't1'), thread(), 403],
    ['a closed thread, the patient', patient, msg('Patient/p1', ['Practitioner/doc'], 't1'), thread({ closed: true }), 409],
    ['a closed thread, the professional', doc, msg('Practitioner/doc', ['Patient/p1'], 't1'), thread({ closed: true }), 409],
    ['after the patient deleted their copy', patient, msg('Patient/p1', ['Practitioner/doc'], 't1'), thread({ participants: [{ reference: 'Practitioner/doc', removed: false }, { reference: 'Patient/p1', removed: true }] }), 403],
    ['a thread of another record', patient, msg('Patient/p1', ['Practitioner/doc'], 't1'), thread({ compartment: 'p2' }), 403],
    ['answering a message of another thread', patient, msg('Patient/p1', ['Practitioner/doc'], 't1', { inResponseTo: [{ reference: 'Communication/elsewhere' }] }), thread(), 422],
    ['two threads at once', patient, msg('Patient/p1', ['Practitioner/doc'], undefined, { partOf: [{ reference: 'Communication/t1' }, { reference: 'Communication/t2' }] }), thread(), 403],
    ['no recipient', doc, msg('Practitioner/doc', []), undefined, 422],
    ['an opening carrying its own read receipt', doc, msg('Practitioner/doc', ['Patient/p1'], undefined, { received: '2020-01-01T00:00:00Z' }), undefined, 422],
    ['a reply carrying its own read receipt', patient, msg('Patient/p1', ['Practitioner/doc'], 't1', { received: '2020-01-01T00:00:00Z' }), thread(), 422],
    ['no subject', doc, { ...msg('Practitioner/doc', ['Patient/p1']), subject: undefined }, undefined, 422],
  ];
  it.each(cases)('%s', (_name, actor, message, facts, expected) => {
    const d = decideMessage(actor, message, 'p1', facts, BASE);
    if (expected === 'opening' || expected === 'reply') {
      expect(d).toMatchObject({ allow: true, opening: expected === 'opening' });
    } else expect(d).toMatchObject({ allow: false, status: expected });
  });

  it('an absolute reference to this server counts as a local one', () => {
    expect(decideMessage(patient, msg(`${BASE}/Patient/p1`, [`${BASE}/Practitioner/doc`], 't1'), 'p1', thread(), BASE)).toMatchObject({ allow: true });
  });
});

describe('participants, threads, attachments', () => {
  it("an opening's participants: sender, recipients, and a system sender's organisation", () => {
    expect(participantsOfOpening(msg('Device/eng', ['Patient/p1']), BASE, engine)).toEqual(['Device/eng', 'Organization/o1', 'Patient/p1']);
    expect(participantsOfOpening(msg('Practitioner/doc', ['Patient/p1', 'Practitioner/other']), BASE, doc)).toEqual(['Practitioner/doc', 'Patient/p1', 'Practitioner/other']);
  });
  it('the thread named in partOf', () => {
    expect(threadNamed(msg('Patient/p1', [], 't1'), BASE)).toEqual({ thread: 't1' });
    expect(threadNamed(msg('Patient/p1', []), BASE)).toEqual({});
    expect(threadNamed({ partOf: [{ reference: 'Patient/p1' }] }, BASE).problem).toBeDefined();
  });
  it('attachments are Binaries of this server, never inline', () => {
    expect(attachmentsOf({ payload: [{ contentString: 'x' }, { contentAttachment: { url: 'Binary/b1' } }, { contentAttachment: { url: `${BASE}/Binary/b2` } }] }, BASE)).toEqual({ binaries: ['b1', 'b2'] });
    expect(attachmentsOf({ payload: [{ contentAttachment: { data: 'eA==' } }] }, BASE).problem).toMatch(/Binary/);
    expect(attachmentsOf({ payload: [{ contentAttachment: { url: 'https://elsewhere.example/x.pdf' } }] }, BASE).problem).toMatch(/Binary/);
  });
  it('the recipient of a message', () => {
    expect(isRecipient(patient, msg('Practitioner/doc', ['Patient/p1']), BASE)).toBe(true);
    expect(isRecipient(parent, msg('Practitioner/doc', ['Patient/p1']), BASE)).toBe(true);
    expect(isRecipient(doc, msg('Practitioner/doc', ['Patient/p1']), BASE)).toBe(false);
    expect(isRecipient(engine, msg('Patient/p1', ['Organization/o1'], 't1'), BASE)).toBe(true);
  });
});

describe('decideClose and decideDeleteCopy', () => {
  const withOrg = thread({ participants: [{ reference: 'Device/eng', removed: false }, { reference: 'Organization/o1', removed: false }, { reference: 'Patient/p1', removed: false }] });
  it.each([
    ['the professional in it', doc, thread(), true],
    ["a practitioner of the organisation in it", doc, withOrg, true],
    ['the system of the organisation', engine, withOrg, true],
    ['a professional outside it', other, thread(), 403],
    ['the patient', patient, thread(), 403],
    ['the representative', parent, thread(), 403],
    ['an administrator', admin, thread(), 403],
    ['a closed one', doc, thread({ closed: true }), 409],
  ])('$close: %s', (_n, actor, facts, expected) => {
    const d = decideClose(actor as Actor, facts as ThreadFacts);
    expect(d).toMatchObject(expected === true ? { allow: true } : { allow: false, status: expected });
  });
  it.each([
    ['the patient', patient, thread(), true],
    ['the representative', parent, thread(), true],
    ['the professional', doc, thread(), 403],
    ['another patient', stranger, thread(), 404],
    ['a copy already deleted', patient, thread({ participants: [{ reference: 'Patient/p1', removed: true }] }), 404],
  ])('$delete-copy: %s', (_n, actor, facts, expected) => {
    expect(decideDeleteCopy(actor as Actor, facts as ThreadFacts)).toMatchObject(expected === true ? { allow: true } : { allow: false, status: expected });
  });
  it.each([
    ['the patient, a message they sent', patient, msg('Patient/p1', ['Practitioner/doc'], 't1'), true],
    ['the representative, a message they sent', parent, msg('RelatedPerson/rp', ['Practitioner/doc'], 't1'), true],
    ["the patient, the professional's message", patient, msg('Practitioner/doc', ['Patient/p1'], 't1'), 403],
    ["the patient, their representative's message", patient, msg('RelatedPerson/rp', ['Practitioner/doc'], 't1'), 403],
    ['the professional, the patient\'s message', doc, msg('Patient/p1', ['Practitioner/doc'], 't1'), 403],
  ])('$delete-copy of one message: %s', (_n, actor, message, expected) => {
    expect(decideDeleteMessageCopy(actor as Actor, thread(), message, BASE)).toMatchObject(expected === true ? { allow: true } : { allow: false, status: expected });
  });
});
