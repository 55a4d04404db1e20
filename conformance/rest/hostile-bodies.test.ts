import crypto from 'node:crypto';
import { DOCUMENT_CODES } from '../frenchFixtures';
import { FHIR_JSON, http, startTarget, Target, authorization } from '../harness';

/**
 * Request bodies built to hurt the server: too many values, too deep, member names given
 * twice or reaching the prototype. Each must be refused with a 4xx and an OperationOutcome
 * that says why, leave nothing written, and leave the server answering the next request
 * at once (docs/decisions/005-request-limits.md).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

/** Resource versions in the whole server: what any write, even a half-done one, changes. */
async function versions(target: Target): Promise<number> {
  const res = await http(target.base, '_history?_count=0');
  expect(res.status).toBe(200);
  return res.body.total;
}

/** The server answers an ordinary request, promptly. */
async function stillAnswers(target: Target): Promise<void> {
  const started = Date.now();
  const res = await http(target.base, 'Patient?_count=1');
  expect(res.status).toBe(200);
  expect(Date.now() - started).toBeLessThan(2000);
}

interface Refusal {
  status: number;
  diagnostics: RegExp;
  method?: string;
  contentType?: string;
}

/** Sends `body`, expects the refusal, that nothing was written and that the server still answers. */
async function expectRefused(path: string, body: string, want: Refusal, target: Target = t): Promise<any> {
  const before = await versions(target);
  const started = Date.now();
  const res = await http(target.base, path, { method: want.method ?? 'POST', headers: { 'content-type': want.contentType ?? FHIR_JSON }, body });
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(res.status).toBe(want.status);
  expect(res.body?.resourceType).toBe('OperationOutcome');
  expect(res.body.issue.map((i: { diagnostics: string }) => i.diagnostics).join(' | ')).toMatch(want.diagnostics);
  expect(await versions(target)).toBe(before);
  await stillAnswers(target);
  return res.body;
}

const emptyExtensions = (n: number) => `{"resourceType":"Patient","extension":[${Array(n).fill('{}').join(',')}]}`;

/** A Patient whose extension nests `levels` extensions in one another, a valid value at the bottom. */
function nestedExtensions(levels: number, leaf = '{"url":"http://example.org/leaf","valueString":"bottom"}'): string {
  let e = leaf;
  for (let k = 1; k < levels; k++) e = `{"url":"http://example.org/fhir/StructureDefinition/level","extension":[${e}]}`;
  return `{"resourceType":"Patient","extension":[${e}]}`;
}
/** JSON depth of nestedExtensions(levels): the Patient, then an array and an object per level. */
const depthOf = (levels: number) => 1 + 2 * levels;

const transaction = (resource: string) =>
  `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:${crypto.randomUUID()}","resource":${resource},"request":{"method":"POST","url":"Patient"}}]}`;

describe('bodies with too many values', () => {
  it('refuses 9 MB of three million empty extensions with 413, naming the array limit', async () => {
    const body = emptyExtensions(3_000_000);
    expect(body.length).toBeGreaterThan(9_000_000);
    await expectRefused('Patient', body, { status: 413, diagnostics: /An array of the body has more than 10000 elements/ });
  });

  it('refuses as many values spread over short arrays with 413, naming the value limit', async () => {
    const chunk = `{"url":"http://example.org/x","extension":[${Array(1000).fill('{}').join(',')}]}`;
    const body = `{"resourceType":"Patient","extension":[${Array(200).fill(chunk).join(',')}]}`;
    await expectRefused('Patient', body, { status: 413, diagnostics: /more than 100000 JSON values/ });
  });

  it('answers 0.9 MB of invalid extensions under the limits with one short OperationOutcome, not one issue per element', async () => {
    // no url: every one of them is an error
    const invalid = `{"valueString":"${'x'.repeat(90)}"}`;
    const text = `{"resourceType":"Patient","extension":[${Array(9_000).fill(invalid).join(',')}]}`;
    expect(text.length).toBeGreaterThan(900_000);
    const body = await expectRefused('Patient', text, { status: 422, diagnostics: /Extension\.url/ });
    expect(body.issue).toHaveLength(100);
    expect(body.issue[99].diagnostics).toMatch(/^and \d+ more issues/);
    expect(JSON.stringify(body).length).toBeLessThan(100_000);
    // the issues kept are the errors, most severe first
    expect(body.issue.slice(0, 99).every((i: { severity: string }) => i.severity === 'error')).toBe(true);
  });
});

describe('bodies nested too deep', () => {
  it('refuses ~3,000 levels of valid nesting (~130 KB) with 413, naming the depth limit', async () => {
    const body = nestedExtensions(1500);
    expect(body.length).toBeGreaterThan(100_000);
    await expectRefused('Patient', body, { status: 413, diagnostics: /more than 100 levels deep/ });
    await expectRefused('', transaction(body), { status: 413, diagnostics: /more than 100 levels deep/ });
  });

  it('refuses 20,000 levels of bare arrays with 413', async () => {
    await expectRefused('Patient', '['.repeat(20_000) + ']'.repeat(20_000), { status: 413, diagnostics: /more than 100 levels deep/ });
  });

  it('takes nesting up to the limit through create, read and search', async () => {
    // 48 levels of extensions, then valueCodeableConcept.coding[0]: exactly 100 levels
    const leaf = '{"url":"http://example.org/leaf","valueCodeableConcept":{"coding":[{"system":"http://example.org","code":"deep"}]}}';
    const body = nestedExtensions(48, leaf);
    const created = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body });
    expect(created.status).toBe(201);
    const read = await http(t.base, `Patient/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.text).toContain('"code":"deep"');
    expect((await http(t.base, `Patient?_id=${created.body.id}`)).body.total).toBe(1);
    // one level more is refused
    await expectRefused('Patient', nestedExtensions(48, `{"url":"http://example.org/leaf","valueCodeableConcept":{"coding":[{"system":"http://example.org","code":"deep","extension":[]}]}}`), {
      status: 413,
      diagnostics: /more than 100 levels deep/,
    });
  });
});

describe('member names', () => {
  it('refuses a member given twice with 400, in a create and in a transaction entry', async () => {
    const patient = '{"resourceType":"Patient","gender":"male","gender":"female"}';
    await expectRefused('Patient', patient, { status: 400, diagnostics: /the member "gender" twice in the same object \(at \/gender/ });
    await expectRefused('', transaction(patient), { status: 400, diagnostics: /the member "gender" twice .*at \/entry\/0\/resource\/gender/ });
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses a member named %s with 400, in a create, a transaction entry and a JSON Patch', async (name) => {
    const patient = `{"resourceType":"Patient","name":[{"family":"Martin","${name}":{"polluted":true}}]}`;
    const refusal = { status: 400, diagnostics: new RegExp(`a member named "${name}"`) };
    await expectRefused('Patient', patient, refusal);
    await expectRefused('', transaction(patient), refusal);
    await expectRefused('', `{"resourceType":"Bundle","type":"batch","entry":[{"resource":${patient},"request":{"method":"POST","url":"Patient"}}]}`, refusal);
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Martin' }] } });
    expect(created.status).toBe(201);
    await expectRefused(`Patient/${created.body.id}`, `[{"op":"add","path":"/name/0/given","value":[{"${name}":{"polluted":true}}]}]`, {
      ...refusal,
      method: 'PATCH',
      contentType: 'application/json-patch+json',
    });
    expect((await http(t.base, `Patient/${created.body.id}`)).body.meta.versionId).toBe('1');
    if (t.running) expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a JSON Patch carried in a transaction entry\'s Binary with duplicate names or prototype keys, as a request body', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', gender: 'male' } });
    const patchEntry = (patch: string) =>
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(patch).toString('base64') }, request: { method: 'PATCH', url: `Patient/${created.body.id}` } }],
      });
    await expectRefused('', patchEntry('[{"op":"replace","path":"/gender","value":"female","value":"other"}]'), { status: 400, diagnostics: /entry\[0\].*JSON Patch.*twice|entry\[0\].*JSON Patch.*duplicate/i });
    await expectRefused('', patchEntry('[{"op":"add","path":"/x","value":{"__proto__":{"polluted":true}}}]'), { status: 400, diagnostics: /entry\[0\].*JSON Patch.*__proto__/ });
    // Binary.data that is not base64 is refused, not decoded leniently into another patch
    const notBase64 = JSON.parse(patchEntry('[]'));
    notBase64.entry[0].resource.data = '[{"op":"replace","path":"/gender","value":"female"}]';
    await expectRefused('', JSON.stringify(notBase64), { status: 400, diagnostics: /entry\[0\].*must be base64/ });
    expect((await http(t.base, `Patient/${created.body.id}`)).body.gender).toBe('male');
  });

  it('still takes those words as values', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'constructor', given: ['__proto__', 'prototype'] }] } });
    expect(res.status).toBe(201);
    expect(res.body.name[0].given).toEqual(['__proto__', 'prototype']);
  });
});

describe('the JSON body size', () => {
  it('takes a document submission carrying a 20 MB document in one Bundle', async () => {
    const document = crypto.randomBytes(20 * 1000 * 1000);
    const binary = `urn:uuid:${crypto.randomUUID()}`;
    const patient = `urn:uuid:${crypto.randomUUID()}`;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: patient, resource: { resourceType: 'Patient', name: [{ family: 'Volumineux' }] }, request: { method: 'POST', url: 'Patient' } },
        { fullUrl: binary, resource: { resourceType: 'Binary', contentType: 'application/pdf', data: document.toString('base64') }, request: { method: 'POST', url: 'Binary' } },
        {
          resource: { resourceType: 'DocumentReference', status: 'current', ...DOCUMENT_CODES, subject: { reference: patient }, content: [{ attachment: { contentType: 'application/pdf', url: binary, size: document.length } }] },
          request: { method: 'POST', url: 'DocumentReference' },
        },
      ],
    };
    const res = await http(t.base, '', { method: 'POST', json: bundle });
    expect(res.status).toBe(200);
    const location = res.body.entry[1].response.location.replace(/\/_history\/.*$/, '');
    const stored = await fetch(`${t.base}/${location}`, { headers: { accept: 'application/pdf', ...authorization(t.base) } });
    expect(Buffer.from(await stored.arrayBuffer()).equals(document)).toBe(true);
  }, 120_000);

  it('refuses a JSON body over 32 MiB with 413 before reading it', async () => {
    const before = await versions(t);
    const res = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: `{"resourceType":"Patient","text":"${'a'.repeat(32 * 1024 * 1024)}"}` });
    expect(res.status).toBe(413);
    expect(res.body.issue[0].diagnostics).toMatch(/exceeds the limit of 33554432 bytes/);
    expect(await versions(t)).toBe(before);
    await stillAnswers(t);
  });
});

describe('limits set by configuration', () => {
  let configured: Target;
  beforeAll(async () => {
    configured = await startTarget({ JSON_MAX_DEPTH: '1000', JSON_MAX_NODES: '4000', JSON_MAX_ARRAY_LENGTH: '500' });
  });
  afterAll(() => configured?.close());

  it('follows JSON_MAX_DEPTH, JSON_MAX_NODES and JSON_MAX_ARRAY_LENGTH; the deepest nesting allowed is served without error', async () => {
    if (!configured.running) return; // a server under test elsewhere has its own configuration
    const deepest = nestedExtensions(499);
    expect(depthOf(499)).toBe(999);
    const created = await http(configured.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: deepest });
    expect(created.status).toBe(201);
    const id = created.body.id;
    for (const path of [`Patient/${id}`, `Patient/${id}/_history`, `Patient?_id=${id}`, `Patient/${id}?_elements=extension`, `Patient/${id}?_pretty=true`]) {
      expect([path, (await http(configured.base, path)).status]).toEqual([path, 200]);
    }
    expect((await http(configured.base, '', { method: 'POST', headers: { 'content-type': FHIR_JSON }, body: transaction(nestedExtensions(497)) })).status).toBe(200);
    await expectRefused('Patient', nestedExtensions(501), { status: 413, diagnostics: /more than 1000 levels deep/ }, configured);
    await expectRefused('Patient', emptyExtensions(501), { status: 413, diagnostics: /more than 500 elements/ }, configured);
    const spread = `{"resourceType":"Patient","extension":[${Array(10).fill(`{"extension":[${Array(400).fill('{}').join(',')}]}`).join(',')}]}`;
    await expectRefused('Patient', spread, { status: 413, diagnostics: /more than 4000 JSON values/ }, configured);
  });
});

describe('the process', () => {
  it('runs with Object.prototype frozen', () => {
    if (!t.running) return; // only visible in-process
    expect(Object.isFrozen(Object.prototype)).toBe(true);
    const target = {} as Record<string, unknown>;
    expect(() => Object.assign(Object.getPrototypeOf(target), { polluted: true })).toThrow(TypeError);
    expect(target.polluted).toBeUndefined();
  });
});
