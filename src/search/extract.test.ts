import { extractIndexRows } from './extract';
import { IndexKind, IndexRows } from './indexRows';
import { SearchParameterRegistry, expressionPartsFor, splitTopLevelUnion } from './searchParameters';

const BASE = 'http://localhost:8080/fhir/';

function of<K extends IndexKind>(rows: IndexRows, kind: K, param: string): Omit<IndexRows[K][number], 'param'>[] {
  return (rows[kind] as IndexRows[K][number][])
    .filter((r) => r.param === param)
    .map((r) => {
      const { param: _p, ...rest } = r as any;
      return rest;
    });
}

const patient = {
  resourceType: 'Patient',
  id: 'p1',
  meta: {
    lastUpdated: '2024-05-01T10:00:00.123+02:00',
    profile: ['http://example.org/StructureDefinition/my-patient'],
    tag: [{ system: 'http://example.org/tags', code: 'test', display: 'Test' }],
    security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }],
    source: 'urn:source:1',
  },
  active: true,
  identifier: [
    {
      system: 'urn:oid:1.2.250.1.213.1.4.8',
      value: '1234567890123',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NI', display: 'National Identifier' }] },
    },
    { system: 'http://example.org/mrn', value: 'MRN-1', type: { text: 'Numéro de dossier' } },
    { value: 'no-system' },
    { type: { text: 'nothing' } }, // no system nor value: skipped
  ],
  name: [
    { use: 'official', family: 'Dupont-Éléonore', given: ['Jean', 'François'], prefix: ['M.'] },
    { text: 'Jean  DUPONT' },
  ],
  telecom: [
    { system: 'phone', value: '+33 1 23 45 67 89', use: 'home' },
    { system: 'email', value: 'jean@example.org' },
  ],
  gender: 'male',
  birthDate: '1970-03',
  deceasedBoolean: false,
  address: [{ line: ['1 rue de la Paix', 'Bât. A'], city: 'Paris', postalCode: '75002', country: 'FR' }],
  generalPractitioner: [{ reference: 'Practitioner/dr1' }],
  managingOrganization: { reference: `${BASE}Organization/org1` },
  communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'fr' }], text: 'Français' } }],
};

describe('searchParameters', () => {
  it('splits unions on top-level | only', () => {
    expect(splitTopLevelUnion("A.b.where(c = 'x|y') | (A.d as Quantity) | A.e.where((f | g).exists())")).toEqual([
      "A.b.where(c = 'x|y')",
      '(A.d as Quantity)',
      'A.e.where((f | g).exists())',
    ]);
  });

  it('keeps only the parts of shared expressions for the resource type', () => {
    const reg = SearchParameterRegistry.official();
    expect(reg.get('DocumentReference', 'patient')?.expression).toBe('DocumentReference.subject.where(resolve() is Patient)');
    expect(reg.get('Observation', 'value-quantity')?.expression).toBe(
      '(Observation.value as Quantity) | (Observation.value as SampledData)',
    );
    expect(expressionPartsFor('Resource.meta.tag', 'Patient')).toEqual(['Patient.meta.tag']);
    expect(expressionPartsFor('Account.subject | AccountX.subject', 'Account')).toEqual(['Account.subject']);
  });

  it('includes Resource-level params and skips params without expression', () => {
    const params = SearchParameterRegistry.official().forType('Patient');
    for (const code of ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']) expect(params.has(code)).toBe(true);
    for (const code of ['_text', '_content', '_query']) expect(params.has(code)).toBe(false);
    expect(params.get('birthdate')?.type).toBe('date');
    expect(params.get('birthdate')?.engine).toBe('fast');
    expect(params.get('deceased')?.engine).toBe('fast'); // special-cased `X.exists() and X != false`
  });

  it('evaluate returns plain JSON values', () => {
    const reg = SearchParameterRegistry.official();
    expect(reg.get('Patient', 'birthdate')!.evaluate(patient)).toEqual(['1970-03']);
    expect(reg.get('Patient', 'deceased')!.evaluate(patient)).toEqual([false]);
    expect(reg.get('Patient', 'email')!.evaluate(patient)).toEqual([{ system: 'email', value: 'jean@example.org' }]);
  });

  it('compiles every official parameter', () => {
    const reg = SearchParameterRegistry.official();
    const types = [...new Set(reg.baseTypes())];
    const broken: string[] = [];
    for (const t of types) for (const cp of reg.forType(t).values()) if (cp.engine === 'none') broken.push(`${t}.${cp.code}: ${cp.error}`);
    expect(broken).toEqual([]);
  });

  it('deceased token: absent -> false, dateTime -> true, false -> false', () => {
    const cp = SearchParameterRegistry.official().get('Patient', 'deceased')!;
    expect(cp.evaluate({ resourceType: 'Patient' })).toEqual([false]);
    expect(cp.evaluate({ resourceType: 'Patient', deceasedBoolean: true })).toEqual([true]);
    expect(cp.evaluate({ resourceType: 'Patient', deceasedDateTime: '2020' })).toEqual([true]);
    expect(cp.evaluate({ resourceType: 'Patient', deceasedBoolean: false })).toEqual([false]);
  });

  it('falls back to fhirpath.js for non-trivial expressions (resolve() rewritten, types kept)', () => {
    const reg = new SearchParameterRegistry();
    reg.add({ code: 'first-gp', type: 'reference', url: 'x:1', base: ['Patient'], expression: 'Patient.generalPractitioner.where(resolve() is Practitioner).first()' });
    reg.add({ code: 'work-email', type: 'token', url: 'x:2', base: ['Patient'], expression: "Patient.telecom.where(system = 'email' and use = 'work')" });
    reg.add({ code: 'birth', type: 'date', url: 'x:3', base: ['Patient'], expression: 'Patient.birthDate.first()' });
    reg.add({ code: 'tag', type: 'token', url: 'x:4', base: ['Resource'], expression: 'Resource.meta.tag' });
    expect(reg.get('Patient', 'first-gp')?.engine).toBe('fhirpath');
    const rows = extractIndexRows(
      {
        resourceType: 'Patient',
        birthDate: '2001',
        meta: { tag: [{ code: 't' }] },
        generalPractitioner: [{ reference: 'Organization/o1' }, { reference: 'Practitioner/a' }, { reference: 'Practitioner/b' }],
        telecom: [{ system: 'email', use: 'home', value: 'h@x' }, { system: 'email', use: 'work', value: 'w@x' }],
      },
      reg,
    );
    expect(of(rows, 'reference', 'first-gp').map((r) => r.targetId)).toEqual(['a']);
    expect(of(rows, 'token', 'work-email')).toEqual([{ system: null, code: 'w@x', text: null }]);
    expect(of(rows, 'date', 'birth')).toEqual([{ low: '2001-01-01T00:00:00.000Z', high: '2001-12-31T23:59:59.999Z' }]);
    expect(of(rows, 'token', 'tag')).toEqual([{ system: null, code: 't', text: null }]);
  });

  it('fast path handles extension(url) and where(url = ...) with choice-typed values', () => {
    const reg = new SearchParameterRegistry();
    reg.add({ code: 'nationality', type: 'token', url: 'x:5', base: ['Patient'], expression: "Patient.extension('http://example.org/nationality').value" });
    reg.add({ code: 'nickname', type: 'string', url: 'x:6', base: ['Patient'], expression: "Patient.extension.where(url = 'http://example.org/nickname').value" });
    expect(reg.get('Patient', 'nationality')?.engine).toBe('fast');
    expect(reg.get('Patient', 'nickname')?.engine).toBe('fast');
    const rows = extractIndexRows(
      {
        resourceType: 'Patient',
        extension: [
          { url: 'http://example.org/nationality', valueCodeableConcept: { coding: [{ system: 'urn:iso:std:iso:3166', code: 'FR' }] } },
          { url: 'http://example.org/nickname', valueString: 'Jojo' },
          { url: 'http://example.org/other', valueString: 'ignored' },
        ],
      },
      reg,
    );
    expect(of(rows, 'token', 'nationality')).toEqual([{ system: 'urn:iso:std:iso:3166', code: 'FR', text: null }]);
    expect(of(rows, 'string', 'nickname')).toEqual([{ value: 'jojo', exact: 'Jojo' }]);
  });

  it('accepts custom SearchParameter resources', () => {
    const reg = SearchParameterRegistry.withOfficial();
    reg.add({
      resourceType: 'SearchParameter',
      url: 'http://example.org/SearchParameter/patient-nickname',
      code: 'nickname',
      base: ['Patient'],
      type: 'string',
      expression: "Patient.name.where(use = 'nickname').given",
    });
    const rows = extractIndexRows(
      { resourceType: 'Patient', name: [{ use: 'nickname', given: ['Jojo'] }, { use: 'official', given: ['Joseph'] }] },
      reg,
    );
    expect(of(rows, 'string', 'nickname')).toEqual([{ value: 'jojo', exact: 'Jojo' }]);
    expect(SearchParameterRegistry.official().get('Patient', 'nickname')).toBeUndefined();
  });
});

describe('extractIndexRows: Patient', () => {
  const rows = extractIndexRows(patient, undefined, { baseUrl: BASE });

  it('tokens: identifier', () => {
    expect(of(rows, 'token', 'identifier')).toEqual([
      { system: 'urn:oid:1.2.250.1.213.1.4.8', code: '1234567890123', text: 'national identifier' },
      { system: 'http://example.org/mrn', code: 'MRN-1', text: 'numero de dossier' },
      { system: null, code: 'no-system', text: null },
    ]);
  });

  it('tokens: gender, active, deceased, telecom, email, phone, language', () => {
    expect(of(rows, 'token', 'gender')).toEqual([{ system: null, code: 'male', text: null }]);
    expect(of(rows, 'token', 'active')).toEqual([{ system: null, code: 'true', text: null }]);
    expect(of(rows, 'token', 'deceased')).toEqual([{ system: null, code: 'false', text: null }]);
    expect(of(rows, 'token', 'telecom')).toEqual([
      { system: null, code: '+33 1 23 45 67 89', text: null },
      { system: null, code: 'jean@example.org', text: null },
    ]);
    expect(of(rows, 'token', 'email')).toEqual([{ system: null, code: 'jean@example.org', text: null }]);
    expect(of(rows, 'token', 'phone')).toEqual([{ system: null, code: '+33 1 23 45 67 89', text: null }]);
    // CodeableConcept: one row per coding + one text-only row for CodeableConcept.text
    expect(of(rows, 'token', 'language')).toEqual([
      { system: 'urn:ietf:bcp:47', code: 'fr', text: null },
      { system: null, code: null, text: 'francais' },
    ]);
  });

  it('tokens: Resource-level params', () => {
    // _id and _lastUpdated are answered from the resource table, not indexed
    expect(of(rows, 'token', '_id')).toEqual([]);
    expect(of(rows, 'token', '_tag')).toEqual([{ system: 'http://example.org/tags', code: 'test', text: 'test' }]);
    expect(of(rows, 'token', '_security')).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N', text: null },
    ]);
    expect(of(rows, 'uri', '_profile')).toEqual([{ value: 'http://example.org/StructureDefinition/my-patient' }]);
    expect(of(rows, 'uri', '_source')).toEqual([{ value: 'urn:source:1' }]);
    expect(of(rows, 'date', '_lastUpdated')).toEqual([]);
  });

  it('strings: name, family, given, address', () => {
    expect(of(rows, 'string', 'name')).toEqual([
      { value: 'dupont-eleonore', exact: 'Dupont-Éléonore' },
      { value: 'jean', exact: 'Jean' },
      { value: 'francois', exact: 'François' },
      { value: 'm.', exact: 'M.' },
      { value: 'jean dupont', exact: 'Jean  DUPONT' },
    ]);
    expect(of(rows, 'string', 'family')).toEqual([{ value: 'dupont-eleonore', exact: 'Dupont-Éléonore' }]);
    expect(of(rows, 'string', 'given').map((r) => r.exact)).toEqual(['Jean', 'François']);
    expect(of(rows, 'string', 'address').map((r) => r.exact)).toEqual([
      '1 rue de la Paix',
      'Bât. A',
      'Paris',
      '75002',
      'FR',
    ]);
    expect(of(rows, 'string', 'address-city')).toEqual([{ value: 'paris', exact: 'Paris' }]);
    expect(of(rows, 'string', 'address-postalcode')).toEqual([{ value: '75002', exact: '75002' }]);
  });

  it('dates: birthdate by precision; no death-date', () => {
    expect(of(rows, 'date', 'birthdate')).toEqual([
      { low: '1970-03-01T00:00:00.000Z', high: '1970-03-31T23:59:59.999Z' },
    ]);
    expect(of(rows, 'date', 'death-date')).toEqual([]);
  });

  it('references: relative and absolute to this server', () => {
    expect(of(rows, 'reference', 'general-practitioner')).toEqual([
      { targetType: 'Practitioner', targetId: 'dr1', targetVersion: null, url: null, identifierSystem: null, identifierValue: null },
    ]);
    expect(of(rows, 'reference', 'organization')).toEqual([
      { targetType: 'Organization', targetId: 'org1', targetVersion: null, url: null, identifierSystem: null, identifierValue: null },
    ]);
  });

  it('absolute URL of this server without baseUrl option is kept as url', () => {
    const r = extractIndexRows(patient);
    expect(of(r, 'reference', 'organization')).toEqual([
      { targetType: null, targetId: null, targetVersion: null, url: `${BASE}Organization/org1`, identifierSystem: null, identifierValue: null },
    ]);
  });

  it('death-date and deceased with deceasedDateTime', () => {
    const r = extractIndexRows({ resourceType: 'Patient', deceasedDateTime: '2021-06-01T12:00:00+02:00' });
    expect(of(r, 'date', 'death-date')).toEqual([
      { low: '2021-06-01T10:00:00.000Z', high: '2021-06-01T10:00:00.999Z' },
    ]);
    expect(of(r, 'token', 'deceased')).toEqual([{ system: null, code: 'true', text: null }]);
  });

  it('does not modify the resource', () => {
    const copy = JSON.parse(JSON.stringify(patient));
    extractIndexRows(copy, undefined, { baseUrl: BASE });
    expect(copy).toEqual(patient);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(patient));
  });
});

describe('extractIndexRows: DocumentReference', () => {
  const docRef = {
    resourceType: 'DocumentReference',
    id: 'd1',
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4.5' },
    identifier: [{ system: 'http://example.org/docs', value: 'DOC-42' }],
    status: 'current',
    docStatus: 'final',
    type: {
      coding: [{ system: 'http://loinc.org', code: '11488-4', display: 'Consult note' }],
      text: 'Compte rendu de consultation',
    },
    category: [{ coding: [{ system: 'http://example.org/cat', code: 'REPORTS' }] }],
    subject: { reference: 'Patient/p1' },
    date: '2024-01-15T09:30:00+01:00',
    author: [
      { reference: 'Practitioner/dr1/_history/3' },
      { reference: 'https://other.example.com/fhir/Organization/ext1' },
      { identifier: { system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810000000001' }, display: 'Dr X' },
      { reference: '#contained-author' },
    ],
    custodian: { reference: 'urn:uuid:8d3c1f3e-3f2d-4b7a-9c3b-1a2b3c4d5e6f' },
    relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/d0' } }],
    securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }],
    content: [
      {
        attachment: { contentType: 'application/pdf', language: 'fr-FR', url: 'Binary/b1', title: 'CR' },
        format: { system: 'urn:oid:1.3.6.1.4.1.19376.1.2.3', code: 'urn:ihe:iti:xds-sd:pdf:2008' },
      },
      { attachment: { contentType: 'application/pdf', url: 'Binary/b2' } },
    ],
    context: {
      encounter: [{ reference: 'Encounter/e1' }],
      period: { start: '2024-01-10', end: '2024-01-12T18:00:00Z' },
      facilityType: { coding: [{ system: 'http://example.org/facility', code: 'HOSP' }] },
      practiceSetting: { coding: [{ system: 'http://example.org/setting', code: 'CARDIO', display: 'Cardiologie' }] },
      related: [{ reference: 'ServiceRequest/sr1' }],
    },
  };
  const rows = extractIndexRows(docRef, undefined, { baseUrl: 'http://localhost:8080/fhir' });
  const ref = (o: Partial<Record<string, string | null>>) => ({
    targetType: null, targetId: null, targetVersion: null, url: null, identifierSystem: null, identifierValue: null, ...o,
  });

  it('identifier includes masterIdentifier', () => {
    expect(of(rows, 'token', 'identifier')).toEqual([
      { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.3.4.5', text: null },
      { system: 'http://example.org/docs', code: 'DOC-42', text: null },
    ]);
  });

  it('type, category, contenttype (deduped), status, setting, security-label, format', () => {
    expect(of(rows, 'token', 'type')).toEqual([
      { system: 'http://loinc.org', code: '11488-4', text: 'consult note' },
      { system: null, code: null, text: 'compte rendu de consultation' },
    ]);
    expect(of(rows, 'token', 'category')).toEqual([{ system: 'http://example.org/cat', code: 'REPORTS', text: null }]);
    expect(of(rows, 'token', 'contenttype')).toEqual([{ system: null, code: 'application/pdf', text: null }]);
    expect(of(rows, 'token', 'status')).toEqual([{ system: null, code: 'current', text: null }]);
    expect(of(rows, 'token', 'setting')).toEqual([{ system: 'http://example.org/setting', code: 'CARDIO', text: 'cardiologie' }]);
    expect(of(rows, 'token', 'security-label')).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R', text: null },
    ]);
    expect(of(rows, 'token', 'format')).toEqual([
      { system: 'urn:oid:1.3.6.1.4.1.19376.1.2.3', code: 'urn:ihe:iti:xds-sd:pdf:2008', text: null },
    ]);
    expect(of(rows, 'token', 'language')).toEqual([{ system: null, code: 'fr-FR', text: null }]);
    expect(of(rows, 'uri', 'location')).toEqual([{ value: 'Binary/b1' }, { value: 'Binary/b2' }]);
  });

  it('subject and patient (resolve() is Patient)', () => {
    expect(of(rows, 'reference', 'subject')).toEqual([ref({ targetType: 'Patient', targetId: 'p1' })]);
    expect(of(rows, 'reference', 'patient')).toEqual([ref({ targetType: 'Patient', targetId: 'p1' })]);
    const groupDoc = { ...docRef, subject: { reference: 'Group/g1' } };
    const r2 = extractIndexRows(groupDoc);
    expect(of(r2, 'reference', 'patient')).toEqual([]);
    expect(of(r2, 'reference', 'subject')).toEqual([ref({ targetType: 'Group', targetId: 'g1' })]);
  });

  it('author: versioned, external, identifier-only, contained skipped', () => {
    expect(of(rows, 'reference', 'author')).toEqual([
      ref({ targetType: 'Practitioner', targetId: 'dr1', targetVersion: '3' }),
      ref({ url: 'https://other.example.com/fhir/Organization/ext1' }),
      ref({ identifierSystem: 'urn:oid:1.2.250.1.71.4.2.1', identifierValue: '810000000001' }),
    ]);
    expect(of(rows, 'reference', 'custodian')).toEqual([ref({ url: 'urn:uuid:8d3c1f3e-3f2d-4b7a-9c3b-1a2b3c4d5e6f' })]);
  });

  it('relatesto, encounter, related', () => {
    expect(of(rows, 'reference', 'relatesto')).toEqual([ref({ targetType: 'DocumentReference', targetId: 'd0' })]);
    expect(of(rows, 'token', 'relation')).toEqual([{ system: null, code: 'replaces', text: null }]);
    expect(of(rows, 'reference', 'encounter')).toEqual([ref({ targetType: 'Encounter', targetId: 'e1' })]);
    expect(of(rows, 'reference', 'related')).toEqual([ref({ targetType: 'ServiceRequest', targetId: 'sr1' })]);
  });

  it('date and period (context.period)', () => {
    expect(of(rows, 'date', 'date')).toEqual([{ low: '2024-01-15T08:30:00.000Z', high: '2024-01-15T08:30:00.999Z' }]);
    expect(of(rows, 'date', 'period')).toEqual([{ low: '2024-01-10T00:00:00.000Z', high: '2024-01-12T18:00:00.999Z' }]);
    const open = extractIndexRows({ resourceType: 'DocumentReference', context: { period: { start: '2024' } } });
    expect(of(open, 'date', 'period')).toEqual([{ low: '2024-01-01T00:00:00.000Z', high: null }]);
  });

  it('micro-measure (informative, not asserted)', () => {
    const patientRows = extractIndexRows(patient); // warm
    expect(patientRows.token.length).toBeGreaterThan(0);
    const measure = (res: any) => {
      for (let i = 0; i < 300; i++) extractIndexRows(res, undefined, { baseUrl: BASE });
      const n = 2000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) extractIndexRows(res, undefined, { baseUrl: BASE });
      return Number(process.hrtime.bigint() - t0) / n / 1000;
    };
    const us = { patient: measure(patient), documentReference: measure(docRef) };
    if (process.env.SEARCH_BENCH) console.log(`extractIndexRows µs/resource: ${JSON.stringify(us)}`);
  });
});

describe('extractIndexRows: Observation', () => {
  const obs = {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
    subject: { reference: 'Patient/p1' },
    effectivePeriod: { start: '2024-02-01T08:00:00Z', end: '2024-02-01T09:00:00Z' },
    valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    component: [
      { code: { text: 'a' }, valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
      { code: { text: 'b' }, valueString: 'not a quantity' },
    ],
  };
  const rows = extractIndexRows(obs);

  it('value-quantity and component-value-quantity', () => {
    expect(of(rows, 'quantity', 'value-quantity')).toEqual([
      { value: '72.5', system: 'http://unitsofmeasure.org', code: 'kg', unit: 'kg' },
    ]);
    expect(of(rows, 'quantity', 'component-value-quantity')).toEqual([
      { value: '120', system: 'http://unitsofmeasure.org', code: 'mm[Hg]', unit: 'mmHg' },
    ]);
    expect(of(rows, 'quantity', 'combo-value-quantity')).toHaveLength(2);
  });

  it('effective Period as date', () => {
    expect(of(rows, 'date', 'date')).toEqual([{ low: '2024-02-01T08:00:00.000Z', high: '2024-02-01T09:00:00.999Z' }]);
  });

  it('effective dateTime and value-string / value-concept choices', () => {
    const r = extractIndexRows({
      resourceType: 'Observation',
      effectiveDateTime: '2024-02-01',
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '260385009' }], text: 'Négatif' },
    });
    expect(of(r, 'date', 'date')).toEqual([{ low: '2024-02-01T00:00:00.000Z', high: '2024-02-01T23:59:59.999Z' }]);
    expect(of(r, 'token', 'value-concept')).toEqual([
      { system: 'http://snomed.info/sct', code: '260385009', text: null },
      { system: null, code: null, text: 'negatif' },
    ]);
    expect(of(r, 'string', 'value-string')).toEqual([{ value: 'negatif', exact: 'Négatif' }]);
    expect(of(r, 'quantity', 'value-quantity')).toEqual([]);
  });

  it('patient only for Patient subjects', () => {
    expect(of(rows, 'reference', 'patient')).toHaveLength(1);
    expect(of(extractIndexRows({ ...obs, subject: { reference: 'Device/x' } }), 'reference', 'patient')).toEqual([]);
  });
});

describe('extractIndexRows: resolve() is T forms', () => {
  it('AuditEvent patient from agent.who and entity.what', () => {
    const rows = extractIndexRows(
      {
        resourceType: 'AuditEvent',
        recorded: '2024-03-01T12:00:00Z',
        agent: [
          { who: { reference: 'Practitioner/dr1' }, requestor: true },
          { who: { reference: `${BASE}Patient/p2` }, requestor: false },
        ],
        entity: [{ what: { reference: 'Patient/p3/_history/2' } }, { what: { reference: 'DocumentReference/d1' } }],
      },
      undefined,
      { baseUrl: BASE },
    );
    expect(of(rows, 'reference', 'patient').map((r) => [r.targetType, r.targetId, r.targetVersion])).toEqual([
      ['Patient', 'p2', null],
      ['Patient', 'p3', '2'],
    ]);
    expect(of(rows, 'reference', 'agent')).toHaveLength(2);
    expect(of(rows, 'reference', 'entity')).toHaveLength(2);
  });

  it('Communication patient (subject.where(resolve() is Patient)), Reference.type counts', () => {
    const rows = extractIndexRows({
      resourceType: 'Communication',
      subject: { type: 'Patient', identifier: { system: 'urn:oid:1.2.250.1.213.1.4.8', value: '123' } },
      sent: '2024-03-01',
    });
    expect(of(rows, 'reference', 'patient')).toEqual([
      { targetType: null, targetId: null, targetVersion: null, url: null, identifierSystem: 'urn:oid:1.2.250.1.213.1.4.8', identifierValue: '123' },
    ]);
    expect(of(rows, 'date', 'sent')).toEqual([{ low: '2024-03-01T00:00:00.000Z', high: '2024-03-01T23:59:59.999Z' }]);
  });
});

describe('extractIndexRows: other datatypes', () => {
  it('Condition onset choices (as(Age), as(Range), as(dateTime), as(Period))', () => {
    const age = extractIndexRows({ resourceType: 'Condition', onsetAge: { value: 40, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' } });
    expect(of(age, 'quantity', 'onset-age')).toEqual([{ value: '40', system: 'http://unitsofmeasure.org', code: 'a', unit: 'a' }]);
    expect(of(age, 'date', 'onset-date')).toEqual([]);
    const range = extractIndexRows({ resourceType: 'Condition', onsetRange: { low: { value: 10 }, high: { value: 20 } } });
    expect(of(range, 'quantity', 'onset-age').map((q) => q.value)).toEqual(['10', '20']);
    const period = extractIndexRows({ resourceType: 'Condition', onsetPeriod: { end: '2020' } });
    expect(of(period, 'date', 'onset-date')).toEqual([{ low: null, high: '2020-12-31T23:59:59.999Z' }]);
  });

  it('Money, number, canonical references, uri, Timing', () => {
    const inv = extractIndexRows({ resourceType: 'Invoice', totalNet: { value: 12.3, currency: 'EUR' } });
    expect(of(inv, 'quantity', 'totalnet')).toEqual([{ value: '12.3', system: 'urn:iso:std:iso:4217', code: 'EUR', unit: null }]);

    const ra = extractIndexRows({ resourceType: 'RiskAssessment', prediction: [{ probabilityDecimal: 0.25 }] });
    expect(of(ra, 'number', 'probability')).toEqual([{ value: '0.25' }]);

    const pd = extractIndexRows({
      resourceType: 'PlanDefinition',
      url: 'http://example.org/PlanDefinition/pd',
      relatedArtifact: [
        { type: 'depends-on', resource: 'http://example.org/Library/lib|1.0' },
        { type: 'composed-of', resource: 'ActivityDefinition/ad1' },
      ],
    });
    expect(of(pd, 'uri', 'url')).toEqual([{ value: 'http://example.org/PlanDefinition/pd' }]);
    expect(of(pd, 'reference', 'depends-on').map((r) => r.url)).toEqual(['http://example.org/Library/lib|1.0']);
    expect(of(pd, 'reference', 'composed-of').map((r) => [r.targetType, r.targetId])).toEqual([['ActivityDefinition', 'ad1']]);

    const cp = extractIndexRows({
      resourceType: 'CarePlan',
      activity: [{ detail: { scheduledTiming: { event: ['2024-01-01', '2024-01-02'], repeat: { boundsPeriod: { start: '2024-01-01' } } } } }],
    });
    expect(of(cp, 'date', 'activity-date')).toEqual([
      { low: '2024-01-01T00:00:00.000Z', high: '2024-01-01T23:59:59.999Z' },
      { low: '2024-01-02T00:00:00.000Z', high: '2024-01-02T23:59:59.999Z' },
      { low: '2024-01-01T00:00:00.000Z', high: null },
    ]);
  });

  it('never throws on odd data', () => {
    const odd = {
      resourceType: 'Patient',
      id: 42,
      birthDate: 'not-a-date',
      name: [null, 'x', { given: [null, 7, 'Ok'], family: { weird: true } }],
      identifier: 'oops',
      telecom: [{ system: 'email' }],
      managingOrganization: { reference: 'not a reference' },
      generalPractitioner: [{ reference: '#c1' }, 5, null],
      address: [{ period: { start: 'bad' } }],
      meta: { lastUpdated: 12 },
    };
    const rows = extractIndexRows(odd);
    expect(of(rows, 'date', 'birthdate')).toEqual([]);
    expect(of(rows, 'string', 'given')).toEqual([{ value: 'ok', exact: 'Ok' }]);
    expect(of(rows, 'reference', 'organization')).toEqual([]);
    expect(of(rows, 'reference', 'general-practitioner')).toEqual([]);
    expect(extractIndexRows(null)).toEqual(extractIndexRows({}));
    expect(extractIndexRows({ resourceType: 'NotAType', id: 'x', meta: { tag: [{ code: 't' }] } }).token).toEqual([{ param: '_tag', system: null, code: 't', text: null }]);
  });
});
