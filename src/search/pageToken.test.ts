import { decodePageToken, encodePageToken } from './pageToken';

describe('page tokens', () => {
  const secret = 'test-secret';
  it('round-trips the boundary of the query it was issued for', () => {
    const token = encodePageToken(secret, 'Patient?name=a', { direction: 'n', keys: ['2020-01-01T00:00:00.000Z', 'abc'] });
    expect(decodePageToken(secret, 'Patient?name=a', token)).toEqual({ direction: 'n', keys: ['2020-01-01T00:00:00.000Z', 'abc'] });
  });

  it('refuses a token used with another query (no widening), a forged payload or another secret', () => {
    const token = encodePageToken(secret, 'Patient?name=a', { direction: 'n', keys: ['x'] });
    expect(() => decodePageToken(secret, 'Patient?name=b', token)).toThrow(/page token/);
    const [, mac] = token.split('.');
    const forged = `${Buffer.from(JSON.stringify(['n', ['y']])).toString('base64url')}.${mac}`;
    expect(() => decodePageToken(secret, 'Patient?name=a', forged)).toThrow(/page token/);
    expect(() => decodePageToken('other', 'Patient?name=a', token)).toThrow(/page token/);
    expect(() => decodePageToken(secret, 'Patient?name=a', 'garbage')).toThrow(/page token/);
  });
});
