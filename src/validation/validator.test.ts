import * as path from 'path';
import type { Issue } from '../errors';
import { Validator } from './index';

const TESTDATA = path.join(__dirname, 'testdata', 'conformance');
const U = 'http://example.org/fhir/StructureDefinition/';
const DIV = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">text</div>' };

let v: Validator;
beforeAll(() => {
  v = Validator.create({ conformanceDirs: [TESTDATA] });
});

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));
const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
const warnings = (issues: Issue[]) => issues.filter((i) => i.severity === 'warning');
/** the issues at one expression */
const at = (issues: Issue[], expr: string) => issues.filter((i) => i.expression?.includes(expr));
function expectOnly(issues: Issue[], expected: { severity: Issue['severity']; expression: string; match?: RegExp | string; code?: string }[]) {
  const errs = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal' || expected.some((e) => e.severity === i.severity));
  const remaining = [...errs];
  for (const e of expected) {
    const idx = remaining.findIndex(
      (i) =>
        i.severity === e.severity &&
        i.expression?.[0] === e.expression &&
        (!e.code || i.code === e.code) &&
        (!e.match || (typeof e.match === 'string' ? i.diagnostics.includes(e.match) : e.match.test(i.diagnostics))),
    );
    if (idx < 0) throw new Error(`expected ${JSON.stringify(e)} in\n${JSON.stringify(issues, null, 1)}`);
    remaining.splice(idx, 1);
  }
  const unexpectedErrors = remaining.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (unexpectedErrors.length) throw new Error(`unexpected errors:\n${JSON.stringify(unexpectedErrors, null, 1)}`);
}

const patient = () => ({
  resourceType: 'Patient',
  id: 'p1',
  text: DIV,
  identifier: [{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '123456789012345' }],
  active: true,
  name: [{ family: 'Martin', given: ['Jeanne'] }],
  telecom: [{ system: 'phone', value: '0102030405' }],
  gender: 'female',
  birthDate: '1980-02-29',
  maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
  generalPractitioner: [{ reference: 'Practitioner/pr1' }],
});

describe('structure and primitive formats', () => {
  it('accepts a correct Patient', () => {
    expect(errors(v.validate(patient()))).toEqual([]);
  });

  it('checks the syntax of urn:uuid URIs', () => {
    const p: any = patient();
    p.identifier = [
      { system: 'urn:uuid:6f1c2f3e-2b4a-4f6e-9b1d-0c2e4a6b8d10', value: '1' },
      { system: 'urn:uuid:6F1C2F3E-2B4A-4F6E-9B1D-0C2E4A6B8D10', value: '2' },
      { system: 'urn:uuid:patient-1', value: '3' },
      { system: 'urn:oid:1.2.250.1', value: '4' },
      { system: 'urn:oid:1.2.x', value: '5' },
    ];
    expect(errors(v.validate(p)).map((i) => `${i.expression?.[0]}: ${i.diagnostics}`)).toEqual([
      'Patient.identifier[2].system: UUIDs must be valid (urn:uuid:patient-1)',
    ]);
  });

  it('applies que-12 as corrected by the R4 erratum: two enableWhen need an enableBehavior', () => {
    const q = (behavior?: string) => ({
      resourceType: 'Questionnaire',
      text: DIV,
      status: 'active',
      item: [
        { linkId: 'a', type: 'boolean' },
        { linkId: 'b', type: 'boolean' },
        { linkId: 'c', type: 'string', enableWhen: [{ question: 'a', operator: '=', answerBoolean: true }, { question: 'b', operator: '=', answerBoolean: true }], ...(behavior ? { enableBehavior: behavior } : {}) },
      ],
    });
    expect(errors(v.validate(q('all')))).toEqual([]);
    expect(errors(v.validate(q())).map((i) => `${i.expression?.[0]}: ${i.diagnostics}`)).toEqual([expect.stringMatching(/^Questionnaire.item\[2\]: Constraint failed: que-12/)]);
  });

  it('reports unknown properties, with their FHIRPath', () => {
    const p: any = patient();
    p.foo = 1;
    p.name[0].nickname = 'J';
    p.meta = { project: 'x' }; // a Medplum-only Meta element, not R4
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.foo', match: "Unrecognized property 'foo'", code: 'structure' },
      { severity: 'error', expression: 'Patient.name[0].nickname', match: "Unrecognized property 'nickname'" },
      { severity: 'error', expression: 'Patient.meta.project', match: "Unrecognized property 'project'" },
    ]);
  });

  it('checks primitive formats', () => {
    const p: any = patient();
    p.birthDate = '1981-02-29';
    p.id = 'bad id!';
    p.active = 'true';
    p.gender = ' male';
    p.identifier[0].period = { start: '2020-01-01T10:00:00' };
    p.multipleBirthInteger = 1.5;
    p.photo = [{ contentType: 'image/png', data: 'not base64!' }];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.birthDate', match: 'Not a valid date (1981-02-29)' },
      { severity: 'error', expression: 'Patient.id', match: 'Invalid Resource id' },
      { severity: 'error', expression: 'Patient.active', match: 'must be a boolean' },
      { severity: 'error', expression: 'Patient.gender', match: 'whitespace' },
      { severity: 'error', expression: 'Patient.gender', match: "The value provided (' male') is not in the value set" },
      { severity: 'error', expression: 'Patient.identifier[0].period.start', match: 'if a date has a time, it must have a timezone' },
      { severity: 'error', expression: 'Patient.multipleBirth.ofType(integer)', match: 'not a valid integer' },
      { severity: 'error', expression: 'Patient.photo[0].data', match: 'not a valid Base64' },
    ]);
  });

  it('checks an Attachment stated size and hash against its data', () => {
    const p: any = patient();
    // 'Hello World!' (12 bytes), SHA-1 Lqf5DbxmbkeP/EqLKp6XxGKzh1I= ... computed below
    const data = Buffer.from('Hello World!').toString('base64');
    const hash = require('crypto').createHash('sha1').update('Hello World!').digest('base64');
    p.photo = [{ contentType: 'text/plain', data, size: 12, hash }];
    expect(errors(v.validate(p))).toEqual([]);
    p.photo = [{ contentType: 'text/plain', data, size: 100, hash: 'AAAA' }];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.photo[0]', match: 'Stated Attachment Size 100 does not match actual attachment size 12' },
      { severity: 'error', expression: 'Patient.photo[0]', match: 'Stated Attachment Hash AAAA does not match' },
    ]);
  });

  it('checks JSON arrays and objects, and primitive extensions', () => {
    const p: any = patient();
    p.name = { family: 'x' };
    p.gender = ['female'];
    p._birthDate = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1980-02-29T10:00:00+01:00' }] };
    p.telecom = [];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.name', match: 'must be a JSON Array' },
      { severity: 'error', expression: 'Patient.gender', match: 'must be a single value' },
      { severity: 'error', expression: 'Patient.telecom', match: 'Array cannot be empty' },
    ]);
  });

  it('rejects an unknown resource type and a missing resourceType', () => {
    expectOnly(v.validate({ resourceType: 'Patientx' }), [{ severity: 'error', expression: 'Patientx', match: "unknown name 'Patientx'" }]);
    expectOnly(v.validate({ name: [] }), [{ severity: 'error', expression: 'Resource', match: 'resourceType' }]);
    // Medplum-only resource types are not R4
    expect(errors(v.validate({ resourceType: 'Project', name: 'x' })).length).toBe(1);
  });

  it('requires an id in update mode only, and checks nothing for delete', () => {
    const p: any = patient();
    delete p.id;
    expect(errors(v.validate(p, { mode: 'create' }))).toEqual([]);
    expectOnly(v.validate(p, { mode: 'update' }), [{ severity: 'error', expression: 'Patient', match: 'requires an id' }]);
    expect(v.validate({ resourceType: 'Patient', foo: 1 }, { mode: 'delete' })).toEqual([]);
  });
});

describe('cardinality', () => {
  it('base min (Patient.link.other 1..1) and max (Patient.gender 0..1 with two choice types)', () => {
    const p: any = patient();
    p.link = [{ type: 'seealso' }];
    p.deceasedBoolean = false;
    p.deceasedDateTime = '2020-01-01';
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.link[0]', match: 'Patient.link.other: minimum required = 1, but only found 0', code: 'required' },
      { severity: 'error', expression: 'Patient', match: 'Patient.deceased[x]: max allowed = 1, but found 2' },
    ]);
  });

  it('profile min / max', () => {
    const p: any = patient();
    delete p.gender;
    p.managingOrganization = { reference: 'Organization/1' };
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient', match: 'Patient.gender: minimum required = 1, but only found 0 (from http://example.org/fhir/StructureDefinition/test-patient|1.0.0)' },
      { severity: 'error', expression: 'Patient', match: 'Patient.managingOrganization: max allowed = 0, but found 1' },
    ]);
    expect(errors(v.validate(patient(), { profiles: [U + 'test-patient'] }))).toEqual([]);
  });

  it('inside datatypes constrained by a profile (slice child min, maxLength)', () => {
    const p: any = patient();
    p.identifier = [{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '1234567890123456' }];
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.identifier[0].value', match: 'maximum length of 15' },
    ]);
    p.identifier = [{ system: 'urn:oid:1.2.250.1.213.1.4.8' }];
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.identifier[0]', match: 'Patient.identifier:nir.value: minimum required = 1' },
    ]);
  });
});

describe('types and choice types', () => {
  it('rejects a choice type the profile does not allow, accepts the allowed one', () => {
    const p: any = patient();
    p.deceasedBoolean = false;
    expect(errors(v.validate(p, { profiles: [U + 'test-patient'] }))).toEqual([]);
    delete p.deceasedBoolean;
    p.deceasedDateTime = '2020-01-01';
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.deceased.ofType(dateTime)', match: "The type 'dateTime' is not allowed" },
    ]);
  });

  it('rejects a choice suffix that is not a type of the base element', () => {
    const p: any = patient();
    p.deceasedString = 'yes';
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient.deceasedString', match: "Unrecognized property 'deceasedString'" }]);
  });

  it('checks reference target types (relative, absolute, contained, bundle)', () => {
    const p: any = patient();
    p.managingOrganization = { reference: 'Practitioner/1' };
    p.generalPractitioner = [{ reference: 'http://example.org/fhir/Patient/2' }];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.managingOrganization', match: 'Invalid Resource target type. Found Practitioner, but expected one of (Organization)' },
      { severity: 'error', expression: 'Patient.generalPractitioner[0]', match: 'Found Patient' },
    ]);
    const o: any = {
      resourceType: 'Observation',
      text: DIV,
      status: 'final',
      code: { text: 'x' },
      contained: [{ resourceType: 'Device', id: 'd1' }],
      subject: { reference: '#d1' },
      performer: [{ reference: '#d1' }],
    };
    expectOnly(v.validate(o), [{ severity: 'error', expression: 'Observation.performer[0]', match: 'Found Device' }]);
  });

  it('profile narrowing of reference targets', () => {
    const p: any = patient();
    p.generalPractitioner = [{ reference: 'Organization/1' }];
    expect(errors(v.validate(p))).toEqual([]);
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.generalPractitioner[0]', match: 'expected one of (Practitioner)' },
    ]);
  });
});

describe('fixed and pattern values', () => {
  it('fixed[x]', () => {
    const p: any = patient();
    p.active = false;
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.active', match: "Value is 'false' but must be 'true'", code: 'value' },
    ]);
  });

  it('pattern[x] (subset match on a CodeableConcept)', () => {
    const o = bloodPressure();
    expect(errors(v.validate(o, { profiles: [U + 'test-observation-bp'] }))).toEqual([]);
    o.code.coding[0].code = '12345-6';
    expectOnly(v.validate(o, { profiles: [U + 'test-observation-bp'] }), [
      { severity: 'error', expression: 'Observation.code', match: 'The pattern {"coding":[{"system":"http://loinc.org","code":"85354-9"}]}' },
    ]);
  });
});

function bloodPressure(): any {
  return {
    resourceType: 'Observation',
    id: 'bp',
    text: DIV,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel' }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2020-01-01T10:00:00Z',
    component: [
      { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
      { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
    ],
  };
}

describe('slicing', () => {
  it('value discriminator, closed slicing, slice cardinality', () => {
    const p: any = patient();
    p.identifier.push({ system: 'http://example.org/fhir/local-ids', value: 'L1' });
    expect(errors(v.validate(p, { profiles: [U + 'test-patient'] }))).toEqual([]);
    p.identifier = [{ system: 'http://other.org', value: '1' }];
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.identifier[0]', match: 'does not match any known slice defined in the profile http://example.org/fhir/StructureDefinition/test-patient and slicing is CLOSED' },
      { severity: 'error', expression: 'Patient', match: 'Patient.identifier:nir: minimum required = 1, but only found 0' },
    ]);
  });

  it('pattern discriminator on $this, slice max and slice children', () => {
    const p: any = patient();
    p.telecom = [{ system: 'email', value: 'a@b.c' }, { system: 'phone', value: '1' }];
    expect(errors(v.validate(p, { profiles: [U + 'test-patient'] }))).toEqual([]);
    p.telecom = [{ system: 'phone', value: '1' }, { system: 'phone', extension: [{ url: 'http://example.org/x', valueString: 'no number' }] }];
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient', match: 'Patient.telecom:phone: max allowed = 1, but found 2' },
      { severity: 'error', expression: 'Patient.telecom[1]', match: 'Patient.telecom:phone.value: minimum required = 1' },
    ]);
  });

  it('pattern discriminator on a child path, ordered + closed slicing', () => {
    const o = bloodPressure();
    o.component.reverse();
    o.component.push({ code: { text: 'heart rate' }, valueQuantity: { value: 60 } });
    expectOnly(v.validate(o, { profiles: [U + 'test-observation-bp'] }), [
      { severity: 'error', expression: 'Observation.component[1]', match: 'out of order in ordered slice' },
      { severity: 'error', expression: 'Observation.component[2]', match: 'slicing is CLOSED' },
    ]);
    const missing = bloodPressure();
    missing.category[0].coding[0].code = 'laboratory';
    expectOnly(v.validate(missing, { profiles: [U + 'test-observation-bp'] }), [
      { severity: 'error', expression: 'Observation', match: 'Observation.category:vitals: minimum required = 1, but only found 0' },
    ]);
  });

  it('type discriminator on a choice ($this), closed', () => {
    const o: any = { resourceType: 'Observation', text: DIV, status: 'final', code: { text: 'weight' }, valueQuantity: { value: 70, system: 'http://unitsofmeasure.org' } };
    expect(errors(v.validate(o, { profiles: [U + 'test-observation-value'] }))).toEqual([]);
    delete o.valueQuantity.system;
    expectOnly(v.validate(o, { profiles: [U + 'test-observation-value'] }), [
      { severity: 'error', expression: 'Observation.value.ofType(Quantity)', match: 'Observation.value[x]:valueQuantity.system: minimum required = 1' },
    ]);
    delete o.valueQuantity;
    o.valueString = '70 kg';
    expectOnly(v.validate(o, { profiles: [U + 'test-observation-value'] }), [
      { severity: 'error', expression: 'Observation.value.ofType(string)', match: 'slicing is CLOSED' },
    ]);
  });

  it('type discriminator on Bundle.entry.resource', () => {
    const b = collection([patient(), { resourceType: 'Organization', id: 'o1', text: DIV, name: 'Org' }]);
    expect(errors(v.validate(b, { profiles: [U + 'test-bundle-typed'] }))).toEqual([]);
    const b2 = collection([patient(), bloodPressure()]);
    expectOnly(v.validate(b2, { profiles: [U + 'test-bundle-typed'] }), [
      { severity: 'error', expression: 'Bundle.entry[1]', match: 'slicing is CLOSED' },
    ]);
  });

  it('exists discriminator', () => {
    const o: any = {
      resourceType: 'Observation',
      text: DIV,
      status: 'final',
      code: { text: 'x' },
      component: [
        { code: { text: 'a' }, valueString: 'a' },
        { code: { text: 'b' }, dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' }] } },
      ],
    };
    expect(errors(v.validate(o, { profiles: [U + 'test-observation-value'] }))).toEqual([]);
    o.component[1] = { code: { text: 'b' }, valueString: 'b' };
    expectOnly(v.validate(o, { profiles: [U + 'test-observation-value'] }), [
      { severity: 'error', expression: 'Observation', match: 'Observation.component:measured: max allowed = 1, but found 2' },
    ]);
  });

  it('profile discriminator on Bundle.entry.resource, with the reason a slice did not match', () => {
    const bp = bloodPressure();
    bp.subject = { reference: 'urn:uuid:00000000-0000-0000-0000-000000000001' };
    const b = collection([patient(), bp]);
    expect(errors(v.validate(b, { profiles: [U + 'test-bundle'] }))).toEqual([]);
    const bad = clone(b);
    bad.entry[0].resource.gender = undefined;
    delete bad.entry[0].resource.gender;
    expectOnly(v.validate(bad, { profiles: [U + 'test-bundle'] }), [
      { severity: 'error', expression: 'Bundle.entry[0]', match: /slicing is CLOSED: Does not match slice 'patient' \(Patient: Patient.gender: minimum required = 1/ },
      { severity: 'error', expression: 'Bundle', match: 'Bundle.entry:patient: minimum required = 1, but only found 0' },
      // the observation's subject (targetProfile test-patient) is that patient, which no longer conforms
      { severity: 'error', expression: 'Bundle.entry[1]', match: /Does not match slice 'bp' \(Observation.subject: The resource urn:uuid:00000000-0000-0000-0000-000000000001 does not conform to the target profile/ },
    ]);
  });
});

function collection(resources: any[]): any {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: resources.map((r, i) => ({ fullUrl: `urn:uuid:00000000-0000-0000-0000-00000000000${i + 1}`, resource: r })),
  };
}

describe('bindings', () => {
  it('required binding on code (base) and CodeableConcept (profile)', () => {
    const p: any = patient();
    p.gender = 'femme';
    expectOnly(v.validate(p), [
      {
        severity: 'error',
        expression: 'Patient.gender',
        code: 'code-invalid',
        match: "The value provided ('femme') is not in the value set 'AdministrativeGender' (http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1), and a code is required from this value set",
      },
    ]);
    const q: any = patient();
    q.maritalStatus.coding[0].code = 'W';
    expect(errors(v.validate(q))).toEqual([]); // W (widowed) is in the base extensible value set
    expectOnly(v.validate(q, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient.maritalStatus', match: 'None of the codings provided are in the value set' },
    ]);
  });

  it('unknown code in a known code system is an error; wrong display a warning', () => {
    const p: any = patient();
    p.maritalStatus = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'ZZ' }] };
    p.contact = [{ relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'C', display: 'Wrong display' }] }], name: { family: 'X' } }];
    const issues = v.validate(p);
    expectOnly(issues, [{ severity: 'error', expression: 'Patient.maritalStatus.coding[0].code', match: "Unknown code 'ZZ'" }]);
    expect(at(warnings(issues), 'Patient.contact[0].relationship[0].coding[0].display')).toHaveLength(1);
  });

  it('extensible binding → warning when not in the value set; codes from external systems are not flagged', () => {
    const o: any = { resourceType: 'Observation', text: DIV, status: 'final', code: { text: 'x' }, valueCodeableConcept: { coding: [{ system: 'http://example.org/fhir/CodeSystem/test-colors', code: 'dark-red' }] } };
    const issues = v.validate(o, { profiles: [U + 'test-observation-value'] });
    expect(errors(issues)).toEqual([]);
    expect(at(warnings(issues), 'Observation.value.ofType(CodeableConcept)')[0].diagnostics).toMatch(/None of the codings provided are in the value set 'TestAllColors'/);
    o.valueCodeableConcept.coding.push({ system: 'http://example.org/fhir/CodeSystem/test-colors', code: 'green' });
    expect(at(v.validate(o, { profiles: [U + 'test-observation-value'] }), 'Observation.value.ofType(CodeableConcept)')).toEqual([]);
    // LOINC / SNOMED are not shipped: never an error
    const l: any = { resourceType: 'Observation', text: DIV, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: 'not-a-loinc' }, { system: 'http://snomed.info/sct', code: '0' }] } };
    expect(v.validate(l)).toEqual([]);
  });

  it('value set not available → no error', () => {
    const sd = require('./testdata/conformance/profile-patient.json');
    const copy = clone(sd);
    copy.url = U + 'test-patient-unknown-vs';
    copy.differential.element.find((e: any) => e.id === 'Patient.maritalStatus').binding.valueSet = 'http://example.org/fhir/ValueSet/does-not-exist';
    expect(errors(v.addConformanceResource(copy))).toEqual([]);
    const p: any = patient();
    p.maritalStatus.coding[0].code = 'W';
    expect(errors(v.validate(p, { profiles: [copy.url] }))).toEqual([]);
    v.removeConformanceResource('StructureDefinition', copy.url);
  });
});

describe('invariants', () => {
  it('ele-1 on empty elements (an empty object is reported as such, as the HL7 validator does)', () => {
    const p: any = patient();
    p.name = [{}];
    p.contact = [{ name: { id: 'n1' } }];
    delete p.gender;
    p._gender = { id: 'g' };
    p.birthDate = '';
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.name[0]', code: 'structure', match: 'Object must have some content' },
      { severity: 'error', expression: 'Patient.contact[0].name', code: 'invariant', match: "Constraint failed: ele-1: 'All FHIR elements must have a @value or children'" },
      { severity: 'error', expression: 'Patient.gender', code: 'invariant', match: 'ele-1' },
      { severity: 'error', expression: 'Patient.birthDate', code: 'value', match: '@value cannot be empty' },
      { severity: 'error', expression: 'Patient.birthDate', code: 'invariant', match: 'ele-1' },
    ]);
  });

  it('resource-specific invariants (pat-1, per-1) and a profile invariant', () => {
    const p: any = patient();
    p.contact = [{ gender: 'male' }];
    p.identifier[0].period = { start: '2020-01-02', end: '2020-01-01' };
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.contact[0]', match: 'Constraint failed: pat-1' },
      { severity: 'error', expression: 'Patient.identifier[0].period', match: 'Constraint failed: per-1' },
    ]);
    const q: any = patient();
    q.name = [{ given: ['Jeanne'] }];
    expectOnly(v.validate(q, { profiles: [U + 'test-patient'] }), [{ severity: 'error', expression: 'Patient', match: 'Constraint failed: tp-1' }]);
  });

  it('per-1 compares start and end as FHIRPath does: a comparison left undecided by a difference of precision fails', () => {
    const period = (start: string, end: string) => ({ resourceType: 'Encounter', text: DIV, status: 'finished', class: { code: 'AMB' }, period: { start, end } });
    const verdict = (start: string, end: string) => errors(v.validate(period(start, end))).some((i) => /per-1/.test(i.diagnostics));
    expect(verdict('2023-06-21', '2023-06-21T06:20:00Z')).toBe(true); // the same day, one with a time: undecided
    expect(verdict('2023-06', '2023-06-15')).toBe(true); // the same month, one with a day: undecided
    expect(verdict('2023-06-20', '2023-06-21T06:20:00Z')).toBe(false); // decided by the day
    expect(verdict('2023-06-22', '2023-06-21T06:20:00Z')).toBe(true);
    expect(verdict('2023-06-21', '2023-06-21')).toBe(false);
    expect(verdict('2023-06-21T08:00:00+02:00', '2023-06-21T06:30:00Z')).toBe(false); // instants, timezones applied
    expect(verdict('2023-06-21T09:00:00+02:00', '2023-06-21T06:30:00Z')).toBe(true);
    expect(verdict('2023', '2024-01-01T00:00:00Z')).toBe(false);
  });

  it('dom-2..5 on contained resources, dom-6 is a warning, ref-1', () => {
    const o: any = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      contained: [{ resourceType: 'Patient', id: 'p', meta: { versionId: '1' } }, { resourceType: 'Patient', id: 'orphan' }],
      subject: { reference: '#p' },
      performer: [{ reference: '#nope' }],
    };
    const issues = v.validate(o);
    expectOnly(issues, [
      { severity: 'error', expression: 'Observation', match: 'dom-3' },
      { severity: 'error', expression: 'Observation', match: 'dom-4' },
      { severity: 'error', expression: 'Observation.performer[0]', match: 'ref-1' },
      { severity: 'error', expression: 'Observation.performer[0]', match: "Unable to resolve resource '#nope'" },
    ]);
    expect(warnings(issues).map((w) => w.diagnostics)).toEqual([expect.stringContaining('dom-6')]);
  });

  it('narrative checks (namespace, illegal elements, empty)', () => {
    const p: any = patient();
    p.text = { status: 'generated', div: '<div><script>alert(1)</script></div>' };
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.text.div', match: 'Wrong namespace on the XHTML' },
      { severity: 'error', expression: 'Patient.text.div', match: "Illegal element name in the XHTML ('script')" },
      { severity: 'error', expression: 'Patient.text.div', match: 'Constraint failed: txt-1' },
    ]);
    p.text.div = '<div xmlns="http://www.w3.org/1999/xhtml"><p onClick="x()">a</p></div>';
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.text.div', match: "Illegal attribute name in the XHTML ('onClick' on 'p')" },
      { severity: 'error', expression: 'Patient.text.div', match: 'Constraint failed: txt-1' },
    ]);
    p.text.div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>a</pa></div>';
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.text.div', match: 'Error parsing XHTML: Malformed XHTML: Found "</pa>" expecting "</p>"' },
      { severity: 'error', expression: 'Patient.text.div', match: 'Constraint failed: txt-1' },
    ]);
    p.text.div = '<div xmlns="http://www.w3.org/1999/xhtml">  </div>';
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient.text.div', match: 'Constraint failed: txt-2' }]);
  });
});

describe('extensions', () => {
  it('known core extension: value type and context', () => {
    const p: any = patient();
    p.extension = [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: 'Lyon' } }];
    expect(errors(v.validate(p))).toEqual([]);
    p.extension = [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueString: 'Lyon' }];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.extension[0].value.ofType(string)', match: "The type 'string' is not allowed" },
      { severity: 'error', expression: 'Patient.extension[0]', match: 'Extension.value[x]: minimum required = 1' },
    ]);
    const o: any = { resourceType: 'Observation', text: DIV, status: 'final', code: { text: 'x' }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: 'Lyon' } }] };
    expectOnly(v.validate(o), [{ severity: 'error', expression: 'Observation.extension[0]', match: 'is not allowed to be used at this point (allowed = e:Patient' }]);
  });

  it('our own extensions: required binding on the value, complex extension slices, context', () => {
    const p: any = patient();
    p.extension = [
      { url: U + 'test-favorite-color', valueCode: 'green' },
      { url: U + 'test-contact-info', extension: [{ url: 'email', valueString: 'a@b.c' }, { url: 'hours', valuePeriod: { start: '2020-01-01' } }] },
    ];
    expect(errors(v.validate(p))).toEqual([]);
    p.extension[0].valueCode = 'purple';
    p.extension[1].extension = [{ url: 'hours', valueString: 'always' }, { url: 'fax', valueString: '1' }];
    expectOnly(v.validate(p), [
      { severity: 'error', expression: 'Patient.extension[0].value.ofType(code)', match: "The value provided ('purple') is not in the value set 'TestAllColors'" },
      { severity: 'error', expression: 'Patient.extension[1]', match: 'Extension.extension:email: minimum required = 1' },
      { severity: 'error', expression: 'Patient.extension[1].extension[0].value.ofType(string)', match: "The type 'string' is not allowed" },
      { severity: 'error', expression: 'Patient.extension[1].extension[1]', match: "Sub-extension url 'fax' is not defined by the Extension" },
    ]);
  });

  it('an extension standing for an element of another FHIR version is known, its content not checked; a malformed one is unknown', () => {
    const obs = (url: string) => ({ resourceType: 'Observation', text: DIV, status: 'final', code: { text: 'x' }, extension: [{ url, valueAttachment: { contentType: 'application/pdf', data: 'VGhpcw==' } }] });
    const xver = 'http://hl7.org/fhir/3.0/StructureDefinition/extension-Observation.value';
    const issues = v.validate(obs(xver), { unknownExtensions: 'error' });
    expect(errors(issues)).toEqual([]);
    expect(at(issues, 'Observation.extension[0]').map((i) => [i.severity, i.diagnostics])).toEqual([['information', expect.stringContaining('element Observation.value of FHIR 3.0')]]);
    // R4 itself is not another version, and a path must name an element
    for (const url of ['http://hl7.org/fhir/4.0/StructureDefinition/extension-Observation.value', 'http://hl7.org/fhir/5.0/StructureDefinition/extension-observation']) {
      expectOnly(v.validate(obs(url), { unknownExtensions: 'error' }), [{ severity: 'error', expression: 'Observation.extension[0]', match: 'is unknown, and not allowed here' }]);
    }
  });

  it('a modifierExtension standing for a modifier element of another FHIR version is known to a conformance verdict; a write still refuses it', () => {
    const dr: any = { resourceType: 'DeviceRequest', text: DIV, status: 'completed', intent: 'original-order', codeCodeableConcept: { text: 'x' }, subject: { reference: 'Patient/p1' } };
    dr.modifierExtension = [{ url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.doNotPerform', valueBoolean: true }];
    const issues = v.validate(dr, { unknownExtensions: 'error' });
    expect(errors(issues)).toEqual([]);
    expect(at(issues, 'DeviceRequest.modifierExtension[0]').map((i) => [i.severity, i.diagnostics])).toEqual([['information', expect.stringContaining('modifier extension')]]);
    expectOnly(v.validate(dr), [{ severity: 'error', expression: 'DeviceRequest.modifierExtension[0]', match: 'Unknown modifier extension' }]);
  });

  it('unknown extension → warning; unknown modifierExtension → error; modifier flags must agree', () => {
    const p: any = patient();
    p.extension = [{ url: 'http://example.org/unknown', valueString: 'x' }];
    const issues = v.validate(p);
    expect(errors(issues)).toEqual([]);
    expect(at(warnings(issues), 'Patient.extension[0]')[0].diagnostics).toBe('Unknown extension http://example.org/unknown');
    // a conformance verdict (unknownExtensions: 'error') refuses it, in contained resources too
    expectOnly(v.validate(p, { unknownExtensions: 'error' }), [{ severity: 'error', expression: 'Patient.extension[0]', match: 'The extension http://example.org/unknown is unknown, and not allowed here' }]);
    const container = { ...patient(), contained: [{ ...p, id: 'c1' }], link: [{ other: { reference: '#c1' }, type: 'seealso' }] };
    expect(errors(v.validate(container, { unknownExtensions: 'error' })).map((i) => i.expression?.[0])).toEqual(['Patient.contained[0].extension[0]']);
    p.modifierExtension = [{ url: 'http://example.org/unknown-modifier', valueBoolean: true }];
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient.modifierExtension[0]', match: 'Unknown modifier extension' }]);
    p.modifierExtension = [{ url: U + 'test-do-not-use', valueBoolean: true }];
    expect(errors(v.validate(p))).toEqual([]);
    p.extension = [{ url: U + 'test-do-not-use', valueBoolean: true }];
    delete p.modifierExtension;
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient.extension[0]', match: 'must be used as a modifierExtension' }]);
  });

  it('extensions sliced by a profile (value:url) with ext-1', () => {
    const p: any = patient();
    p.extension = [{ url: U + 'test-favorite-color', valueCode: 'red' }];
    expect(errors(v.validate(p, { profiles: [U + 'test-patient'] }))).toEqual([]);
    p.extension = [{ url: U + 'test-favorite-color', valueCode: 'red' }, { url: U + 'test-favorite-color', valueCode: 'blue' }];
    expectOnly(v.validate(p, { profiles: [U + 'test-patient'] }), [
      { severity: 'error', expression: 'Patient', match: 'Patient.extension:favoriteColor: max allowed = 1, but found 2' },
    ]);
    p.extension = [{ url: 'http://example.org/unknown', valueString: 'x', extension: [{ url: 'http://example.org/unknown2', valueString: 'y' }] }];
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient.extension[0]', match: 'ext-1' }]);
  });
});

describe('contained resources, Bundles, Parameters', () => {
  it('validates contained resources as their own type', () => {
    const o: any = {
      resourceType: 'Observation',
      text: DIV,
      status: 'final',
      code: { text: 'x' },
      contained: [{ resourceType: 'Patient', id: 'p', gender: 'nope', name: [{ family: 'x', foo: 1 }] }],
      subject: { reference: '#p' },
    };
    expectOnly(v.validate(o), [
      { severity: 'error', expression: 'Observation.contained[0].gender', match: "The value provided ('nope')" },
      { severity: 'error', expression: 'Observation.contained[0].name[0].foo', match: 'Unrecognized property' },
    ]);
  });

  it('recurses into Bundle entries with indexed paths, resolves urn:uuid references', () => {
    const bp = bloodPressure();
    bp.subject = { reference: 'urn:uuid:00000000-0000-0000-0000-000000000001' };
    const b = collection([{ resourceType: 'Organization', id: 'o', text: DIV, name: 'x' }, patient(), bp]);
    expectOnly(v.validate(b), [{ severity: 'error', expression: 'Bundle.entry[2].resource.subject', match: 'Found Organization, but expected one of (Patient, Group, Device, Location)' }]);
    b.entry[1].resource.name[0].family = 42;
    b.entry[0].fullUrl = 'http://example.org/fhir/Organization/other';
    expectOnly(v.validate(b), [
      { severity: 'error', expression: 'Bundle.entry[1].resource.name[0].family', match: 'must be a string' },
      { severity: 'error', expression: 'Bundle.entry[0]', match: "Resource ID does not match the ID in the entry full URL ('o' vs 'http://example.org/fhir/Organization/other')" },
    ]);
  });

  it('Bundle invariants (bdl-*)', () => {
    const b: any = collection([patient()]);
    b.total = 1;
    expectOnly(v.validate(b), [{ severity: 'error', expression: 'Bundle', match: 'bdl-1' }]);
    const d: any = { resourceType: 'Bundle', type: 'document', timestamp: '2020-01-01T00:00:00Z', identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0c3a1b5e-0000-4000-8000-000000000000' }, entry: [{ fullUrl: 'urn:uuid:00000000-0000-0000-0000-000000000001', resource: patient() }] };
    expectOnly(v.validate(d), [{ severity: 'error', expression: 'Bundle', match: 'bdl-11' }]);
  });

  it('Parameters.parameter.resource', () => {
    const params: any = { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient', gender: 'x' } }] };
    expectOnly(v.validate(params), [{ severity: 'error', expression: 'Parameters.parameter[0].resource.gender', match: 'not in the value set' }]);
  });
});

describe('profiles: meta.profile, requested profiles, run-time registration', () => {
  it('honours meta.profile', () => {
    const p: any = patient();
    p.meta = { profile: [U + 'test-patient'] };
    expect(errors(v.validate(p))).toEqual([]);
    delete p.birthDate;
    expectOnly(v.validate(p), [{ severity: 'error', expression: 'Patient', match: 'Patient.birthDate: minimum required = 1' }]);
  });

  it('unknown meta.profile → warning; unknown requested profile → error', () => {
    const p: any = patient();
    p.meta = { profile: ['http://example.org/fhir/StructureDefinition/nope'] };
    const issues = v.validate(p);
    expect(errors(issues)).toEqual([]);
    expect(at(warnings(issues), 'Patient.meta.profile[0]')[0].diagnostics).toMatch(/has not been checked because it is unknown/);
    expectOnly(v.validate(patient(), { profiles: ['http://example.org/fhir/StructureDefinition/nope'] }), [
      { severity: 'error', expression: 'Patient', match: 'is not known' },
    ]);
  });

  it('a versioned canonical selects the version', () => {
    expect(errors(v.validate(patient(), { profiles: [U + 'test-patient|1.0.0'] }))).toEqual([]);
    expect(errors(v.validate(patient(), { profiles: [U + 'test-patient|9.9'] }))).toHaveLength(1);
  });

  it('addConformanceResource generates the snapshot of a differential-only profile; remove forgets it', () => {
    const sd = {
      resourceType: 'StructureDefinition',
      url: U + 'runtime-patient',
      name: 'RuntimePatient',
      status: 'draft',
      kind: 'resource',
      abstract: false,
      type: 'Patient',
      baseDefinition: U + 'test-patient',
      derivation: 'constraint',
      differential: { element: [{ id: 'Patient.address', path: 'Patient.address', min: 1 }, { id: 'Patient.address.city', path: 'Patient.address.city', min: 1 }] },
    };
    expect(v.hasProfile(sd.url)).toBe(false);
    expect(v.addConformanceResource(sd)).toEqual([]);
    expect(v.hasProfile(sd.url)).toBe(true);
    const snap = v.structureDefinition(sd.url);
    expect(snap.snapshot.element.find((e: any) => e.id === 'Patient.identifier:nir.system').fixedUri).toBe('urn:oid:1.2.250.1.213.1.4.8');
    const p: any = patient();
    expectOnly(v.validate(p, { profiles: [sd.url] }), [{ severity: 'error', expression: 'Patient', match: 'Patient.address: minimum required = 1' }]);
    p.address = [{ line: ['1 rue de la Paix'] }];
    expectOnly(v.validate(p, { profiles: [sd.url] }), [{ severity: 'error', expression: 'Patient.address[0]', match: 'Patient.address.city: minimum required = 1' }]);
    expect(v.conformanceResources('StructureDefinition').some((r) => r.url === sd.url)).toBe(true);
    v.removeConformanceResource('StructureDefinition', sd.url);
    expect(v.hasProfile(sd.url)).toBe(false);
  });

  it('refuses a profile whose base is unknown, or a non-conformance resource', () => {
    const issues = v.addConformanceResource({
      resourceType: 'StructureDefinition',
      url: U + 'orphan',
      type: 'Patient',
      baseDefinition: U + 'nope',
      derivation: 'constraint',
      differential: { element: [{ id: 'Patient', path: 'Patient' }] },
    });
    expect(errors(issues).length).toBeGreaterThan(0);
    expect(v.hasProfile(U + 'orphan')).toBe(false);
    expect(errors(v.addConformanceResource({ resourceType: 'Patient' }))).toHaveLength(1);
  });
});

describe('domain checks', () => {
  it('runs registered checks on resources (also inside Bundles, with prefixed paths)', () => {
    const w = Validator.create();
    w.addDomainCheck({
      name: 'no-x-family',
      appliesTo: (r) => r.resourceType === 'Patient',
      check: (r) =>
        (r.name ?? []).flatMap((n: any, i: number) =>
          n.family === 'X' ? [{ severity: 'error' as const, code: 'business-rule' as const, diagnostics: 'family X refused', expression: [`Patient.name[${i}].family`] }] : [],
        ),
    });
    const p: any = patient();
    p.name[0].family = 'X';
    expectOnly(w.validate(p), [{ severity: 'error', expression: 'Patient.name[0].family', match: 'family X refused' }]);
    expectOnly(w.validate(collection([p])), [{ severity: 'error', expression: 'Bundle.entry[0].resource.name[0].family', match: 'family X refused' }]);
  });
});

describe('terminology operations', () => {
  it('expands our value sets (filters, exclusions, paging)', () => {
    const warm = v.expandValueSet('http://example.org/fhir/ValueSet/test-warm-colors');
    expect(warm.expansion.contains.map((c: any) => c.code).sort()).toEqual(['dark-red', 'red']);
    const all = v.expandValueSet('http://example.org/fhir/ValueSet/test-all-colors', { count: 2, offset: 1 });
    expect(all.expansion.total).toBe(3);
    expect(all.expansion.contains).toHaveLength(2);
    expect(v.expandValueSet('http://example.org/fhir/ValueSet/test-all-colors', { filter: 'gre' }).expansion.contains).toEqual([
      { system: 'http://example.org/fhir/CodeSystem/test-colors', code: 'green', display: 'Green' },
    ]);
    expect(v.expandValueSet('http://hl7.org/fhir/ValueSet/administrative-gender')!.expansion.total).toBe(4);
    expect(v.expandValueSet('http://example.org/fhir/ValueSet/test-snomed')).toBeUndefined();
    expect(v.expandValueSet('http://example.org/fhir/ValueSet/nope')).toBeUndefined();
  });

  it('validates codes against value sets and code systems', () => {
    expect(v.validateCode({ url: 'http://hl7.org/fhir/ValueSet/administrative-gender', code: 'male' })).toEqual({ result: true, display: 'Male' });
    expect(v.validateCode({ url: 'http://hl7.org/fhir/ValueSet/administrative-gender', code: 'xx' }).result).toBe(false);
    expect(v.validateCode({ url: 'http://example.org/fhir/ValueSet/test-warm-colors', system: 'http://example.org/fhir/CodeSystem/test-colors', code: 'green' }).result).toBe(false);
    expect(v.validateCode({ codeSystemUrl: 'http://example.org/fhir/CodeSystem/test-colors', code: 'blue', display: 'Blue' })).toEqual({ result: true, display: 'Blue' });
    expect(v.validateCode({ codeSystemUrl: 'http://example.org/fhir/CodeSystem/test-colors', code: 'blue', display: 'Bleu' }).result).toBe(false);
    expect(v.validateCode({ codeSystemUrl: 'http://example.org/fhir/CodeSystem/nope', code: 'blue' }).result).toBe(false);
  });

  it('lists our own conformance resources', () => {
    expect(v.conformanceResources('StructureDefinition').map((s) => s.id).sort()).toEqual(
      ['test-bundle', 'test-bundle-typed', 'test-contact-info', 'test-do-not-use', 'test-favorite-color', 'test-observation-bp', 'test-observation-value', 'test-patient'],
    );
    expect(v.conformanceResources('ValueSet')).toHaveLength(4);
    expect(v.conformanceResources('CodeSystem')).toHaveLength(1);
    expect(v.conformanceResources('Questionnaire')).toHaveLength(0);
  });
});
