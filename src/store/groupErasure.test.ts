import { withoutMember } from './recordLifecycle';

describe('withoutMember: a Group body without the members naming a deleted Patient', () => {
  const m = (reference: string) => ({ entity: { reference } });
  it.each([
    ['relative', { member: [m('Patient/a'), m('Patient/b')] }, { member: [m('Patient/b')] }],
    ['absolute, any base', { member: [m('https://h.example/fhir/Patient/a'), m('Patient/b')] }, { member: [m('Patient/b')] }],
    ['version-specific', { member: [m('Patient/a/_history/3'), m('Patient/b')] }, { member: [m('Patient/b')] }],
    ['quantity lowered by the members removed', { quantity: 3, member: [m('Patient/a'), m('Patient/a'), m('Patient/b')] }, { quantity: 1, member: [m('Patient/b')] }],
    ['the last member removes the element', { type: 'person', member: [m('Patient/a')] }, { type: 'person' }],
    ['another type with the same id stays', { member: [m('Practitioner/a'), m('Patient/a')] }, { member: [m('Practitioner/a')] }],
  ])('%s', (_name, body, expected) => {
    expect(withoutMember(body, 'a')).toEqual(expected);
  });

  it.each([
    ['no member names it', { member: [m('Patient/ab'), m('Patient/b')] }],
    ['no member at all', { type: 'person' }],
    ['an entity without reference', { member: [{ entity: { display: 'a' } }] }],
  ])('%s: unchanged (undefined)', (_name, body) => {
    expect(withoutMember(body, 'a')).toBeUndefined();
  });
});

describe('withoutMember: a Patient named by one of its identifiers, or as a characteristic value', () => {
  const INS = { system: 'urn:oid:1.2.250.1.213.1.4.8', value: '123' };
  const byId = (system: string | undefined, value: string) => ({ entity: { identifier: { ...(system ? { system } : {}), value }, display: 'NOM' } });
  it.each([
    ['a member by INS', { quantity: 2, member: [byId(INS.system, '123'), { entity: { reference: 'Patient/b' } }] }, { quantity: 1, member: [{ entity: { reference: 'Patient/b' } }] }],
    ['a member by value without system', { member: [byId(undefined, '123')] }, {}],
    ['a characteristic whose value is the Patient', { characteristic: [{ code: { text: 'x' }, valueReference: { reference: 'Patient/a' }, exclude: false }, { code: { text: 'y' }, valueBoolean: true, exclude: false }] }, { characteristic: [{ code: { text: 'y' }, valueBoolean: true, exclude: false }] }],
    ['a characteristic naming the Patient by INS', { characteristic: [{ code: { text: 'x' }, valueReference: { identifier: INS }, exclude: false }] }, {}],
  ])('%s', (_name, body, expected) => {
    expect(withoutMember(body, 'a', [INS])).toEqual(expected);
  });

  it('the same value in another system stays', () => {
    expect(withoutMember({ member: [byId('urn:oid:1.2.3', '123')] }, 'a', [INS])).toBeUndefined();
  });
});

