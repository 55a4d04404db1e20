import { applyOperations, parseOperations, PatchError } from '../interactions/fhirpathPatch';
import { checkXhtml } from '../validation/xhtml';
import { checkJson } from './jsonProperty';
import { checkNarrative } from './narrativeProperty';
import { checkPatch } from './patchProperty';
import { checkXml } from './xmlProperty';

/**
 * Every input with which fuzzing (npm run fuzz, docs/operations/fuzzing.md) found a
 * defect, as it was found: the module's own behaviour, then the property it broke.
 */
const NS = 'http://www.w3.org/1999/xhtml';
const NO_BOUND = { boundMs: Infinity };

describe('FHIRPath Patch: inputs found by fuzzing', () => {
  const patient = { resourceType: 'Patient', id: 'p', active: true };

  it.each([
    ['a null parameter', { resourceType: 'Parameters', parameter: [null] }],
    ['parameters that are not a list', { resourceType: 'Parameters', parameter: 'x' }],
    ['a null part', { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [null] }] }],
    ['parts that are not a list', { resourceType: 'Parameters', parameter: [{ name: 'operation', part: 'x' }] }],
  ])('%s is refused as a PatchError, not a TypeError', (_what, parameters) => {
    expect(() => parseOperations(parameters, 'Patient')).toThrow(PatchError);
    checkPatch({ resource: patient, parameters }, NO_BOUND);
  });

  it('does not change the patch when a later operation changes a value an earlier one wrote', () => {
    const observation = { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'x' }, valueQuantity: { value: 72, unit: '/min' } };
    const parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Observation.value.as(Quantity)' }, { name: 'value', valueQuantity: { value: 1 } }] },
        { name: 'operation', part: [{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: 'Observation.valueQuantity.value' }] },
      ],
    };
    const operations = parseOperations(parameters, 'Observation');
    const first = applyOperations(observation, operations);
    expect(parameters.parameter[0].part[2]).toEqual({ name: 'value', valueQuantity: { value: 1 } });
    expect(applyOperations(observation, operations)).toEqual(first);
    checkPatch({ resource: observation, parameters }, NO_BOUND);
  });
});

describe('narrative checker: inputs found by fuzzing', () => {
  it('reads a <template> inside MathML or SVG (no template content there) without throwing', () => {
    for (const div of [`<div xmlns="${NS}"><math><template></template></math></div>`, `<div xmlns="${NS}"><svg><template><p>x</p></template></svg></div>`]) {
      expect(() => checkXhtml(div)).not.toThrow();
      expect(checkXhtml(div).length).toBeGreaterThan(0); // math and svg are not narrative elements
      checkNarrative({ div }, NO_BOUND);
    }
  });

  it('refuses a link XML reads as relative ("java script:", tab and line break as spaces) and a browser as javascript:', () => {
    for (const div of [`<div xmlns="${NS}"><div><div><area href="\tjava\nscript:alert(1)"></area></div></div>x</div>`, `<div xmlns="${NS}"><a href="java\r\nscript:alert(1)">x</a></div>`]) {
      expect(checkXhtml(div).map((p) => p.message).join('\n')).toMatch(/Unsafe href in the XHTML .* not javascript:/s);
      checkNarrative({ div }, NO_BOUND);
    }
  });

  it('still accepts line breaks in an attribute that is not a URL', () => {
    expect(checkXhtml(`<div xmlns="${NS}"><a href="#x" title="line one\r\nline two">x</a></div>`)).toEqual([]);
  });
});

describe('JSON reader: inputs that taught the reference', () => {
  // not defects of the reader: the property's own mistakes, kept so that they stay fixed
  it.each([
    ['a top-level number written otherwise, noted at "/"', '1E+2'],
    ['a duplicate whose first value is past a limit', '{"":{},"":null}'],
    ['a lone surrogate as such (the reader is given text decoded from UTF-8)', '"\ud800"'],
  ])('%s', (_what, text) => {
    checkJson({ text, limits: { maxDepth: 1, maxNodes: 2, maxArrayLength: 0 } }, NO_BOUND);
  });
});

describe('XML reader: inputs that taught the property', () => {
  // not defects of the reader: it takes elements in any order and the writer puts them in the
  // definitions' order, so the value read back has its members in another order
  it('elements out of the definitions order (given before family) read back as the same value', () => {
    const F = 'xmlns="http://hl7.org/fhir"';
    checkXml({ text: `<Patient ${F}><name id="n"><given value="g"/><family value="Dupont"/><given value="A"/><given><extension url="http://e/x"><valueCode value="UNK"/></extension></given><given value="B"/></name></Patient>`, limits: { maxDepth: 5, maxNodes: 18, maxArrayLength: 4 } }, NO_BOUND);
  });
});
