import type { Actor, Scope } from '../access/actor';
import { scopedReadTypes, scopedVisibility } from './authenticate';

const scope = (raw: string): Scope => {
  const [context, rest] = raw.split('/');
  const [resourceType, operations] = rest.split('.');
  return { context: context as Scope['context'], resourceType, operations };
};
const patient = (...scopes: string[]): Actor => ({ subject: 's', authenticatedBy: 'token', kind: 'patient', id: 'p1', scopes: scopes.map(scope) });

describe('scopedReadTypes: the types a token may read, through any path', () => {
  it.each([
    ['every type', ['patient/*.rs'], undefined],
    ['one type', ['patient/Patient.r'], ['Patient']],
    ['types read or searched, not those only created', ['patient/Patient.rs', 'patient/DocumentReference.s', 'patient/Observation.c'], ['Patient', 'DocumentReference']],
    ['a wildcard that only creates reads nothing more', ['patient/Patient.r', 'patient/*.c'], ['Patient']],
    ['scopes of a context the actor does not act in count for nothing', ['system/*.rs', 'patient/Patient.r'], ['Patient']],
    ['no scope, no type', [], []],
  ] as [string, string[], string[] | undefined][])('%s', (_n, scopes, types) => {
    expect(scopedReadTypes(patient(...scopes))).toEqual(types);
  });
  it('administrators are bounded by the policy, not by scopes', () => {
    expect(scopedReadTypes({ subject: 's', authenticatedBy: 'token', kind: 'admin', scopes: [] })).toBeUndefined();
  });
  it('narrows the policy visibility, never widens it', () => {
    expect(scopedVisibility({ resourceTypes: ['Patient', 'Practitioner'] }, patient('patient/Patient.r', 'patient/DocumentReference.rs'))).toEqual({ resourceTypes: ['Patient'] });
    expect(scopedVisibility({ compartments: ['p1'] }, patient('patient/Patient.r'))).toEqual({ compartments: ['p1'], resourceTypes: ['Patient'] });
    const all = { compartments: ['p1'] };
    expect(scopedVisibility(all, patient('patient/*.cruds'))).toBe(all);
  });
});
