import { memberOfValue, withMembership, terminologyFunctions } from './fhirpathTerminology';

// a value set of one code of one system; membership elsewhere is undecided
const check = (vs: string, system: string | undefined, code: string) => (vs !== 'http://vs' ? undefined : system === 'http://sys' || system === undefined ? code === 'a' : false);

describe('memberOf()', () => {
  it('a code, a Coding, a CodeableConcept (any of its codings): true, false, or undecided', () => {
    expect(memberOfValue(check, 'http://vs', 'a')).toBe(true);
    expect(memberOfValue(check, 'http://vs', { system: 'http://sys', code: 'b' })).toBe(false);
    expect(memberOfValue(check, 'http://vs', { coding: [{ system: 'http://other', code: 'b' }, { system: 'http://sys', code: 'a' }] })).toBe(true);
    expect(memberOfValue(check, 'http://vs', { coding: [{ system: 'http://sys', code: 'b' }] })).toBe(false);
    expect(memberOfValue(check, 'http://unknown', 'a')).toBeUndefined();
    expect(memberOfValue(check, 'http://vs', { text: 'no code' })).toBeUndefined();
  });

  it('is empty outside an evaluation that says how to decide, and undecided membership is empty too', () => {
    const { fn } = terminologyFunctions.memberOf;
    expect(fn([{ system: 'http://sys', code: 'b' }], 'http://vs')).toEqual([]);
    expect(withMembership(check, () => fn([{ system: 'http://sys', code: 'b' }], 'http://vs'))).toEqual([false]);
    expect(withMembership(check, () => fn(['a'], 'http://unknown'))).toEqual([]);
  });
});
