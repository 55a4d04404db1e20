import { binaryCandidates, unplainBinaryUrl } from './recordRelations';

/** docs/decisions/008-access-model.md, amendments: a url naming a Binary is written in URL characters only. */
describe('a url naming a Binary written with anything but URL characters', () => {
  const base = 'https://dmp.example/fhir';
  it.each([
    ['Binary/ab%2Dcd', true],
    ['%42inary/ab-cd', true],
    ['Binary/ab-cd?name=a%20b', true],
    [`${base}/Binary/ab%2Dcd`, true],
    ['./Binary/ab%2Dcd', true],
    // the same server written otherwise: scheme and host in capitals, an address, a doubled slash
    ['HTTP://DMP.EXAMPLE/fhir/Binary/ab%41', true],
    ['http://127.0.0.1:8080/fhir/Binary/ab%2Dcd', true],
    ['https://dmp.example//fhir/Binary/ab%2Dcd', true],
    // any host: which ones name this server is not knowable from inside it
    ['https://elsewhere.example/fhir/Binary/ab%2Dcd', true],
    ['//elsewhere.example/Binary/ab%2Dcd', true],
    // escapes nested, or spelling the word itself
    ['%2542inary/ab-cd', true],
    ['B%69nary/ab-cd', true],
    ['Binary%2Fab-cd', true],
    ['https://dmp.example/fhir%2FBinary/ab-cd', true],
    // a stray `%` in a url naming a Binary: no id has one either
    ['Binary/ab-cd%', true],
    // a backslash (read as /), a control character, a space, a character outside RFC 3986
    ['Binary\\ab-cd', true],
    ['Binary/ab-cd\\', true],
    ['https://dmp.example/fhir/Binary\\ab-cd', true],
    ['Binary/ab-cd\u001f', true],
    ['Bin\u0000ary/ab-cd', true],
    ['Binary/ab-cd ', true],
    ['Binary/ab-cdé', true],
    // no escape, or an escape in a url that cannot name a Binary
    ['https://elsewhere.example/files/compte rendu.pdf', false],
    ['https://elsewhere.example/files\\a.pdf', false],
    ['Binary/ab-cd', false],
    [`${base}/Binary/ab-cd`, false],
    ['https://elsewhere.example/files/compte%20rendu.pdf', false],
    ['urn:oid:1.2.3%25', false],
    [undefined, false],
    [42, false],
  ])('%s: %s', (url, escaped) => {
    expect(unplainBinaryUrl(url)).toBe(escaped);
  });
});

/** The ids a url may name a Binary by, as a client resolves it: every segment after `Binary/` that could be one. */
describe('the Binaries a url may name', () => {
  it.each([
    ['Binary/ab-cd', ['ab-cd']],
    ['https://dmp.example/fhir/Binary/ab-cd/_history/2?x=1#f', ['ab-cd', '2', 'f']],
    ['Binary//ab-cd', ['ab-cd']],
    ['./Binary/./ab-cd', ['ab-cd']],
    ['https://elsewhere.example/files/a.pdf', []],
    [undefined, []],
  ])('%s', (url, ids) => {
    expect(binaryCandidates(url)).toEqual(ids);
  });
});
