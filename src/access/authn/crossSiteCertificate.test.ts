import { crossSiteCertificateRefusal } from './crossSiteCertificate';

describe('crossSiteCertificateRefusal', () => {
  it.each<[string, Record<string, string | undefined>]>([
    ['a client that is not a browser', {}],
    ['a typed URL or a bookmark', { 'sec-fetch-site': 'none' }],
    ['this origin', { 'sec-fetch-site': 'same-origin' }],
    ['this origin, in capitals', { 'sec-fetch-site': ' Same-Origin ' }],
  ])('accepts the certificate alone from %s', (_name, headers) => {
    expect(crossSiteCertificateRefusal(headers)).toBeUndefined();
  });

  it.each<[string, Record<string, string | undefined>]>([
    ['a page of another origin (fetch, form post)', { origin: 'https://evil.example' }],
    ['a sandboxed or file: page', { origin: 'null' }],
    ['an image or script of another site (no Origin)', { 'sec-fetch-site': 'cross-site' }],
    ['a sibling subdomain', { 'sec-fetch-site': 'same-site' }],
    ['an Origin beside Sec-Fetch-Site none', { origin: 'https://evil.example', 'sec-fetch-site': 'none' }],
    ['an unknown Sec-Fetch-Site value', { 'sec-fetch-site': 'elsewhere' }],
  ])('refuses it from %s', (_name, headers) => {
    expect(crossSiteCertificateRefusal(headers)).toMatch(/send a bearer token/);
  });
});
