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
