import type { Scope } from '../actor';
import { hasAdminScope, parseScope, parseScopes, scopeAllows, ScopeOperation } from './scopes';

describe('parseScope', () => {
  it.each<[string, Scope | undefined]>([
    ['patient/DocumentReference.rs', { context: 'patient', resourceType: 'DocumentReference', operations: 'rs' }],
    ['user/*.cruds', { context: 'user', resourceType: '*', operations: 'cruds' }],
    ['system/*.cruds', { context: 'system', resourceType: '*', operations: 'cruds' }],
    ['system/DocumentReference.c', { context: 'system', resourceType: 'DocumentReference', operations: 'c' }],
    ['user/Consent.cud', { context: 'user', resourceType: 'Consent', operations: 'cud' }],
    // v1 suffixes, mapped to v2 letters
    ['patient/Observation.read', { context: 'patient', resourceType: 'Observation', operations: 'rs' }],
    ['user/DocumentReference.write', { context: 'user', resourceType: 'DocumentReference', operations: 'cud' }],
    ['user/*.*', { context: 'user', resourceType: '*', operations: 'cruds' }],
    ['patient/*.read', { context: 'patient', resourceType: '*', operations: 'rs' }],
    // query-restricted v2 scopes are dropped: honouring them without the query would widen them
    ['patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory', undefined],
    ['patient/Observation.rs?', undefined],
    // letters out of order, repeated, unknown, or empty
    ['user/*.rc', undefined],
    ['user/*.rr', undefined],
    ['user/*.x', undefined],
    ['user/*.', undefined],
    ['user/*.readwrite', undefined],
    ['user/*.constructor', undefined],
    ['user/*.toString', undefined],
    ['user/*.CRUDS', undefined],
    // contexts and resource types we do not know
    ['practitioner/*.rs', undefined],
    ['User/*.rs', undefined],
    ['user/documentReference.rs', undefined],
    ['user/Document-Reference.rs', undefined],
    ['user/**.rs', undefined],
    ['user/.rs', undefined],
    ['/Patient.rs', undefined],
    ['user/Patient.rs ', undefined],
    ['admin', undefined],
  ])('%s', (raw, expected) => {
    expect(parseScope(raw)).toEqual(expected);
  });
});

describe('parseScopes', () => {
  it('keeps resource scopes, ignores identity and launch scopes, reports what it dropped', () => {
    const claim =
      'openid fhirUser profile launch launch/patient launch/encounter offline_access online_access admin ' +
      'patient/DocumentReference.rs  user/*.read patient/Observation.rs?category=laboratory user/*.rc';
    expect(parseScopes(claim)).toEqual({
      scopes: [
        { context: 'patient', resourceType: 'DocumentReference', operations: 'rs' },
        { context: 'user', resourceType: '*', operations: 'rs' },
      ],
      dropped: ['patient/Observation.rs?category=laboratory', 'user/*.rc'],
    });
  });

  it('reads an empty claim as no scope', () => {
    expect(parseScopes('')).toEqual({ scopes: [], dropped: [] });
    expect(parseScopes('   ')).toEqual({ scopes: [], dropped: [] });
  });
});

describe('hasAdminScope', () => {
  it.each([
    [['admin'], true],
    [['openid', 'admin', 'user/*.rs'], true],
    [['administrator'], false],
    [['user/admin.rs'], false],
    [[], false],
  ])('%j → %s', (raw, expected) => {
    expect(hasAdminScope(raw)).toBe(expected);
  });
});

describe('scopeAllows', () => {
  const doctor = parseScopes('user/*.cruds').scopes;
  const patientApp = parseScopes('patient/DocumentReference.rs patient/Consent.cruds').scopes;
  const depositor = parseScopes('system/DocumentReference.c system/Binary.c').scopes;
  const v1Reader = parseScopes('patient/*.read').scopes;
  const restricted = parseScopes('patient/Observation.rs?category=laboratory').scopes;

  it.each<[string, Scope[], string, ScopeOperation, Scope['context'] | Scope['context'][] | undefined, boolean]>([
    ['user/*.cruds reads anything', doctor, 'DocumentReference', 'r', undefined, true],
    ['user/*.cruds deletes anything', doctor, 'Consent', 'd', undefined, true],
    ['user/*.cruds in the user context', doctor, 'Patient', 's', 'user', true],
    ['user/*.cruds does not count where patient scopes are required', doctor, 'Patient', 'r', 'patient', false],
    ['user/*.cruds counts when several contexts are accepted', doctor, 'Patient', 'r', ['patient', 'user'], true],
    ['patient/DocumentReference.rs reads its type', patientApp, 'DocumentReference', 'r', 'patient', true],
    ['patient/DocumentReference.rs searches its type', patientApp, 'DocumentReference', 's', undefined, true],
    ['patient/DocumentReference.rs does not write', patientApp, 'DocumentReference', 'u', undefined, false],
    ['patient/DocumentReference.rs does not create', patientApp, 'DocumentReference', 'c', undefined, false],
    ['patient/DocumentReference.rs does not read another type', patientApp, 'Binary', 'r', undefined, false],
    ['patient/Consent.cruds writes consents', patientApp, 'Consent', 'c', 'patient', true],
    ['system/DocumentReference.c creates', depositor, 'DocumentReference', 'c', 'system', true],
    ['system/DocumentReference.c does not read', depositor, 'DocumentReference', 'r', undefined, false],
    ['system/DocumentReference.c does not count as a user scope', depositor, 'DocumentReference', 'c', 'user', false],
    ['v1 patient/*.read reads', v1Reader, 'Observation', 'r', undefined, true],
    ['v1 patient/*.read searches', v1Reader, 'Observation', 's', undefined, true],
    ['v1 patient/*.read does not update', v1Reader, 'Observation', 'u', undefined, false],
    ['a dropped query-restricted scope grants nothing', restricted, 'Observation', 'r', undefined, false],
    ['no scope grants nothing', [], 'Patient', 'r', undefined, false],
    ['type names match exactly', parseScopes('user/Patient.rs').scopes, 'PatientX', 'r', undefined, false],
  ])('%s', (_name, scopes, type, op, context, expected) => {
    expect(scopeAllows(scopes, type, op, context)).toBe(expected);
  });
});
