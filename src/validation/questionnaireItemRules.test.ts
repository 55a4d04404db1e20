import * as path from 'path';
import type { Issue } from '../errors';
import { Validator } from './index';
import { questionnaireLookup, questionnaireResponseCheck, valueSetDisplay, valueSetMembership } from './questionnaireResponse';

/**
 * The item-constraint extensions of a Questionnaire, answer option rules and abstract items,
 * checked on QuestionnaireResponses through the Validator (as the server wires it).
 */
const EXT = 'http://hl7.org/fhir/StructureDefinition/';
const SDC = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/';
const UCUM = 'http://unitsofmeasure.org';
const COLORS = 'http://example.org/fhir/CodeSystem/test-colors';
const Q_URL = 'http://example.org/fhir/Questionnaire/constraints';

const ext = (name: string, value: Record<string, unknown>) => ({ url: name.startsWith('http') ? name : `${EXT}${name}`, ...value });
const kg = (value: number, code = 'kg') => ({ value, unit: code, system: UCUM, code });

const questionnaire = {
  resourceType: 'Questionnaire',
  url: Q_URL,
  status: 'active',
  item: [
    { linkId: 'int', type: 'integer', extension: [ext('minValue', { valueInteger: 1 }), ext('maxValue', { valueInteger: 10 })] },
    { linkId: 'dec', type: 'decimal', extension: [ext('minValue', { valueDecimal: 0.5 }), ext('maxValue', { valueDecimal: 2.5 }), ext('maxDecimalPlaces', { valueInteger: 2 })] },
    { linkId: 'date', type: 'date', extension: [ext('minValue', { valueDate: '2020-01-01' }), ext('maxValue', { valueDate: '2020-12-31' })] },
    { linkId: 'dateTime', type: 'dateTime', extension: [ext('minValue', { valueDateTime: '2020-01-01T00:00:00Z' }), ext('maxValue', { valueDateTime: '2020-12-31T23:59:59Z' })] },
    { linkId: 'time', type: 'time', extension: [ext('minValue', { valueTime: '08:00:00' }), ext('maxValue', { valueTime: '18:00:00' })] },
    {
      linkId: 'weight',
      type: 'quantity',
      extension: [
        ext(`${SDC}sdc-questionnaire-minQuantity`, { valueQuantity: kg(2) }),
        ext(`${SDC}sdc-questionnaire-maxQuantity`, { valueQuantity: kg(200) }),
        ext('questionnaire-unitOption', { valueCoding: { system: UCUM, code: 'kg' } }),
        ext('questionnaire-unitOption', { valueCoding: { system: UCUM, code: 'g' } }),
        ext('maxDecimalPlaces', { valueInteger: 1 }),
      ],
    },
    { linkId: 'colorUnit', type: 'quantity', extension: [ext('questionnaire-unitValueSet', { valueCanonical: 'http://example.org/fhir/ValueSet/test-warm-colors' })] },
    { linkId: 'code', type: 'string', extension: [ext('regex', { valueString: '[A-Z]{2}[0-9]{3}' }), ext('minLength', { valueInteger: 5 })] },
    { linkId: 'scan', type: 'attachment', extension: [ext('mimeType', { valueCode: 'application/pdf' }), ext('mimeType', { valueCode: 'image/*' }), ext('maxSize', { valueDecimal: 4 })] },
    { linkId: 'phones', type: 'string', repeats: true, extension: [ext('questionnaire-minOccurs', { valueInteger: 2 }), ext('questionnaire-maxOccurs', { valueInteger: 3 })] },
    { linkId: 'score', type: 'integer', answerOption: [{ valueInteger: 1 }, { valueInteger: 2 }, { valueInteger: 3 }] },
    { linkId: 'visit', type: 'date', answerOption: [{ valueDate: '2024-05-01' }, { valueDate: '2024-05-02' }] },
    {
      linkId: 'symptoms',
      type: 'choice',
      repeats: true,
      answerOption: [
        { valueCoding: { system: COLORS, code: 'red' } },
        { valueCoding: { system: COLORS, code: 'blue' } },
        { valueCoding: { system: COLORS, code: 'green' }, extension: [ext('questionnaire-optionExclusive', { valueBoolean: true })] },
      ],
    },
    { linkId: 'warm', type: 'choice', answerValueSet: 'http://example.org/fhir/ValueSet/test-warm-colors' },
    { linkId: 'heading', type: 'question', item: [{ linkId: 'inner', type: 'string' }] },
    { linkId: 'note', type: 'display', text: 'Thank you' },
  ],
};

const answered = (linkId: string, ...answer: Record<string, unknown>[]) => ({
  resourceType: 'QuestionnaireResponse',
  questionnaire: Q_URL,
  status: 'completed',
  item: [{ linkId, answer }],
});

let v: Validator;
beforeAll(() => {
  v = Validator.create({ conformanceDirs: [path.join(__dirname, 'testdata', 'conformance')] });
  expect(v.addConformanceResource(questionnaire).filter((i) => i.severity === 'error')).toEqual([]);
  v.addDomainCheck(questionnaireResponseCheck(questionnaireLookup(v), { valueSetContains: valueSetMembership(v), valueSetDisplayProblem: valueSetDisplay(v) }));
});

/** The issues of the questionnaire check alone (errors and warnings), as "severity path: diagnostics". */
const issuesOf = (qr: unknown): string[] =>
  v
    .validate(qr)
    .filter((i: Issue) => (i.severity === 'error' || i.severity === 'warning') && !/dom-6|narrative/.test(i.diagnostics))
    .map((i: Issue) => `${i.severity} ${i.expression?.[0]}: ${i.diagnostics}`);

describe('minValue and maxValue', () => {
  it.each([
    ['int', { valueInteger: 5 }],
    ['int', { valueInteger: 1 }],
    ['dec', { valueDecimal: 2.5 }],
    ['date', { valueDate: '2020-06-01' }],
    ['date', { valueDate: '2020-06' }],
    ['dateTime', { valueDateTime: '2020-06-01T10:00:00+02:00' }],
    ['time', { valueTime: '12:30:00' }],
    ['weight', { valueQuantity: kg(70) }],
    ['weight', { valueQuantity: kg(2500, 'g') }],
  ])('accepts %s %j inside the limits', (linkId, answer) => {
    expect(issuesOf(answered(linkId, answer))).toEqual([]);
  });

  it.each([
    ['int', { valueInteger: 0 }, /less than the minimum 1/],
    ['int', { valueInteger: 11 }, /more than the maximum 10/],
    ['dec', { valueDecimal: 0.25 }, /less than the minimum 0.5/],
    ['date', { valueDate: '2021-01-01' }, /more than the maximum '2020-12-31'/],
    ['date', { valueDate: '2019' }, /less than the minimum/],
    ['dateTime', { valueDateTime: '2019-12-31T23:00:00Z' }, /less than the minimum/],
    ['time', { valueTime: '07:59:59' }, /less than the minimum '08:00:00'/],
    ['weight', { valueQuantity: kg(1.5) }, /less than the minimum 2 kg/],
    // 250000 g is 250 kg: compared through UCUM
    ['weight', { valueQuantity: kg(250000, 'g') }, /more than the maximum 200 kg/],
  ])('refuses %s %j outside the limits', (linkId, answer, message) => {
    const found = issuesOf(answered(linkId, answer));
    expect(found).toEqual([expect.stringMatching(/^error QuestionnaireResponse.item\[0\].answer\[0\]: /)]);
    expect(found[0]).toMatch(message);
  });

  it('says a quantity in units that cannot be converted cannot be compared, and leaves a partial date it cannot place undecided', () => {
    const found = issuesOf(answered('weight', { valueQuantity: { value: 3, unit: 'm', system: UCUM, code: 'm' } }));
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/cannot be compared with the minimum 2 kg.*not comparable/), expect.stringMatching(/not one of the unit options/)]));
    // 2020 is both before and after 2020-01-01 depending on the day meant
    expect(issuesOf(answered('date', { valueDate: '2020' }))).toEqual([]);
  });
});

describe('decimal places, length, regex', () => {
  it('counts the decimal places of decimals and quantities', () => {
    expect(issuesOf(answered('dec', { valueDecimal: 1.25 }))).toEqual([]);
    expect(issuesOf(answered('dec', { valueDecimal: 1.255 }))).toEqual([expect.stringMatching(/1.255 has 3 decimal places, more than the 2 allowed/)]);
    expect(issuesOf(answered('weight', { valueQuantity: kg(70.25) }))).toEqual([expect.stringMatching(/70.25 has 2 decimal places, more than the 1 allowed/)]);
  });

  it('matches the whole answer against the regex (RE2) and checks minLength', () => {
    expect(issuesOf(answered('code', { valueString: 'AB123' }))).toEqual([]);
    expect(issuesOf(answered('code', { valueString: 'AB1234' }))).toEqual([expect.stringMatching(/does not match the regex/)]);
    expect(issuesOf(answered('code', { valueString: 'A1' }))).toEqual([expect.stringMatching(/less than minLength 5/), expect.stringMatching(/does not match the regex/)]);
  });

  it('does not run a contained questionnaire pattern RE2 cannot run: the answer is reported as not checked', () => {
    const qr = {
      resourceType: 'QuestionnaireResponse',
      contained: [{ resourceType: 'Questionnaire', id: 'q', status: 'active', item: [{ linkId: 'x', type: 'string', extension: [ext('regex', { valueString: '(a)\\1' })] }] }],
      questionnaire: '#q',
      status: 'completed',
      item: [{ linkId: 'x', answer: [{ valueString: 'aa' }] }],
    };
    expect(issuesOf(qr)).toEqual([expect.stringMatching(/^warning .*not checked against its regex/)]);
  });

  it('refuses to register a questionnaire whose regex RE2 cannot run', () => {
    const issues = v.checkConformanceResource({ ...questionnaire, url: 'http://example.org/fhir/Questionnaire/lookbehind', item: [{ linkId: 'x', type: 'string', extension: [ext('regex', { valueString: '(?<=a)b' })] }] });
    expect(issues).toEqual([expect.objectContaining({ severity: 'error', code: 'not-supported', expression: ['Questionnaire.item[0].extension[0].valueString'] })]);
  });
});

describe('attachments', () => {
  it('checks the content type (with wildcards) and the size of the data or the stated size', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(issuesOf(answered('scan', { valueAttachment: { contentType: 'application/pdf', data: b64('abcd') } }))).toEqual([]);
    expect(issuesOf(answered('scan', { valueAttachment: { contentType: 'image/png', url: 'http://example.org/scan.png', size: 3 } }))).toEqual([]);
    expect(issuesOf(answered('scan', { valueAttachment: { contentType: 'text/plain', data: b64('abc') } }))).toEqual([expect.stringMatching(/content type text\/plain is not among/)]);
    expect(issuesOf(answered('scan', { valueAttachment: { contentType: 'application/pdf', data: b64('abcdef') } }))).toEqual([expect.stringMatching(/6 bytes, more than the 4 allowed/)]);
    expect(issuesOf(answered('scan', { valueAttachment: { contentType: 'image/jpeg', url: 'http://example.org/scan.jpg', size: 5 } }))).toEqual([expect.stringMatching(/5 bytes, more than the 4/)]);
  });
});

describe('units', () => {
  it('takes a unit among the unit options and from the unit value set', () => {
    expect(issuesOf(answered('weight', { valueQuantity: { value: 10, unit: 'lb', system: UCUM, code: '[lb_av]' } }))).toEqual([expect.stringMatching(/\[lb_av\] is not one of the unit options/)]);
    expect(issuesOf(answered('colorUnit', { valueQuantity: { value: 3, system: COLORS, code: 'dark-red' } }))).toEqual([]);
    expect(issuesOf(answered('colorUnit', { valueQuantity: { value: 3, system: COLORS, code: 'blue' } }))).toEqual([expect.stringMatching(/unit .*blue is not in the value set/)]);
  });
});

describe('occurrences, options, abstract items', () => {
  it('counts answers against minOccurs and maxOccurs', () => {
    const s = (valueString: string) => ({ valueString });
    expect(issuesOf(answered('phones', s('1'), s('2')))).toEqual([]);
    expect(issuesOf(answered('phones', s('1')))).toEqual([expect.stringMatching(/^error .*1 answers, fewer than minOccurs 2/)]);
    expect(issuesOf(answered('phones', s('1'), s('2'), s('3'), s('4')))).toEqual([expect.stringMatching(/4 answers, more than maxOccurs 3/)]);
    expect(issuesOf({ ...answered('phones', s('1')), status: 'in-progress' })).toEqual([expect.stringMatching(/^warning .*fewer than minOccurs/)]);
  });

  it('restricts integer and date items to their answerOption', () => {
    expect(issuesOf(answered('score', { valueInteger: 2 }))).toEqual([]);
    expect(issuesOf(answered('score', { valueInteger: 4 }))).toEqual([expect.stringMatching(/4 is not a valid option/)]);
    expect(issuesOf(answered('visit', { valueDate: '2024-05-01' }))).toEqual([]);
    expect(issuesOf(answered('visit', { valueDate: '2024-05-03' }))).toEqual([expect.stringMatching(/not a valid option/)]);
  });

  it('keeps an exclusive option alone', () => {
    const c = (code: string) => ({ valueCoding: { system: COLORS, code } });
    expect(issuesOf(answered('symptoms', c('red'), c('blue')))).toEqual([]);
    expect(issuesOf(answered('symptoms', c('green')))).toEqual([]);
    expect(issuesOf(answered('symptoms', c('red'), c('green')))).toEqual([expect.stringMatching(/^error QuestionnaireResponse.item\[0\].answer\[1\]: .*exclusive option/)]);
  });

  it('checks a coded answer and its display against the answerValueSet', () => {
    expect(issuesOf(answered('warm', { valueCoding: { system: COLORS, code: 'dark-red', display: 'Dark red' } }))).toEqual([]);
    expect(issuesOf(answered('warm', { valueCoding: { system: COLORS, code: 'blue' } }))).toEqual([expect.stringMatching(/^error .*not in the value set/)]);
    expect(issuesOf(answered('warm', { valueCoding: { system: COLORS, code: 'dark-red', display: 'Crimson' } }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^warning .*Wrong Display Name 'Crimson'/)]),
    );
  });

  it('refuses answers to question (abstract) and display items', () => {
    expect(issuesOf(answered('heading', { valueString: 'x' }))).toEqual([expect.stringMatching(/abstract type question should not have answers/)]);
    expect(issuesOf(answered('note', { valueString: 'x' }))).toEqual([expect.stringMatching(/type display should not have answers/)]);
  });
});

describe('a value set contained in the Questionnaire', () => {
  it('checks coded answers against its enumerated codes', () => {
    const url = 'http://example.org/fhir/Questionnaire/sizes';
    v.addConformanceResource({
      resourceType: 'Questionnaire',
      url,
      status: 'active',
      contained: [{ resourceType: 'ValueSet', id: 'sizes', status: 'active', compose: { include: [{ system: 'http://example.org/sizes', concept: [{ code: 'S' }, { code: 'M' }] }] } }],
      item: [{ linkId: 'size', type: 'choice', answerValueSet: '#sizes' }],
    });
    const qr = (code: string) => ({ resourceType: 'QuestionnaireResponse', questionnaire: url, status: 'completed', item: [{ linkId: 'size', answer: [{ valueCoding: { system: 'http://example.org/sizes', code } }] }] });
    expect(issuesOf(qr('M'))).toEqual([]);
    expect(issuesOf(qr('XL'))).toEqual([expect.stringMatching(/^error .*#XL is not in the value set #sizes/)]);
  });
});

describe('a Questionnaire carried in the same Bundle', () => {
  it('is the one the response is checked against when the server does not know it', () => {
    const url = 'http://example.org/fhir/Questionnaire/in-bundle';
    const bundle = (answer: number) => ({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:2b1c9e0a-6f1d-4c3b-9a8e-1d2c3b4a5f60', resource: { resourceType: 'Questionnaire', url, status: 'active', item: [{ linkId: 'n', type: 'integer', extension: [ext('maxValue', { valueInteger: 3 })] }] } },
        { fullUrl: 'urn:uuid:2b1c9e0a-6f1d-4c3b-9a8e-1d2c3b4a5f61', resource: { resourceType: 'QuestionnaireResponse', questionnaire: url, status: 'completed', item: [{ linkId: 'n', answer: [{ valueInteger: answer }] }] } },
      ],
    });
    expect(issuesOf(bundle(2)).filter((i) => /^error/.test(i))).toEqual([]);
    expect(issuesOf(bundle(5)).filter((i) => /^error/.test(i))).toEqual([expect.stringMatching(/^error Bundle.entry\[1\].resource.item\[0\].answer\[0\]: The answer 5 is more than the maximum 3/)]);
  });
});
