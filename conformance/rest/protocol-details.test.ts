import { FHIR_JSON, http, startTarget, Target, authorization } from '../harness';

/**
 * Details of the RESTful API that conformance testers check beyond the main interactions
 * (http://hl7.org/fhir/R4/http.html, RFC 9110): the fhirVersion media-type parameter,
 * Allow on 405, preconditions with `*`, a byte order mark, _count=0, operation levels.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

async function createPatient(extra: Record<string, unknown> = {}): Promise<any> {
  const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Protocol' }], ...extra } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('fhirVersion media-type parameter (http.html#version-parameter)', () => {
  it('answers R4 for fhirVersion=4.0 and refuses another version with 406 (Accept) or 415 (Content-Type)', async () => {
    const p = await createPatient();
    expect((await http(t.base, `Patient/${p.id}`, { headers: { accept: `${FHIR_JSON}; fhirVersion=4.0` } })).status).toBe(200);
    const other = await http(t.base, `Patient/${p.id}`, { headers: { accept: `${FHIR_JSON}; fhirVersion=3.0` } });
    expect(other.status).toBe(406);
    expect(other.body.resourceType).toBe('OperationOutcome');
    const write = await http(t.base, 'Patient', {
      method: 'POST',
      headers: { 'content-type': `${FHIR_JSON}; fhirVersion=3.0` },
      body: JSON.stringify({ resourceType: 'Patient' }),
    });
    expect(write.status).toBe(415);
  });

  it('sends Vary: Accept with content-negotiated answers', async () => {
    const res = await http(t.base, 'metadata');
    expect(res.headers.get('vary')).toMatch(/Accept/);
  });
});

describe('methods', () => {
  it.each([
    ['POST', 'Patient/abc', ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']],
    ['PUT', 'metadata', ['GET', 'HEAD']],
    ['DELETE', '_history', ['GET', 'HEAD']],
  ])('%s /%s answers 405 with Allow', async (method, path, allowed) => {
    const res = await http(t.base, path, { method, json: method === 'DELETE' ? undefined : { resourceType: 'Patient' } });
    expect(res.status).toBe(405);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.headers.get('allow')?.split(/,\s*/).sort()).toEqual([...allowed].sort());
  });

  it('refuses a JSON Patch document on POST with 415', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': 'application/json-patch+json' }, body: '[]' });
    expect(res.status).toBe(415);
  });

  it('accepts a JSON body that starts with a byte order mark', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: '\uFEFF' + JSON.stringify({ resourceType: 'Patient', gender: 'male' }) });
    expect(res.status).toBe(201);
    expect(res.body.gender).toBe('male');
  });

  it('refuses an unknown _summary value on read as search does', async () => {
    const p = await createPatient();
    expect((await http(t.base, `Patient/${p.id}?_summary=bogus`)).status).toBe(400);
    expect((await http(t.base, `Patient?_summary=bogus`)).status).toBe(400);
  });
});

describe('preconditions with * (RFC 9110 §13.1)', () => {
  it('If-Match: * updates an existing resource and refuses a missing one with 412', async () => {
    const p = await createPatient();
    const ok = await http(t.base, `Patient/${p.id}`, { method: 'PUT', headers: { 'if-match': '*' }, json: { ...p, gender: 'female' } });
    expect(ok.status).toBe(200);
    const missing = await http(t.base, 'Patient/no-such-patient-star', { method: 'PUT', headers: { 'if-match': '*' }, json: { resourceType: 'Patient', id: 'no-such-patient-star' } });
    expect(missing.status).toBe(412);
    expect((await http(t.base, 'Patient/no-such-patient-star')).status).toBe(404);
  });

  it('If-None-Match: * on PUT creates a new resource and refuses to replace an existing one', async () => {
    const id = `star-${Date.now()}`;
    const created = await http(t.base, `Patient/${id}`, { method: 'PUT', headers: { 'if-none-match': '*' }, json: { resourceType: 'Patient', id } });
    expect(created.status).toBe(201);
    const again = await http(t.base, `Patient/${id}`, { method: 'PUT', headers: { 'if-none-match': '*' }, json: { resourceType: 'Patient', id, gender: 'male' } });
    expect(again.status).toBe(412);
    expect((await http(t.base, `Patient/${id}`)).body.meta.versionId).toBe('1');
  });
});

describe('history', () => {
  it('shows a version written over a deletion as a creation (201)', async () => {
    const p = await createPatient();
    expect((await http(t.base, `Patient/${p.id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    const again = await http(t.base, `Patient/${p.id}`, { method: 'PUT', json: { resourceType: 'Patient', id: p.id } });
    expect(again.status).toBe(201);
    const history = await http(t.base, `Patient/${p.id}/_history`);
    const statuses = history.body.entry.map((e: any) => [e.response.etag, e.response.status]);
    expect(statuses).toEqual([
      ['W/"3"', '201 Created'],
      ['W/"2"', '204 No Content'],
      ['W/"1"', '201 Created'],
    ]);
  });
});

describe('search and operations', () => {
  it('_count=0 answers the number of matches and no entries, as _summary=count', async () => {
    const family = `Zero${Date.now()}`;
    await createPatient({ name: [{ family }] });
    await createPatient({ name: [{ family }] });
    const res = await http(t.base, `Patient?family=${family}&_count=0`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(2);
    expect(res.body.entry).toBeUndefined();
  });

  it('under strict handling an unknown parameter is refused without saying it was ignored', async () => {
    const res = await http(t.base, 'Patient?bogus=1', { headers: { prefer: 'handling=strict' } });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/bogus/);
    expect(res.body.issue[0].diagnostics).not.toMatch(/ignored/);
  });

  it('type-level $everything is refused with a pointer to the instance level, as the CapabilityStatement documents', async () => {
    const res = await http(t.base, 'Patient/$everything');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('not-supported');
    expect(res.body.issue[0].diagnostics).toMatch(/Patient\/\[id\]\/\$everything/);
    const cs = (await http(t.base, 'metadata')).body;
    const op = cs.rest[0].resource.find((r: any) => r.type === 'Patient').operation.find((o: any) => o.name === 'everything');
    expect(op.documentation).toMatch(/Instance level only/);
  });

  it('lists search parameters with a definition only, not result parameters', async () => {
    const cs = (await http(t.base, 'metadata')).body;
    for (const resource of cs.rest[0].resource) {
      for (const p of resource.searchParam ?? []) {
        expect(['_count', '_sort', '_total', '_summary', '_elements']).not.toContain(p.name);
        expect(p.definition).toMatch(/^https?:\/\//);
      }
    }
    expect(cs.rest[0].documentation).toMatch(/_count/);
  });

  it('answers /metadata?_summary=true with the summary elements only', async () => {
    const res = await http(t.base, 'metadata?_summary=true');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
    expect(res.body.meta?.tag?.some((tag: any) => tag.code === 'SUBSETTED')).toBe(true);
  });
});

describe('Binary written', () => {
  it('answers a create asking return=representation with the content it stored: raw bytes, or the Binary with data in FHIR JSON or XML', async () => {
    const bytes = Buffer.from('%PDF-1.4 written');
    const quiet = await http(t.base, 'Binary', { method: 'POST', headers: { 'content-type': 'application/pdf' }, body: bytes });
    expect(quiet.status).toBe(201);
    expect(quiet.body.data).toBeUndefined();
    const raw = await fetch(`${t.base}/Binary`, { method: 'POST', headers: { 'content-type': 'application/pdf', prefer: 'return=representation', ...authorization(t.base) }, body: bytes });
    expect(raw.status).toBe(201);
    expect(raw.headers.get('content-type')).toMatch(/application\/pdf/);
    expect(Buffer.from(await raw.arrayBuffer()).equals(bytes)).toBe(true);
    const json = await http(t.base, 'Binary', { method: 'POST', headers: { 'content-type': 'application/pdf', accept: FHIR_JSON, prefer: 'return=representation' }, body: bytes });
    expect(json.status).toBe(201);
    expect(json.body.resourceType).toBe('Binary');
    expect(Buffer.from(json.body.data, 'base64').equals(bytes)).toBe(true);
    const xml = await fetch(`${t.base}/${json.headers.get('location')!.replace(/^.*\/fhir\//, '').replace(/\/_history\/.*$/, '')}`, { headers: { accept: 'application/fhir+xml', ...authorization(t.base) } });
    expect(xml.status).toBe(200);
    expect(xml.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(await xml.text()).toContain(`<data value="${bytes.toString('base64')}"/>`);
  });
});

describe('bodies and values the database cannot hold', () => {
  it.each([
    ['a NUL character', '{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}'],
    ['an unpaired surrogate', '{"resourceType":"Patient","name":[{"family":"a\\ud800b"}]}'],
  ])('refuses %s in a body with 400', async (_what, body) => {
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('keeps a correct surrogate pair (an emoji) as sent', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: '{"resourceType":"Patient","name":[{"family":"Durand \\ud83d\\ude00"}]}' });
    expect(res.status).toBe(201);
    expect(res.body.name[0].family).toBe('Durand \u{1F600}');
  });

  it.each(['name=a%00b', '_id=a%00b', 'identifier=a%00b'])('refuses a NUL in a search value (%s) with 400', async (query) => {
    const res = await http(t.base, `Patient?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses query values that are not valid percent-encoded UTF-8 with 400, in the URL and in a form', async () => {
    expect((await http(t.base, 'Patient?name=caf%E9')).status).toBe(400);
    expect((await http(t.base, 'Patient?name=%ED%A0%80')).status).toBe(400);
    const form = await http(t.base, 'Patient/_search', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=caf%E9' });
    expect(form.status).toBe(400);
    expect((await http(t.base, 'Patient?name=caf%C3%A9')).status).toBe(200);
  });

  it('a value the database refuses in a batch entry fails that entry only, and never shows SQL', async () => {
    const res = await http(t.base, '', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?name=%00' } }, { request: { method: 'GET', url: 'Patient?_count=1' } }] },
    });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('400');
    expect(JSON.stringify(res.body.entry[0].response.outcome)).not.toMatch(/SELECT|idx_/);
    expect(res.body.entry[1].response.status).toMatch(/^200/);
    const header = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient' }, headers: { 'if-none-exist': 'name=a%00' } });
    expect(header.status).toBe(400);
    expect(header.text).not.toMatch(/SELECT|pg_advisory/);
  });

  it('refuses a path that is not valid percent-encoded UTF-8 with 400', async () => {
    const res = await http(t.base, 'Patient/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses bytes that are not UTF-8 (400) and another charset (415), instead of altering the text', async () => {
    const latin1 = Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"family":"Ren'), Buffer.from([0xe9]), Buffer.from('e"}]}')]);
    expect((await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: latin1 })).status).toBe(400);
    expect((await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': `${FHIR_JSON}; charset=iso-8859-1` }, body: latin1 })).status).toBe(415);
  });

  it('refuses a compressed body it cannot read with 415', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON, 'content-encoding': 'gzip' }, body: Buffer.from([0x1f, 0x8b, 0x08, 0x00]) });
    expect(res.status).toBe(415);
  });
});

describe('counts and ranges', () => {
  it('history with _count=0 answers the number of versions', async () => {
    const p = await createPatient();
    await http(t.base, `Patient/${p.id}`, { method: 'PUT', json: { ...p, gender: 'male' } });
    const res = await http(t.base, `Patient/${p.id}/_history?_count=0`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(2);
    expect(res.body.entry).toBeUndefined();
  });

  it('refuses a number no index can compare with (1e999) with 400', async () => {
    expect((await http(t.base, 'Observation?value-quantity=1e999')).status).toBe(400);
    expect((await http(t.base, 'Observation?value-quantity=1e2')).status).toBe(200);
  });

  it('$everything refuses start/end (care dates) rather than returning records outside them', async () => {
    const p = await createPatient();
    const res = await http(t.base, `Patient/${p.id}/$everything?start=2024-01-05`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('not-supported');
  });
});

describe('decimal precision (datatypes.html#decimal)', () => {
  const observation = (value: string) =>
    `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":{"value":${value},"unit":"kg"}}`;

  it('keeps 72.10 and 1.0e2 as sent through create, read, search and update', async () => {
    const created = await http(t.base, 'Observation', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: observation('72.10') });
    expect(created.status).toBe(201);
    expect(created.text).toContain('"value":72.10');
    const read = await http(t.base, `Observation/${created.body.id}`);
    expect(read.text).toContain('"value":72.10');
    const found = await http(t.base, `Observation?_id=${created.body.id}&value-quantity=72.1`);
    expect(found.body.total).toBe(1);
    expect(found.text).toContain('"value":72.10');
    const subset = await http(t.base, `Observation/${created.body.id}?_elements=valueQuantity`);
    expect(subset.text).toContain('"value":72.10');
    const subsetSearch = await http(t.base, `Observation?_id=${created.body.id}&_summary=data`);
    expect(subsetSearch.text).toContain('"value":72.10');
    const body = JSON.stringify({ ...JSON.parse(observation('0')), id: created.body.id }).replace('"value":0', '"value":1.0e2');
    const updated = await http(t.base, `Observation/${created.body.id}`, { method: 'PUT', headers: { 'content-type': FHIR_JSON }, body });
    expect(updated.status).toBe(200);
    expect((await http(t.base, `Observation/${created.body.id}`)).text).toContain('"value":1.0e2');
  });

  it('keeps them in transaction entries, and where a patch leaves them', async () => {
    const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${observation('98.60')},"request":{"method":"POST","url":"Observation"}}]}`;
    const res = await http(t.base, '', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: bundle });
    expect(res.status).toBe(200);
    const id = /Observation\/([^/]+)\//.exec(res.body.entry[0].response.location)![1];
    expect((await http(t.base, `Observation/${id}`)).text).toContain('"value":98.60');
    const patched = await http(t.base, `Observation/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }]),
    });
    expect(patched.status).toBe(200);
    expect(patched.text).toContain('"value":98.60');
  });

  it('never moves a precision onto another element when a patch shifts an array', async () => {
    const component = (value: string, code: string) => `{"code":{"coding":[{"system":"http://loinc.org","code":"${code}"}]},"valueQuantity":{"value":${value}}}`;
    const body = observation('1').replace('"valueQuantity":{"value":1,"unit":"kg"}', `"component":[${component('1.50', '8480-6')},${component('1.5', '8462-4')}]`);
    const created = await http(t.base, 'Observation', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body });
    expect(created.status).toBe(201);
    expect(created.text).toContain('"value":1.50');
    const patched = await http(t.base, `Observation/${created.body.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'remove', path: '/component/0' }]),
    });
    expect(patched.status).toBe(200);
    expect(patched.text).not.toContain('1.50');
    expect(patched.body.component).toHaveLength(1);
    expect(patched.body.component[0].valueQuantity.value).toBe(1.5);
  });
});
