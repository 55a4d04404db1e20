import { escapedLocalUrl } from './recordRelations';

/** docs/decisions/008-access-model.md, amendment: a url to this server is written without percent-escapes. */
describe('a url to this server written with percent-escapes', () => {
  const base = 'https://dmp.example/fhir';
  it.each([
    ['Binary/ab%2Dcd', true],
    ['%42inary/ab-cd', true],
    ['Binary/ab-cd?name=a%20b', true],
    [`${base}/Binary/ab%2Dcd`, true],
    ['./Binary/ab%2Dcd', true],
    ['Binary/ab-cd', false],
    [`${base}/Binary/ab-cd`, false],
    ['https://elsewhere.example/fhir/Binary/ab%2Dcd', false],
    [`${base}x/Binary/ab%2Dcd`, false],
    ['//elsewhere.example/Binary/ab%2Dcd', false],
    ['urn:oid:1.2.3%25', false],
    [undefined, false],
    [42, false],
  ])('%s: %s', (url, escaped) => {
    expect(escapedLocalUrl(url, base)).toBe(escaped);
  });
});
