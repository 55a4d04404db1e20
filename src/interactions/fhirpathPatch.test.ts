import { applyFhirPathPatch, parseOperations, PatchError, repeats } from './fhirpathPatch';

const op = (type: string, path: string, extra: Record<string, unknown>[] = []) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...extra],
});
const patch = (...operation: unknown[]) => ({ resourceType: 'Parameters', parameter: operation });

const patient = () => ({
  resourceType: 'Patient',
  id: 'p',
  active: true,
  identifier: [
    { system: 's1', value: '1' },
    { system: 's2', value: '2' },
  ],
  name: [{ family: 'Durand', given: ['Paul', 'Jean'] }],
});

describe('FHIRPath Patch (fhirpatch.html)', () => {
  it.each([
    ['replace a primitive', op('replace', 'Patient.active', [{ name: 'value', valueBoolean: false }]), (r: any) => expect(r.active).toBe(false)],
    ['replace a list item chosen by where()', op('replace', "Patient.identifier.where(system='s2')", [{ name: 'value', part: [{ name: 'system', valueUri: 's3' }, { name: 'value', valueString: '3' }] }]), (r: any) => expect(r.identifier).toEqual([{ system: 's1', value: '1' }, { system: 's3', value: '3' }])],
    ['delete a list item', op('delete', "Patient.identifier.where(system='s1')"), (r: any) => expect(r.identifier).toEqual([{ system: 's2', value: '2' }])],
    ['delete what is not there (no effect)', op('delete', 'Patient.birthDate'), (r: any) => expect(r).toEqual(patient())],
    ['add to a repeating element', op('add', 'Patient', [{ name: 'name', valueString: 'telecom' }, { name: 'value', part: [{ name: 'system', valueCode: 'phone' }, { name: 'value', valueString: '0102030405' }] }]), (r: any) => expect(r.telecom).toEqual([{ system: 'phone', value: '0102030405' }])],
    ['add a single element', op('add', 'Patient', [{ name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'male' }]), (r: any) => expect(r.gender).toBe('male')],
    ['add inside a datatype', op('add', 'Patient.name[0]', [{ name: 'name', valueString: 'prefix' }, { name: 'value', valueString: 'Dr' }]), (r: any) => expect(r.name[0].prefix).toEqual(['Dr'])],
    ['insert at an index', op('insert', 'Patient.name[0].given', [{ name: 'index', valueInteger: 1 }, { name: 'value', valueString: 'Marie' }]), (r: any) => expect(r.name[0].given).toEqual(['Paul', 'Marie', 'Jean'])],
    ['move within a list', op('move', 'Patient.identifier', [{ name: 'source', valueInteger: 1 }, { name: 'destination', valueInteger: 0 }]), (r: any) => expect(r.identifier.map((i: any) => i.system)).toEqual(['s2', 's1'])],
  ])('%s', (_what, operation, check) => {
    const before = patient();
    const after = applyFhirPathPatch(before, patch(operation));
    check(after);
    expect(before).toEqual(patient()); // the input is not changed
  });

  it('replaces and deletes a choice element under its typed name, and a primitive with its extensions', () => {
    const deceased = { ...patient(), deceasedBoolean: false, birthDate: '1970-01-01', _birthDate: { extension: [{ url: 'http://example.org/x', valueString: 'y' }] } };
    const replaced = applyFhirPathPatch(deceased, patch(op('replace', 'Patient.deceased', [{ name: 'value', valueDateTime: '2020-02-02' }])));
    expect(replaced.deceasedBoolean).toBeUndefined();
    expect(replaced.deceasedDateTime).toBe('2020-02-02');
    const deleted = applyFhirPathPatch(deceased, patch(op('delete', 'Patient.deceased'), op('delete', 'Patient.birthDate')));
    expect(deleted.deceasedBoolean).toBeUndefined();
    expect(deleted.birthDate).toBeUndefined();
    expect(deleted._birthDate).toBeUndefined();
  });

  it('moves, inserts and deletes the id and extensions of repeating primitive items with them', () => {
    const withIds = () => ({ ...patient(), name: [{ family: 'Durand', given: ['a', 'b'], _given: [null, { id: 'g2' }] }] });
    const moved = applyFhirPathPatch(withIds(), patch(op('move', 'Patient.name[0].given', [{ name: 'source', valueInteger: 1 }, { name: 'destination', valueInteger: 0 }])));
    expect((moved.name as any)[0]).toEqual({ family: 'Durand', given: ['b', 'a'], _given: [{ id: 'g2' }, null] });
    const inserted = applyFhirPathPatch(withIds(), patch(op('insert', 'Patient.name[0].given', [{ name: 'index', valueInteger: 0 }, { name: 'value', valueString: 'z' }])));
    expect((inserted.name as any)[0]._given).toEqual([null, null, { id: 'g2' }]);
    const deleted = applyFhirPathPatch(withIds(), patch(op('delete', "Patient.name[0].given[1]")));
    expect((deleted.name as any)[0]).toEqual({ family: 'Durand', given: ['a'] });
  });

  it('applies operations in order', () => {
    const after = applyFhirPathPatch(patient(), patch(op('delete', "Patient.identifier.where(system='s1')"), op('replace', 'Patient.identifier[0].value', [{ name: 'value', valueString: 'two' }])));
    expect(after.identifier).toEqual([{ system: 's2', value: 'two' }]);
  });

  it.each([
    ['a path selecting several elements for replace', patch(op('replace', 'Patient.identifier', [{ name: 'value', valueString: 'x' }])), /exactly one/],
    ['a path selecting nothing for replace', patch(op('replace', 'Patient.birthDate', [{ name: 'value', valueDate: '2000-01-01' }])), /exactly one/],
    ['an unknown operation type', patch(op('frobnicate', 'Patient.active')), /type must be/],
    ['replace without a value', patch(op('replace', 'Patient.active')), /needs a value/],
    ['insert past the end', patch(op('insert', 'Patient.name[0].given', [{ name: 'index', valueInteger: 5 }, { name: 'value', valueString: 'x' }])), /past the end/],
    ['not a Parameters resource', { resourceType: 'Patient' }, /Parameters/],
    ['an invalid FHIRPath', patch(op('delete', 'Patient.(')), /not a valid FHIRPath/],
    ['adding a second value to a single element', patch(op('add', 'Patient', [{ name: 'name', valueString: 'active' }, { name: 'value', valueBoolean: false }])), /does not repeat/],
  ])('refuses %s', (_what, parameters, message) => {
    expect(() => applyFhirPathPatch(patient(), parameters)).toThrow(PatchError);
    expect(() => applyFhirPathPatch(patient(), parameters)).toThrow(message);
  });

  it('knows which elements repeat from the R4 definitions, through datatypes and backbone elements', () => {
    expect(repeats('Patient', 'telecom')).toBe(true);
    expect(repeats('Patient', 'gender')).toBe(false);
    expect(repeats('HumanName', 'given')).toBe(true);
    expect(repeats('DocumentReference.relatesTo', 'code')).toBe(false);
    expect(repeats('DocumentReference', 'relatesTo')).toBe(true);
    expect(repeats('Observation', 'valueQuantity')).toBe(false);
  });

  describe('paths resolved against the R4 model', () => {
    const name = (n: string) => ({ name: 'name', valueString: n });
    const value = { name: 'value', valueString: 'strict' };

    it.each([
      ['a path through __proto__', patch(op('add', 'Patient.__proto__', [name('handling'), value])), /"__proto__" is not an element of Patient/],
      ['a path through constructor.prototype', patch(op('add', 'Patient.name.constructor.prototype', [name('handling'), value])), /"constructor" is not an element of HumanName/],
      ['a prototype inside a function argument', patch(op('replace', 'Patient.name.where(constructor.prototype.exists())', [value])), /"constructor" is not an element of HumanName/],
      ['a prototype reached through %resource', patch(op('add', '%resource.__proto__', [name('handling'), value])), /"__proto__" is not an element/],
      ['a list path ending in constructor', patch(op('insert', 'Patient.name.constructor', [{ name: 'index', valueInteger: 0 }, value])), /"constructor" is not an element/],
      ['an add named __proto__', patch(op('add', 'Patient', [name('__proto__'), value])), /"__proto__" is not an element name/],
      ['an add named constructor', patch(op('add', 'Patient.name[0]', [name('constructor'), value])), /"constructor" is not an element of HumanName/],
      ['a value part named __proto__', patch(op('add', 'Patient', [name('telecom'), { name: 'value', part: [{ name: '__proto__', part: [{ name: 'handling', valueString: 'strict' }] }] }])), /may not be named "__proto__"/],
      ['a misspelt element', patch(op('replace', 'Patient.nme.family', [value])), /path "Patient.nme.family": "nme" is not an element of Patient/],
      ['an element of another resource type', patch(op('delete', 'Patient.status')), /"status" is not an element of Patient/],
      ['a member after a function the model cannot follow', patch(op('delete', 'Patient.children().family')), /cannot be told/],
      ['a choice element added by its bare name', patch(op('add', 'Patient', [name('deceased'), { name: 'value', valueBoolean: true }])), /name it by its type \(deceasedBoolean, deceasedDateTime\)/],
      ['a path that does not start at the resource', patch(op('delete', 'Observation.status')), /"Observation" is not an element of Patient/],
    ])('refuses %s, and Object.prototype is untouched', (_what, parameters, message) => {
      expect(() => applyFhirPathPatch(patient(), parameters)).toThrow(PatchError);
      expect(() => applyFhirPathPatch(patient(), parameters)).toThrow(message);
      expect(Object.keys(Object.prototype)).toEqual([]);
      expect(({} as Record<string, unknown>).handling).toBeUndefined();
    });

    it.each([
      ['Patient.contact.name.family', 'Patient'],
      ['Observation.value.ofType(Quantity).value', 'Observation'],
      ['Observation.valueQuantity.unit', 'Observation'],
      ['(Observation.value as Quantity).code', 'Observation'],
      ['Patient.deceased', 'Patient'],
      ['Questionnaire.item.item.linkId', 'Questionnaire'],
      ["Patient.name.where($this.use = 'official' and given.exists()).family", 'Patient'],
      ["Patient.extension('http://example.org/x').value", 'Patient'],
      ['Patient.birthDate.extension.url', 'Patient'],
      ['%resource.name[0].given', 'Patient'],
      ['Resource.meta.tag', 'Patient'],
      ['name.first().text', 'Patient'],
      ["Bundle.entry.resource.ofType(Patient).name", 'Bundle'],
    ])('accepts %s on %s', (path, type) => {
      expect(() => parseOperations(patch(op('delete', path)), type)).not.toThrow();
    });

    it('adds a choice element by its typed name', () => {
      const after = applyFhirPathPatch(patient(), patch(op('add', 'Patient', [name('deceasedBoolean'), { name: 'value', valueBoolean: true }])));
      expect(after.deceasedBoolean).toBe(true);
    });
  });

  describe('regular expressions in paths run in linear time', () => {
    const long = 'a'.repeat(30_000) + 'b';

    it('answers matches() with a pattern that backtracks catastrophically in RegExp, correctly', () => {
      const hostile = { ...patient(), name: [{ family: long }, { family: 'aaaa' }] };
      const after = applyFhirPathPatch(hostile, patch(op('delete', "Patient.name.where(family.matches('^(a+)+$'))")));
      expect(after.name).toEqual([{ family: long }]);
      const replaced = applyFhirPathPatch(hostile, patch(op('replace', "Patient.name.where(family.replaceMatches('(a|aa)+$', 'x') = 'x').family", [{ name: 'value', valueString: 'z' }])));
      expect((replaced.name as any[]).map((n) => n.family)).toEqual([long, 'z']);
    });

    it('keeps the partial-match semantics of matches()', () => {
      const after = applyFhirPathPatch(patient(), patch(op('delete', "Patient.identifier.where(value.matches('2'))")));
      expect(after.identifier).toEqual([{ system: 's1', value: '1' }]);
    });

    it('refuses a pattern that needs backtracking (backreference, lookahead), naming it', () => {
      expect(() => applyFhirPathPatch(patient(), patch(op('delete', "Patient.name.where(family.matches('(a)\\\\1'))")))).toThrow(/regular expression "\(a\)\\1" is not supported/);
      expect(() => applyFhirPathPatch(patient(), patch(op('delete', "Patient.name.where(family.matches('(?=a)a'))")))).toThrow(PatchError);
    });
  });
});
