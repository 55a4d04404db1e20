import * as path from 'path';
import type { Issue } from '../errors';
import { Validator } from './index';
import { questionnaireLookup, questionnaireResponseCheck, valueSetMembership } from './questionnaireResponse';

const Q_URL = 'http://example.org/fhir/Questionnaire/intake';
const SYM = 'http://example.org/fhir/CodeSystem/symptom';
const ALG = 'http://example.org/fhir/CodeSystem/allergen';
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

/*
 * QR item indexes in the valid response below:
 *   item[0] smoker, item[1] packs, item[2] demo (name, age, pregnant),
 *   item[3] symptoms (answer[0].item[0] since), item[4] allergy, item[5] allergy, item[6] color
 */
const questionnaire = () => ({
  resourceType: 'Questionnaire',
  id: 'intake',
  url: Q_URL,
  version: '1.0',
  status: 'active',
  item: [
    { linkId: 'intro', type: 'display', text: 'Welcome' },
    { linkId: 'smoker', type: 'boolean', text: 'Do you smoke?', required: true },
    { linkId: 'packs', type: 'integer', text: 'Packs a day', required: true, enableWhen: [{ question: 'smoker', operator: '=', answerBoolean: true }] },
    {
      linkId: 'demo',
      type: 'group',
      required: true,
      item: [
        { linkId: 'name', type: 'string', required: true, maxLength: 10 },
        { linkId: 'age', type: 'integer' },
        {
          linkId: 'pregnant',
          type: 'boolean',
          required: true,
          enableBehavior: 'all',
          enableWhen: [
            { question: 'age', operator: '>=', answerInteger: 12 },
            { question: 'age', operator: '<=', answerInteger: 55 },
          ],
        },
      ],
    },
    {
      linkId: 'symptoms',
      type: 'choice',
      repeats: true,
      answerOption: [{ valueCoding: { system: SYM, code: 'fever' } }, { valueCoding: { system: SYM, code: 'cough' } }],
      item: [{ linkId: 'since', type: 'date' }],
    },
    {
      linkId: 'allergy',
      type: 'group',
      repeats: true,
      item: [
        { linkId: 'substance', type: 'open-choice', answerOption: [{ valueCoding: { system: ALG, code: 'peanut' } }, { valueCoding: { system: ALG, code: 'latex' } }] },
        { linkId: 'reaction', type: 'string', required: true, enableWhen: [{ question: 'substance', operator: 'exists', answerBoolean: true }] },
      ],
    },
    { linkId: 'color', type: 'choice', answerOption: [{ valueString: 'red' }, { valueString: 'blue' }] },
    {
      linkId: 'contact',
      type: 'string',
      required: true,
      enableBehavior: 'any',
      enableWhen: [
        { question: 'smoker', operator: '=', answerBoolean: false },
        { question: 'packs', operator: '>', answerInteger: 20 },
      ],
    },
    { linkId: 'skin', type: 'choice', answerValueSet: 'http://example.org/fhir/ValueSet/test-warm-colors' },
  ],
});

const response = (): any => ({
  resourceType: 'QuestionnaireResponse',
  id: 'qr1',
  questionnaire: `${Q_URL}|1.0`,
  status: 'completed',
  item: [
    { linkId: 'smoker', text: 'Do you smoke?', answer: [{ valueBoolean: true }] },
    { linkId: 'packs', answer: [{ valueInteger: 5 }] },
    {
      linkId: 'demo',
      item: [
        { linkId: 'name', answer: [{ valueString: 'Ann' }] },
        { linkId: 'age', answer: [{ valueInteger: 30 }] },
        { linkId: 'pregnant', answer: [{ valueBoolean: false }] },
      ],
    },
    {
      linkId: 'symptoms',
      answer: [
        { valueCoding: { system: SYM, code: 'fever' }, item: [{ linkId: 'since', answer: [{ valueDate: '2024-01-02' }] }] },
        { valueCoding: { system: SYM, code: 'cough' } },
      ],
    },
    {
      linkId: 'allergy',
      item: [
        { linkId: 'substance', answer: [{ valueCoding: { system: ALG, code: 'peanut' } }] },
        { linkId: 'reaction', answer: [{ valueString: 'hives' }] },
      ],
    },
    {
      linkId: 'allergy',
      item: [
        { linkId: 'substance', answer: [{ valueString: 'cat hair' }] },
        { linkId: 'reaction', answer: [{ valueString: 'sneezing' }] },
      ],
    },
    { linkId: 'color', answer: [{ valueString: 'red' }] },
  ],
});

const byLinkId = (items: any[], linkId: string) => items.find((i) => i.linkId === linkId);

function run(qr: any, q: any = questionnaire()): Issue[] {
  const known = [q];
  return questionnaireResponseCheck(questionnaireLookup({ conformanceResources: () => known })).check(qr);
}

interface Expected {
  severity: Issue['severity'];
  expression: string;
  match?: RegExp;
}

/** exactly the expected issues (any order) */
function expectIssues(issues: Issue[], expected: Expected[]) {
  const remaining = [...issues];
  for (const e of expected) {
    const idx = remaining.findIndex((i) => i.severity === e.severity && i.expression?.[0] === e.expression && (!e.match || e.match.test(i.diagnostics)));
    if (idx < 0) throw new Error(`expected ${JSON.stringify({ ...e, match: String(e.match) })} in\n${JSON.stringify(issues, null, 1)}`);
    remaining.splice(idx, 1);
  }
  if (remaining.length) throw new Error(`unexpected issues:\n${JSON.stringify(remaining, null, 1)}`);
}

describe('questionnaireResponseCheck', () => {
  it('applies to QuestionnaireResponse only', () => {
    const c = questionnaireResponseCheck(() => undefined);
    expect(c.name).toBe('questionnaire-response');
    expect(c.appliesTo({ resourceType: 'QuestionnaireResponse' })).toBe(true);
    expect(c.appliesTo({ resourceType: 'Questionnaire' })).toBe(false);
  });

  it('accepts a response that follows the questionnaire', () => {
    expectIssues(run(response()), []);
  });

  const cases: { name: string; mutate: (qr: any) => void; q?: (q: any) => void; expected: Expected[] }[] = [
    // linkIds and structure
    {
      name: 'unknown linkId at the root',
      mutate: (qr) => qr.item.push({ linkId: 'foo', answer: [{ valueString: 'x' }] }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[7]', match: /LinkId 'foo' not found/ }],
    },
    {
      name: 'unknown linkId in a group',
      mutate: (qr) => qr.item[2].item.push({ linkId: 'zzz', answer: [{ valueString: 'x' }] }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2].item[3]', match: /not found/ }],
    },
    {
      name: 'known linkId in the wrong place (still checked against its item)',
      mutate: (qr) => qr.item.push({ linkId: 'name', answer: [{ valueInteger: 3 }] }),
      expected: [
        { severity: 'error', expression: 'QuestionnaireResponse.item[7]', match: /'name' is in the wrong place/ },
        { severity: 'error', expression: 'QuestionnaireResponse.item[7].answer[0]', match: /must be of type string/ },
      ],
    },
    {
      name: 'items out of order',
      mutate: (qr) => ([qr.item[0], qr.item[1]] = [qr.item[1], qr.item[0]]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /out of order/ }],
    },
    {
      name: 'non-repeating item given twice',
      mutate: (qr) => qr.item.splice(1, 0, { linkId: 'smoker', answer: [{ valueBoolean: true }] }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /Only one response item with linkId 'smoker'/ }],
    },
    {
      name: 'question with child items outside answer.item',
      mutate: (qr) => (qr.item[3].item = [{ linkId: 'since', answer: [{ valueDate: '2024-01-01' }] }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[3]', match: /answer\.item, not item/ }],
    },
    {
      name: 'text differing from the questionnaire: warning',
      mutate: (qr) => (qr.item[0].text = 'Smoking?'),
      expected: [{ severity: 'warning', expression: 'QuestionnaireResponse.item[0]', match: /differs/ }],
    },
    // answer types
    {
      name: 'boolean answered with a string',
      mutate: (qr) => (qr.item[0].answer = [{ valueString: 'yes' }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[0].answer[0]', match: /must be of type boolean/ }],
    },
    {
      name: 'integer answered with a decimal',
      mutate: (qr) => (qr.item[1].answer = [{ valueDecimal: 5.5 }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1].answer[0]', match: /must be of type integer/ }],
    },
    {
      name: 'wrong type nested under an answer',
      mutate: (qr) => (qr.item[3].answer[0].item[0].answer = [{ valueDateTime: '2024-01-02T10:00:00Z' }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[3].answer[0].item[0].answer[0]', match: /must be of type date/ }],
    },
    {
      name: 'choice answered with a string when the options are Codings',
      mutate: (qr) => (qr.item[3].answer[1] = { valueString: 'cough' }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[3].answer[1]', match: /must be of type Coding/ }],
    },
    // cardinality
    {
      name: 'two answers to a non-repeating question',
      mutate: (qr) => qr.item[0].answer.push({ valueBoolean: true }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[0].answer[1]', match: /Only one response answer/ }],
    },
    {
      name: 'answer on a group',
      mutate: (qr) => (qr.item[2].answer = [{ valueString: 'x' }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2].answer[0]', match: /type group should not have answers/ }],
    },
    {
      name: 'answer on a display item',
      mutate: (qr) => qr.item.unshift({ linkId: 'intro', answer: [{ valueString: 'x' }] }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[0].answer[0]', match: /type display should not have answers/ }],
    },
    // required
    {
      name: 'required item missing (completed)',
      mutate: (qr) => qr.item.splice(1, 1),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse', match: /required item 'packs'/ }],
    },
    {
      name: 'required item missing (in-progress): warning only',
      mutate: (qr) => {
        qr.status = 'in-progress';
        qr.item.splice(1, 1);
      },
      expected: [{ severity: 'warning', expression: 'QuestionnaireResponse', match: /required item 'packs'/ }],
    },
    {
      name: 'required item present without an answer',
      mutate: (qr) => (qr.item[2].item[0] = { linkId: 'name', answer: [] }),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2]', match: /required item 'name'/ }],
    },
    {
      name: 'required group missing',
      mutate: (qr) => qr.item.splice(2, 1),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse', match: /required item 'demo'/ }],
    },
    {
      name: 'required item of an absent optional group: nothing',
      mutate: (qr) => qr.item.splice(4, 2),
      expected: [],
    },
    // options
    {
      name: 'Coding not among answerOption',
      mutate: (qr) => (qr.item[3].answer[1].valueCoding.code = 'rash'),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[3].answer[1]', match: /#rash is not a valid option/ }],
    },
    {
      name: 'Coding with the right code in another system',
      mutate: (qr) => (qr.item[3].answer[1].valueCoding.system = 'http://other'),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[3].answer[1]', match: /not a valid option/ }],
    },
    {
      name: 'string not among string options',
      mutate: (qr) => (qr.item[6].answer = [{ valueString: 'green' }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[6].answer[0]', match: /green is not a valid option/ }],
    },
    {
      name: 'Coding for a choice with string options only',
      mutate: (qr) => (qr.item[6].answer = [{ valueCoding: { code: 'red' } }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[6].answer[0]', match: /no answerOption of type Coding/ }],
    },
    {
      name: 'open-choice: Coding outside the options',
      mutate: (qr) => (qr.item[4].item[0].answer = [{ valueCoding: { system: ALG, code: 'cat' } }]),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[4].item[0].answer[0]', match: /not a valid option/ }],
    },
    {
      name: 'answerValueSet without terminology: not checked',
      mutate: (qr) => qr.item.push({ linkId: 'skin', answer: [{ valueCoding: { system: 'http://x', code: 'anything' } }] }),
      expected: [],
    },
    {
      name: 'maxLength exceeded',
      mutate: (qr) => (qr.item[2].item[0].answer[0].valueString = 'Annabelle-Marie'),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2].item[0].answer[0]', match: /maxLength 10/ }],
    },
    // enableWhen
    {
      name: 'answered question disabled by enableWhen (=)',
      mutate: (qr) => (qr.item[0].answer[0].valueBoolean = false),
      // smoker = false also enables the required 'contact' (enableBehavior any)
      expected: [
        { severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /'packs' has answers .* not enabled/ },
        { severity: 'error', expression: 'QuestionnaireResponse', match: /required item 'contact'/ },
      ],
    },
    {
      name: 'disabled required question left out: fine',
      mutate: (qr) => {
        qr.item[0].answer[0].valueBoolean = false;
        qr.item.splice(1, 1);
        qr.item.push({ linkId: 'contact', answer: [{ valueString: 'phone' }] });
      },
      expected: [],
    },
    {
      name: 'enableBehavior any: second condition (packs > 20) enables contact',
      mutate: (qr) => (qr.item[1].answer[0].valueInteger = 25),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse', match: /required item 'contact'/ }],
    },
    {
      name: 'enableBehavior all with >= and <=: out of range disables',
      mutate: (qr) => (qr.item[2].item[1].answer[0].valueInteger = 8),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2].item[2]', match: /'pregnant' has answers/ }],
    },
    {
      name: 'enableBehavior all: in range and required, but missing',
      mutate: (qr) => qr.item[2].item.splice(2, 1),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[2]', match: /required item 'pregnant'/ }],
    },
    {
      name: 'enableWhen exists is evaluated within each repeat of a group',
      mutate: (qr) => qr.item[5].item.splice(0, 1),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[5].item[0]', match: /'reaction' has answers/ }],
    },
    {
      name: 'enableWhen exists: required question missing in one repeat',
      mutate: (qr) => qr.item[5].item.splice(1, 1),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[5]', match: /required item 'reaction'/ }],
    },
    // cannot be decided: no false errors
    {
      name: 'enableWhenExpression: neither required nor disabled is reported',
      q: (q) => (byLinkId(q.item, 'packs').extension = [{ url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression', valueExpression: { language: 'text/fhirpath', expression: 'true' } }]),
      mutate: (qr) => qr.item.splice(1, 1),
      expected: [],
    },
    {
      name: 'several enableWhen without enableBehavior: skipped',
      q: (q) => delete byLinkId(q.item, 'contact').enableBehavior,
      mutate: (qr) => (qr.item[0].answer[0].valueBoolean = false),
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /'packs' has answers/ }],
    },
    {
      name: '!= with no answer to the question: skipped',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'color', operator: '!=', answerString: 'red' }]),
      mutate: (qr) => qr.item.splice(6, 1),
      expected: [],
    },
    {
      name: '!= with a different answer: enabled',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'color', operator: '!=', answerString: 'red' }]),
      mutate: (qr) => {
        qr.item[6].answer[0].valueString = 'blue';
        qr.item.splice(1, 1);
      },
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse', match: /required item 'packs'/ }],
    },
    {
      name: 'ordering of Codings cannot be decided: skipped',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'symptoms', operator: '>', answerCoding: { system: SYM, code: 'cough' } }]),
      mutate: (qr) => qr.item.splice(1, 1),
      expected: [],
    },
    {
      name: 'Coding equality on system and code',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'symptoms', operator: '=', answerCoding: { system: SYM, code: 'rash' } }]),
      mutate: () => undefined,
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /'packs' has answers/ }],
    },
    {
      name: 'dates of different precision: skipped',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'since', operator: '>', answerDate: '2025' }]),
      mutate: () => undefined,
      expected: [],
    },
    {
      name: 'dates of the same precision are compared',
      q: (q) => (byLinkId(q.item, 'packs').enableWhen = [{ question: 'since', operator: '>', answerDate: '2025-01-01' }]),
      mutate: () => undefined,
      expected: [{ severity: 'error', expression: 'QuestionnaireResponse.item[1]', match: /'packs' has answers/ }],
    },
  ];

  it.each(cases)('$name', ({ mutate, q, expected }) => {
    const qr = response();
    mutate(qr);
    const questionnaireVariant = questionnaire();
    q?.(questionnaireVariant);
    expectIssues(run(qr, questionnaireVariant), expected);
  });

  it('warns (never errors) when the questionnaire is not known', () => {
    const qr = response();
    qr.questionnaire = 'http://example.org/fhir/Questionnaire/other';
    expectIssues(run(qr), [{ severity: 'warning', expression: 'QuestionnaireResponse.questionnaire', match: /Questionnaire http:\/\/example.org\/fhir\/Questionnaire\/other is not known, answers not checked/ }]);
  });

  it('matches the version in the canonical', () => {
    const qr = response();
    qr.questionnaire = `${Q_URL}|2.0`;
    expectIssues(run(qr), [{ severity: 'warning', expression: 'QuestionnaireResponse.questionnaire', match: /not known/ }]);
    qr.questionnaire = Q_URL;
    qr.item[0].answer[0] = { valueString: 'yes' };
    expectIssues(run(qr), [{ severity: 'error', expression: 'QuestionnaireResponse.item[0].answer[0]' }]);
  });

  it('says nothing without a questionnaire', () => {
    const qr = response();
    delete qr.questionnaire;
    expect(run(qr)).toEqual([]);
  });

  it('uses a contained questionnaire (#id)', () => {
    const qr = response();
    qr.contained = [questionnaire()];
    qr.questionnaire = '#intake';
    qr.item[0].answer[0] = { valueString: 'yes' };
    const issues = questionnaireResponseCheck(() => undefined).check(qr);
    expectIssues(issues, [{ severity: 'error', expression: 'QuestionnaireResponse.item[0].answer[0]' }]);
  });
});

describe('questionnaireLookup', () => {
  const v1 = { resourceType: 'Questionnaire', url: 'http://x/q', version: '1' };
  const v2 = { resourceType: 'Questionnaire', url: 'http://x/q', version: '2' };
  const lookup = questionnaireLookup({ conformanceResources: () => [v1, v2] });
  it('matches url and optional version', () => {
    expect(lookup('http://x/q|1')).toBe(v1);
    expect(lookup('http://x/q|2')).toBe(v2);
    expect(lookup('http://x/q')).toBe(v2);
    expect(lookup('http://x/q|3')).toBeUndefined();
    expect(lookup('http://x/other')).toBeUndefined();
  });
});

describe('through the Validator', () => {
  const TESTDATA = path.join(__dirname, 'testdata', 'conformance');
  const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  let v: Validator;
  beforeAll(() => {
    v = Validator.create({ conformanceDirs: [TESTDATA] });
    expect(errors(v.addConformanceResource(questionnaire()))).toEqual([]);
    v.addDomainCheck(questionnaireResponseCheck(questionnaireLookup(v), { valueSetContains: valueSetMembership(v) }));
  });

  it('accepts a valid response', () => {
    expect(errors(v.validate(response()))).toEqual([]);
  });

  it('reports answers that do not fit the questionnaire', () => {
    const qr = response();
    qr.item[0].answer[0] = { valueString: 'yes' };
    qr.item[2].item.push({ linkId: 'zzz', answer: [{ valueString: 'x' }] });
    const errs = errors(v.validate(qr));
    expect(errs.map((i) => i.expression?.[0]).sort()).toEqual(['QuestionnaireResponse.item[0].answer[0]', 'QuestionnaireResponse.item[2].item[3]']);
  });

  it('checks answerValueSet when the value set is known', () => {
    const qr = response();
    qr.item.push({ linkId: 'skin', answer: [{ valueCoding: { system: 'http://example.org/fhir/CodeSystem/test-colors', code: 'dark-red' } }] });
    expect(errors(v.validate(qr))).toEqual([]);
    qr.item[7].answer[0].valueCoding.code = 'green';
    expect(errors(v.validate(qr))).toEqual([
      expect.objectContaining({ severity: 'error', expression: ['QuestionnaireResponse.item[7].answer[0]'], diagnostics: expect.stringMatching(/not in the value set/) }),
    ]);
  });

  it('warns when the questionnaire is unknown and stays valid', () => {
    const qr = response();
    qr.questionnaire = 'http://example.org/fhir/Questionnaire/unknown';
    const issues = v.validate(qr);
    expect(errors(issues)).toEqual([]);
    expect(issues).toContainEqual(expect.objectContaining({ severity: 'warning', expression: ['QuestionnaireResponse.questionnaire'] }));
  });

  it('sees questionnaires registered later, and contained responses get their path', () => {
    const later = { ...questionnaire(), id: 'later', url: 'http://example.org/fhir/Questionnaire/later', version: undefined };
    const qr = response();
    qr.questionnaire = later.url;
    qr.item[1].answer[0] = { valueString: 'five' };
    expect(errors(v.validate(qr))).toEqual([]);
    v.addConformanceResource(later);
    expect(errors(v.validate(qr)).map((i) => i.expression?.[0])).toEqual(['QuestionnaireResponse.item[1].answer[0]']);

    const { id: _id, ...inner } = qr;
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'urn:uuid:4f0e7c1e-0d1a-4b8a-9a64-0d9a2f9a7c11', resource: inner }] };
    const errs = errors(v.validate(bundle));
    expect(errs.map((i) => i.expression?.[0])).toEqual(['Bundle.entry[0].resource.item[1].answer[0]']);
  });
});
