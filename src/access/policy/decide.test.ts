import type { ActingRole, Actor, Coding } from '../actor';
import { ADMIN_WRITE_TYPES, closedTypeReason, decideCreateAtId, decideRecord, decideWrite, depositListRefusal, maskingRecord, MatrixView, PolicyContext, practitionerAuthored, RecordDecision, SYSTEM_PROVENANCE, visibilityFor, WriteTarget } from './decide';
import { ACT_REASON_SYSTEM, ConsentFact, INVISIBLE_PATIENT, MASQUE_PS, RecordFacts, recordChoices, ROLE_SYSTEM, VISIBILITY_SYSTEM } from './recordFacts';

type Json = Record<string, any>;

const NOW = Date.parse('2026-06-01T12:00:00Z');
const LOINC = 'http://loinc.org';
const REPORT: Coding = { system: LOINC, code: '11488-4' };
const PSYCH: Coding = { system: LOINC, code: '68599-0' };
const PATIENT_NOTE: Coding = { system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'DOCPAT03' };
const PHYSICIAN: ActingRole = { roleId: 'r-doc', profession: { code: '10' }, specialties: [] };
const NURSE: ActingRole = { roleId: 'r-nurse', profession: { code: '60' }, specialties: [] };
const PHARMACIST: ActingRole = { roleId: 'r-pharm', profession: { code: '21' }, specialties: [] };

/** A matrix of three professions, as data: physicians read and write both types, nurses read reports only, pharmacists no emergency. */
const rule = (types: Coding[]) => ({ classSystem: 'urn:classes', classes: [], types, excludedTypes: [], typesWithoutClass: [] });
const matrix: MatrixView = {
  readableDocuments: (role) => rule(role.profession?.code === '10' ? [REPORT, PSYCH] : [REPORT]),
  mayWrite: (role, type) => role.profession?.code === '10' || (role.profession?.code === '60' && type?.code === REPORT.code),
  emergencyAllowed: (role) => role.profession?.code !== '21',
  knowsProfession: (role) => ['10', '60', '21'].includes(role.profession?.code ?? ''),
  patientMayWrite: (type) => type?.code === PATIENT_NOTE.code,
  deviceMayWrite: (deviceType, type) => deviceType?.code === 'lab' && type?.code === REPORT.code,
  deviceDeposits: (deviceType) => deviceType?.code === 'lab',
};
const LAB = { system: 'https://example/device-type', code: 'lab' };
const CATALOGUE = { system: 'https://example/device-type', code: 'catalogue-application' };

const base = { subject: 's', scopes: [], authenticatedBy: 'token' as const };
const practitioner = (id: string, roles: ActingRole[]): Actor => ({ ...base, kind: 'practitioner', id, roles });

const consent = (over: Partial<ConsentFact>): ConsentFact => ({ id: 'c', active: true, performers: [], actors: [], purposes: [], ...over });
const declared = (who: string, period?: ConsentFact['period'], recorded = '2026-05-01T00:00:00Z') =>
  consent({ performers: [who], provisionType: 'permit', actors: [{ reference: who, role: { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' } }], period, recorded });
const block = (who: string) => consent({ performers: ['Patient/p1'], provisionType: 'deny', actors: [{ reference: who }] });
const treating = (who: string) => consent({ performers: ['Patient/p1'], provisionType: 'permit', actors: [{ reference: who, role: { system: ROLE_SYSTEM, code: 'PCP' } }] });
const optOut = () => consent({ performers: ['Patient/p1'], provisionType: 'deny', purposes: [{ system: ACT_REASON_SYSTEM, code: 'ETREAT' }] });

const record = (consents: ConsentFact[], over: Partial<RecordFacts> = {}): RecordFacts => ({ patientId: 'p1', state: 'open', generalPractitioners: [], representatives: ['RelatedPerson/rp'], consents, ...over });
const pc = (breakGlass?: string): PolicyContext => ({ now: NOW, consentDefaultDays: 365, matrix, breakGlass });

describe('recordChoices reads the patient choices and declared consents', () => {
  it.each([
    ['a declared consent without period, recorded a month ago', [declared('Practitioner/d')], { declared: true }],
    ['a declared consent recorded two years ago (past the default episode)', [declared('Practitioner/d', undefined, '2024-05-01T00:00:00Z')], { declared: false }],
    ['a declared consent whose period ended', [declared('Practitioner/d', { start: '2026-01-01', end: '2026-05-01' })], { declared: false }],
    ['a declared consent whose period has not started', [declared('Practitioner/d', { start: '2026-07-01' })], { declared: false }],
    ['an inactive declared consent', [{ ...declared('Practitioner/d'), active: false }], { declared: false }],
    ['a permit naming the professional but performed by someone else', [{ ...declared('Practitioner/d'), performers: ['Practitioner/other'] }], { declared: false }],
    ['a block performed by the patient', [block('Practitioner/d')], { blocked: true }],
    ['a "block" performed by another professional counts for nothing', [{ ...block('Practitioner/d'), performers: ['Practitioner/x'] }], { blocked: false }],
    ['a block by a legal representative of this record', [{ ...block('Practitioner/d'), performers: ['RelatedPerson/rp'] }], { blocked: true }],
    ['a "block" by a RelatedPerson of another record counts for nothing', [{ ...block('Practitioner/d'), performers: ['RelatedPerson/stranger'] }], { blocked: false }],
    ['a revoked block (inactive)', [{ ...block('Practitioner/d'), active: false }], { blocked: false }],
    ['a treating physician designation', [treating('Practitioner/d')], { treating: true, declared: false }],
    ['an emergency opt-out', [optOut()], { optOut: true }],
  ])('%s', (_name, consents, expected: Record<string, boolean>) => {
    const c = recordChoices(record(consents), NOW, 365);
    if ('declared' in expected) expect(c.declaredConsent.has('Practitioner/d')).toBe(expected.declared);
    if ('blocked' in expected) expect(c.blocked.has('Practitioner/d')).toBe(expected.blocked);
    if ('treating' in expected) expect(c.treatingPhysicians.has('Practitioner/d')).toBe(expected.treating);
    if ('optOut' in expected) expect(c.breakGlassOptOut).toBe(expected.optOut);
  });
});

/**
 * Every practitioner × every combination of the facts that change a record decision. The
 * expectation is written as the rules read in the access model, in their order of
 * precedence, independently of how decide() is structured.
 */
describe('decideRecord for a practitioner, over every combination of facts', () => {
  const facts = { closed: [false, true], declared: [false, true], blocked: [false, true], treating: [false, true], gp: [false, true], optOut: [false, true] };
  const rows: Record<string, boolean>[] = [{}];
  for (const [name, values] of Object.entries(facts)) {
    const next: Record<string, boolean>[] = [];
    for (const r of rows) for (const v of values) next.push({ ...r, [name]: v });
    rows.splice(0, rows.length, ...next);
  }
  const breakGlasses = [undefined, '', 'patient unconscious'];
  const table: [string, Record<string, boolean>, string | undefined, ActingRole, 'read' | 'write'][] = [];
  for (const f of rows) for (const bg of breakGlasses) for (const role of [PHYSICIAN, PHARMACIST]) for (const action of ['read', 'write'] as const) table.push([JSON.stringify({ ...f, bg, role: role.roleId, action }), f, bg, role, action]);

  const expected = (f: Record<string, boolean>, bg: string | undefined, role: ActingRole, action: string): string => {
    if (f.closed) return 'deny:closed';
    if (f.blocked) return 'deny:blocked';
    if (f.treating) return 'allow:treating-physician';
    if (f.declared) return 'allow:declared-consent';
    if (action === 'write' && f.gp) return 'allow:care-team';
    if (bg === undefined) return 'deny:no-consent';
    if (bg === '' || f.optOut || role === PHARMACIST) return 'deny:break-glass-refused';
    return 'allow:break-glass';
  };

  it.each(table)('%s', (_name, f, bg, role, action) => {
    const me = 'Practitioner/d';
    const consents = [...(f.declared ? [declared(me)] : []), ...(f.blocked ? [block(me)] : []), ...(f.treating ? [treating(me)] : []), ...(f.optOut ? [optOut()] : [])];
    const rec = record(consents, { state: f.closed ? 'closed' : 'open', generalPractitioners: f.gp ? [me] : [] });
    const d = decideRecord(practitioner('d', [role]), rec, action, pc(bg));
    const got = d.allow ? `allow:${d.basis}` : `deny:${d.refusal}`;
    expect(got).toBe(expected(f, bg, role, action));
    if (!d.allow) expect(d.status).toBe(403);
  });
});

describe('decideRecord for the other actors', () => {
  it.each([
    ['the patient, own record', { ...base, kind: 'patient', id: 'p1' }, 'open', 'allow'],
    ['the patient, another record: 404 as if unknown', { ...base, kind: 'patient', id: 'p2' }, 'open', 404],
    ['the patient, own closed record', { ...base, kind: 'patient', id: 'p1' }, 'closed', 403],
    ['a legal representative of p1', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' }, 'open', 'allow'],
    ['the patient, another closed record: 404 too (a 403 would tell it exists)', { ...base, kind: 'patient', id: 'p2' }, 'closed', 404],
    ['a legal representative of another patient', { ...base, kind: 'related-person', id: 'rp', patientId: 'p2' }, 'open', 404],
    ['a legal representative of another patient, closed record', { ...base, kind: 'related-person', id: 'rp', patientId: 'p2' }, 'closed', 404],
    ['an administrator (types are bounded by visibility)', { ...base, kind: 'admin' }, 'open', 'allow'],
    ['a system', { ...base, kind: 'device', id: 'dev', deviceType: LAB }, 'open', 'allow'],
    ['a system, closed record', { ...base, kind: 'device', id: 'dev', deviceType: LAB }, 'closed', 403],
    ['a system, a record nobody holds: 404, not closed', { ...base, kind: 'device', id: 'dev', deviceType: LAB }, 'unknown', 404],
    ['a system that deposits nothing: 404 as if unknown (decision 034)', { ...base, kind: 'device', id: 'cat', deviceType: CATALOGUE }, 'open', 404],
    ['a system that deposits nothing, closed record: 404 too', { ...base, kind: 'device', id: 'cat', deviceType: CATALOGUE }, 'closed', 404],
    ['a system without a type deposits nothing', { ...base, kind: 'device', id: 'dev' }, 'open', 404],
    ['the patient, a record nobody holds', { ...base, kind: 'patient', id: 'p1' }, 'unknown', 404],
  ] as [string, Actor, 'open' | 'closed' | 'unknown', 'allow' | number][])('%s', (_n, actor, state, outcome) => {
    const d = decideRecord(actor, record([], state === 'unknown' ? { state: 'closed', known: false } : { state }), 'read', pc());
    if (outcome === 'allow') expect(d.allow).toBe(true);
    else expect(d).toMatchObject({ allow: false, status: outcome });
  });
});

describe('visibilityFor', () => {
  it('a practitioner sees their open records, the directory, the types of their professions, and masked documents only as author or treating physician', () => {
    const v = visibilityFor(practitioner('d', [NURSE]), [{ patientId: 'p1', treating: true }, { patientId: 'p2', treating: false }], pc());
    expect(v.compartments).toEqual(['p1', 'p2']);
    expect(v.sharedTypes).toContain('Practitioner');
    // the audit trail of their patients is not theirs to read (docs/decisions/009-audit.md), nor the cohorts (decision 030)
    expect(v.excludedTypes).toEqual(['AuditEvent', 'Group']);
    expect(v.readableDocuments).toEqual([rule([REPORT])]);
    expect(v.excludedSecurityLabels).toEqual([{ ...MASQUE_PS, exceptAuthors: ['Practitioner/d', 'PractitionerRole/r-nurse'], exceptCompartments: ['p1'] }]);
    expect(v.binaryFollowsDocument).toBe(true);
  });
  it('a practitioner with two roles reads the union of their types', () => {
    const v = visibilityFor(practitioner('d', [NURSE, PHYSICIAN]), [], pc());
    expect(v.readableDocuments).toEqual([rule([REPORT]), rule([REPORT, PSYCH])]);
    expect(v.compartments).toEqual([]);
  });
  it('patients and legal representatives do not see documents invisible to them', () => {
    const p = visibilityFor({ ...base, kind: 'patient', id: 'p1' }, [{ patientId: 'p1', treating: false }], pc());
    expect(p.excludedSecurityLabels!.map((l) => l.code)).toEqual(['INVISIBLE_PATIENT']);
    // the patient and their legal representative read their record's trail; no cohort (decision 030)
    expect(p.excludedTypes).toEqual(['Group']);
    const rp = visibilityFor({ ...base, kind: 'related-person', id: 'rp', patientId: 'p1' }, [{ patientId: 'p1', treating: false }], pc());
    expect(rp.excludedTypes).toEqual(['Group']);
    expect(rp.excludedSecurityLabels!.map((l) => l.code)).toEqual(['INVISIBLE_PATIENT', 'INVISIBLE_REPRESENTANTS_LEGAUX']);
    expect(rp.compartments).toEqual(['p1']);
  });
  it('administrators and systems read no clinical content', () => {
    const admin = visibilityFor({ ...base, kind: 'admin' } as Actor, [], pc());
    for (const clinical of ['DocumentReference', 'Binary', 'List', 'Communication', 'Consent', 'Observation']) expect(admin.resourceTypes).not.toContain(clinical);
    const device = visibilityFor({ ...base, kind: 'device', id: 'x', organization: 'Organization/o' } as Actor, [], pc());
    for (const clinical of ['DocumentReference', 'List', 'Consent', 'Observation']) expect(device.resourceTypes).not.toContain(clinical);
  });

  it.each([
    ['a system that deposits (its row writes a class)', 'lab', /^A system finds the patient it deposits for only by its INS: GET Patient\?identifier=/],
    ['a system that deposits nothing (a catalogue application)', 'catalogue-application', /^A system that deposits no document reads no Patient: a patient's own application reads their record with their token$/],
    ['a system of a type the matrix does not know', 'toaster', /^A system that deposits no document reads no Patient/],
  ])('%s: reads no Patient, and is told why (decisions 034, 035)', (_what, code, why) => {
    const actor = { ...base, kind: 'device', id: 'x', deviceType: { system: 'https://example/device-type', code } } as Actor;
    const device = visibilityFor(actor, [], pc());
    expect(device.resourceTypes!.includes('Patient')).toBe(false);
    expect(device.resourceTypes).toEqual(expect.arrayContaining(['Practitioner', 'Organization', 'Communication']));
    expect(closedTypeReason(actor, device, 'Patient', matrix)).toMatch(why);
  });

  it.each([
    ['a system', { ...base, kind: 'device', id: 'x', deviceType: { system: 'https://example/device-type', code: 'lab' } } as Actor, 'Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|1', /^A Subscription's criteria are searched with its owner's access, and Patient is closed to them: A system finds the patient/],
    ['a system, clinical content', { ...base, kind: 'device', id: 'x' } as Actor, 'DocumentReference?patient=Patient/p1', /and DocumentReference is closed to them: Systems do not read DocumentReference/],
    ['an administrator, clinical content', { ...base, kind: 'admin' } as Actor, 'Consent', /and Consent is closed to them: Administrators do not read Consent/],
    ['a professional, the audit trail', practitioner('d', [PHYSICIAN]), 'AuditEvent?patient=Patient/p1', /and AuditEvent is closed to them/],
    ['a patient, a cohort', { ...base, kind: 'patient', id: 'p1' } as Actor, 'Group?member=Patient/p1', /and Group is closed to them/],
  ])('%s subscribes to no type closed to them (decision 035)', (_who, actor, criteria, why) => {
    const subscription = { resourceType: 'Subscription', status: 'requested', criteria, channel: { type: 'rest-hook', endpoint: 'https://example/hook' } };
    const d = decideWrite(actor, { resourceType: 'Subscription', compartment: '', resource: subscription }, undefined, pc());
    expect(d).toEqual({ allow: false, status: 403, reason: expect.stringMatching(why) });
    // deleting one written before the rule stays open to its owner
    expect(decideWrite(actor, { resourceType: 'Subscription', compartment: '', resource: subscription, previous: subscription, deletion: true }, undefined, pc()).allow).toBe(true);
  });

  it('subscribes to what the caller may search (decision 010)', () => {
    const subscription = (criteria: string) => ({ resourceType: 'Subscription', status: 'requested', criteria, channel: { type: 'rest-hook', endpoint: 'https://example/hook' } });
    expect(decideWrite(practitioner('d', [PHYSICIAN]), { resourceType: 'Subscription', compartment: '', resource: subscription('DocumentReference?patient=Patient/p1') }, undefined, pc()).allow).toBe(true);
    expect(decideWrite({ ...base, kind: 'device', id: 'x' } as Actor, { resourceType: 'Subscription', compartment: '', resource: subscription('Communication?category=x') }, undefined, pc()).allow).toBe(true);
  });

  const MHD = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
  const WORKLIST = { system: 'http://terminology.hl7.org/CodeSystem/list-example-use-codes', code: 'worklist' };
  const ONE_CODING = /^A system writes a List only as the SubmissionSet or Folder of a deposit: List\.code carries exactly one coding/;
  it.each([
    ['a SubmissionSet', { coding: [{ system: MHD, code: 'submissionset' }] }, true],
    ['a Folder', { coding: [{ system: MHD, code: 'folder' }] }, true],
    ['a SubmissionSet with a display and a text', { coding: [{ system: MHD, code: 'submissionset', display: 'SubmissionSet as a FHIR List' }], text: 'Lot de soumission' }, true],
    ['a plain List', undefined, false],
    ['a List of another code', { coding: [WORKLIST] }, false],
    ['the MHD code under another system', { coding: [{ system: 'https://example/MHDlistTypes', code: 'submissionset' }] }, false],
    ['another MHD code', { coding: [{ system: MHD, code: 'worklist' }] }, false],
    ['a SubmissionSet that is a worklist too', { coding: [{ system: MHD, code: 'submissionset' }, WORKLIST] }, ONE_CODING],
    ['a Folder that is a worklist too', { coding: [WORKLIST, { system: MHD, code: 'folder' }] }, ONE_CODING],
    ['a List coded both SubmissionSet and Folder', { coding: [{ system: MHD, code: 'submissionset' }, { system: MHD, code: 'folder' }] }, ONE_CODING],
    ['the SubmissionSet coding twice', { coding: [{ system: MHD, code: 'submissionset' }, { system: MHD, code: 'submissionset' }] }, ONE_CODING],
    ['a Folder with an uncoded second coding', { coding: [{ system: MHD, code: 'folder' }, {}] }, ONE_CODING],
  ] as [string, Json | undefined, boolean | RegExp][])('a system writes %s in an open record (decision 035 and its amendment)', (_what, code, allowed) => {
    const device = { ...base, kind: 'device', id: 'x', deviceType: { system: 'https://example/device-type', code: 'lab' } } as Actor;
    const list = { resourceType: 'List', status: 'current', mode: 'working', subject: { reference: 'Patient/p1' }, ...(code ? { code } : {}) };
    const d = decideWrite(device, { resourceType: 'List', compartment: 'p1', resource: list }, { allow: true, basis: 'system' }, pc());
    if (allowed === true) expect(d).toEqual({ allow: true, basis: 'system' });
    else expect(d).toEqual({ allow: false, status: 403, reason: expect.stringMatching(allowed || /^A system writes a List only as the SubmissionSet or Folder of a deposit \(List\.code/) });
    expect(depositListRefusal(list) === undefined).toBe(allowed === true);
  });

  it('names the codings of a List that is more than a deposit\'s', () => {
    expect(depositListRefusal({ code: { coding: [{ system: MHD, code: 'submissionset' }, WORKLIST] } })).toMatch(
      new RegExp(`Found: ${MHD}\\|submissionset, ${WORKLIST.system}\\|worklist$`),
    );
  });

  it('a professional\'s List coded more than once is not held to the systems\' rule', () => {
    const list = { resourceType: 'List', status: 'current', mode: 'working', code: { coding: [{ system: MHD, code: 'submissionset' }, WORKLIST] } };
    expect(decideWrite(practitioner('d', [PHYSICIAN]), { resourceType: 'List', compartment: 'p1', resource: list }, { allow: true, basis: 'declared-consent' }, pc()).allow).toBe(true);
  });

  const lab = { ...base, kind: 'device', id: 'x', deviceType: { system: 'https://example/device-type', code: 'lab' } } as Actor;
  const provenance = (target: string[]) => ({ resourceType: 'Provenance', target: target.map((reference) => ({ reference })), recorded: '2026-12-06T00:00:00Z', agent: [{ who: { reference: 'Device/x' } }] });
  it.each([
    ['about the Patient, in its record', 'p1', provenance(['Patient/p1']), undefined, false],
    ['about the Patient and a document, in its record', 'p1', provenance(['Patient/p1', 'DocumentReference/d1']), undefined, false],
    ['about its own document only (outside any record)', '', provenance(['DocumentReference/d1']), undefined, false],
    ['an update', 'p1', provenance(['Patient/p1']), provenance(['Patient/p1']), false],
  ] as [string, string, Json, Json | undefined, boolean][])('a system writes no Provenance: %s (decision 035, amendment)', (_what, compartment, resource, previous) => {
    const record: RecordDecision | undefined = compartment ? { allow: true, basis: 'system' } : undefined;
    expect(decideWrite(lab, { resourceType: 'Provenance', compartment, resource, previous }, record, pc())).toEqual({ allow: false, status: 403, reason: SYSTEM_PROVENANCE });
  });

  it("a system's Provenance in a record closed to it keeps the record's answer; a professional still writes one", () => {
    const notKnown: RecordDecision = { allow: false, status: 404, refusal: 'not-known', reason: 'not known' };
    expect(decideWrite(lab, { resourceType: 'Provenance', compartment: 'p1', resource: provenance(['Patient/p1']) }, notKnown, pc())).toBe(notKnown);
    expect(decideWrite(practitioner('d', [PHYSICIAN]), { resourceType: 'Provenance', compartment: 'p1', resource: provenance(['Patient/p1']) }, { allow: true, basis: 'declared-consent' }, pc()).allow).toBe(true);
  });

  it("systems read only the messages of their organisation's conversations and their attachments (decision 016)", () => {
    const device = visibilityFor({ ...base, kind: 'device', id: 'x', organization: 'Organization/o' } as Actor, [], pc());
    expect(device.resourceTypes).toEqual(expect.arrayContaining(['Communication', 'Binary']));
    expect(device.messages).toEqual({ participants: ['Device/x', 'Organization/o'], only: true });
  });
});

describe('Groups: read and written by administrators only (decision 030)', () => {
  const actors: [string, Actor][] = [
    ['a practitioner', practitioner('d', [PHYSICIAN])],
    ['a patient', { ...base, kind: 'patient', id: 'p1' } as Actor],
    ['a legal representative', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' } as Actor],
    ['a system', { ...base, kind: 'device', id: 'x', organization: 'Organization/o' } as Actor],
  ];
  const group: WriteTarget = { resourceType: 'Group', compartment: '', resource: { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/p1' } }] } };

  it.each(actors)('%s reads no Group: the type is closed to them, said so at type level, whatever their records', (_who, actor) => {
    const v = visibilityFor(actor, [{ patientId: 'p1', treating: true }], pc());
    const readable = v.resourceTypes ? v.resourceTypes.includes('Group') : !v.excludedTypes?.includes('Group');
    expect(readable).toBe(false);
    // not a directory type either: a Group lives in '' and sharedTypes would open it
    expect(v.sharedTypes ?? []).not.toContain('Group');
    expect(closedTypeReason(actor, v, 'Group')).toBe('Group resources (cohorts of patients) are read by administrators only');
  });

  it.each(actors)('%s writes no Group (403)', (_who, actor) => {
    const d = decideWrite(actor, group, undefined, pc());
    expect(d.allow).toBe(false);
    expect(d.allow === false && d.status).toBe(403);
    expect(decideCreateAtId(actor, 'Group').allow).toBe(false);
  });

  it('an administrator reads and writes them, and creates one at a chosen id', () => {
    const admin = { ...base, kind: 'admin' } as Actor;
    const v = visibilityFor(admin, [], pc());
    expect(v.resourceTypes).toContain('Group');
    expect(closedTypeReason(admin, v, 'Group')).toBeUndefined();
    expect(decideWrite(admin, group, undefined, pc()).allow).toBe(true);
    expect(decideCreateAtId(admin, 'Group').allow).toBe(true);
  });

  it('closedTypeReason keeps its other answers', () => {
    const admin = { ...base, kind: 'admin' } as Actor;
    const doctor = practitioner('d', [PHYSICIAN]);
    expect(closedTypeReason(admin, visibilityFor(admin, [], pc()), 'DocumentReference')).toMatch(/^Administrators do not read DocumentReference/);
    expect(closedTypeReason(doctor, visibilityFor(doctor, [], pc()), 'AuditEvent')).toMatch(/^Professionals do not read AuditEvent/);
    expect(closedTypeReason(doctor, visibilityFor(doctor, [], pc()), 'DocumentReference')).toBeUndefined();
  });
});

describe('decideCreateAtId: update-as-create only where no row of the type can be hidden (decision 012)', () => {
  const admin = { ...base, kind: 'admin' } as Actor;
  it('administrators create at a chosen id the types they write, and read every row of them', () => {
    const v = visibilityFor(admin, [], pc());
    for (const type of ADMIN_WRITE_TYPES) {
      expect([type, decideCreateAtId(admin, type).allow]).toEqual([type, true]);
      expect(v.resourceTypes).toContain(type);
    }
    // what would hide a row of a type the administrator reads: only an opposed or closed record's (decision 017), whose
    // ids a PUT then finds taken (403), never overwritten
    expect(Object.keys(v)).toEqual(['resourceTypes', 'closedRecordsHidden']);
  });
  it.each([
    ['an administrator, clinical content', admin, 'DocumentReference'],
    ['an administrator, the audit trail', admin, 'AuditEvent'],
    ['a practitioner', practitioner('d', [PHYSICIAN]), 'DocumentReference'],
    ['a practitioner, a directory type', practitioner('d', [PHYSICIAN]), 'Organization'],
    ['a patient', { ...base, kind: 'patient', id: 'p1' } as Actor, 'Consent'],
    ['a legal representative', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' } as Actor, 'DocumentReference'],
    ['a system', { ...base, kind: 'device', id: 'dev' } as Actor, 'DocumentReference'],
    ['anyone, a Subscription', { ...base, kind: 'patient', id: 'p1' } as Actor, 'Subscription'],
  ])('%s: refused, saying to POST, whatever the id', (_n, actor, type) => {
    const d = decideCreateAtId(actor, type);
    expect(d).toMatchObject({ allow: false, status: 403 });
    if (!d.allow) expect(d.reason).toContain(`POST ${type}`);
  });
});

describe('decideWrite', () => {
  const doc = (type: Coding, compartment = 'p1') => ({ resourceType: 'DocumentReference', compartment, resource: {}, documentType: type });
  const open = { allow: true as const, basis: 'declared-consent' as const };
  const noConsent = decideRecord(practitioner('d', [NURSE]), record([]), 'write', pc());
  const blocked = decideRecord(practitioner('d', [NURSE]), record([block('Practitioner/d')]), 'write', pc());
  const ownConsent = { resourceType: 'Consent', compartment: 'p1', resource: { performer: [{ reference: 'Practitioner/d' }], provision: { type: 'permit', actor: [{ reference: { reference: 'Practitioner/d' } }] } } };
  it.each([
    ['a nurse writes a report with access', practitioner('d', [NURSE]), doc(REPORT), open, true],
    ['a nurse may not write a psychiatric summary (matrix)', practitioner('d', [NURSE]), doc(PSYCH), open, false],
    ['a physician writes it', practitioner('d', [PHYSICIAN]), doc(PSYCH), open, true],
    ['no consent: no document', practitioner('d', [PHYSICIAN]), doc(REPORT), noConsent, false],
    ['no consent: a professional declares their own consent', practitioner('d', [NURSE]), ownConsent, noConsent, true],
    ['blocked: cannot declare consent', practitioner('d', [NURSE]), ownConsent, blocked, false],
    ['a consent naming someone else is not a declared consent', practitioner('x', [NURSE]), ownConsent, noConsent, false],
    ['a practitioner does not write the directory', practitioner('d', [NURSE]), { resourceType: 'Organization', compartment: '', resource: {} }, undefined, false],
    ['an administrator writes the directory', { ...base, kind: 'admin' }, { resourceType: 'Organization', compartment: '', resource: {} }, undefined, true],
    ['an administrator creates a Patient', { ...base, kind: 'admin' }, { resourceType: 'Patient', compartment: 'p1', resource: {} }, open, true],
    ['an administrator writes no document', { ...base, kind: 'admin' }, doc(REPORT), open, false],
    ['a lab system deposits a report', { ...base, kind: 'device', id: 'l', deviceType: { code: 'lab' } }, doc(REPORT), open, true],
    ['a lab system may not deposit a psychiatric summary', { ...base, kind: 'device', id: 'l', deviceType: { code: 'lab' } }, doc(PSYCH), open, false],
    ['a patient deposits a patient-authored document in their record', { ...base, kind: 'patient', id: 'p1' }, { ...doc(PATIENT_NOTE), resource: { author: [{ reference: 'Patient/p1' }] } }, { allow: true, basis: 'own-record' }, true],
    ['a patient does not deposit a professional type', { ...base, kind: 'patient', id: 'p1' }, { ...doc(REPORT), resource: { author: [{ reference: 'Patient/p1' }] } }, { allow: true, basis: 'own-record' }, false],
    ['a patient does not deposit a document naming someone else as author', { ...base, kind: 'patient', id: 'p1' }, { ...doc(PATIENT_NOTE), resource: { author: [{ reference: 'Practitioner/d' }] } }, { allow: true, basis: 'own-record' }, false],
    ['a legal representative deposits in the patient\'s name', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' }, { ...doc(PATIENT_NOTE), resource: { author: [{ reference: 'Patient/p1' }] } }, { allow: true, basis: 'legal-representative' }, true],
    ['a patient writes their own choice', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Consent', compartment: 'p1', resource: { performer: [{ reference: 'Patient/p1' }] } }, { allow: true, basis: 'own-record' }, true],
    ['a patient cannot write a Consent performed by a professional', { ...base, kind: 'patient', id: 'p1' }, ownConsent, { allow: true, basis: 'own-record' }, false],
    ['a practitioner with access does not change the patient identity', practitioner('d', [PHYSICIAN]), { resourceType: 'Patient', compartment: 'p1', resource: {} }, open, false],
    ['a patient does not change their identity', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Patient', compartment: 'p1', resource: {} }, { allow: true, basis: 'own-record' }, false],
    ['a patient does not write Practitioners', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Practitioner', compartment: '', resource: {} }, undefined, false],
    ['a practitioner with access does not write the audit trail', practitioner('d', [PHYSICIAN]), { resourceType: 'AuditEvent', compartment: 'p1', resource: {} }, open, false],
    ['nor deletes it', practitioner('d', [PHYSICIAN]), { resourceType: 'AuditEvent', compartment: 'p1', resource: {}, previous: {}, deletion: true }, open, false],
    ['an administrator does not write the audit trail', { ...base, kind: 'admin' }, { resourceType: 'AuditEvent', compartment: '', resource: {} }, undefined, false],
    ['a practitioner does not name legal representatives', practitioner('d', [PHYSICIAN]), { resourceType: 'RelatedPerson', compartment: 'p1', resource: {} }, open, false],
    ['the author deletes their document (a deletion has no type for the matrix)', practitioner('d', [NURSE]), { resourceType: 'DocumentReference', compartment: 'p1', resource: {}, previous: { author: [{ reference: 'Practitioner/d' }] }, deletion: true }, open, true],
    ['another professional does not', practitioner('x', [PHYSICIAN]), { resourceType: 'DocumentReference', compartment: 'p1', resource: {}, previous: { author: [{ reference: 'Practitioner/d' }] }, deletion: true }, open, false],
    ['a professional does not remove the patient\'s mask', practitioner('d', [PHYSICIAN]), { ...doc(REPORT), resource: {}, previous: { author: [{ reference: 'Practitioner/d' }], meta: { security: [MASQUE_PS] } } }, open, false],
    ['nor add it', practitioner('d', [PHYSICIAN]), { ...doc(REPORT), resource: { meta: { security: [MASQUE_PS] } }, previous: { author: [{ reference: 'Practitioner/d' }] } }, open, false],
    ['a professional keeping the mask rewrites the document', practitioner('d', [PHYSICIAN]), { ...doc(REPORT), resource: { meta: { security: [MASQUE_PS] } }, previous: { meta: { security: [MASQUE_PS] } } }, open, true],
    ['the author removes an invisibility label', practitioner('d', [PHYSICIAN]), { ...doc(REPORT), resource: {}, previous: { author: [{ reference: 'Practitioner/d' }], meta: { security: [INVISIBLE_PATIENT] } } }, open, true],
    ['another professional does not', practitioner('x', [PHYSICIAN]), { ...doc(REPORT), resource: {}, previous: { author: [{ reference: 'Practitioner/d' }], meta: { security: [INVISIBLE_PATIENT] } } }, open, false],
    ['a patient deposits a Binary', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Binary', compartment: 'p1', resource: {} }, { allow: true, basis: 'own-record' }, true],
    ['a patient does not rewrite a stored Binary', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Binary', compartment: 'p1', resource: {}, previous: {} }, { allow: true, basis: 'own-record' }, false],
    ['nor delete it', { ...base, kind: 'patient', id: 'p1' }, { resourceType: 'Binary', compartment: 'p1', resource: {}, previous: {}, deletion: true }, { allow: true, basis: 'own-record' }, false],
    // a document's content is fixed once deposited, whoever deposited it (decision 021, amendment)
    ['a professional with access deposits a Binary', practitioner('d', [NURSE]), { resourceType: 'Binary', compartment: 'p1', resource: {} }, open, true],
    ['a professional does not rewrite a stored Binary', practitioner('d', [PHYSICIAN]), { resourceType: 'Binary', compartment: 'p1', resource: { contentType: 'text/plain' }, previous: { contentType: 'text/plain' } }, open, false],
    ['even with the same bytes', practitioner('d', [PHYSICIAN]), { resourceType: 'Binary', compartment: 'p1', resource: { contentType: 'text/plain', data: 'YQ==' }, previous: { contentType: 'text/plain', data: 'YQ==' } }, open, false],
    ['a professional deletes a Binary (integrity keeps a named one, decision 014)', practitioner('d', [NURSE]), { resourceType: 'Binary', compartment: 'p1', resource: {}, previous: {}, deletion: true }, open, true],
    ['a system deposits a Binary', { ...base, kind: 'device', id: 'l', deviceType: { code: 'lab' } }, { resourceType: 'Binary', compartment: 'p1', resource: {} }, open, true],
    ['a system does not rewrite a stored Binary', { ...base, kind: 'device', id: 'l', deviceType: { code: 'lab' } }, { resourceType: 'Binary', compartment: 'p1', resource: {}, previous: {} }, open, false],
    ['nor writes a deleted one again at its id', practitioner('d', [PHYSICIAN]), { resourceType: 'Binary', compartment: 'p1', resource: {}, revival: true }, open, false],
    ['a legal representative does not rewrite one', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' }, { resourceType: 'Binary', compartment: 'p1', resource: {}, previous: {} }, { allow: true, basis: 'legal-representative' }, false],
  ] as [string, Actor, any, any, boolean][])('%s', (_n, actor, target, rec, allowed) => {
    expect(decideWrite(actor, target, rec, pc()).allow).toBe(allowed);
  });
});

/** A List is authored like a document: on the patient's side only the caller's own Lists are written (decision 008, amendment). */
describe("decideWrite: a patient's Lists are their own", () => {
  const patient: Actor = { ...base, kind: 'patient', id: 'p1' };
  const rep: Actor = { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' };
  const own = { allow: true as const, basis: 'own-record' as const };
  const asRep = { allow: true as const, basis: 'legal-representative' as const };
  const list = (source?: string) => ({ resourceType: 'List', status: 'current', mode: 'working', ...(source ? { source: { reference: source } } : {}) });
  const write = (resource: Json | undefined, previous?: Json, deletion = false): WriteTarget => ({ resourceType: 'List', compartment: 'p1', resource: (resource ?? previous)!, previous, deletion });
  it.each([
    ['a patient creates a folder naming them as source', patient, write(list('Patient/p1')), own, true],
    ['an absolute source reference is theirs too', patient, write(list('https://dmp.example/fhir/Patient/p1')), own, true],
    ['a patient does not create a List without source', patient, write(list()), own, false],
    ['nor one naming a professional as source', patient, write(list('Practitioner/d')), own, false],
    ['a patient updates their own folder', patient, write(list('Patient/p1'), list('Patient/p1')), own, true],
    ['nor hands it to a professional', patient, write(list('Practitioner/d'), list('Patient/p1')), own, false],
    ['a patient deletes their own folder', patient, write(undefined, list('Patient/p1'), true), own, true],
    ["a patient does not update a professional's SubmissionSet", patient, write(list('Patient/p1'), list('Practitioner/d')), own, false],
    ['nor delete it', patient, write(undefined, list('Practitioner/d'), true), own, false],
    ["nor a system's", patient, write(undefined, list('Device/lab'), true), own, false],
    ['nor a List without source (written by another actor)', patient, write(list('Patient/p1'), list()), own, false],
    ['nor delete one', patient, write(undefined, list(), true), own, false],
    ['a legal representative creates a folder naming them', rep, write(list('RelatedPerson/rp')), asRep, true],
    ['and deletes it', rep, write(undefined, list('RelatedPerson/rp'), true), asRep, true],
    ["a legal representative does not delete a professional's SubmissionSet", rep, write(undefined, list('Practitioner/d'), true), asRep, false],
    ['nor change it', rep, write(list('RelatedPerson/rp'), list('Practitioner/d')), asRep, false],
    ['a legal representative writes in the patient\'s name (List.source names no RelatedPerson in R4)', rep, write(list('Patient/p1')), asRep, true],
    ['and changes the patient\'s own folder', rep, write(list('Patient/p1'), list('Patient/p1')), asRep, true],
    ['not in another patient\'s name', rep, write(list('Patient/p2')), asRep, false],
    ['a patient does not change a folder their representative wrote', patient, write(list('Patient/p1'), list('RelatedPerson/rp')), own, false],
    ['a professional with access still updates a SubmissionSet', practitioner('d', [PHYSICIAN]), write(list('Practitioner/d'), list('Practitioner/d')), { allow: true, basis: 'declared-consent' }, true],
  ] as [string, Actor, WriteTarget, any, boolean][])('%s', (_n, actor, target, rec, allowed) => {
    const d = decideWrite(actor, target, rec, pc());
    expect(d.allow).toBe(allowed);
    if (!d.allow) expect(d.status).toBe(403);
  });
});

/**
 * The visibility labels (TRE_A07) on writes: the patient masks and unmasks any document of
 * their record and changes nothing else of a professional's document; the invisibility
 * labels are the author's alone; professionals and systems never move the patient's mask.
 */
describe('decideWrite: masking and invisibility labels', () => {
  const label = (code: string, system = VISIBILITY_SYSTEM) => ({ system, code });
  /** A stored version of a document authored by `author`, with these labels. */
  const docBy = (author: string, labels: string[] = [], extra: Json = {}): Json => ({
    resourceType: 'DocumentReference',
    id: 'doc',
    meta: { versionId: '1', lastUpdated: '2026-05-01T00:00:00Z', ...(labels.length ? { security: labels.map((c) => label(c)) } : {}) },
    status: 'current',
    subject: { reference: 'Patient/p1' },
    author: [{ reference: author }],
    description: 'report',
    ...extra,
  });
  /** The next version of `previous`: its labels replaced, other elements changed by `extra`. */
  const nextOf = (previous: Json, labels: (string | Json)[], extra: Json = {}): Json => ({
    ...previous,
    meta: { ...previous.meta, versionId: '2', lastUpdated: '2026-06-01T00:00:00Z', security: labels.map((c) => (typeof c === 'string' ? label(c) : c)) },
    ...extra,
  });
  const update = (previous: Json, resource: Json): WriteTarget => ({ resourceType: 'DocumentReference', compartment: 'p1', resource, previous, documentType: REPORT });
  const creation = (resource: Json): WriteTarget => ({ resourceType: 'DocumentReference', compartment: 'p1', resource, documentType: REPORT });
  const deletion = (previous: Json): WriteTarget => ({ resourceType: 'DocumentReference', compartment: 'p1', resource: previous, previous, documentType: REPORT, deletion: true });

  const patient: Actor = { ...base, kind: 'patient', id: 'p1' };
  const parent: Actor = { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' };
  const doctor = practitioner('d', [PHYSICIAN]);
  const nurse = practitioner('n', [NURSE]);
  const lab: Actor = { ...base, kind: 'device', id: 'lab1', deviceType: { code: 'lab' }, organization: 'Organization/o' };
  const own = { allow: true as const, basis: 'own-record' as const };
  const open = { allow: true as const, basis: 'declared-consent' as const };
  const noConsent = decideRecord(practitioner('d', [PHYSICIAN]), record([]), 'write', pc());

  const byDoctor = docBy('Practitioner/d');
  const byDoctorMasked = docBy('Practitioner/d', ['MASQUE_PS']);
  const byDoctorUnannounced = docBy('Practitioner/d', ['INVISIBLE_PATIENT']);
  const byDoctorProtected = docBy('Practitioner/d', ['INVISIBLE_REPRESENTANTS_LEGAUX']);
  const byRole = docBy('PractitionerRole/r-doc', ['INVISIBLE_PATIENT']);
  const byOrganisation = docBy('Organization/o', ['INVISIBLE_PATIENT']);
  const byPatient = docBy('Patient/p1');
  const reordered = (r: Json): Json => Object.fromEntries(Object.entries(r).reverse());

  it.each([
    // the patient and their representative
    ['the patient masks a professional\'s document', patient, update(byDoctor, nextOf(byDoctor, ['MASQUE_PS'])), own, true],
    ['the patient unmasks it', patient, update(byDoctorMasked, nextOf(byDoctorMasked, [])), own, true],
    // who writes what, not whether it differs: a write that sets or removes no MASQUE_PS is refused, even one that changes nothing (decision 021, amendment)
    ['the patient rewrites an already masked document unchanged', patient, update(byDoctorMasked, nextOf(byDoctorMasked, ['MASQUE_PS'])), own, false],
    ['the patient rewrites a professional\'s document unchanged', patient, update(byDoctor, { ...byDoctor }), own, false],
    ['the patient rewrites it unchanged but for key order', patient, update(byDoctor, reordered(byDoctor)), own, false],
    ['a legal representative rewrites a professional\'s document unchanged', parent, update(byDoctor, { ...byDoctor }), { allow: true, basis: 'legal-representative' }, false],
    ['the patient rewrites their own document unchanged', patient, { ...update(byPatient, { ...byPatient }), documentType: PATIENT_NOTE }, own, true],
    ['the comparison ignores key order, versionId and lastUpdated', patient, update(byDoctor, reordered(nextOf(byDoctor, ['MASQUE_PS']))), own, true],
    ['the patient masks a document whose other labels stay', patient, update(byDoctorProtected, nextOf(byDoctorProtected, ['INVISIBLE_REPRESENTANTS_LEGAUX', 'MASQUE_PS'])), own, true],
    ['the patient masks and changes the description', patient, update(byDoctor, nextOf(byDoctor, ['MASQUE_PS'], { description: 'mine now' })), own, false],
    ['the patient changes a professional\'s document without masking', patient, update(byDoctor, { ...byDoctor, description: 'mine now' }), own, false],
    ['the patient adds a MASQUE_PS code of another system (not the mask)', patient, update(byDoctor, nextOf(byDoctor, [label('MASQUE_PS', 'urn:other')])), own, false],
    ['the patient adds a tag along with the mask', patient, update(byDoctor, { ...nextOf(byDoctor, ['MASQUE_PS']), meta: { ...nextOf(byDoctor, ['MASQUE_PS']).meta, tag: [{ code: 'x' }] } }), own, false],
    ['the patient deletes a professional\'s document', patient, deletion(byDoctor), own, false],
    ['the patient removes INVISIBLE_REPRESENTANTS_LEGAUX', patient, update(byDoctorProtected, nextOf(byDoctorProtected, [])), own, false],
    ['the patient unmasks while removing INVISIBLE_REPRESENTANTS_LEGAUX', patient, update(docBy('Practitioner/d', ['MASQUE_PS', 'INVISIBLE_REPRESENTANTS_LEGAUX']), nextOf(byDoctor, [])), own, false],
    ['the patient removes INVISIBLE_PATIENT', patient, update(byDoctorUnannounced, nextOf(byDoctorUnannounced, [])), own, false],
    ['the patient adds INVISIBLE_PATIENT', patient, update(byDoctor, nextOf(byDoctor, ['INVISIBLE_PATIENT'])), own, false],
    ['the patient adds INVISIBLE_REPRESENTANTS_LEGAUX to their own document', patient, update(byPatient, nextOf(byPatient, ['INVISIBLE_REPRESENTANTS_LEGAUX'])), own, false],
    ['the patient deposits a document invisible to themselves', patient, creation(docBy('Patient/p1', ['INVISIBLE_PATIENT'])), own, false],
    ['the patient changes their own document', patient, { ...update(byPatient, { ...byPatient, description: 'corrected' }), documentType: PATIENT_NOTE }, own, true],
    ['the patient turns their own document into a professional type', patient, update(byPatient, { ...byPatient, description: 'corrected' }), own, false],
    ['the patient deletes their own document', patient, deletion(byPatient), own, true],
    ['a legal representative masks a professional\'s document', parent, update(byDoctor, nextOf(byDoctor, ['MASQUE_PS'])), { allow: true, basis: 'legal-representative' }, true],
    ['a legal representative removes INVISIBLE_REPRESENTANTS_LEGAUX', parent, update(byDoctorProtected, nextOf(byDoctorProtected, [])), { allow: true, basis: 'legal-representative' }, false],
    // professionals
    ['the author removes INVISIBLE_PATIENT', doctor, update(byDoctorUnannounced, nextOf(byDoctorUnannounced, [])), open, true],
    ['the author, named by one of their roles, removes INVISIBLE_PATIENT', doctor, update(byRole, nextOf(byRole, [])), open, true],
    ['the author deposits a document with INVISIBLE_PATIENT', doctor, creation(byDoctorUnannounced), open, true],
    ['the author adds INVISIBLE_REPRESENTANTS_LEGAUX later', doctor, update(byDoctor, nextOf(byDoctor, ['INVISIBLE_REPRESENTANTS_LEGAUX'])), open, true],
    ['another professional with write access removes INVISIBLE_PATIENT', practitioner('x', [PHYSICIAN]), update(byDoctorUnannounced, nextOf(byDoctorUnannounced, [])), open, false],
    ['another professional adds INVISIBLE_REPRESENTANTS_LEGAUX', practitioner('x', [PHYSICIAN]), update(byDoctor, nextOf(byDoctor, ['INVISIBLE_REPRESENTANTS_LEGAUX'])), open, false],
    ['the author without access to the record removes INVISIBLE_PATIENT', doctor, update(byDoctorUnannounced, nextOf(byDoctorUnannounced, [])), noConsent, false],
    ['an author whose profession may not write the type removes INVISIBLE_PATIENT', nurse, { ...update(docBy('Practitioner/n', ['INVISIBLE_PATIENT']), nextOf(docBy('Practitioner/n'), [])), documentType: PSYCH }, open, false],
    ['the author removes the patient\'s mask', doctor, update(byDoctorMasked, nextOf(byDoctorMasked, [])), open, false],
    ['a professional masks an existing document', doctor, update(byDoctor, nextOf(byDoctor, ['MASQUE_PS'])), open, false],
    ['a professional deposits a masked document (at the patient\'s request)', doctor, creation(byDoctorMasked), open, true],
    ['the author updates a masked document and keeps the mask', doctor, update(byDoctorMasked, { ...nextOf(byDoctorMasked, ['MASQUE_PS']), description: 'amended' }), open, true],
    // systems
    ['a system of the author organisation removes INVISIBLE_PATIENT', lab, update(byOrganisation, nextOf(byOrganisation, [])), open, true],
    ['a system of another organisation removes INVISIBLE_PATIENT', lab, update(byDoctorUnannounced, nextOf(byDoctorUnannounced, [])), open, false],
    ['a system removes the patient\'s mask', lab, update(docBy('Organization/o', ['MASQUE_PS']), nextOf(docBy('Organization/o'), [])), open, false],
  ] as [string, Actor, WriteTarget, any, boolean][])('%s', (_n, actor, target, rec, allowed) => {
    const d = decideWrite(actor, target, rec, pc());
    expect(d.allow).toBe(allowed);
    if (!d.allow) expect(d.status).toBe(403);
  });

  it.each([
    ['the patient masks their own record', patient, 'p1'],
    ['a legal representative masks the represented minor\'s record', parent, 'p1'],
    ['a professional does not', doctor, undefined],
    ['a system does not', lab, undefined],
    ['an administrator does not', { ...base, kind: 'admin' } as Actor, undefined],
    ['a caller the policy knows nothing of does not', undefined, undefined],
  ] as [string, Actor | undefined, string | undefined][])('maskingRecord: %s', (_n, actor, record) => {
    const d = maskingRecord(actor);
    expect(d.allow ? d.patientId : undefined).toBe(record);
    if (!d.allow) expect(d.status).toBe(403);
  });
});

/**
 * The write rules decide a write on a stored resource before the validator looks at it
 * (docs/decisions/031-refusal-consistency.md, amendment): a body of the wrong shapes is
 * decided without failing, an element that is not what it should be counting as absent.
 */
describe('decideWrite reads a body the validator would refuse', () => {
  const actors: [string, Actor, RecordDecision][] = [
    ['a professional', practitioner('d', [PHYSICIAN]), { allow: true, basis: 'declared-consent' }],
    ['a professional without consent', practitioner('x', [NURSE]), { allow: false, status: 403, reason: 'no consent', refusal: 'no-consent' }],
    ['the patient', { ...base, kind: 'patient', id: 'p1' }, { allow: true, basis: 'own-record' }],
    ['a legal representative', { ...base, kind: 'related-person', id: 'rp', patientId: 'p1' }, { allow: true, basis: 'legal-representative' }],
    ['a system', { ...base, kind: 'device', id: 'l', deviceType: LAB }, { allow: true, basis: 'system' }],
    ['an administrator', { ...base, kind: 'admin' }, { allow: true, basis: 'administration' }],
  ];
  const malformed: Json = { performer: 'Practitioner/d', provision: { type: 'permit', actor: 'Practitioner/d' }, author: 'Practitioner/d', source: 'x', code: 'x', criteria: 5, meta: { security: 'x' }, extension: 'x', active: 'no' };
  const stored = (type: string): Json => ({ resourceType: type, author: [{ reference: 'Practitioner/d' }], performer: [{ reference: 'Practitioner/d' }], provision: { type: 'permit', actor: [{ reference: { reference: 'Practitioner/d' } }] } });
  const cases = actors.flatMap(([who, actor, rec]) =>
    ['DocumentReference', 'Consent', 'List', 'Subscription', 'Patient', 'Binary', 'Observation'].map((type) => [`${who}, ${type}`, actor, rec, type] as [string, Actor, RecordDecision, string]),
  );
  it.each(cases)('%s: decided without failing', (_n, actor, rec, type) => {
    const target: WriteTarget = { resourceType: type, compartment: type === 'Subscription' ? '' : 'p1', resource: { resourceType: type, ...malformed }, previous: stored(type), documentType: REPORT };
    const d = decideWrite(actor, target, rec, pc());
    if (!d.allow) expect(d.status).toBe(403);
  });

  it("refuses a professional's declared consent whose performer or actors are not lists", () => {
    const me = practitioner('d', [PHYSICIAN]);
    const noConsent: RecordDecision = { allow: false, status: 403, reason: 'no consent', refusal: 'no-consent' };
    const permit = { performer: [{ reference: 'Practitioner/d' }], provision: { type: 'permit', actor: [{ reference: { reference: 'Practitioner/d' } }] } };
    const write = (resource: Json): WriteTarget => ({ resourceType: 'Consent', compartment: 'p1', resource });
    expect(decideWrite(me, write(permit), noConsent, pc()).allow).toBe(true);
    expect(decideWrite(me, write({ ...permit, performer: 'Practitioner/d' }), noConsent, pc()).allow).toBe(false);
    expect(decideWrite(me, write({ ...permit, provision: { type: 'permit', actor: { reference: { reference: 'Practitioner/d' } } } }), noConsent, pc()).allow).toBe(false);
  });
});

describe('practitionerAuthored: whose document it is, for its deletion (decision 021)', () => {
  const me = { id: 'd', nationalId: '810000000119', roles: [PHYSICIAN] };
  const doc = (author: unknown[], contained: unknown[] = []) => ({ resourceType: 'DocumentReference', author, contained });
  it.each<[string, Record<string, unknown>, Record<string, string>, boolean]>([
    ['the Practitioner', doc([{ reference: 'Practitioner/d' }]), {}, true],
    ['the Practitioner, absolute', doc([{ reference: 'https://x.example/fhir/Practitioner/d' }]), {}, true],
    ['the role acting now', doc([{ reference: 'PractitionerRole/r-doc' }]), {}, true],
    ['another role of theirs, as the directory says', doc([{ reference: 'PractitionerRole/r-other' }]), { 'PractitionerRole/r-other': 'Practitioner/d' }, true],
    ["someone else's role", doc([{ reference: 'PractitionerRole/r-other' }]), { 'PractitionerRole/r-other': 'Practitioner/e' }, false],
    ['another practitioner', doc([{ reference: 'Practitioner/e' }]), {}, false],
    ['a contained Practitioner with their RPPS', doc([{ reference: '#a' }], [{ resourceType: 'Practitioner', id: 'a', identifier: [{ value: '810000000119' }] }]), {}, true],
    ['a contained Practitioner with another RPPS', doc([{ reference: '#a' }], [{ resourceType: 'Practitioner', id: 'a', identifier: [{ value: '810000000127' }] }]), {}, false],
    [
      'a contained PractitionerRole of a contained Practitioner with their RPPS',
      doc([{ reference: '#r' }], [{ resourceType: 'PractitionerRole', id: 'r', practitioner: { reference: '#a' } }, { resourceType: 'Practitioner', id: 'a', identifier: [{ value: '810000000119' }] }]),
      {},
      true,
    ],
    ['a contained PractitionerRole naming them', doc([{ reference: '#r' }], [{ resourceType: 'PractitionerRole', id: 'r', practitioner: { reference: 'Practitioner/d' } }]), {}, true],
    ['a contained role that names itself', doc([{ reference: '#r' }], [{ resourceType: 'PractitionerRole', id: 'r', practitioner: { reference: '#r' } }]), {}, false],
    ['no author', doc([]), {}, false],
  ])('%s', (_, document, rolePractitioners, expected) => {
    expect(practitionerAuthored(me, document, rolePractitioners)).toBe(expected);
  });

  it('needs a national identifier to match a contained Practitioner', () => {
    const contained = doc([{ reference: '#a' }], [{ resourceType: 'Practitioner', id: 'a', identifier: [{ value: '810000000119' }] }]);
    expect(practitionerAuthored({ id: 'd', roles: [] }, contained, {})).toBe(false);
  });
});
