import fs from 'node:fs';
import path from 'node:path';
import { http, startTarget, Target } from '../harness';
import { as, requests } from '../accessFixtures';
import { resourceToXml } from '../../src/xml/convert';

/** Validation over HTTP: writes refused with every issue, $validate in every form, conformance resources, terminology. */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const FIXTURES = path.resolve(__dirname, '../../fixtures/profiles');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
  valid: { file: string; profile: string }[];
  invalid: { file: string; profile: string; errors: { expression: string; kind: string; key?: string }[] }[];
};
const fixture = (file: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));
const errors = (oo: any) => (oo.issue ?? []).filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
const count = async (type: string) => (await http(t.base, `${type}?_summary=count`)).body.total as number;

describe('every write is validated', () => {
  it('refuses a resource that is not well-formed FHIR with 400 listing every issue with its expression, and writes nothing', async () => {
    const before = await count('Patient');
    const res = await http(t.base, 'Patient', {
      method: 'POST',
      json: { resourceType: 'Patient', gender: 'sometimes', birthDate: '1990-13-45', shoeSize: 42, name: [{ family: 'Durand' }] },
    });
    // an unknown property and a malformed date: "could not be parsed or failed basic FHIR validation rules" (http.html#create)
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const issues = errors(res.body);
    expect(issues.length).toBeGreaterThanOrEqual(3);
    const where = issues.flatMap((i: any) => i.expression ?? []);
    expect(where).toEqual(expect.arrayContaining(['Patient.gender', 'Patient.birthDate']));
    expect(issues.every((i: any) => i.code && i.diagnostics)).toBe(true);
    expect(await count('Patient')).toBe(before);
  });

  it.each([
    ['an unknown property', { resourceType: 'Patient', shoeSize: 42 }],
    ['a boolean sent as a string', { resourceType: 'Patient', active: 'yes' }],
    ['an object where the element repeats', { resourceType: 'Patient', name: { family: 'Durand' } }],
    ['a null value', { resourceType: 'Patient', gender: null }],
    ['an empty string', { resourceType: 'Patient', name: [{ family: '' }] }],
    ['a primitive extension that is not an object', { resourceType: 'Patient', gender: 'male', _gender: 'x' }],
  ])('refuses %s with 400', async (_what, resource) => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: resource });
    expect(res.status).toBe(400);
    expect(errors(res.body).length).toBeGreaterThan(0);
  });

  it('refuses a well-formed resource that breaks a rule of the specification with 422', async () => {
    const before = await count('Observation');
    // a code outside a required binding, and Observation.code (1..1) missing
    const res = await http(t.base, 'Observation', { method: 'POST', json: { resourceType: 'Observation', status: 'done' } });
    expect(res.status).toBe(422);
    const where = errors(res.body).flatMap((i: any) => i.expression ?? []);
    expect(where).toEqual(expect.arrayContaining(['Observation.status']));
    expect(await count('Observation')).toBe(before);
  });

  it('ignores a client id on create, even one that would not be a valid id', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', id: 'not a valid id!' } });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(res.body.id).not.toBe('not a valid id!');
  });

  it('refuses an invalid update and patch, and lenient handling does not bypass it', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', gender: 'female' } });
    const update = await http(t.base, `Patient/${created.body.id}`, {
      method: 'PUT',
      headers: { prefer: 'handling=lenient' },
      json: { resourceType: 'Patient', id: created.body.id, gender: 'f' },
    });
    expect(update.status).toBe(422);
    const patch = await http(t.base, `Patient/${created.body.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'add', path: '/birthDate', value: 'yesterday' }]),
    });
    expect(patch.status).toBe(422);
    const patchedCode = await http(t.base, `Patient/${created.body.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'f' }]),
    });
    expect(patchedCode.status).toBe(422);
    expect((await http(t.base, `Patient/${created.body.id}`)).body.meta.versionId).toBe('1');
  });

  it('fails a whole transaction when one entry is invalid', async () => {
    const before = await count('Patient');
    const res = await http(t.base, '', {
      method: 'POST',
      json: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:a', resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
          { fullUrl: 'urn:uuid:b', resource: { resourceType: 'Observation', subject: { reference: 'urn:uuid:a' } }, request: { method: 'POST', url: 'Observation' } },
        ],
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.issue.some((i: any) => /entry\[1\]/.test(i.diagnostics))).toBe(true);
    expect(await count('Patient')).toBe(before);
  });

  it('applies a profile claimed in meta.profile, and the INS key check', async () => {
    const bad = expected.invalid.find((f) => f.file.endsWith('patient-ins-bad-nir-key.json'))!;
    const res = await http(t.base, 'Patient', { method: 'POST', json: fixture(bad.file) });
    expect(res.status).toBe(422);
    expect(errors(res.body).flatMap((i: any) => i.expression)).toContain('Patient.identifier[0].value');
    const good = await http(t.base, 'Patient', { method: 'POST', json: fixture('valid/patient-ins.json') });
    expect(good.status).toBe(201);
  });
});

describe('$validate', () => {
  const invalid = { resourceType: 'Patient', gender: 'sometimes' };
  const valid = { resourceType: 'Patient', gender: 'female', name: [{ family: 'Petit' }] };

  it.each(['$validate', 'Patient/$validate'])('POST %s with a raw resource answers 200 with the verdict in the issues', async (url) => {
    const bad = await http(t.base, url, { method: 'POST', json: invalid });
    expect(bad.status).toBe(200);
    expect(errors(bad.body).length).toBeGreaterThan(0);
    const ok = await http(t.base, url, { method: 'POST', json: valid });
    expect(ok.status).toBe(200);
    expect(errors(ok.body)).toEqual([]);
  });

  it('takes a Parameters with resource, mode and profile, and checks mode=update ids at instance level', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: valid });
    const res = await http(t.base, `Patient/${created.body.id}/$validate`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...valid, id: 'other' } }, { name: 'mode', valueCode: 'update' }] },
    });
    expect(res.status).toBe(200);
    expect(errors(res.body).some((i: any) => /differs/.test(i.diagnostics))).toBe(true);
  });

  it('checks mode=delete against the stored resource: 404 when there is none', async () => {
    const res = await http(t.base, 'Patient/never-there/$validate', { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] } });
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const created = await http(t.base, 'Patient', { method: 'POST', json: valid });
    const ok = await http(t.base, `Patient/${created.body.id}/$validate?mode=delete`);
    expect(ok.status).toBe(200);
    expect(errors(ok.body)).toEqual([]);
  });

  it('validates the stored resource when an instance is named without a resource', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: valid });
    const res = await http(t.base, `Patient/${created.body.id}/$validate`);
    expect(res.status).toBe(200);
    expect(errors(res.body)).toEqual([]);
    const profiled = await http(t.base, `Patient/${created.body.id}/$validate?profile=${encodeURIComponent('https://fhir.dmp.esante.example/StructureDefinition/dmp-patient-ins')}`);
    expect(profiled.status).toBe(200);
    expect(errors(profiled.body).length).toBeGreaterThan(0); // no INS
    expect((await http(t.base, 'Patient/never-there/$validate')).status).toBe(404);
  });

  it('answers 400 when a requested profile is unknown: the validation cannot be done, never "all OK"', async () => {
    const res = await http(t.base, 'Patient/$validate?profile=http://example.org/StructureDefinition/nope', { method: 'POST', json: valid });
    expect(res.status).toBe(400);
    expect(errors(res.body).length).toBeGreaterThan(0);
    // also when the resource claims the same unknown profile in meta.profile
    const claimed = await http(t.base, 'Patient/$validate?profile=http://example.org/StructureDefinition/nope', {
      method: 'POST',
      json: { ...valid, meta: { profile: ['http://example.org/StructureDefinition/nope'] } },
    });
    expect(claimed.status).toBe(400);
  });

  it('judges an unknown extension as the reference validator does (error), while a write and mode=create keep it with a warning', async () => {
    const withExt = { ...valid, extension: [{ url: 'http://example.org/fhir/StructureDefinition/shoe-size', valueInteger: 42 }] };
    const where = (oo: any, severity: string) => (oo.issue ?? []).filter((i: any) => i.severity === severity && i.expression?.[0] === 'Patient.extension[0]');
    const conformance = await http(t.base, 'Patient/$validate', { method: 'POST', json: withExt });
    expect(where(conformance.body, 'error').map((i: any) => i.diagnostics)).toEqual(['The extension http://example.org/fhir/StructureDefinition/shoe-size is unknown, and not allowed here']);
    const acceptance = await http(t.base, 'Patient/$validate?mode=create', { method: 'POST', json: withExt });
    expect(errors(acceptance.body)).toEqual([]);
    expect(where(acceptance.body, 'warning')).toHaveLength(1);
    const created = await http(t.base, 'Patient', { method: 'POST', json: withExt });
    expect(created.status).toBe(201);
    // a known extension stays valid in every mode
    const known = { ...valid, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: 'Lyon' } }] };
    expect(errors((await http(t.base, 'Patient/$validate', { method: 'POST', json: known })).body)).toEqual([]);
  });

  it('reports a resource of another type than the URL', async () => {
    const res = await http(t.base, 'Observation/$validate', { method: 'POST', json: valid });
    expect(errors(res.body).some((i: any) => /Observation/.test(i.diagnostics))).toBe(true);
  });

  it.each(expected.valid.map((v) => [v.file, v.profile]))('accepts the valid fixture %s against %s', async (file, profile) => {
    const res = await http(t.base, `$validate?profile=${encodeURIComponent(profile)}`, { method: 'POST', json: fixture(file) });
    expect(res.status).toBe(200);
    expect(errors(res.body)).toEqual([]);
  });

  it.each(expected.invalid.map((v) => [v.file, v]))('rejects the invalid fixture %s', async (file, spec) => {
    const res = await http(t.base, `$validate?profile=${encodeURIComponent(spec.profile)}`, { method: 'POST', json: fixture(file) });
    expect(res.status).toBe(200);
    expect(errors(res.body).length).toBeGreaterThan(0);
  });
});

describe('$validate of every R4 resource type, stored here or not', () => {
  const { create, mint } = requests(() => t);
  const carePlan = { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: { reference: 'Patient/p' } };
  const unstored: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ['CarePlan', carePlan, { ...carePlan, intent: 'wish' }],
    ['MedicationStatement', { resourceType: 'MedicationStatement', status: 'active', medicationCodeableConcept: { text: 'paracetamol' }, subject: { reference: 'Patient/p' } }, { resourceType: 'MedicationStatement', status: 'active', subject: { reference: 'Patient/p' } }],
    ['SearchParameter', { resourceType: 'SearchParameter', url: 'http://example.org/sp', name: 'Colour', status: 'active', description: 'd', code: 'colour', base: ['Patient'], type: 'token', expression: 'Patient.gender' }, { resourceType: 'SearchParameter', url: 'http://example.org/sp', name: 'Colour', status: 'active', description: 'd', code: 'colour', base: ['Patient'], type: 'colour' }],
    ['DocumentManifest', { resourceType: 'DocumentManifest', status: 'current', content: [{ reference: 'Binary/b' }] }, { resourceType: 'DocumentManifest', status: 'current' }],
    ['Parameters', { resourceType: 'Parameters', parameter: [{ name: 'exact', valueBoolean: true }] }, { resourceType: 'Parameters', parameter: [{ name: 'exact', valueBoolean: 'yes' }] }],
  ];

  it.each(unstored)('validates a %s at type and system level, raw or in a Parameters, with the verdict in the issues', async (type, good, bad) => {
    for (const url of [`${type}/$validate`, '$validate']) {
      const ok = await http(t.base, url, { method: 'POST', json: good });
      expect([url, ok.status, errors(ok.body)]).toEqual([url, 200, []]);
      const ko = await http(t.base, url, { method: 'POST', json: bad });
      expect(ko.status).toBe(200);
      expect(ko.body.resourceType).toBe('OperationOutcome');
      expect(errors(ko.body).length).toBeGreaterThan(0);
      const wrapped = await http(t.base, url, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: bad }, { name: 'mode', valueCode: 'create' }] } });
      expect(wrapped.status).toBe(200);
      expect(errors(wrapped.body).length).toBeGreaterThan(0);
    }
  });

  it('takes mode=profile and a profile on a type it does not store; an unknown profile is still a 400', async () => {
    const profile = 'http://hl7.org/fhir/StructureDefinition/CarePlan';
    const res = await http(t.base, `CarePlan/$validate?mode=profile&profile=${encodeURIComponent(profile)}`, { method: 'POST', json: carePlan });
    expect([res.status, errors(res.body)]).toEqual([200, []]);
    const unknown = await http(t.base, 'CarePlan/$validate?profile=http://example.org/StructureDefinition/nope', { method: 'POST', json: carePlan });
    expect(unknown.status).toBe(400);
    const badMode = await http(t.base, 'CarePlan/$validate?mode=sometimes', { method: 'POST', json: carePlan });
    expect(badMode.status).toBe(400);
  });

  it('answers 404 for an instance of a type it does not store, and for a type R4 does not define', async () => {
    expect((await http(t.base, 'CarePlan/some-id/$validate', { method: 'POST', json: carePlan })).status).toBe(404);
    expect((await http(t.base, 'Spaceship/$validate', { method: 'POST', json: { resourceType: 'Spaceship' } })).status).toBe(404);
  });

  it('needs a valid token but no resource scope nor record access; a stored instance keeps the rules of a read', async () => {
    expect((await http(t.base, 'CarePlan/$validate', { method: 'POST', json: carePlan, headers: { authorization: '' } })).status).toBe(401);
    const patient = await create({ resourceType: 'Patient', name: [{ family: 'Validation' }] });
    const other = await create({ resourceType: 'Patient', name: [{ family: 'Ailleurs' }] });
    const narrow = await mint(`Patient/${patient.id}`, 'patient/Patient.r');
    for (const url of ['CarePlan/$validate', '$validate', 'Observation/$validate']) {
      const res = await http(t.base, url, { method: 'POST', json: url === 'Observation/$validate' ? { resourceType: 'Observation', status: 'final', code: { text: 'x' } } : carePlan, headers: as(narrow) });
      expect([url, res.status, errors(res.body)]).toEqual([url, 200, []]);
    }
    // a stored resource is read with the caller's access: another record is hidden, another type needs its scope
    expect((await http(t.base, `Patient/${patient.id}/$validate`, { headers: as(narrow) })).status).toBe(200);
    expect((await http(t.base, `Patient/${other.id}/$validate`, { headers: as(narrow) })).status).toBe(404);
    expect((await http(t.base, 'Observation/some-id/$validate', { headers: as(narrow) })).status).toBe(403);
  });

  it('states in the CapabilityStatement that $validate works at system level and for every R4 type', async () => {
    const cs = (await http(t.base, 'metadata')).body;
    const system = cs.rest[0].operation.find((o: any) => o.name === 'validate');
    expect(system.definition).toBe('http://hl7.org/fhir/OperationDefinition/Resource-validate');
    expect(system.documentation).toMatch(/every R4 resource type/);
  });
});

describe('conformance resources', () => {
  it('serves our profiles, value sets and code systems, searchable by url', async () => {
    const url = 'https://fhir.dmp.esante.example/StructureDefinition/dmp-patient-ins';
    const sd = await http(t.base, `StructureDefinition?url=${encodeURIComponent(url)}`);
    expect(sd.body.total).toBe(1);
    expect(sd.body.entry[0].resource.url).toBe(url);
    expect((await http(t.base, 'ValueSet?_summary=count')).body.total).toBeGreaterThan(5);
    expect((await http(t.base, 'CodeSystem?_summary=count')).body.total).toBeGreaterThan(5);
    const cs = await http(t.base, 'metadata');
    const patient = cs.body.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patient.supportedProfile).toContain(url);
  });

  it('uses a differential-only StructureDefinition loaded by a tester, through $validate and meta.profile', async () => {
    const url = 'http://example.org/fhir/StructureDefinition/patient-with-birthdate';
    const profile = {
      resourceType: 'StructureDefinition',
      id: 'patient-with-birthdate',
      url,
      name: 'PatientWithBirthDate',
      status: 'active',
      fhirVersion: '4.0.1',
      kind: 'resource',
      abstract: false,
      type: 'Patient',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
      derivation: 'constraint',
      differential: { element: [{ id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 }] },
    };
    const before = await http(t.base, `Patient/$validate?profile=${encodeURIComponent(url)}`, { method: 'POST', json: { resourceType: 'Patient' } });
    expect(errors(before.body).length).toBeGreaterThan(0); // unknown profile
    const put = await http(t.base, 'StructureDefinition/patient-with-birthdate', { method: 'PUT', json: profile });
    expect(put.status).toBe(201);
    const missing = await http(t.base, `Patient/$validate?profile=${encodeURIComponent(url)}`, { method: 'POST', json: { resourceType: 'Patient' } });
    expect(errors(missing.body).map((i: any) => i.diagnostics).join(' ')).toMatch(/birthDate/);
    const present = await http(t.base, `Patient/$validate?profile=${encodeURIComponent(url)}`, { method: 'POST', json: { resourceType: 'Patient', birthDate: '2000-01-01' } });
    expect(errors(present.body)).toEqual([]);
    const claimed = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', meta: { profile: [url] } } });
    expect(claimed.status).toBe(422);
    // once deleted, the profile is unknown again
    await http(t.base, 'StructureDefinition/patient-with-birthdate', { method: 'DELETE' });
    const after = await http(t.base, `Patient/$validate?profile=${encodeURIComponent(url)}`, { method: 'POST', json: { resourceType: 'Patient', birthDate: '2000-01-01' } });
    expect(errors(after.body).length).toBeGreaterThan(0);
  });

  it('refuses a second conformance resource with the same canonical url and version, and updates the first', async () => {
    const url = `http://example.org/fhir/ValueSet/twice-${Date.now()}`;
    const valueSet = { resourceType: 'ValueSet', url, version: '1', status: 'active', compose: { include: [{ system: 'http://example.org/cs', concept: [{ code: 'a' }] }] } };
    const first = await http(t.base, 'ValueSet', { method: 'POST', json: valueSet });
    expect(first.status).toBe(201);
    const second = await http(t.base, 'ValueSet', { method: 'POST', json: valueSet });
    expect(second.status).toBe(422);
    expect(second.body.issue[0].code).toBe('duplicate');
    expect((await http(t.base, `ValueSet?url=${encodeURIComponent(url)}&_summary=count`)).body.total).toBe(1);
    // another version of the same url is another resource; the first one can be updated
    expect((await http(t.base, 'ValueSet', { method: 'POST', json: { ...valueSet, version: '2' } })).status).toBe(201);
    expect((await http(t.base, `ValueSet/${first.body.id}`, { method: 'PUT', json: { ...valueSet, id: first.body.id, status: 'retired' } })).status).toBe(200);
  });

  it('lets exactly one of concurrent creates of the same canonical through, even with a comma in the url', async () => {
    const url = `http://example.org/fhir/ValueSet/a,b-${Date.now()}`;
    const valueSet = { resourceType: 'ValueSet', url, status: 'active', compose: { include: [{ system: 'http://example.org/cs', concept: [{ code: 'a' }] }] } };
    const results = await Promise.all(Array.from({ length: 5 }, () => http(t.base, 'ValueSet', { method: 'POST', json: valueSet })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 422, 422, 422, 422]);
  });

  it('refuses a StructureDefinition whose base is unknown', async () => {
    const res = await http(t.base, 'StructureDefinition', {
      method: 'POST',
      json: {
        resourceType: 'StructureDefinition',
        url: 'http://example.org/fhir/StructureDefinition/orphan',
        name: 'Orphan',
        status: 'draft',
        kind: 'resource',
        abstract: false,
        type: 'Patient',
        baseDefinition: 'http://example.org/fhir/StructureDefinition/does-not-exist',
        derivation: 'constraint',
        differential: { element: [{ id: 'Patient', path: 'Patient' }] },
      },
    });
    expect(res.status).toBe(422);
  });
});

describe('terminology', () => {
  const professions = 'https://fhir.dmp.esante.example/ValueSet/dmp-vs-profession-sante';
  const g15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';

  it('expands our value sets, with filter and paging', async () => {
    const all = await http(t.base, `ValueSet/$expand?url=${encodeURIComponent(professions)}`);
    expect(all.status).toBe(200);
    expect(all.body.expansion.contains.some((c: any) => c.code === '10')).toBe(true);
    const page = await http(t.base, `ValueSet/$expand?url=${encodeURIComponent(professions)}&count=2&offset=1`);
    expect(page.body.expansion.contains).toHaveLength(2);
    expect(page.body.expansion.total).toBe(all.body.expansion.total);
    const byId = await http(t.base, 'ValueSet/dmp-vs-profession-sante/$expand');
    expect(byId.body.expansion.total).toBe(all.body.expansion.total);
    expect((await http(t.base, `ValueSet/$expand?url=${encodeURIComponent('http://example.org/vs/unknown')}`)).status).toBe(422);
  });

  it('validates codes against value sets and code systems', async () => {
    const yes = await http(t.base, `ValueSet/$validate-code?url=${encodeURIComponent(professions)}&system=${encodeURIComponent(g15)}&code=10`);
    expect(yes.body.parameter.find((p: any) => p.name === 'result').valueBoolean).toBe(true);
    const no = await http(t.base, `ValueSet/$validate-code?url=${encodeURIComponent(professions)}&system=${encodeURIComponent(g15)}&code=nope`);
    expect(no.body.parameter.find((p: any) => p.name === 'result').valueBoolean).toBe(false);
    const cs = await http(t.base, 'CodeSystem/$validate-code', {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: g15 }, { name: 'code', valueCode: '10' }] },
    });
    expect(cs.body.parameter.find((p: any) => p.name === 'result').valueBoolean).toBe(true);
  });

  it('accepts a CodeableConcept when any of its codings is in the value set', async () => {
    const validate = (coding: unknown[]) =>
      http(t.base, 'ValueSet/$validate-code', {
        method: 'POST',
        json: { resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: professions }, { name: 'codeableConcept', valueCodeableConcept: { coding } }] },
      });
    const result = (res: any) => res.body.parameter.find((p: any) => p.name === 'result').valueBoolean;
    expect(result(await validate([{ system: 'http://loinc.org', code: '1-8' }, { system: g15, code: '10' }]))).toBe(true);
    expect(result(await validate([{ system: 'http://loinc.org', code: '1-8' }, { system: g15, code: 'nope' }]))).toBe(false);
  });

  it('answers token :in against a value set', async () => {
    // a PractitionerRole names its practitioner (our profile applies by default)
    const practitioner = await http(t.base, 'Practitioner', { method: 'POST', json: { resourceType: 'Practitioner', name: [{ family: 'Rôle' }] } });
    const role = await http(t.base, 'PractitionerRole', { method: 'POST', json: { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.body.id}` }, code: [{ coding: [{ system: g15, code: '10' }] }] } });
    expect(role.status).toBe(201);
    const found = await http(t.base, `PractitionerRole?role:in=${encodeURIComponent(professions)}`);
    expect(found.body.entry.map((e: any) => e.resource.id)).toContain(role.body.id);
  });
});

describe('QuestionnaireResponse against its Questionnaire', () => {
  it('checks answers against a Questionnaire loaded through the API', async () => {
    const url = 'http://example.org/fhir/Questionnaire/consent-form';
    const questionnaire = {
      resourceType: 'Questionnaire',
      id: 'consent-form',
      url,
      status: 'active',
      item: [
        { linkId: 'agree', text: 'Do you agree?', type: 'boolean', required: true },
        { linkId: 'age', text: 'Age', type: 'integer' },
      ],
    };
    expect((await http(t.base, 'Questionnaire/consent-form', { method: 'PUT', json: questionnaire })).status).toBe(201);
    const ok = await http(t.base, 'QuestionnaireResponse', {
      method: 'POST',
      json: { resourceType: 'QuestionnaireResponse', questionnaire: url, status: 'completed', item: [{ linkId: 'agree', answer: [{ valueBoolean: true }] }] },
    });
    expect(ok.status).toBe(201);
    const bad = await http(t.base, 'QuestionnaireResponse', {
      method: 'POST',
      json: {
        resourceType: 'QuestionnaireResponse',
        questionnaire: url,
        status: 'completed',
        item: [{ linkId: 'age', answer: [{ valueString: 'forty' }] }, { linkId: 'unknown', answer: [{ valueBoolean: true }] }],
      },
    });
    expect(bad.status).toBe(422);
    const messages = errors(bad.body).map((i: any) => `${i.expression?.[0]}: ${i.diagnostics}`).join('\n');
    expect(messages).toMatch(/agree/); // required item missing
    expect(messages).toMatch(/unknown/);
    expect(messages).toMatch(/QuestionnaireResponse\.item\[0\]\.answer\[0\]/);
  });
});

describe('QuestionnaireResponse against the constraints of its Questionnaire', () => {
  it('applies the item-constraint extensions of a Questionnaire loaded through the API, and refuses one whose regex RE2 cannot run', async () => {
    const url = 'http://example.org/fhir/Questionnaire/weight-form';
    const questionnaire = {
      resourceType: 'Questionnaire',
      url,
      status: 'active',
      item: [
        {
          linkId: 'weight',
          type: 'quantity',
          extension: [{ url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-maxQuantity', valueQuantity: { value: 300, system: 'http://unitsofmeasure.org', code: 'kg' } }, { url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity', valueQuantity: { value: 2, system: 'http://unitsofmeasure.org', code: 'kg' } }],
        },
        { linkId: 'ins', type: 'string', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/regex', valueString: '[12][0-9]{12}' }] },
      ],
    };
    expect((await http(t.base, 'Questionnaire', { method: 'POST', json: questionnaire })).status).toBe(201);
    const qr = (weight: number, code: string, ins: string) => ({
      resourceType: 'QuestionnaireResponse',
      questionnaire: url,
      status: 'completed',
      item: [
        { linkId: 'weight', answer: [{ valueQuantity: { value: weight, system: 'http://unitsofmeasure.org', code } }] },
        { linkId: 'ins', answer: [{ valueString: ins }] },
      ],
    });
    const ok = await http(t.base, 'QuestionnaireResponse/$validate', { method: 'POST', json: qr(3500, 'g', '1850275123456') });
    expect([ok.status, errors(ok.body)]).toEqual([200, []]);
    const bad = await http(t.base, 'QuestionnaireResponse/$validate', { method: 'POST', json: qr(1500, 'g', '185027512345X') });
    expect(errors(bad.body).map((i: any) => i.expression?.[0])).toEqual(['QuestionnaireResponse.item[0].answer[0]', 'QuestionnaireResponse.item[1].answer[0]']);
    const hostile = { ...questionnaire, url: `${url}-2`, item: [{ linkId: 'x', type: 'string', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/regex', valueString: '(a+)\\1' }] }] };
    const refused = await http(t.base, 'Questionnaire', { method: 'POST', json: hostile });
    expect(refused.status).toBe(422);
    expect(errors(refused.body)[0].diagnostics).toMatch(/not supported/);
  });
});

describe('400 or 422', () => {
  it('answers 422, not 400, for a well-formed reference to a type the element does not allow', async () => {
    const res = await http(t.base, 'Observation', {
      method: 'POST',
      json: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Practitioner/p1' } },
    });
    expect(res.status).toBe(422);
  });
});

describe('definitions supplied to one $validate call (decision 028)', () => {
  const { create, mint } = requests(() => t);
  const url = 'http://example.org/fhir/StructureDefinition/supplied-birthdate';
  // as many public test profiles are: no name, and an element without an id (sdf-14)
  const profile = {
    resourceType: 'StructureDefinition',
    url,
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
    differential: { element: [{ path: 'Patient.birthDate', min: 1 }] },
  };
  const params = (resource: object, ...definitions: object[]) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'resource', resource }, ...definitions.map((d) => ({ name: 'definition', resource: d }))],
  });
  const profiled = `Patient/$validate?profile=${encodeURIComponent(url)}`;

  it('uses a supplied profile that a write refuses, for that call only, with any client token, and stores nothing', async () => {
    expect((await http(t.base, 'StructureDefinition', { method: 'POST', json: profile })).status).toBe(422);
    const patient = await create({ resourceType: 'Patient', name: [{ family: 'Contexte' }] });
    const narrow = await mint(`Patient/${patient.id}`, 'patient/Patient.r');
    const missing = await http(t.base, profiled, { method: 'POST', json: params({ resourceType: 'Patient' }, profile), headers: as(narrow) });
    expect(missing.status).toBe(200);
    expect(errors(missing.body).map((i: any) => i.diagnostics).join(' ')).toMatch(/birthDate/);
    const present = await http(t.base, profiled, { method: 'POST', json: params({ resourceType: 'Patient', birthDate: '2000-01-01' }, { resourceType: 'Bundle', type: 'collection', entry: [{ resource: profile }, { resource: { resourceType: 'Patient' } }] }), headers: as(narrow) });
    expect([present.status, errors(present.body)]).toEqual([200, []]);
    // nothing was kept: the next call without the definition does not know the profile, nor does a search
    expect((await http(t.base, profiled, { method: 'POST', json: { resourceType: 'Patient', birthDate: '2000-01-01' } })).status).toBe(400);
    expect((await http(t.base, `StructureDefinition?url=${encodeURIComponent(url)}&_summary=count`)).body.total).toBe(0);
  });

  it('takes the Parameters in XML too', async () => {
    const xml =
      '<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource><Patient xmlns="http://hl7.org/fhir"><gender value="female"/></Patient></resource></parameter>' +
      `<parameter><name value="definition"/><resource>${resourceToXml(profile)}</resource></parameter></Parameters>`;
    const res = await http(t.base, profiled, { method: 'POST', body: xml, headers: { 'content-type': 'application/fhir+xml' } });
    expect(res.status).toBe(200);
    expect(errors(res.body).map((i: any) => i.diagnostics).join(' ')).toMatch(/birthDate/);
  });

  it('checks a QuestionnaireResponse against a supplied Questionnaire', async () => {
    const q = { resourceType: 'Questionnaire', url: 'http://example.org/fhir/Questionnaire/supplied', status: 'active', item: [{ linkId: 'n', type: 'integer', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/maxValue', valueInteger: 5 }] }] };
    const qr = (n: number) => ({ resourceType: 'QuestionnaireResponse', questionnaire: q.url, status: 'completed', item: [{ linkId: 'n', answer: [{ valueInteger: n }] }] });
    const over = await http(t.base, '$validate', { method: 'POST', json: params(qr(9), q) });
    expect(errors(over.body).length).toBeGreaterThan(0);
    const within = await http(t.base, '$validate', { method: 'POST', json: params(qr(3), q) });
    expect(errors(within.body)).toEqual([]);
  });

  it('refuses, with 400, a supplied definition whose regular expression the server cannot run, and anything that is not a definition', async () => {
    const unsafe = { ...profile, differential: { element: [{ path: 'Patient', constraint: [{ key: 'x-1', severity: 'error', human: 'h', expression: "name.family.matches('(?=a)b')" }] }] } };
    const res = await http(t.base, profiled, { method: 'POST', json: params({ resourceType: 'Patient' }, unsafe) });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/\(\?=a\)b/);
    expect((await http(t.base, '$validate', { method: 'POST', json: params({ resourceType: 'Patient' }, { resourceType: 'Patient' }) })).status).toBe(400);
  });
});

describe('where an extension may be used, and memberOf(), in supplied definitions', () => {
  const ext = (id: string, context: object[], contextInvariant?: string[]) => ({
    resourceType: 'StructureDefinition',
    url: `http://example.org/fhir/StructureDefinition/${id}`,
    name: id,
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'complex-type',
    abstract: false,
    context,
    ...(contextInvariant ? { contextInvariant } : {}),
    type: 'Extension',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Extension',
    derivation: 'constraint',
    differential: { element: [{ id: 'Extension.value[x]', path: 'Extension.value[x]', min: 1, type: [{ code: 'boolean' }] }] },
  });
  // StructureDefinition.context: "all nodes matching a FHIRPath expression"; an inherited element is its base's; contextInvariant: "all the rules must be true"
  const homeOnly = ext('ctx-home-address', [{ type: 'element', expression: 'Patient' }, { type: 'fhirpath', expression: "Patient.address.where(use = 'home')" }]);
  const onText = ext('ctx-text', [{ type: 'element', expression: 'DomainResource.text' }]);
  const inactive = ext('ctx-inactive', [{ type: 'element', expression: 'Patient' }], ['Patient.active.not()']);
  const e = (d: any) => ({ url: d.url, valueBoolean: true });
  const params = (resource: object, ...definitions: object[]) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'resource', resource }, ...definitions.map((d) => ({ name: 'definition', resource: d }))],
  });
  const validate = async (resource: any) => errors((await http(t.base, '$validate', { method: 'POST', json: params(resource, homeOnly, onText, inactive) })).body);
  const validateXml = async (resourceXml: string, ...definitions: object[]) => {
    const xml = `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>${resourceXml}</resource></parameter>${definitions.map((d) => `<parameter><name value="definition"/><resource>${resourceToXml(d)}</resource></parameter>`).join('')}</Parameters>`;
    const res = await http(t.base, '$validate', { method: 'POST', body: xml, headers: { 'content-type': 'application/fhir+xml' } });
    expect(res.status).toBe(200);
    return errors(res.body);
  };

  it('an extension is allowed only on the nodes its FHIRPath context selects, on an inherited element by its base path, and where its context invariants hold', async () => {
    expect(await validate({ resourceType: 'Patient', extension: [e(homeOnly), e(inactive)], active: false, address: [{ use: 'home', extension: [e(homeOnly)] }], text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>', extension: [e(onText)] } })).toEqual([]);
    const work = await validate({ resourceType: 'Patient', address: [{ use: 'work', extension: [e(homeOnly)] }] });
    expect(work.map((i: any) => i.expression[0])).toEqual(['Patient.address[0].extension[0]']);
    const onPrimitive = await validate({ resourceType: 'Patient', active: true, _active: { extension: [e(homeOnly)] } });
    expect(onPrimitive.map((i: any) => i.diagnostics)).toEqual([expect.stringContaining('is not allowed to be used at this point')]);
    const active = await validate({ resourceType: 'Patient', active: true, extension: [e(inactive)] });
    expect(active.map((i: any) => i.diagnostics)).toEqual([expect.stringContaining('failed the context invariant Patient.active.not()')]);
  });

  it('does the same in XML, an extension on a primitive included', async () => {
    const x = (d: any) => `<extension url="${d.url}"><valueBoolean value="true"/></extension>`;
    expect(await validateXml(`<Patient xmlns="http://hl7.org/fhir">${x(inactive)}<active value="false"/><address>${x(homeOnly)}<use value="home"/></address></Patient>`, homeOnly, inactive)).toEqual([]);
    const bad = await validateXml(`<Patient xmlns="http://hl7.org/fhir">${x(inactive)}<active value="true">${x(homeOnly)}</active></Patient>`, homeOnly, inactive);
    expect(bad.map((i: any) => i.expression[0]).sort()).toEqual(['Patient.active.extension[0]', 'Patient.extension[0]']);
  });

  it("evaluates memberOf() in a profile's constraint against a supplied value set, in JSON and XML", async () => {
    const vs = { resourceType: 'ValueSet', url: 'http://example.org/fhir/ValueSet/low-only', status: 'active', compose: { include: [{ system: 'http://hl7.org/fhir/allergy-intolerance-criticality', concept: [{ code: 'low' }] }] } };
    const profile = {
      resourceType: 'StructureDefinition',
      url: 'http://example.org/fhir/StructureDefinition/basic-member-of',
      name: 'BasicMemberOf',
      status: 'active',
      fhirVersion: '4.0.1',
      kind: 'resource',
      abstract: false,
      type: 'Basic',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Basic',
      derivation: 'constraint',
      differential: { element: [{ id: 'Basic.code', path: 'Basic.code', constraint: [{ key: 'mo-1', severity: 'error', human: 'in the value set', expression: `memberOf('${vs.url}')` }] }] },
    };
    const basic = (code: string) => ({ resourceType: 'Basic', code: { coding: [{ system: 'http://hl7.org/fhir/allergy-intolerance-criticality', code }] } });
    const url = `Basic/$validate?profile=${encodeURIComponent(profile.url)}`;
    const json = async (code: string) => errors((await http(t.base, url, { method: 'POST', json: params(basic(code), profile, vs) })).body).map((i: any) => i.diagnostics);
    expect(await json('low')).toEqual([]);
    expect(await json('high')).toEqual([expect.stringContaining('mo-1')]);
    const xml = `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>${resourceToXml(basic('high'))}</resource></parameter>${[profile, vs].map((d) => `<parameter><name value="definition"/><resource>${resourceToXml(d)}</resource></parameter>`).join('')}</Parameters>`;
    const res = await http(t.base, url, { method: 'POST', body: xml, headers: { 'content-type': 'application/fhir+xml' } });
    expect(errors(res.body).map((i: any) => i.diagnostics)).toEqual([expect.stringContaining('mo-1')]);
  });
});

describe('a Bundle entry whose fullUrl looks like a RESTful server URL', () => {
  it('needs the resource to have the id the fullUrl ends with (R4 Bundle.entry.fullUrl), in JSON and XML', async () => {
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'http://example.org/fhir/Organization/666', resource: { resourceType: 'Organization', name: 'Lab' } }] };
    const json = await http(t.base, 'Bundle/$validate', { method: 'POST', json: bundle });
    expect(errors(json.body).map((i: any) => [i.expression[0], i.diagnostics])).toEqual([['Bundle.entry[0]', expect.stringContaining('looks like a RESTful server URL, but the resource has no id')]]);
    const xml = await http(t.base, 'Bundle/$validate', { method: 'POST', body: resourceToXml(bundle), headers: { 'content-type': 'application/fhir+xml' } });
    expect(errors(xml.body).map((i: any) => i.expression[0])).toEqual(['Bundle.entry[0]']);
    const withId = { ...bundle, entry: [{ ...bundle.entry[0], resource: { ...bundle.entry[0].resource, id: '666' } }] };
    expect(errors((await http(t.base, 'Bundle/$validate', { method: 'POST', json: withId })).body)).toEqual([]);
  });
});

describe('a document Bundle carries what its Composition refers to', () => {
  const document = (author: string) => ({
    resourceType: 'Bundle',
    identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:4a1b9c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d' },
    type: 'document',
    timestamp: '2024-12-01T10:00:00Z',
    entry: [
      {
        fullUrl: 'urn:uuid:10a67a86-a9ec-427e-ba3f-f042cef21733',
        resource: { resourceType: 'Composition', status: 'final', type: { text: 'note' }, date: '2024-12-01', author: [{ reference: author }], title: 'Note' },
      },
      { fullUrl: 'urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2', resource: { resourceType: 'Organization', id: '666', name: 'Lab' } },
    ],
  });
  const ours = (oo: any) => errors(oo).filter((i: any) => /Can't find|isn't reachable/.test(i.diagnostics)).map((i: any) => i.expression[0]);

  // R4 bundle.html: a relative reference from an entry identified by a urn:uuid: has no base to resolve against
  it('$validate finds a relative reference from a urn:uuid: entry unresolved and the entry it meant unreachable, in JSON and XML', async () => {
    const json = await http(t.base, 'Bundle/$validate', { method: 'POST', json: document('Organization/666') });
    expect(ours(json.body)).toEqual(['Bundle.entry[0].resource.author[0]', 'Bundle.entry[1]']);
    const xml = await http(t.base, 'Bundle/$validate', { method: 'POST', body: resourceToXml(document('Organization/666')), headers: { 'content-type': 'application/fhir+xml' } });
    expect(xml.status).toBe(200);
    expect(ours(xml.body)).toEqual(['Bundle.entry[0].resource.author[0]', 'Bundle.entry[1]']);
    const fixed = await http(t.base, 'Bundle/$validate', { method: 'POST', json: document('urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2') });
    expect(ours(fixed.body)).toEqual([]);
  });

  it('a collection is not concerned: it may refer outside itself', async () => {
    const res = await http(t.base, 'Bundle/$validate', { method: 'POST', json: { ...document('Organization/666'), type: 'collection' } });
    expect(ours(res.body)).toEqual([]);
  });
});

describe("a ConceptMap's codes and its value sets", () => {
  const vs = {
    resourceType: 'ValueSet',
    url: 'http://example.org/fhir/ValueSet/cm-source',
    name: 'CmSource',
    status: 'draft',
    compose: { include: [{ system: 'http://example.org/fhir/CodeSystem/cm', concept: [{ code: 'pharm' }, { code: 'vac' }] }] },
  };
  const cs = {
    resourceType: 'CodeSystem',
    url: 'http://example.org/fhir/CodeSystem/cm',
    name: 'Cm',
    status: 'draft',
    content: 'complete',
    concept: [{ code: 'med' }, { code: 'pharm' }, { code: 'vac' }],
  };
  const map = (code: string) => ({
    resourceType: 'ConceptMap',
    url: 'http://example.org/fhir/ConceptMap/cm',
    status: 'draft',
    sourceCanonical: vs.url,
    group: [{ source: cs.url, target: 'http://example.org/fhir/CodeSystem/other', element: [{ code, target: [{ code: 'x', equivalence: 'equivalent' }] }] }],
  });
  const params = (resource: object) => ({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource }, { name: 'definition', resource: vs }, { name: 'definition', resource: cs }] });

  // ConceptMap is not a type this server stores: only a verdict meets one (a write would get a warning, src/validation/conceptMapRules.test.ts)
  it('$validate finds a mapped code outside the source value set (R4 ConceptMap.source[x]: the value set that contains the concepts being mapped), in JSON and XML', async () => {
    const json = await http(t.base, '$validate', { method: 'POST', json: params(map('med')) });
    expect(errors(json.body).map((i: any) => i.expression[0])).toEqual(['ConceptMap.group[0].element[0].code']);
    expect(errors((await http(t.base, '$validate', { method: 'POST', json: params(map('vac')) })).body)).toEqual([]);
    const xml = `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>${resourceToXml(map('med'))}</resource></parameter>${[vs, cs].map((d) => `<parameter><name value="definition"/><resource>${resourceToXml(d)}</resource></parameter>`).join('')}</Parameters>`;
    const res = await http(t.base, '$validate', { method: 'POST', body: xml, headers: { 'content-type': 'application/fhir+xml' } });
    expect(res.status).toBe(200);
    expect(errors(res.body).map((i: any) => i.expression[0])).toEqual(['ConceptMap.group[0].element[0].code']);
  });
});
