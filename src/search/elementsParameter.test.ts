import { invalidElementNames, invalidElementsText, strictElementsRefusal, TypeElements } from './elementsParameter';

const OBSERVATION: TypeElements = { names: new Set(['id', 'meta', 'status', 'code', 'value', 'component']), choices: new Set(['value']) };

describe('invalidElementNames', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['  ', []],
    ['status', []],
    ['status,code', []],
    [' status , code ', []],
    ['Observation.status', []],
    ['component.code', []],
    ['value', []],
    ['valueQuantity', []],
    ['.,,', ['.', '', '']],
    ['status,,code', ['']],
    ['nothere', ['nothere']],
    ['valuequantity', ['valuequantity']],
    ['Observation.', ['Observation.']],
    ['Patient.status', ['Patient.status']],
    ['component..code', ['component..code']],
    ['status.', ['status.']],
  ])('%j → %j', (value, invalid) => {
    expect(invalidElementNames('Observation', value, OBSERVATION)).toEqual(invalid);
  });
});

describe('the wording', () => {
  it.each<[string[], string]>([
    [['nothere'], '_elements names "nothere", which is not an element of Observation: ignored'],
    [['', 'x'], '_elements names an empty name, "x", which are not elements of Observation: ignored'],
  ])('%j', (invalid, text) => {
    expect(invalidElementsText('Observation', invalid)).toBe(text);
  });

  it('refuses under strict handling without "ignored", and says nothing of a type it does not know', () => {
    expect(strictElementsRefusal('Observation', 'x', OBSERVATION)).toBe('_elements names "x", which is not an element of Observation');
    expect(strictElementsRefusal('Observation', 'status', OBSERVATION)).toBeUndefined();
    expect(strictElementsRefusal('Observation', 'x', undefined)).toBeUndefined();
  });
});
