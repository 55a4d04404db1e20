import { http, startTarget, Target } from '../harness';

/**
 * Ids made only of dots are refused wherever an id is accepted (`.` and `..` are path
 * segments: such a resource could never be read back), and a client's X-Request-Id is
 * echoed only when it is short and plain.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const patient = (id: string) => ({ resourceType: 'Patient', id, name: [{ family: 'Dots' }] });

describe('ids made only of dots', () => {
  it.each(['...', '....'])('"%s" is refused by PUT (update as create) with 400', async (id) => {
    const res = await http(t.base, `Patient/${id}`, { method: 'PUT', json: patient(id) });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/not a valid resource id/);
  });

  it.each(['%2E', '%2E%2E'])('"%s" in a URL is a path segment, never an id: nothing is created', async (segment) => {
    const res = await http(t.base, `Patient/${segment}`, { method: 'PUT', json: patient(decodeURIComponent(segment)) });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it.each(['.', '..'])('"%s" is refused in a transaction, and nothing of it is written', async (id) => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Sibling' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: patient(id), request: { method: 'PUT', url: `Patient/${id}` } },
      ],
    };
    const res = await http(t.base, '', { method: 'POST', json: bundle });
    expect(res.status).toBe(400);
    expect((await http(t.base, 'Patient?family=Sibling')).body.total ?? 0).toBe(0);
  });

  it.each(['.', '..'])('"%s" is refused in a batch entry with 400', async (id) => {
    const res = await http(t.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'batch', entry: [{ resource: patient(id), request: { method: 'PUT', url: `Patient/${id}` } }] } });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toMatch(/^400/);
  });

  it('a conditional update cannot create one from the id in its body', async () => {
    const res = await http(t.base, 'Patient?identifier=urn:test:dots|1', { method: 'PUT', json: { ...patient('..'), identifier: [{ system: 'urn:test:dots', value: '1' }] } });
    expect(res.status).toBe(400);
  });

  it('ids with dots among other characters are still accepted', async () => {
    for (const id of ['a.b', '.a', 'a..', '1.2.250']) {
      const put = await http(t.base, `Patient/${id}`, { method: 'PUT', json: patient(id) });
      expect([id, put.status]).toEqual([id, 201]);
      expect((await http(t.base, `Patient/${id}`)).body.id).toBe(id);
    }
  });
});

describe('X-Request-Id', () => {
  it('echoes a short plain identifier', async () => {
    for (const id of ['abc-123', 'trace:01HZX.42_a', 'x'.repeat(64)]) {
      const res = await http(t.base, 'metadata', { headers: { 'x-request-id': id } });
      expect(res.headers.get('x-request-id')).toBe(id);
    }
  });

  it('replaces a long or unusual one by a generated identifier', async () => {
    for (const id of ['x'.repeat(65), 'a b', 'a"b', '<script>', 'é', 'a/b', 'a\tb']) {
      const res = await http(t.base, 'metadata', { headers: { 'x-request-id': id } });
      const echoed = res.headers.get('x-request-id');
      expect(echoed).not.toBe(id);
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
