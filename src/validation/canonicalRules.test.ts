import type { Issue } from '../errors';
import { Validator } from './index';

/** Canonical URLs and code systems as the HL7 validator checks them. */
let v: Validator;
beforeAll(() => {
  v = Validator.create();
});
const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);
const DIV = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' };

const codeSystem = (url: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'CodeSystem',
  text: DIV,
  url,
  name: 'Test',
  status: 'draft',
  content: 'complete',
  concept: [{ code: 'a', display: 'A' }],
  ...extra,
});

describe("a canonical resource's url is absolute", () => {
  it('absolute (http, urn:uuid): accepted', () => {
    expect(errors(v.validate(codeSystem('http://example.org/cs')))).toEqual([]);
    expect(errors(v.validate(codeSystem('urn:uuid:6a2ee390-978e-42c6-8f88-c17dff3bd8a3')))).toEqual([]);
  });
  it('relative, on the resource and on a contained one: refused', () => {
    const vs = {
      resourceType: 'ValueSet',
      text: DIV,
      url: 'ValueSet/mine',
      name: 'Mine',
      status: 'draft',
      contained: [codeSystem('cs1', { id: 'cs1', text: undefined })],
      compose: { include: [{ system: '#cs1' }] },
    };
    expect(errors(v.validate(vs)).sort()).toEqual([
      'ValueSet.contained[0].url: Canonical URLs must be absolute URLs if they are not fragment references (cs1)',
      'ValueSet.url: Canonical URLs must be absolute URLs if they are not fragment references (ValueSet/mine)',
    ]);
  });
  it('a url element of something that is not a canonical resource is not concerned', () => {
    const ext = { resourceType: 'Basic', text: DIV, code: { text: 'x' }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/alternate-canonical', valueCanonical: 'relative' }] };
    expect(errors(v.validate(ext)).filter((e) => e.includes('Canonical URLs must be absolute'))).toEqual([]);
  });
});

describe('a canonical designates a resource of a type it allows', () => {
  const qr = (questionnaire: string) => ({ resourceType: 'QuestionnaireResponse', text: DIV, questionnaire, status: 'in-progress' });
  it('a known ValueSet where a Questionnaire is expected: refused', () => {
    expect(errors(v.validate(qr('http://hl7.org/fhir/ValueSet/administrative-gender')))).toEqual([
      "QuestionnaireResponse.questionnaire: Canonical URL 'http://hl7.org/fhir/ValueSet/administrative-gender' refers to a resource that has the wrong type. Found ValueSet expecting one of [Questionnaire]",
    ]);
  });
  it('a canonical known to designate nothing here: not judged', () => {
    expect(errors(v.validate(qr('http://example.org/Questionnaire/unknown')))).toEqual([]);
  });
  it('a profile in meta.profile is a StructureDefinition, as its element allows', () => {
    const p = { resourceType: 'Patient', text: DIV, meta: { profile: ['http://hl7.org/fhir/StructureDefinition/Patient'] } };
    expect(errors(v.validate(p))).toEqual([]);
  });
});

describe('a CodeSystem supplement is not a code system for codings', () => {
  it('a coding whose system is a supplement: refused; the supplemented system itself: accepted', () => {
    const local = Validator.create();
    expect(errors(local.addConformanceResource(codeSystem('http://example.org/cs-base')))).toEqual([]);
    expect(errors(local.addConformanceResource(codeSystem('http://example.org/cs-supplement', { content: 'supplement', supplements: 'http://example.org/cs-base' })))).toEqual([]);
    const obs = (system: string) => ({ resourceType: 'Observation', text: DIV, status: 'final', code: { coding: [{ system, code: 'a' }] } });
    expect(errors(local.validate(obs('http://example.org/cs-supplement')))).toEqual([
      'Observation.code.coding[0].system: CodeSystem http://example.org/cs-supplement is a supplement (of http://example.org/cs-base), so it cannot be used as a value in Coding.system',
    ]);
    expect(errors(local.validate(obs('http://example.org/cs-base')))).toEqual([]);
  });
});
