import { readXml } from '../xml/readXml';
import { codeSystemIssues } from './codeSystemRules';
import { createServerValidator } from './forServer';

const LIMITS = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };
const cs = (extra: Record<string, unknown>) => ({ resourceType: 'CodeSystem', url: 'http://example.org/cs/s', name: 'S', status: 'draft', ...extra });

describe('codeSystemIssues', () => {
  it.each([
    ['a code system that supplements none', cs({ content: 'complete', concept: [{ code: 'a' }] }), 0],
    ['a supplement with content supplement', cs({ content: 'supplement', supplements: 'http://loinc.org' }), 0],
    ['a supplement declared complete', cs({ content: 'complete', supplements: 'http://loinc.org', concept: [{ code: 'test' }] }), 1],
    ['a supplement with no content', cs({ supplements: 'http://loinc.org' }), 1],
  ])('%s', (_label, resource, count) => {
    const issues = codeSystemIssues(resource);
    expect(issues.length).toBe(count);
    for (const i of issues) expect([i.severity, i.expression?.[0]]).toEqual(['error', 'CodeSystem.content']);
  });
});

describe("the server's validator", () => {
  const v = createServerValidator();
  const errors = (r: unknown) => v.validate(r).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  it('refuses a supplement not declared as one, in JSON and in XML', () => {
    const json = cs({ content: 'complete', supplements: 'http://loinc.org', concept: [{ code: 'test', display: 'test code' }] });
    expect(errors(json).map((i) => i.expression?.[0])).toEqual(['CodeSystem.content']);
    const xml = readXml(
      '<CodeSystem xmlns="http://hl7.org/fhir"><url value="http://example.org/cs/s"/><name value="S"/><status value="draft"/><content value="complete"/>' +
        '<supplements value="http://loinc.org"/><concept><code value="test"/></concept></CodeSystem>',
      LIMITS,
    ).value;
    expect(errors(xml).map((i) => i.expression?.[0])).toEqual(['CodeSystem.content']);
    expect(errors({ ...json, content: 'supplement' })).toEqual([]);
  });
});
