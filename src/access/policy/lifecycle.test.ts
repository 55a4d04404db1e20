import fs from 'node:fs';
import path from 'node:path';
import type { Actor } from '../actor';
import { decideRecord, decideWrite, MatrixView, PolicyContext, recordRefusalCode, representativeActs, visibilityFor } from './decide';
import { decideTransition, LifecycleOperation, unknownRecord } from './lifecycle';
import { LOOKUP_REFUSALS } from './recordLookup';
import type { RecordFacts } from './recordFacts';
import { lifecycleFieldsChanged, majorityAt, RECORD_REFUSAL_SYSTEM, RECORD_STATE_EXTENSION, RecordState, recordStateOf, withRecordState } from './recordState';

/** The record's lifecycle and the majority rule (docs/decisions/017-record-lifecycle.md), as pure functions. */

const NOW = Date.parse('2026-06-01T12:00:00Z');
const base = { subject: 's', scopes: [], authenticatedBy: 'token' as const };
const patient: Actor = { ...base, kind: 'patient', id: 'p1' };
const otherPatient: Actor = { ...base, kind: 'patient', id: 'p2' };
const parent: Actor = { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' };
const admin: Actor = { ...base, kind: 'admin' };
const legalHold: Actor = { ...base, kind: 'admin', legalHold: true };
const doctor: Actor = { ...base, kind: 'practitioner', id: 'd', roles: [] };
const lab: Actor = { ...base, kind: 'device', id: 'lab' };
const matrix: MatrixView = { readableDocuments: () => ({ classSystem: '', classes: [], types: [], excludedTypes: [], typesWithoutClass: [] }), mayWrite: () => true, emergencyAllowed: () => true, knowsProfession: () => true, deviceMayWrite: () => true, deviceDeposits: () => true, patientMayWrite: () => true };
const pc: PolicyContext = { now: NOW, consentDefaultDays: 365, matrix };

const record = (state: RecordState, over: Partial<RecordFacts> = {}): RecordFacts => ({ patientId: 'p1', state, generalPractitioners: [], representatives: ['RelatedPerson/rp'], consents: [], ...over });
/** Born 2010-03-15: a minor on NOW. */
const minor = (state: RecordState = 'open') => record(state, { birthDate: '2010-03-15' });

describe('unknownRecord: an id holding no record, answered by who asks', () => {
  it.each([
    ['a system: the refusal it gets for any record', lab, 403],
    ['a professional: the same', doctor, 403],
    ['an administrator: not known', admin, 404],
    ['a patient: not known', otherPatient, 404],
    ['a representative: not known', parent, 404],
  ])('%s', (_name, actor, status) => {
    const t = unknownRecord(actor, 'none');
    expect(t.status).toBe(status);
    if (status === 403) expect(t.reason).toBe((decideTransition(actor, record('open'), 'oppose', undefined, NOW) as { reason: string }).reason);
  });
});

describe('decideTransition: who moves a record from which state to which', () => {
  it.each([
    // [case, actor, from, operation, mode, expected]
    ['the patient opposes their open record', patient, 'open', 'oppose', undefined, 'opposed'],
    ['their representative opposes it', parent, 'open', 'oppose', undefined, 'opposed'],
    ['an administrator opposes it', admin, 'open', 'oppose', undefined, 'opposed'],
    ['an activated record is not opposed (closed instead)', patient, 'activated', 'oppose', undefined, 409],
    ['the patient activates their record', patient, 'open', 'activate', undefined, 'activated'],
    ['activating twice is a conflict', patient, 'activated', 'activate', undefined, 409],
    ['the patient archives their activated record', patient, 'activated', 'close', 'archive', 'closed'],
    ['the representative archives the open record', parent, 'open', 'close', 'archive', 'closed'],
    ['the patient deletes their record', patient, 'activated', 'close', 'delete', 'deleted'],
    ['an administrator deletes an open record', admin, 'open', 'close', 'delete', 'deleted'],
    ['archiving an archive is a conflict', admin, 'closed', 'close', 'archive', 409],
    ['an administrator without legal hold does not delete an archive', admin, 'closed', 'close', 'delete', 403],
    ['a legal-hold administrator deletes an archive early (holder\'s request)', legalHold, 'closed', 'close', 'delete', 'deleted'],
    ['a legal-hold administrator deletes an opposed record', legalHold, 'opposed', 'close', 'delete', 'deleted'],
    ['an administrator reopens an opposed record (opposition withdrawn)', admin, 'opposed', 'reopen', undefined, 'open'],
    ['an administrator without legal hold does not restore an archive', admin, 'closed', 'reopen', undefined, 403],
    ['a legal-hold administrator restores an archive', legalHold, 'closed', 'reopen', undefined, 'open'],
    ['reopening an open record is a conflict', admin, 'open', 'reopen', undefined, 409],
    ['the patient of a closed record goes through the operator', patient, 'closed', 'reopen', undefined, 403],
    ['the patient withdraws their own opposition', patient, 'opposed', 'reopen', undefined, 'open'],
    ['their representative withdraws it', parent, 'opposed', 'reopen', undefined, 'open'],
    ['an opposed record is not archived by its holder (the operator does it)', patient, 'opposed', 'close', 'archive', 403],
    ['another patient: not known', otherPatient, 'open', 'close', 'delete', 404],
    ['a professional never changes the state', doctor, 'open', 'close', 'archive', 403],
    ['a system never changes the state', lab, 'open', 'oppose', undefined, 403],
  ] as [string, Actor, RecordState, LifecycleOperation, 'archive' | 'delete' | undefined, string | number][])('%s', (_n, actor, from, op, mode, expected) => {
    const t = decideTransition(actor, record(from), op, mode, NOW);
    if (typeof expected === 'string') expect(t).toEqual({ allow: true, to: expected });
    else expect(t).toMatchObject({ allow: false, status: expected });
  });

  it("a representative of someone else's record, or no longer listed by it, is told it is not known", () => {
    expect(decideTransition({ ...base, kind: 'related-person', id: 'rp', patientId: 'p2' }, record('open'), 'close', 'archive', NOW)).toMatchObject({ status: 404 });
    expect(decideTransition(parent, record('open', { representatives: [] }), 'close', 'archive', NOW)).toMatchObject({ status: 404 });
  });

  it("a minor's representative acts until the eighteenth birthday, not after", () => {
    expect(decideTransition(parent, minor(), 'close', 'archive', Date.parse('2028-03-14T23:00:00Z'))).toMatchObject({ allow: true });
    expect(decideTransition(parent, minor(), 'close', 'archive', Date.parse('2028-03-15T00:00:00Z'))).toMatchObject({ allow: false, status: 403 });
  });
});

describe('majority: computed from the birth date at each request', () => {
  it.each([
    ['a full date', '2010-03-15', '2028-03-15T00:00:00.000Z'],
    ['a month only: from its last day', '2010-02', '2028-02-29T00:00:00.000Z'],
    ['a year only: from its last day', '2010', '2028-12-31T00:00:00.000Z'],
    ['born on 29 February: 1 March of a common year', '2008-02-29', '2026-03-01T00:00:00.000Z'],
    ['no date', undefined, undefined],
    ['not a FHIR date', '15/03/2010', undefined],
  ])('%s', (_n, birthDate, expected) => {
    const at = majorityAt(birthDate);
    expect(at === undefined ? undefined : new Date(at).toISOString()).toBe(expected);
  });

  it.each([
    ['a minor: the representative acts', minor(), NOW, true],
    ['the day before 18', minor(), Date.parse('2028-03-14T12:00:00Z'), true],
    ['from the eighteenth birthday: no more', minor(), Date.parse('2028-03-15T00:00:00Z'), false],
    ['an adult: no more', record('open', { birthDate: '1990-01-01' }), NOW, false],
    ['an adult whose guardianship began after majority (tutelle): acts', record('open', { birthDate: '1990-01-01', representativeSince: { 'RelatedPerson/rp': '2020-06-01' } }), NOW, true],
    ['a representation begun in minority does not survive majority', record('open', { birthDate: '2000-01-01', representativeSince: { 'RelatedPerson/rp': '2010-01-01' } }), NOW, false],
    ['no birth date: acts (nothing to compute from)', record('open'), NOW, true],
  ])('%s', (_n, facts, now, acts) => {
    expect(representativeActs(facts, 'RelatedPerson/rp', now)).toBe(acts);
    const d = decideRecord(parent, facts, 'read', { ...pc, now });
    if (acts) expect(d.allow).toBe(true);
    else expect(d).toMatchObject({ allow: false, status: 403, refusal: 'of-age' });
  });

  it('the patient of age still reads their record, including what was invisible to their representatives', () => {
    expect(decideRecord(patient, record('open', { birthDate: '2000-01-01' }), 'read', pc)).toMatchObject({ allow: true });
    const v = visibilityFor(patient, [{ patientId: 'p1', treating: false }], pc);
    expect(v.excludedSecurityLabels!.map((l) => l.code)).toEqual(['INVISIBLE_PATIENT']);
  });
});

describe('what each state allows', () => {
  it.each([
    ['open', true],
    ['activated', true],
    ['opposed', false],
    ['closed', false],
  ] as [RecordState, boolean][])('%s', (state, open) => {
    for (const actor of [patient, parent, admin, doctor, lab]) {
      const d = decideRecord(actor, record(state, { consents: [] }), 'write', pc);
      if (open) {
        if (actor.kind !== 'practitioner') expect(d.allow).toBe(true);
      } else expect(d).toMatchObject({ allow: false, status: 403, refusal: state });
    }
  });

  it('a refusal of an opposed or closed record carries its code', () => {
    expect(recordRefusalCode('opposed')).toBe('RECORD_OPPOSED');
    expect(recordRefusalCode('closed')).toBe('RECORD_CLOSED');
    expect(recordRefusalCode('of-age')).toBe('PATIENT_OF_AGE');
    expect(recordRefusalCode('no-consent')).toBe('NO_CONSENT');
    expect(recordRefusalCode('blocked')).toBe('BLOCKED');
    expect(recordRefusalCode('not-known')).toBeUndefined();
  });

  it('administrators and systems do not see opposed or closed records; a legal-hold administrator does', () => {
    expect(visibilityFor(admin, [], pc).closedRecordsHidden).toBe(true);
    expect(visibilityFor(lab, [], pc).closedRecordsHidden).toBe(true);
    expect(visibilityFor(legalHold, [], pc).closedRecordsHidden).toBeUndefined();
  });

  it('a deposit on an opposed record is refused with the record decision', () => {
    const refusal = decideRecord(lab, record('opposed'), 'write', pc);
    const d = decideWrite(lab, { resourceType: 'DocumentReference', compartment: 'p1', resource: {} }, refusal, pc);
    expect(d).toMatchObject({ allow: false, status: 403, refusal: 'opposed' });
  });
});

describe('the state on the Patient', () => {
  it('is read from the extension, else from Patient.active', () => {
    expect(recordStateOf({ resourceType: 'Patient' })).toEqual({ state: 'open' });
    expect(recordStateOf({ resourceType: 'Patient', active: false })).toEqual({ state: 'closed' });
    const closed = withRecordState({ resourceType: 'Patient', active: true }, { state: 'closed', since: '2026-06-01T00:00:00Z', closureMode: 'archive', retainUntil: '2036-05-29T00:00:00Z' });
    expect(closed.active).toBe(false);
    expect(closed.extension).toEqual([
      {
        url: RECORD_STATE_EXTENSION,
        extension: [
          { url: 'state', valueCode: 'closed' },
          { url: 'date', valueDateTime: '2026-06-01T00:00:00Z' },
          { url: 'closureMode', valueCode: 'archive' },
          { url: 'retainUntil', valueDateTime: '2036-05-29T00:00:00Z' },
        ],
      },
    ]);
    expect(recordStateOf(closed)).toEqual({ state: 'closed', since: '2026-06-01T00:00:00Z', closureMode: 'archive', retainUntil: '2036-05-29T00:00:00Z' });
    const activated = withRecordState(closed, { state: 'activated' });
    expect(activated.active).toBe(true);
    expect(activated.extension).toHaveLength(1);
    expect(recordStateOf(activated)).toEqual({ state: 'activated' });
  });

  it('a plain write may not change it: only the operations do', () => {
    const open = { resourceType: 'Patient', name: [{ family: 'A' }] };
    const activated = withRecordState(open, { state: 'activated' });
    expect(lifecycleFieldsChanged(undefined, open)).toBe(false);
    expect(lifecycleFieldsChanged(undefined, { ...open, active: false })).toBe(true);
    expect(lifecycleFieldsChanged(undefined, activated)).toBe(true);
    expect(lifecycleFieldsChanged(activated, { ...activated, name: [{ family: 'B' }] })).toBe(false);
    expect(lifecycleFieldsChanged(activated, { ...activated, active: false })).toBe(true);
    expect(lifecycleFieldsChanged(activated, open)).toBe(true);
    const d = decideWrite(admin, { resourceType: 'Patient', compartment: 'p1', resource: { ...activated, active: false }, previous: activated }, undefined, pc);
    expect(d).toMatchObject({ allow: false, status: 403 });
  });
});

describe('the refusal codes', () => {
  it('are the codes of profiles/CodeSystem/dmp-record-refusal.json', () => {
    const file = path.resolve(__dirname, '../../../profiles/CodeSystem/dmp-record-refusal.json');
    const codeSystem = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(codeSystem.url).toBe(RECORD_REFUSAL_SYSTEM);
    // the record's own refusals, and what a lookup by INS tells (decision 033)
    const emitted = [...(['opposed', 'closed', 'of-age'] as const).map((r) => recordRefusalCode(r)), ...LOOKUP_REFUSALS];
    expect(emitted.sort()).toEqual(codeSystem.concept.map((c: { code: string }) => c.code).sort());
  });
});
