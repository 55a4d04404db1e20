import { officialDefinitions } from '../search/searchParameters';
import { capabilityStatementIssues } from './capabilityStatementRules';
import { createServerValidator } from './forServer';

/** A CapabilityStatement declares each search parameter with the type of its definition. */
const types: Record<string, string> = { 'http://example.org/sp/status': 'token', 'http://example.org/sp/date': 'date' };
const lookup = (url: string) => types[url];

const cs = (params: { definition?: string; type: string }[], systemParams: { definition?: string; type: string }[] = []) => ({
  resourceType: 'CapabilityStatement',
  rest: [{ mode: 'server', searchParam: systemParams.map((p, i) => ({ name: `s${i}`, ...p })), resource: [{ type: 'Observation', searchParam: params.map((p, i) => ({ name: `p${i}`, ...p })) }] }],
});

describe('capabilityStatementIssues', () => {
  it.each([
    ['the definition type', [{ definition: 'http://example.org/sp/status', type: 'token' }], []],
    ['no definition', [{ type: 'date' }], []],
    ['a definition not known here', [{ definition: 'http://example.org/sp/unknown', type: 'date' }], []],
  ])('%s: nothing', (_label, params, expected) => {
    expect(capabilityStatementIssues(cs(params), lookup)).toEqual(expected);
  });
  it('another type than its definition, on a resource and at system level: an error each', () => {
    const issues = capabilityStatementIssues(cs([{ definition: 'http://example.org/sp/status', type: 'date' }], [{ definition: 'http://example.org/sp/date', type: 'string' }]), lookup);
    expect(issues.map((i) => `${i.severity} ${i.expression?.[0]}: ${i.diagnostics}`)).toEqual([
      "error CapabilityStatement.rest[0].searchParam[0]: Type mismatch - SearchParameter 'http://example.org/sp/date' type is date, but type here is string",
      "error CapabilityStatement.rest[0].resource[0].searchParam[0]: Type mismatch - SearchParameter 'http://example.org/sp/status' type is token, but type here is date",
    ]);
  });
});

it("the server's validator knows the official definitions", () => {
  const url = 'http://hl7.org/fhir/SearchParameter/AllergyIntolerance-clinical-status';
  expect(officialDefinitions().find((d) => d.url === url)?.type).toBe('token');
  const statement = {
    resourceType: 'CapabilityStatement',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' },
    status: 'draft',
    date: '2024-01-01',
    kind: 'requirements',
    description: 'what a client asks for',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server', resource: [{ type: 'AllergyIntolerance', searchParam: [{ name: 'clinical-status', definition: url, type: 'date' }] }] }],
  };
  const errors = createServerValidator()
    .validate(statement)
    .filter((i) => i.severity === 'error');
  expect(errors.map((i) => i.expression?.[0])).toEqual(['CapabilityStatement.rest[0].resource[0].searchParam[0]']);
});
