import type { Issue } from '../errors';
import { documentIssues, resolveInBundle } from './documentRules';
import { Validator } from './index';

/** A document carries what its Composition refers to, resolved as R4 bundle.html says; every entry belongs to it. */
const REST = 'http://example.org/fhir/';
const UUID_COMP = 'urn:uuid:10a67a86-a9ec-427e-ba3f-f042cef21733';
const UUID_ORG = 'urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2';

const composition = (author: string, id?: string) => ({
  resourceType: 'Composition',
  ...(id ? { id } : {}),
  status: 'final',
  type: { text: 'note' },
  date: '2024-12-01',
  author: [{ reference: author }],
  title: 'Note',
});
const organization = (id?: string) => ({ resourceType: 'Organization', ...(id ? { id } : {}), name: 'Lab' });
const bundle = (type: string, entries: [string, object][]) => ({ resourceType: 'Bundle', type, entry: entries.map(([fullUrl, resource]) => ({ fullUrl, resource })) });
const shown = (issues: Issue[]) => issues.map((i) => `${i.severity} ${i.expression?.[0]}: ${i.diagnostics}`);

describe('resolving a reference inside a Bundle (R4 bundle.html)', () => {
  const entries = (compUrl: string, compId: string | undefined, orgUrl: string) => [
    { index: 0, fullUrl: compUrl, resource: composition('Organization/666', compId) },
    { index: 1, fullUrl: orgUrl, resource: organization('666') },
  ];
  it('resolves a relative reference against the RESTful base of the referring entry, when the fullUrl is that entry’s identity', () => {
    const e = entries(`${REST}Composition/1`, '1', `${REST}Organization/666`);
    expect(resolveInBundle('Organization/666', e[0], e)).toEqual([e[1]]);
    // the Composition has no id: its fullUrl is not its identity, and gives no base
    const noId = entries(`${REST}Composition/1`, undefined, `${REST}Organization/666`);
    expect(resolveInBundle('Organization/666', noId[0], noId)).toEqual([]);
    // another base: not the same resource
    const elsewhere = entries(`${REST}Composition/1`, '1', 'http://other.example/fhir/Organization/666');
    expect(resolveInBundle('Organization/666', elsewhere[0], elsewhere)).toEqual([]);
  });

  it('gives a relative reference no meaning from an entry identified by a urn:uuid:, even with a resource of that type and id in the Bundle', () => {
    const e = entries(UUID_COMP, undefined, UUID_ORG);
    expect(resolveInBundle('Organization/666', e[0], e)).toEqual([]);
    expect(resolveInBundle(UUID_ORG, e[0], e)).toEqual([e[1]]);
  });
});

describe('a document Bundle', () => {
  it('must carry what the Composition refers to, and every entry must be reachable from it: an error in a verdict, a warning on a write', () => {
    const doc = bundle('document', [
      [UUID_COMP, composition('Organization/666')],
      [UUID_ORG, organization('666')],
    ]);
    expect(shown(documentIssues(doc, 'Bundle', true))).toEqual([
      expect.stringContaining("error Bundle.entry[0].resource.author[0]: Can't find 'Organization/666' in the Bundle (Composition.author)"),
      expect.stringContaining(`error Bundle.entry[1]: Entry '${UUID_ORG}' isn't reachable`),
    ]);
    expect(documentIssues(doc, 'Bundle', true)[0].diagnostics).toContain(`A resource Organization/666 is in the Bundle (fullUrl ${UUID_ORG})`);
    expect(documentIssues(doc, 'Bundle', false).map((i) => i.severity)).toEqual(['warning', 'warning']);
    // referring to the entry by its fullUrl: nothing to say
    const fixed = bundle('document', [
      [UUID_COMP, composition(UUID_ORG)],
      [UUID_ORG, organization('666')],
    ]);
    expect(documentIssues(fixed, 'Bundle', true)).toEqual([]);
  });

  it('resolves relative references from a Composition with a RESTful identity, and counts an entry that refers to a reached one as reached', () => {
    const doc = bundle('document', [
      [`${REST}Composition/1`, composition('Organization/666', '1')],
      [`${REST}Organization/666`, organization('666')],
      [`${REST}Provenance/p`, { resourceType: 'Provenance', id: 'p', target: [{ reference: 'Organization/666' }], recorded: '2024-12-01T10:00:00Z', agent: [{ who: { display: 'x' } }] }],
    ]);
    expect(documentIssues(doc, 'Bundle', true)).toEqual([]);
  });

  it('counts a stylesheet named by a link of the Bundle as part of the document (R4 documents.html)', () => {
    const doc = bundle('document', [
      [UUID_COMP, composition(UUID_ORG)],
      [UUID_ORG, organization('666')],
      [`${REST}Binary/css`, { resourceType: 'Binary', id: 'css', contentType: 'text/css', data: 'cCB7fQ==' }],
    ]);
    expect(shown(documentIssues(doc, 'Bundle', true))).toEqual([expect.stringContaining("error Bundle.entry[2]: Entry 'http://example.org/fhir/Binary/css' isn't reachable")]);
    expect(documentIssues({ ...doc, link: [{ relation: 'stylesheet', url: 'Binary/css' }] }, 'Bundle', true)).toEqual([]);
  });

  it('is the only kind concerned: a collection may refer outside itself', () => {
    const collection = bundle('collection', [
      [UUID_COMP, composition('Organization/666')],
      [UUID_ORG, organization('666')],
    ]);
    expect(documentIssues(collection, 'Bundle', true)).toEqual([]);
  });

  it('is checked by the validator, with the severity of the kind of validation', () => {
    const v = Validator.create();
    const doc = {
      ...bundle('document', [
        [UUID_COMP, composition('Organization/666')],
        [UUID_ORG, organization('666')],
      ]),
      identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:4a1b9c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d' },
      timestamp: '2024-12-01T10:00:00Z',
    };
    const ours = (issues: Issue[]) => issues.filter((i) => /Can't find|isn't reachable/.test(i.diagnostics ?? '')).map((i) => i.severity);
    expect(ours(v.validate(doc, { unknownExtensions: 'error' }))).toEqual(['error', 'error']);
    expect(ours(v.validate(doc))).toEqual(['warning', 'warning']);
  });
});
