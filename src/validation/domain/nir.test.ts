import { nirBodyNumber, nirFormatValid, nirKey, nirKeyValid } from './nir';

describe('NIR key (97 - body mod 97, Corsica 2A = 19, 2B = 18)', () => {
  // test vectors of shared/reference/identity-ins.md §2
  it.each([
    ['295109912611193', '93'],
    ['253072B07300470', '70'],
    ['253072A07300443', '43'],
  ])('accepts the reference vector %s (key %s)', (nir, key) => {
    expect(nirKey(nir.slice(0, 13))).toBe(key);
    expect(nirKeyValid(nir)).toBe(true);
  });

  it('refuses the INS of the official PDSm-for-DMP examples (key of 1234567890123 is 11)', () => {
    expect(nirKey('1234567890123')).toBe('11');
    expect(nirKeyValid('123456789012345')).toBe(false);
    expect(nirKeyValid('123456789012311')).toBe(true);
  });

  it('substitutes 2A / 2B before computing the key', () => {
    expect(nirBodyNumber('253072A073004')).toBe(2530719073004n);
    expect(nirBodyNumber('253072B073004')).toBe(2530718073004n);
    // the key of a 2B body is not valid for the same body with 2A, and conversely
    expect(nirKeyValid('253072A07300470')).toBe(false);
    expect(nirKeyValid('253072B07300443')).toBe(false);
  });

  it('zero-pads keys below 10', () => {
    // find a body whose key is a single digit and check the padding
    let body = 1800599350000n;
    while (97n - (body % 97n) >= 10n) body++;
    const key = nirKey(body.toString());
    expect(key).toHaveLength(2);
    expect(key.startsWith('0')).toBe(true);
    expect(nirKeyValid(body.toString() + key)).toBe(true);
  });

  it.each([
    ['wrong key', '295109912611194'],
    ['14 characters', '29510991261119'],
    ['16 characters', '2951099126111930'],
    ['letters outside the département', '2951099126111A3'],
    ['lower-case Corsica', '253072b07300470'],
    ['2C is not a département', '253072C07300470'],
    ['spaces', '2 95 10 99 126 111 93'],
    ['empty', ''],
  ])('refuses %s', (_why, nir) => {
    expect(nirKeyValid(nir)).toBe(false);
  });

  it('checks the format apart from the key', () => {
    expect(nirFormatValid('295109912611194')).toBe(true);
    expect(nirFormatValid('253072A07300499')).toBe(true);
    expect(nirFormatValid('29510991261119')).toBe(false);
    expect(nirFormatValid(undefined as unknown as string)).toBe(false);
    expect(() => nirKey('12345')).toThrow(RangeError);
  });
});
