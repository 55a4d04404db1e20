import { AuditAgent } from './auditEvent';
import { digestLines, G15, NOTIFICATION_PREFERENCE_EXTENSION, noticeKind, noticeText, notifiesAtOnce, preferenceOf } from './notification';

const doctor: AuditAgent = { reference: 'Practitioner/gp', display: 'Paul Martin', professions: [{ system: G15, code: '10' }] };
const system: AuditAgent = { reference: 'Device/lab', display: 'Laboratoire', professions: [] };
const patient: AuditAgent = { reference: 'Patient/p', display: 'Anne', professions: [] };
const representative: AuditAgent = { reference: 'RelatedPerson/r', professions: [] };
const admin: AuditAgent = { identifier: { system: 'iss', value: 'admin' }, professions: [] };
const emergency: AuditAgent = { ...doctor, breakGlass: 'inconscient' };

describe('noticeKind: what an interaction tells the patient', () => {
  it.each([
    ['a professional deposits a document', doctor, 1, 'new-document'],
    ['a system deposits a document', system, 1, 'new-document'],
    ['a professional reads', doctor, 0, 'access'],
    ['a system reads', system, 0, 'access'],
    ['the patient deposits a document', patient, 1, undefined],
    ['the patient reads', patient, 0, undefined],
    ['the legal representative reads', representative, 0, undefined],
    ['an administrator reads the record (not a professional)', admin, 0, undefined],
  ])('%s', (_, agent, documents, kind) => {
    expect(noticeKind(agent as AuditAgent, documents as number)).toBe(kind);
  });
});

describe('the preference', () => {
  const basic = (valueCode: string) => ({ resourceType: 'Basic', extension: [{ url: NOTIFICATION_PREFERENCE_EXTENSION, valueCode }] });
  it.each([
    ['none stated', undefined, 'each-access'],
    ['each access', basic('each-access'), 'each-access'],
    ['daily digest', basic('daily-digest'), 'daily-digest'],
    ['an unknown value is the default', basic('weekly'), 'each-access'],
  ])('%s', (_, resource, preference) => {
    expect(preferenceOf(resource)).toBe(preference);
  });
  it('with the digest, only emergencies are told at once', () => {
    expect(notifiesAtOnce('each-access', doctor)).toBe(true);
    expect(notifiesAtOnce('daily-digest', doctor)).toBe(false);
    expect(notifiesAtOnce('daily-digest', emergency)).toBe(true);
  });
});

describe('noticeText', () => {
  it.each([
    [doctor, 'access', 'read', 0, 'Paul Martin (Médecin) a consulté votre dossier.'],
    [doctor, 'access', 'update', 0, 'Paul Martin (Médecin) a modifié des données de votre dossier.'],
    [system, 'new-document', 'transaction', 2, '2 nouveaux documents ont été ajoutés à votre dossier par Laboratoire.'],
    [{ ...emergency, breakGlass: '' }, 'access', 'search-type', 0, 'Accès en urgence (bris de glace) : Paul Martin (Médecin) a consulté votre dossier. Motif invoqué : non précisé.'],
    [{ reference: 'Practitioner/x', professions: [{ code: '99' }] }, 'access', 'read', 0, 'Un professionnel de santé (99) a consulté votre dossier.'],
  ])('%#', (agent, kind, interaction, documents, text) => {
    expect(noticeText(agent as AuditAgent, kind as 'access', interaction as string, documents as number)).toBe(text);
  });
});

describe('digestLines', () => {
  const event = (who: string, outcome = '0', purposeOfUse?: unknown) => ({ outcome, agent: [{ requestor: true, who: { reference: who, display: who }, ...(purposeOfUse ? { purposeOfUse } : {}) }] });
  it("counts each professional's successful accesses, flags emergencies, leaves out the patient and refusals", () => {
    const lines = digestLines([event('Practitioner/a'), event('Patient/p'), event('Practitioner/a', '4'), event('Device/d'), event('Practitioner/a', '0', [{ text: 'urgence' }])]);
    expect(lines.map((l) => [l.agent.reference, l.accesses, l.emergency])).toEqual([
      ['Practitioner/a', 2, true],
      ['Device/d', 1, false],
    ]);
  });
});
