import crypto from 'node:crypto';
import { checkPrimitive, decodeBase64 } from './primitives';

/** The R4 definition once whitespace is left out: what decodeBase64 must agree with. */
const R4_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const isR4Base64 = (text: string) => R4_BASE64.test(text.replace(/\s+/g, ''));

describe('decodeBase64', () => {
  test.each([
    ['', true, ''],
    ['QQ==', true, '41'],
    ['QUI=', true, '4142'],
    ['QUJD', true, '414243'],
    ['QUJD\nREVG', true, '414243444546'],
    [' QUJD ', true, '414243'],
    ['QQ', false, '41'],
    ['QUJDRA', false, '41424344'],
    // whitespace alone holds no quantum: the R4 pattern asks for one at least
    ['    ', false, ''],
    [' \n', false, ''],
  ])('%j is base64 (padded: %s)', (text, padded, hex) => {
    const decoded = decodeBase64(text);
    expect(decoded?.padded).toBe(padded);
    expect(decoded?.bytes.toString('hex')).toBe(hex);
  });

  test.each(['QQ!=', 'Q-Q=', 'Q_Q=', 'QQ=Q', '=QQ=', 'Q===', 'QUJ\u00e9', 'QU\u0000D', 'QUJD====', 'QQ==QQ=='])('%j is not base64', (text) => {
    expect(decodeBase64(text)).toBeUndefined();
  });

  test('agrees with the R4 pattern on random strings of its alphabet and a few others', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const intruders = ['=', '-', '_', '!', '.', '\u00e9', '\u0000', '\u2028'];
    const random = crypto.randomBytes(4 * 20000 * 12);
    let at = 0;
    for (let n = 0; n < 20000; n++) {
      const length = 4 * (1 + (random[at++] % 3));
      let text = '';
      for (let i = 0; i < length; i++) {
        const r = random[at++];
        text += r < 16 ? intruders[r % intruders.length] : alphabet[r % 64];
      }
      const valid = isR4Base64(text);
      const decoded = decodeBase64(text);
      expect({ text, valid: decoded !== undefined }).toEqual({ text, valid });
      if (decoded) expect(decoded.bytes.equals(Buffer.from(text, 'base64'))).toBe(true);
    }
  });

  test('a document-sized content comes back whole', () => {
    const bytes = crypto.randomBytes(200 * 1024 + 1);
    expect(decodeBase64(bytes.toString('base64'))?.bytes.equals(bytes)).toBe(true);
  });
});

describe('checkPrimitive base64Binary', () => {
  test.each([
    ['QUJD', 0],
    ['QUJD\nREVG', 0],
    ['QUJDRA', 1],
    ['QUJ-', 1],
    ['    ', 1],
  ])('%j gives %i problem(s)', (text, problems) => {
    expect(checkPrimitive('base64Binary', text)).toHaveLength(problems);
  });
});

/** R4 datatypes.html#string: below U+0020, only tab, carriage return and line feed. */
describe('checkPrimitive: control characters', () => {
  it.each([
    ['string', 'abc\u0001def', 'U+0001'],
    ['uri', 'Binary/x\u001f', 'U+001F'],
    ['code', 'a\u0007', 'U+0007'],
    ['markdown', 'a\u000Bb', 'U+000B'],
  ])('%s %j is refused naming %s', (type, value, point) => {
    const problems = checkPrimitive(type, value);
    expect(problems.some((p) => p.severity === 'error' && p.message.includes(point))).toBe(true);
  });
  it.each([
    ['string', 'a\tb\r\nc'],
    ['markdown', 'line one\nline two'],
    ['string', 'accentué — ✓'],
  ])('%s %j is accepted', (type, value) => {
    expect(checkPrimitive(type, value).filter((p) => p.severity === 'error')).toEqual([]);
  });
});
