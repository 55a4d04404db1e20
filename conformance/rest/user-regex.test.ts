import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';

/**
 * Regular expressions that clients supply run in linear time (RE2): a pattern that makes a
 * backtracking engine take minutes (`(a+)+$` on "aaa…ab") is answered correctly at once,
 * in a FHIRPath Patch path, in the regex filter of an uploaded ValueSet and in the
 * invariant of an uploaded profile; a pattern RE2 cannot run (backreference, lookaround)
 * is refused with the pattern named, and nothing is written.
 *
 * The strings below are short enough that a backtracking engine would take seconds, not
 * hours, so that a regression fails on the time bounds instead of hanging the suite.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const HOSTILE_28 = 'a'.repeat(28) + 'b'; // (a+)+$ : 2^28 paths for a backtracking engine
const HOSTILE_40 = 'a'.repeat(40) + 'b'; // (a|aa)+$ : Fibonacci(40) paths

let probe: string;
beforeAll(async () => {
  const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Probe' }] } });
  probe = `Patient/${res.body.id}`;
});

/** Sends the request; it is answered within a generous bound, and the server answers a read promptly after it. */
async function promptly<T>(request: Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await request;
  expect(Date.now() - started).toBeLessThan(5_000);
  const readStarted = Date.now();
  const read = await http(t.base, probe, { signal: AbortSignal.timeout(2_000) });
  expect(read.status).toBe(200);
  expect(Date.now() - readStarted).toBeLessThan(2_000);
  return result;
}

const operation = (type: string, path: string, parts: Record<string, unknown>[] = []) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...parts],
});

describe('FHIRPath Patch paths', () => {
  it("answers matches('(a+)+$') on a long 'aaa…b' string correctly and at once", async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: HOSTILE_28 }, { family: 'aaaa' }] } });
    const res = await promptly(
      http(t.base, `Patient/${created.body.id}`, {
        method: 'PATCH',
        json: { resourceType: 'Parameters', parameter: [operation('replace', "Patient.name.where(family.matches('(a+)+$')).family", [{ name: 'value', valueString: 'Matched' }])] },
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body.name.map((n: any) => n.family)).toEqual([HOSTILE_28, 'Matched']);
  });

  it('refuses a pattern RE2 cannot run with 400 naming it, and writes nothing', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'aa' }] } });
    const res = await http(t.base, `Patient/${created.body.id}`, {
      method: 'PATCH',
      json: { resourceType: 'Parameters', parameter: [operation('delete', "Patient.name.where(family.matches('(a)\\\\1'))")] },
    });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('regular expression "(a)\\1" is not supported');
    expect((await http(t.base, `Patient/${created.body.id}`)).body).toEqual(created.body);
  });
});

describe('regex filters of uploaded ValueSets', () => {
  const system = `http://example.org/fhir/CodeSystem/regex-${crypto.randomUUID()}`;
  beforeAll(async () => {
    const cs = await http(t.base, 'CodeSystem', {
      method: 'POST',
      json: { resourceType: 'CodeSystem', url: system, status: 'active', content: 'complete', concept: [{ code: 'aa' }, { code: 'aaaa' }, { code: HOSTILE_40 }, { code: 'ba' }] },
    });
    expect(cs.status).toBe(201);
  });
  const valueSet = (url: string, pattern: string) => ({ resourceType: 'ValueSet', url, status: 'active', compose: { include: [{ system, filter: [{ property: 'code', op: 'regex', value: pattern }] }] } });

  it("expands a filter '(a|aa)+$' over a long 'aaa…b' code correctly and at once", async () => {
    const url = `http://example.org/fhir/ValueSet/regex-${crypto.randomUUID()}`;
    expect((await http(t.base, 'ValueSet', { method: 'POST', json: valueSet(url, '(a|aa)+$') })).status).toBe(201);
    const expanded = await promptly(http(t.base, `ValueSet/$expand?url=${encodeURIComponent(url)}`));
    expect(expanded.status).toBe(200);
    expect(expanded.body.expansion.contains.map((c: any) => c.code).sort()).toEqual(['aa', 'aaaa']);
  });

  it('refuses a ValueSet whose filter RE2 cannot run with 422 naming the pattern, and writes nothing', async () => {
    const url = `http://example.org/fhir/ValueSet/regex-${crypto.randomUUID()}`;
    const res = await http(t.base, 'ValueSet', { method: 'POST', json: valueSet(url, '(a)\\1') });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain('regular expression "(a)\\1" is not supported');
    expect(res.body.issue[0].expression).toEqual(['ValueSet.compose.include[0].filter[0].value']);
    expect((await http(t.base, `ValueSet?url=${encodeURIComponent(url)}&_summary=count`)).body.total).toBe(0);
  });
});

describe('invariants of uploaded profiles', () => {
  const profile = (id: string, expression: string) => ({
    resourceType: 'StructureDefinition',
    id,
    url: `http://example.org/fhir/StructureDefinition/${id}`,
    name: 'RegexProfile',
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
    differential: { element: [{ id: 'Patient', path: 'Patient', constraint: [{ key: 'rx-1', severity: 'error', human: 'no family name made of a only', expression }] }] },
  });

  it("evaluates an invariant using matches('^(a+)+$') on a long 'aaa…b' name correctly and at once", async () => {
    const id = `regex-${crypto.randomUUID().slice(0, 8)}`;
    const sd = profile(id, "name.family.all(matches('^(a+)+$').not())");
    expect((await http(t.base, `StructureDefinition/${id}`, { method: 'PUT', json: sd })).status).toBe(201);
    const claimed = (family: string) => ({ resourceType: 'Patient', meta: { profile: [sd.url] }, name: [{ family }] });
    const accepted = await promptly(http(t.base, 'Patient', { method: 'POST', json: claimed(HOSTILE_28) }));
    expect(accepted.status).toBe(201);
    const refused = await promptly(http(t.base, 'Patient', { method: 'POST', json: claimed('aaaa') }));
    expect(refused.status).toBe(422);
    expect(refused.body.issue.map((i: any) => i.diagnostics).join(' ')).toContain('rx-1');
  });

  it('refuses a profile whose invariant holds a pattern RE2 cannot run with 422 naming it, and writes nothing', async () => {
    const id = `regex-${crypto.randomUUID().slice(0, 8)}`;
    const res = await http(t.base, `StructureDefinition/${id}`, { method: 'PUT', json: profile(id, "name.family.all(matches('^(?!a)'))") });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain('regular expression "^(?!a)" is not supported');
    expect((await http(t.base, `StructureDefinition/${id}`)).status).toBe(404);
  });
});
