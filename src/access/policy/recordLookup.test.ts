import type { ActingRole, Actor } from '../actor';
import type { MatrixView, PolicyContext } from './decide';
import { decideLookup, lookupIdentifier } from './recordLookup';
import type { ConsentFact, RecordFacts } from './recordFacts';

const NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const NIA = 'urn:oid:1.2.250.1.213.1.4.9';
const TEST = 'urn:oid:1.2.250.1.213.1.4.10';
const DEMO = 'urn:oid:1.2.250.1.213.1.4.11';
/** A valid NIR (key 93) and the Corsican one (2B, key 70), from identity-ins.md §2. */
const VALUE = '295109912611193';
const CORSICA = '253072B07300470';

describe('lookupIdentifier: only the exact shape is a lookup', () => {
  it.each<[string, string | undefined, [string, string][], { system: string; value: string } | undefined]>([
    ['INS-NIR, whole and valid', 'Patient', [['identifier', `${NIR}|${VALUE}`]], { system: NIR, value: VALUE }],
    ['INS-NIA', 'Patient', [['identifier', `${NIA}|${VALUE}`]], { system: NIA, value: VALUE }],
    ['INS-NIR-TEST', 'Patient', [['identifier', `${TEST}|${CORSICA}`]], { system: TEST, value: CORSICA }],
    ['INS-NIR-DEMO', 'Patient', [['identifier', `${DEMO}|${VALUE}`]], { system: DEMO, value: VALUE }],
    ['with _format and _pretty', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_format', 'json'], ['_pretty', 'true']], { system: NIR, value: VALUE }],
    ['another type', 'Practitioner', [['identifier', `${NIR}|${VALUE}`]], undefined],
    ['no type', undefined, [['identifier', `${NIR}|${VALUE}`]], undefined],
    ['no system', 'Patient', [['identifier', VALUE]], undefined],
    ['an empty system', 'Patient', [['identifier', `|${VALUE}`]], undefined],
    ['system only', 'Patient', [['identifier', `${NIR}|`]], undefined],
    ['a system that is not the INS (INS-C)', 'Patient', [['identifier', `urn:oid:1.2.250.1.213.1.4.2|${VALUE}`]], undefined],
    ['a partial value', 'Patient', [['identifier', `${NIR}|2951099126111`]], undefined],
    ['a wrong key', 'Patient', [['identifier', `${NIR}|295109912611194`]], undefined],
    ['two values', 'Patient', [['identifier', `${NIR}|${VALUE},${NIR}|${CORSICA}`]], undefined],
    ['the identifier twice', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['identifier', `${NIR}|${VALUE}`]], undefined],
    ['a modifier (:contains)', 'Patient', [['identifier:contains', `${NIR}|${VALUE}`]], undefined],
    ['a modifier (:of-type)', 'Patient', [['identifier:of-type', `${NIR}|${VALUE}`]], undefined],
    ['an extra parameter', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['name', 'x']], undefined],
    ['_summary=count', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_summary', 'count']], undefined],
    ['_count', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_count', '1']], undefined],
    ['_elements', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_elements', 'name']], undefined],
    ['_include=*', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_include', '*']], undefined],
    ['_revinclude', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_revinclude', 'Consent:patient']], undefined],
    ['_has', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['_has:Consent:patient:status', 'active']], undefined],
    ['a chain', 'Patient', [['identifier', `${NIR}|${VALUE}`], ['general-practitioner.name', 'x']], undefined],
    ['no parameter', 'Patient', [], undefined],
  ])('%s', (_name, type, query, expected) => {
    expect(lookupIdentifier(type, query)).toEqual(expected);
  });
});

const PHYSICIAN: ActingRole = { roleId: 'r-doc', profession: { code: '10' }, specialties: [] };
const UNKNOWN_PROFESSION: ActingRole = { roleId: 'r-x', profession: { code: '99' }, specialties: [] };
const matrix: MatrixView = {
  readableDocuments: () => ({ classSystem: '', classes: [], types: [], excludedTypes: [], typesWithoutClass: [] }),
  mayWrite: () => true,
  emergencyAllowed: () => true,
  knowsProfession: (role) => role.profession?.code === '10',
  patientMayWrite: () => true,
  deviceMayWrite: () => true,
  deviceDeposits: () => true,
};
const NOW = Date.parse('2026-06-01T12:00:00Z');
const pc: PolicyContext = { now: NOW, consentDefaultDays: 365, matrix };
const base = { subject: 's', scopes: [], authenticatedBy: 'token' as const };
const doctor = (roles: ActingRole[] = [PHYSICIAN]): Actor => ({ ...base, kind: 'practitioner', id: 'd', roles });
const IRCP = { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' };
const declared: ConsentFact = { id: 'c1', active: true, performers: ['Practitioner/d'], provisionType: 'permit', actors: [{ reference: 'Practitioner/d', role: IRCP }], purposes: [], recorded: '2026-05-01T00:00:00Z' };
const blocked: ConsentFact = { id: 'c2', active: true, performers: ['Patient/p1'], provisionType: 'deny', actors: [{ reference: 'Practitioner/d' }], purposes: [] };
const treating: ConsentFact = { id: 'c3', active: true, performers: ['Patient/p1'], provisionType: 'permit', actors: [{ reference: 'Practitioner/d', role: { system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PCP' } }], purposes: [] };
const record = (over: Partial<RecordFacts> = {}): RecordFacts => ({ patientId: 'p1', state: 'open', known: true, generalPractitioners: [], representatives: [], consents: [], ...over });

describe('decideLookup: what a lookup tells of the record holding the INS', () => {
  it.each<[string, Actor, RecordFacts | undefined, false | 'NO_CONSENT' | 'BLOCKED']>([
    ['a professional without consent, open record: told, to ask consent', doctor(), record(), 'NO_CONSENT'],
    ['the same, record activated', doctor(), record({ state: 'activated' }), 'NO_CONSENT'],
    ['the care team (general practitioner) without consent: told (they write, do not read)', doctor(), record({ generalPractitioners: ['Practitioner/d'] }), 'NO_CONSENT'],
    ['a blocked professional: told they are blocked', doctor(), record({ consents: [blocked] }), 'BLOCKED'],
    ['a blocked professional who also declared a consent: blocked', doctor(), record({ consents: [declared, blocked] }), 'BLOCKED'],
    ['a professional with a declared consent: the ordinary search', doctor(), record({ consents: [declared] }), false],
    ['the treating physician: the ordinary search', doctor(), record({ consents: [treating] }), false],
    ['nobody holds the INS', doctor(), undefined, false],
    ['a record whose Patient is gone (deleted)', doctor(), record({ known: false, state: 'closed' }), false],
    ['an opposed record: not told', doctor(), record({ state: 'opposed' }), false],
    ['a closed (archived) record: not told', doctor(), record({ state: 'closed' }), false],
    ['a closed record that blocked the professional: not told', doctor(), record({ state: 'closed', consents: [blocked] }), false],
    ['a professional acting in no role', doctor([]), record(), false],
    ['a professional whose profession the matrix does not know', doctor([UNKNOWN_PROFESSION]), record(), false],
    ['one role known among others: told', doctor([UNKNOWN_PROFESSION, PHYSICIAN]), record(), 'NO_CONSENT'],
    ['a role without profession', doctor([{ roleId: 'r', specialties: [] }]), record(), false],
    ['another patient', { ...base, kind: 'patient', id: 'p2' }, record(), false],
    ['a legal representative of another patient', { ...base, kind: 'related-person', id: 'rp', patientId: 'p2' }, record(), false],
    ['an opposed record, for a system that deposits: not told', { ...base, kind: 'device', id: 'dev' }, record({ state: 'opposed' }), false],
    ['a closed record, for a system that deposits: not told', { ...base, kind: 'device', id: 'dev' }, record({ state: 'closed' }), false],
    ['a deleted record, for a system that deposits: not told', { ...base, kind: 'device', id: 'dev' }, record({ known: false, state: 'closed' }), false],
    ['an administrator', { ...base, kind: 'admin' }, record(), false],
  ])('%s', (_name, actor, facts, expected) => {
    const d = decideLookup(actor, facts, pc);
    if (expected === false) expect(d).toEqual({ tell: false });
    else expect(d).toEqual({ tell: true, patientId: 'p1', refusal: expected, reason: expect.any(String) });
  });

  it('tells a system that deposits the open or activated record, and nothing refused (decision 035)', () => {
    const system: Actor = { ...base, kind: 'device', id: 'dev' };
    expect(decideLookup(system, record(), pc)).toEqual({ tell: true, patientId: 'p1' });
    expect(decideLookup(system, record({ state: 'activated' }), pc)).toEqual({ tell: true, patientId: 'p1' });
    // one that deposits nothing is told nothing (decision 034)
    expect(decideLookup(system, record(), { ...pc, matrix: { ...matrix, deviceDeposits: () => false } })).toEqual({ tell: false });
  });

  it('a break-glass reason in the context does not open the record: the lookup is decided without it', () => {
    expect(decideLookup(doctor(), record(), { ...pc, breakGlass: 'urgence' })).toMatchObject({ tell: true, refusal: 'NO_CONSENT' });
  });

  it('says what the 403 on the record says', () => {
    const d = decideLookup(doctor(), record(), pc);
    expect(d.tell && d.reason).toMatch(/^Practitioner\/d has no declared consent for the record of Patient\/p1: declare the patient's consent .* X-Break-Glass/);
  });
});
