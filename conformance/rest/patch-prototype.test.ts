import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';

/**
 * A patch may only change elements of the resource: a FHIRPath Patch path or a JSON Patch
 * pointer through __proto__, constructor or prototype is refused with 400 before anything
 * is applied, nothing is written, and the rest of the server is not affected (a write into
 * Object.prototype.handling once made every later search strict, for every client).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const operation = (type: string, path: string, parts: Record<string, unknown>[] = []) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...parts],
});
const parameters = (...ops: unknown[]) => ({ resourceType: 'Parameters', parameter: ops });
const strict = { name: 'value', valueString: 'strict' };

async function createPatient(): Promise<any> {
  const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', identifier: [{ system: 'http://example.org/fhir/patch-prototype', value: crypto.randomUUID() }], name: [{ family: 'Martin' }] } });
  expect(res.status).toBe(201);
  return res.body;
}

/** No key was added to the prototype of every object (white-box: the server runs in this process). */
function expectPrototypeUntouched(): void {
  if (!t.running) return;
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(({} as Record<string, unknown>).handling).toBeUndefined();
}

/** Searches stay lenient (an unknown parameter is ignored) unless the client asks for strict handling. */
async function expectSearchesStillLenient(): Promise<void> {
  expect((await http(t.base, 'Patient?not-a-parameter=x&_count=1')).status).toBe(200);
  expect((await http(t.base, 'Patient?not-a-parameter=x&_count=1', { headers: { prefer: 'handling=strict' } })).status).toBe(400);
}

describe('FHIRPath Patch', () => {
  it.each([
    ['add through Patient.__proto__', parameters(operation('add', 'Patient.__proto__', [{ name: 'name', valueString: 'handling' }, strict])), 'Patient.__proto__'],
    ['add through name.constructor.prototype', parameters(operation('add', 'Patient.name.constructor.prototype', [{ name: 'name', valueString: 'handling' }, strict])), 'Patient.name.constructor.prototype'],
    ['replace through %resource.__proto__', parameters(operation('replace', '%resource.__proto__.handling', [strict])), '%resource.__proto__.handling'],
    ['an add named __proto__', parameters(operation('add', 'Patient', [{ name: 'name', valueString: '__proto__' }, { name: 'value', part: [{ name: 'handling', valueString: 'strict' }] }])), '__proto__'],
    ['a value part named __proto__', parameters(operation('add', 'Patient', [{ name: 'name', valueString: 'telecom' }, { name: 'value', part: [{ name: '__proto__', part: [{ name: 'handling', valueString: 'strict' }] }] }])), '__proto__'],
    ['a path naming an element Patient does not have', parameters(operation('replace', 'Patient.handling', [strict])), 'Patient.handling'],
  ])('refuses %s with 400 naming it, writes nothing, and later searches stay lenient', async (_what, body, named) => {
    const created = await createPatient();
    const res = await http(t.base, `Patient/${created.id}`, { method: 'PATCH', json: body });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain(named);
    const read = await http(t.base, `Patient/${created.id}`);
    expect(read.body).toEqual(created);
    expectPrototypeUntouched();
    await expectSearchesStillLenient();
  });

  it('still applies a patch whose paths are elements of the model', async () => {
    const created = await createPatient();
    const res = await http(t.base, `Patient/${created.id}`, {
      method: 'PATCH',
      json: parameters(operation('add', 'Patient.name[0]', [{ name: 'name', valueString: 'given' }, { name: 'value', valueString: 'Léa' }]), operation('add', 'Patient', [{ name: 'name', valueString: 'deceasedBoolean' }, { name: 'value', valueBoolean: false }])),
    });
    expect(res.status).toBe(200);
    expect(res.body.name[0].given).toEqual(['Léa']);
    expect(res.body.deceasedBoolean).toBe(false);
  });
});

describe('JSON Patch', () => {
  const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
  it.each([
    ['add /__proto__/handling', [{ op: 'add', path: '/__proto__/handling', value: 'strict' }]],
    ['add /constructor/prototype/handling', [{ op: 'add', path: '/constructor/prototype/handling', value: 'strict' }]],
    ['add /name/0/constructor/handling', [{ op: 'add', path: '/name/0/constructor/handling', value: 'strict' }]],
    ['copy from /constructor', [{ op: 'copy', from: '/constructor', path: '/text' }]],
    ['replace /name/0/__proto__', [{ op: 'replace', path: '/name/0/__proto__', value: {} }]],
  ])('refuses %s with 400, writes nothing, and later searches stay lenient', async (_what, operations) => {
    const created = await createPatient();
    const res = await http(t.base, `Patient/${created.id}`, { method: 'PATCH', json: operations, headers: JSON_PATCH });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/__proto__|constructor/);
    expect((await http(t.base, `Patient/${created.id}`)).body).toEqual(created);
    expectPrototypeUntouched();
    await expectSearchesStillLenient();
  });
});
