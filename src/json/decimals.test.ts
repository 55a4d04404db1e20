import { decimalTexts, decimalTextsUnder, stringifyWithDecimals } from './decimals';

describe('decimal precision', () => {
  it('finds the numbers a JavaScript number would rewrite, by JSON Pointer, and only those', () => {
    const text = `{"a":72.10,"b":[1,2.50,{"c":1e2,"d":"3.10 in a string"}],"e":1.5,"f":-0,"g":0.0,"h":"x\\"y","k/1":{"~":10.0}}`;
    expect(decimalTexts(text)).toEqual(
      new Map([
        ['/a', '72.10'],
        ['/b/1', '2.50'],
        ['/b/2/c', '1e2'],
        ['/f', '-0'],
        ['/g', '0.0'],
        ['/k~11/~0', '10.0'],
      ]),
    );
    expect(decimalTexts('{"a":1.5,"b":[1,2,3],"s":"2020-01-01T10:00:00.000Z"}')).toBeUndefined();
    // more digits than a double holds
    expect(decimalTexts('{"p":0.123456789012345678}')).toEqual(new Map([['/p', '0.123456789012345678']]));
  });

  it('writes them back as received, and the other numbers as usual', () => {
    const text = `{"resourceType":"Observation","valueQuantity":{"value":72.10,"unit":"kg"},"component":[{"valueQuantity":{"value":1.50}},{"valueInteger":3}]}`;
    const value = JSON.parse(text);
    expect(stringifyWithDecimals(value, decimalTexts(text))).toBe(text);
  });

  it('keeps an edited number as edited, and places entry texts relative to their resource', () => {
    const texts = decimalTexts('{"entry":[{"resource":{"v":1.10}},{"resource":{"v":2.20}}]}');
    const second = decimalTextsUnder(texts, '/entry/1/resource');
    expect(second).toEqual(new Map([['/v', '2.20']]));
    expect(stringifyWithDecimals({ v: 2.2 }, second)).toBe('{"v":2.20}');
    expect(stringifyWithDecimals({ v: 3 }, second)).toBe('{"v":3}');
  });
});
