import { readXml } from '../xml/readXml';
import { identifierIssues } from './identifierRules';
import { Validator } from './index';

describe('identifierIssues', () => {
  it.each([
    ['a URI with a scheme', { system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.16.840.1.113883.6.57' }, 0],
    ['an http URL', { system: 'urn:ietf:rfc:3986', value: 'http://example.org/ids/1' }, 0],
    ['a bare OID', { system: 'urn:ietf:rfc:3986', value: '2.16.840.1.113883.6.57' }, 1],
    ['a relative path', { system: 'urn:ietf:rfc:3986', value: 'Patient/1' }, 1],
    ['another system', { system: 'urn:oid:1.2.250.1.213.1.4.8', value: '2.16.840' }, 0],
    ['no value', { system: 'urn:ietf:rfc:3986' }, 0],
  ])('%s', (_label, identifier, count) => {
    const issues = identifierIssues(identifier, 'X.identifier[0]');
    expect(issues.length).toBe(count);
    for (const i of issues) expect([i.severity, i.expression?.[0]]).toEqual(['error', 'X.identifier[0]']);
  });
});

describe('the validator', () => {
  const v = Validator.create();
  const LIMITS = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };
  const errorsAt = (r: unknown) => v.validate(r).filter((i) => i.severity === 'error').map((i) => i.expression?.[0]);
  it('checks an identifier that says its value is a URI, in JSON and in XML', () => {
    const cs = { resourceType: 'CodeSystem', url: 'http://example.org/cs/c', identifier: [{ system: 'urn:ietf:rfc:3986', value: '2.16.840.1.113883.6.57' }], name: 'C', status: 'active', content: 'not-present' };
    expect(errorsAt(cs)).toEqual(['CodeSystem.identifier[0]']);
    const xml = readXml(
      '<CodeSystem xmlns="http://hl7.org/fhir"><url value="http://example.org/cs/c"/><identifier><system value="urn:ietf:rfc:3986"/><value value="2.16.840.1.113883.6.57"/></identifier>' +
        '<name value="C"/><status value="active"/><content value="not-present"/></CodeSystem>',
      LIMITS,
    ).value;
    expect(errorsAt(xml)).toEqual(['CodeSystem.identifier[0]']);
    expect(errorsAt({ ...cs, identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.16.840.1.113883.6.57' }] })).toEqual([]);
  });
});
