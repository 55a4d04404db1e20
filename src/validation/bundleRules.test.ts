import type { Issue } from '../errors';
import { Validator } from './index';

/** Bundle rules of the HL7 validator: absolute fullUrls, one link per relation, references in a document that designate one entry. */
const DIV = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' };
const BASE = 'http://example.org/fhir/';

let v: Validator;
beforeAll(() => {
  v = Validator.create();
});
const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);

const observation = (id: string, versionId?: string) => ({
  resourceType: 'Observation',
  id,
  ...(versionId ? { meta: { versionId } } : {}),
  text: DIV,
  status: 'final',
  code: { text: 'height' },
  subject: { reference: 'Patient/pat' },
});

function document(references: string[], observations: Record<string, unknown>[]) {
  return {
    resourceType: 'Bundle',
    identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:4a1b9c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d' },
    type: 'document',
    timestamp: '2024-12-01T10:00:00Z',
    entry: [
      {
        fullUrl: `${BASE}Composition/comp`,
        resource: {
          resourceType: 'Composition',
          id: 'comp',
          text: DIV,
          status: 'final',
          type: { text: 'note' },
          subject: { reference: 'Patient/pat' },
          date: '2024-12-01',
          author: [{ reference: 'Patient/pat' }],
          title: 'Note',
          section: [{ title: 'Results', text: DIV, entry: references.map((reference) => ({ reference })) }],
        },
      },
      { fullUrl: `${BASE}Patient/pat`, resource: { resourceType: 'Patient', id: 'pat', text: DIV } },
      ...observations.map((o) => ({ fullUrl: `${BASE}Observation/${o.id}`, resource: o })),
    ],
  };
}

describe('references inside a document', () => {
  it('accepts references that designate one entry, versioned or not', () => {
    expect(errors(v.validate(document(['Observation/obs'], [observation('obs')])))).toEqual([]);
    expect(errors(v.validate(document(['Observation/obs/_history/2', 'Observation/obs/_history/1'], [observation('obs', '1'), observation('obs', '2')])))).toEqual([]);
  });

  it('refuses a reference that matches several versions, and a version the Bundle does not hold', () => {
    expect(errors(v.validate(document(['Observation/obs', 'Observation/obs/_history/3'], [observation('obs', '1'), observation('obs', '2')])))).toEqual([
      'Bundle.entry[0].resource.section[0].entry[0]: Multiple matches in the Bundle for the reference Observation/obs: name the version (…/_history/[versionId])',
      "Bundle.entry[0].resource.section[0].entry[1]: Can't find 'Observation/obs/_history/3' in the Bundle: it holds no entry of version 3",
    ]);
  });
});

describe('entries and links', () => {
  it('refuses a relative fullUrl', () => {
    const b = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'Patient/pat', resource: { resourceType: 'Patient', id: 'pat', text: DIV } }] };
    expect(errors(v.validate(b))).toEqual(["Bundle.entry[0].fullUrl: The fullUrl must be an absolute URL (not 'Patient/pat')"]);
  });

  it('refuses a resource without id under a fullUrl that looks like a RESTful server URL, but not a create in a transaction', () => {
    const entry = (fullUrl: string, id?: string) => ({ fullUrl, resource: { resourceType: 'Patient', ...(id ? { id } : {}), text: DIV } });
    const collection = { resourceType: 'Bundle', type: 'collection', entry: [entry(`${BASE}Patient/p1`), entry(`${BASE}Patient/p2`, 'p2'), entry('urn:uuid:9b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e')] };
    expect(errors(v.validate(collection))).toEqual([`Bundle.entry[0]: The fullUrl '${BASE}Patient/p1' looks like a RESTful server URL, but the resource has no id`]);
    const transaction = { resourceType: 'Bundle', type: 'transaction', entry: [{ ...entry(`${BASE}Patient/p1`), request: { method: 'POST', url: 'Patient' } }] };
    expect(errors(v.validate(transaction))).toEqual([]);
  });

  it('refuses a link relation given twice', () => {
    const b = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: `${BASE}Patient` }, { relation: 'next', url: `${BASE}Patient?page=2` }, { relation: 'self', url: `${BASE}Patient?x=1` }] };
    expect(errors(v.validate(b))).toEqual(["Bundle.link[2]: The link relation 'self' appears more than once in the Bundle"]);
  });
});
