import crypto from 'node:crypto';
import { FhirError } from '../errors';
import { decodePageToken, encodePageToken, PageBinding } from './pageToken';

describe('page tokens', () => {
  const secret = crypto.randomBytes(32).toString('base64url');
  const bound: PageBinding = { query: 'Patient?name=a', caller: '' };
  const now = Date.UTC(2024, 0, 1);
  const ttl = 3600;
  const issue = (keys: unknown[] = ['Dupont', '1970-05-04', 'abc'], binding = bound) => encodePageToken(secret, binding, { direction: 'n', keys }, ttl, now);
  const status = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof FhirError ? e.status : 500;
    }
    return 200;
  };

  it('round-trips the boundary of the query it was issued for', () => {
    const token = issue();
    expect(decodePageToken(secret, bound, token, now + 1000)).toEqual({ direction: 'n', keys: ['Dupont', '1970-05-04', 'abc'] });
  });

  it('is opaque: the sort values are not readable in the token', () => {
    const token = issue();
    const bytes = Buffer.from(token, 'base64url').toString('latin1');
    for (const clear of ['Dupont', '1970', 'abc']) expect(bytes).not.toContain(clear);
    expect(token).not.toContain(Buffer.from('Dupont').toString('base64url').slice(0, 6));
    // two tokens for the same boundary differ (fresh IV each time)
    expect(issue()).not.toBe(token);
  });

  it('expires after its lifetime with 410, and is valid until then', () => {
    const token = issue();
    expect(status(() => decodePageToken(secret, bound, token, now + (ttl - 1) * 1000))).toBe(200);
    expect(status(() => decodePageToken(secret, bound, token, now + ttl * 1000))).toBe(410);
    expect(() => decodePageToken(secret, bound, token, now + ttl * 1000)).toThrow(/expired/);
  });

  it('refuses with 400 a token used with another query, another caller or another secret', () => {
    const token = issue();
    expect(status(() => decodePageToken(secret, { query: 'Patient?name=b', caller: '' }, token, now))).toBe(400);
    expect(status(() => decodePageToken(secret, { query: 'Patient?name=a', caller: 'Practitioner/1' }, token, now))).toBe(400);
    const theirs = issue(undefined, { query: 'Patient?name=a', caller: 'Practitioner/1' });
    expect(status(() => decodePageToken(secret, { query: 'Patient?name=a', caller: 'Practitioner/1' }, theirs, now))).toBe(200);
    expect(status(() => decodePageToken(secret, bound, theirs, now))).toBe(400);
    // the caller cannot be shifted into the query or back
    const shifted = issue(undefined, { query: 'name=a', caller: 'Patient?' });
    expect(status(() => decodePageToken(secret, { query: 'Patient?name=a', caller: '' }, shifted, now))).toBe(400);
    expect(status(() => decodePageToken(crypto.randomBytes(32).toString('base64url'), bound, token, now))).toBe(400);
  });

  it('refuses with 400, never anything else, tampered, truncated and garbage tokens', () => {
    const token = issue();
    const bytes = Buffer.from(token, 'base64url');
    const variants: string[] = ['', 'garbage', 'a', '....', '%00', 'é', 'A'.repeat(10000), token + '.', token + 'A', token.slice(0, -1), token.slice(0, 20), token.slice(1)];
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 0x01;
      variants.push(flipped.toString('base64url'));
    }
    for (let n = 0; n < bytes.length; n += 3) variants.push(bytes.subarray(0, n).toString('base64url'));
    for (let n = 0; n < 50; n++) variants.push(crypto.randomBytes(n * 3).toString('base64url'));
    // the former format: base64url JSON, a dot and an HMAC
    variants.push(`${Buffer.from(JSON.stringify(['n', ['x']])).toString('base64url')}.${'A'.repeat(32)}`);
    for (const v of variants) expect([v.slice(0, 40), status(() => decodePageToken(secret, bound, v, now))]).toEqual([v.slice(0, 40), 400]);
  });
});
