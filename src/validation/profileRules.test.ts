import type { Issue } from '../errors';
import { Validator } from './index';

/**
 * Profile rules checked as the HL7 Java validator does: minValue[x] / maxValue[x] of every
 * orderable type, required bindings on Quantity units, reference target profiles (a target
 * found in the Bundle must conform; a target profile that cannot be found is an error).
 * Each profile is a differential written for the test.
 */
const U = 'http://example.org/fhir/StructureDefinition/';
const UCUM = 'http://unitsofmeasure.org';
const DIV = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' };

const profile = (id: string, type: string, element: Record<string, unknown>[]) => ({
  resourceType: 'StructureDefinition',
  url: U + id,
  name: id.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase()),
  status: 'active',
  fhirVersion: '4.0.1',
  kind: 'resource',
  abstract: false,
  type,
  baseDefinition: `http://hl7.org/fhir/StructureDefinition/${type}`,
  derivation: 'constraint',
  differential: { element: [{ id: type, path: type }, ...element] },
});

let v: Validator;
beforeAll(() => {
  v = Validator.create();
  const add = (r: unknown) => expect(v.addConformanceResource(r).filter((i) => i.severity === 'error')).toEqual([]);
  add({
    resourceType: 'ValueSet',
    url: 'http://example.org/fhir/ValueSet/mass-units',
    name: 'MassUnits',
    status: 'active',
    compose: { include: [{ system: UCUM, concept: [{ code: 'kg' }, { code: 'g' }] }] },
  });
  add(
    profile('weight', 'Observation', [
      { id: 'Observation.value[x]', path: 'Observation.value[x]', type: [{ code: 'Quantity' }], minValueQuantity: { value: 0.5, system: UCUM, code: 'kg' }, maxValueQuantity: { value: 500, system: UCUM, code: 'kg' }, binding: { strength: 'required', valueSet: 'http://example.org/fhir/ValueSet/mass-units' } },
      { id: 'Observation.effective[x]', path: 'Observation.effective[x]', type: [{ code: 'dateTime' }], minValueDateTime: '2000-01-01T00:00:00Z' },
      { id: 'Observation.subject', path: 'Observation.subject', min: 1, type: [{ code: 'Reference', targetProfile: [U + 'dated-patient'] }] },
      { id: 'Observation.performer', path: 'Observation.performer', type: [{ code: 'Reference', targetProfile: [U + 'never-published'] }] },
    ]),
  );
  add(
    profile('dated-patient', 'Patient', [
      { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1, minValueDate: '1900-01-01', maxValueDate: '2100-12-31' },
      { id: 'Patient.multipleBirth[x]', path: 'Patient.multipleBirth[x]', type: [{ code: 'integer' }], maxValueInteger: 9 },
    ]),
  );
});

const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);

const weight = (value: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  text: DIV,
  status: 'final',
  code: { text: 'weight' },
  subject: { reference: 'Patient/p' },
  effectiveDateTime: '2024-03-01T08:00:00Z',
  valueQuantity: value,
  ...extra,
});
const asWeight = (r: unknown) => errors(v.validate(r, { profiles: [U + 'weight'] }));

describe('minValue[x] and maxValue[x]', () => {
  it('compares quantities in their units or through UCUM', () => {
    expect(asWeight(weight({ value: 72, system: UCUM, code: 'kg' }))).toEqual([]);
    expect(asWeight(weight({ value: 3200, system: UCUM, code: 'g' }))).toEqual([]);
    expect(asWeight(weight({ value: 0.2, system: UCUM, code: 'kg' }))).toEqual(['Observation.value.ofType(Quantity): value is less than permitted minimum value of 0.5 kg']);
    expect(asWeight(weight({ value: 600000, system: UCUM, code: 'g' }))).toEqual(['Observation.value.ofType(Quantity): value is greater than permitted maximum value of 500 kg']);
  });

  it('compares dates and dateTimes, and integers', () => {
    expect(asWeight(weight({ value: 72, system: UCUM, code: 'kg' }, { effectiveDateTime: '1999-12-31T10:00:00Z' }))).toEqual([
      'Observation.effective.ofType(dateTime): value is less than permitted minimum value of 2000-01-01T00:00:00Z',
    ]);
    const patient = { resourceType: 'Patient', text: DIV, birthDate: '1850-05-01', multipleBirthInteger: 12 };
    expect(errors(v.validate(patient, { profiles: [U + 'dated-patient'] }))).toEqual([
      'Patient.birthDate: value is less than permitted minimum value of 1900-01-01',
      'Patient.multipleBirth.ofType(integer): value is greater than permitted maximum value of 9',
    ]);
    // a year alone is before 1900-01-01 only if it is before 1900
    expect(errors(v.validate({ ...patient, birthDate: '1900', multipleBirthInteger: 2 }, { profiles: [U + 'dated-patient'] }))).toEqual([]);
  });
});

describe('required binding on a Quantity', () => {
  it('takes the unit from the value set', () => {
    expect(asWeight(weight({ value: 150, system: UCUM, code: '[lb_av]' }))).toEqual([
      expect.stringMatching(/^Observation.value.ofType\(Quantity\): The unit provided \(http:\/\/unitsofmeasure.org#\[lb_av\]\) is not in the value set .*required/),
    ]);
  });
});

describe('reference target profiles', () => {
  const bundle = (patient: Record<string, unknown>, observation: Record<string, unknown>) => ({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      { fullUrl: 'http://example.org/fhir/Patient/p', resource: { resourceType: 'Patient', id: 'p', text: DIV, ...patient } },
      { fullUrl: 'http://example.org/fhir/Observation/o', resource: { ...observation, id: 'o', meta: { profile: [U + 'weight'] } } },
    ],
  });
  const kg = { value: 72, system: UCUM, code: 'kg' };

  it('checks a target found in the Bundle against the target profile', () => {
    expect(errors(v.validate(bundle({ birthDate: '1980-01-01' }, weight(kg))))).toEqual([]);
    expect(errors(v.validate(bundle({}, weight(kg))))).toEqual([
      `Bundle.entry[1].resource.subject: The resource Patient/p does not conform to the target profile ${U}dated-patient`,
    ]);
  });

  it('does not check a target it cannot see', () => {
    expect(asWeight(weight(kg, { subject: { reference: 'Patient/elsewhere' } }))).toEqual([]);
  });

  it('refuses a reference whose target profile cannot be found', () => {
    expect(asWeight(weight(kg, { performer: [{ reference: 'Practitioner/pr' }] }))).toEqual([
      `Observation.performer[0]: Unable to resolve the profile reference '${U}never-published'`,
    ]);
  });
});

describe('slicing with a slice that leaves the discriminator unconstrained', () => {
  beforeAll(() => {
    v.addConformanceResource(
      profile('identified-patient', 'Patient', [
        { id: 'Patient.identifier', path: 'Patient.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'closed' } },
        { id: 'Patient.identifier:nir', path: 'Patient.identifier', sliceName: 'nir', min: 1, max: '1' },
        { id: 'Patient.identifier:nir.system', path: 'Patient.identifier.system', fixedUri: 'urn:oid:1.2.250.1.213.1.4.8' },
        { id: 'Patient.identifier:other', path: 'Patient.identifier', sliceName: 'other', min: 0, max: '*' },
      ]),
    );
  });
  const asIdentified = (identifier: unknown[]) => errors(v.validate({ resourceType: 'Patient', text: DIV, identifier }, { profiles: [U + 'identified-patient'] }));

  it('still counts the slices that constrain it', () => {
    expect(asIdentified([{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '1' }, { system: 'http://example.org/ids', value: '2' }])).toEqual([]);
    // the other identifier may be in the unconstrained slice, but the NIR slice is missing for sure
    expect(asIdentified([{ system: 'http://example.org/ids', value: '2' }])).toEqual([expect.stringMatching(/^Patient: Patient.identifier:nir: minimum required = 1, but only found 0/)]);
    expect(asIdentified([{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '1' }, { system: 'urn:oid:1.2.250.1.213.1.4.8', value: '3' }])).toEqual([
      expect.stringMatching(/Patient.identifier:nir: max allowed = 1, but found 2/),
    ]);
  });
});

describe('profiles on recursive elements (contentReference)', () => {
  beforeAll(() => {
    v.addConformanceResource(
      profile('nested-questionnaire', 'Questionnaire', [
        { id: 'Questionnaire.item.text', path: 'Questionnaire.item.text', min: 1 },
        { id: 'Questionnaire.item.item', path: 'Questionnaire.item.item' },
        { id: 'Questionnaire.item.item.item', path: 'Questionnaire.item.item.item', max: '0' },
      ]),
    );
  });
  const asNested = (item: unknown[]) => errors(v.validate({ resourceType: 'Questionnaire', text: DIV, status: 'active', item }, { profiles: [U + 'nested-questionnaire'] }));

  it('applies the profile at every level of the recursion and the constraints of a nested level', () => {
    expect(asNested([{ linkId: 'g', text: 'G', type: 'group', item: [{ linkId: 'a', text: 'A', type: 'string' }] }])).toEqual([]);
    expect(asNested([{ linkId: 'g', text: 'G', type: 'group', item: [{ linkId: 'a', type: 'string' }] }])).toEqual([
      expect.stringMatching(/^Questionnaire.item\[0\].item\[0\]: Questionnaire.item.item.text: minimum required = 1/),
    ]);
    expect(asNested([{ linkId: 'g', text: 'G', type: 'group', item: [{ linkId: 'a', text: 'A', type: 'group', item: [{ linkId: 'b', text: 'B', type: 'string' }] }] }])).toEqual([
      expect.stringMatching(/Questionnaire.item.item.item: max allowed = 0, but found 1/),
    ]);
  });
});
