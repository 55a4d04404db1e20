import { createServerValidator } from '../validation/forServer';
import type { Validator } from '../validation';
import { actionOf, auditEvent, AuditAgent, subtypeCode } from './auditEvent';
import { touchedByPatient } from './auditTrail';
import { eventAsSeen } from './trailView';

const SERVER = 'https://dmp.example/fhir';
const RECORDED = '2026-06-01T12:00:00.000Z';
const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const doctor: AuditAgent = {
  reference: 'Practitioner/dr',
  display: 'Paul Martin',
  identifier: { system: 'https://idp.example', value: 'sub-1' },
  professions: [{ system: G15, code: '10' }],
  network: '10.0.0.7',
};
const admin: AuditAgent = { identifier: { system: 'https://idp.example', value: 'admin-1' }, professions: [] };

let validator: Validator;
beforeAll(() => {
  validator = createServerValidator();
});
const errors = (resource: unknown) => validator.validate(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');

describe('subtype and action of each interaction (BALP)', () => {
  it.each([
    ['read', 'read', 'R'],
    ['vread', 'vread', 'R'],
    ['history-instance', 'history-instance', 'R'],
    ['history-type', 'history-type', 'R'],
    ['search-type', 'search-type', 'E'],
    ['search-compartment', 'search-type', 'E'],
    ['create', 'create', 'C'],
    ['update', 'update', 'U'],
    ['conditional-update', 'update', 'U'],
    ['patch', 'patch', 'U'],
    ['conditional-patch', 'patch', 'U'],
    ['delete', 'delete', 'D'],
    ['conditional-delete', 'delete', 'D'],
    ['operation', 'operation', 'E'],
  ])('%s → subtype %s, action %s', (interaction, subtype, action) => {
    expect(subtypeCode(interaction)).toBe(subtype);
    expect(actionOf(interaction)).toBe(action);
  });
});

describe('every shape the builder produces validates against the profile (dmp-audit-event)', () => {
  const INTERACTIONS = ['read', 'vread', 'history-instance', 'history-type', 'history-system', 'search-type', 'search-compartment', 'create', 'update', 'conditional-update', 'patch', 'conditional-patch', 'delete', 'conditional-delete', 'operation'];
  const request = { recorded: RECORDED, serverUrl: SERVER };
  const shapes: [string, Record<string, unknown>][] = [];
  for (const interaction of INTERACTIONS) {
    const what = { interaction, ...(interaction === 'operation' ? { operation: 'everything' } : {}) };
    const written = ['create', 'update', 'conditional-update', 'patch', 'conditional-patch', 'delete', 'conditional-delete'].includes(interaction);
    const resources = [written ? 'DocumentReference/d1/_history/2' : 'DocumentReference/d1'];
    const query = /search|history|operation/.test(interaction) ? { query: 'subject=Patient/p1&_count=10', queriedType: 'DocumentReference' } : {};
    shapes.push([`${interaction}, success`, auditEvent(doctor, what, 0, { patient: 'p1', resources, ...query }, request)]);
    shapes.push([`${interaction}, break-glass`, auditEvent({ ...doctor, breakGlass: 'urgence' }, what, 0, { patient: 'p1', resources, ...query }, request)]);
    shapes.push([`${interaction}, break-glass without reason`, auditEvent({ ...doctor, breakGlass: '' }, what, 0, { patient: 'p1', resources, ...query }, request)]);
    shapes.push([`${interaction}, refused in a record`, auditEvent(doctor, what, 4, { patient: 'p1', resources: ['DocumentReference/d1'], ...query, target: 'GET DocumentReference/d1' }, { ...request, outcomeDesc: 'DocumentReference/d1 is hidden' })]);
    shapes.push([`${interaction}, refused outside any record`, auditEvent(admin, what, 4, { resources: [], target: `GET DocumentReference` }, { ...request, outcomeDesc: 'closed' })]);
    shapes.push([`${interaction}, refused naming only what it addressed`, auditEvent(doctor, what, 4, { resources: [], target: `GET DocumentReference/d1` }, { ...request, outcomeDesc: 'DocumentReference/d1 is hidden' })]);
    shapes.push([`${interaction}, by an administrator`, auditEvent(admin, what, 0, { patient: 'p1', resources: ['AuditEvent/e1'], ...query }, request)]);
  }
  // as the patient's side reads them: hidden entities, query and texts left out
  for (const [name, event] of [...shapes]) shapes.push([`${name}, as the patient sees it without d1`, eventAsSeen(event, { visible: (r) => !r.endsWith('/d1'), hiddenId: (id) => id === 'd1' })]);

  it.each(shapes)('%s', (_name, event) => {
    expect((event.meta as { profile: string[] }).profile).toEqual(['https://fhir.dmp.esante.example/StructureDefinition/dmp-audit-event']);
    expect(errors(event)).toEqual([]);
  });
});

describe('auditEvent', () => {
  it('a read by a professional: rest type, read subtype, the user with profession and address, client and server, patient and resource', () => {
    const e: any = auditEvent(doctor, { interaction: 'read' }, 0, { patient: 'p1', resources: ['DocumentReference/d1'] }, { recorded: RECORDED, serverUrl: SERVER });
    expect(e.type).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' });
    expect(e.subtype).toEqual([{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' }]);
    expect(e).toMatchObject({ action: 'R', recorded: RECORDED, outcome: '0', outcomeDesc: 'Success' });
    expect(e.agent[0]).toMatchObject({
      who: { reference: 'Practitioner/dr', display: 'Paul Martin', identifier: doctor.identifier },
      role: [{ coding: [{ system: G15, code: '10' }] }],
      requestor: true,
      network: { address: '10.0.0.7', type: '2' },
    });
    expect(e.agent[0].purposeOfUse).toBeUndefined();
    expect(e.agent.slice(1).map((a: any) => a.type.coding[0].code)).toEqual(['110153', '110152']);
    expect(e.agent.slice(1).every((a: any) => a.requestor === false)).toBe(true);
    expect(e.source.observer.display).toBe(SERVER);
    expect(e.entity.map((x: any) => [x.what.reference, x.role.code])).toEqual([
      ['Patient/p1', '1'],
      ['DocumentReference/d1', '4'],
    ]);
    expect(errors(e)).toEqual([]);
    // the profile is checked: an agent without who is refused by it
    expect(errors({ ...e, agent: [e.agent[0], { ...e.agent[1], who: undefined }] }).length).toBeGreaterThan(0);
  });

  it('break-glass: purposeOfUse ETREAT with the reason, on the user and on the event', () => {
    const e: any = auditEvent({ ...doctor, breakGlass: 'unconscious at the emergency ward' }, { interaction: 'search-type' }, 0, { patient: 'p1', resources: [] }, { recorded: RECORDED, serverUrl: SERVER });
    const etreat = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT', display: 'Emergency Treatment' }], text: 'unconscious at the emergency ward' }];
    expect(e.agent[0].purposeOfUse).toEqual(etreat);
    expect(e.purposeOfEvent).toEqual(etreat);
    expect(errors(e)).toEqual([]);
  });

  it('a search: one event with the patient, each resource and the query in base64', () => {
    const e: any = auditEvent(doctor, { interaction: 'search-type' }, 0, { patient: 'p1', resources: ['DocumentReference/d1', 'DocumentReference/d2', 'Patient/p1'], query: 'subject=Patient/p1&_count=10', queriedType: 'DocumentReference' }, { recorded: RECORDED, serverUrl: SERVER });
    expect(e.action).toBe('E');
    // the patient is named once, as the patient
    expect(e.entity.map((x: any) => x.role.code)).toEqual(['1', '4', '4', '24']);
    const query = e.entity[3];
    expect(Buffer.from(query.query, 'base64').toString('utf8')).toBe('subject=Patient/p1&_count=10');
    expect(query.what.display).toBe('DocumentReference?subject=Patient/p1&_count=10');
    expect(errors(e)).toEqual([]);
  });

  it('a refusal: outcome 4 with the reason; an administrator is named by the token', () => {
    const e: any = auditEvent(admin, { interaction: 'read' }, 4, { resources: [], target: 'GET DocumentReference/d1' }, { recorded: RECORDED, serverUrl: SERVER, outcomeDesc: 'closed' });
    expect(e).toMatchObject({ outcome: '4', outcomeDesc: 'closed' });
    expect(e.agent[0].who).toEqual({ identifier: admin.identifier });
    expect(e.agent[0].role).toBeUndefined();
    expect(e.entity).toEqual([{ what: { display: 'GET DocumentReference/d1' }, type: expect.objectContaining({ code: '2' }) }]);
    expect(errors(e)).toEqual([]);
  });

  it('an operation names itself in the subtype display', () => {
    const e: any = auditEvent(doctor, { interaction: 'operation', operation: 'everything' }, 0, { patient: 'p1', resources: [] }, { recorded: RECORDED, serverUrl: SERVER });
    expect(e.subtype[0]).toMatchObject({ code: 'operation', display: '$everything' });
  });
});

describe('touchedByPatient', () => {
  it('groups rows by record, each resource once, the written version when there is one; no directory rows and no trail', () => {
    const grouped = touchedByPatient([
      { compartment: 'p1', resourceType: 'DocumentReference', id: 'd1' },
      { compartment: 'p1', resourceType: 'DocumentReference', id: 'd1', versionId: 2, written: 'PUT' },
      { compartment: 'p1', resourceType: 'DocumentReference', id: 'd2' },
      { compartment: 'p1', resourceType: 'DocumentReference', id: 'd2' },
      { compartment: 'p2', resourceType: 'Observation', id: 'o1' },
      { compartment: '', resourceType: 'Practitioner', id: 'dr' },
      { compartment: 'p1', resourceType: 'AuditEvent', id: 'a1' },
    ]);
    expect([...grouped]).toEqual([
      ['p1', ['DocumentReference/d1/_history/2', 'DocumentReference/d2']],
      ['p2', ['Observation/o1']],
    ]);
  });
});
