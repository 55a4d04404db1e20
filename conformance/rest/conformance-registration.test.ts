import { http, startTarget, Target } from '../harness';
import { knowProfiles } from '../../src/interactions/conformanceResources';
import { createServerValidator } from '../../src/validation/forServer';

/**
 * A conformance resource is known to the validator only once its transaction commits,
 * and then to every worker (docs/decisions/008-access-model.md, "In-process caches are
 * derived, never authoritative").
 */

const valueSet = (url: string, id?: string) => ({
  resourceType: 'ValueSet',
  ...(id ? { id } : {}),
  url,
  status: 'active',
  compose: { include: [{ system: 'http://example.org/fhir/CodeSystem/colours', concept: [{ code: 'red', display: 'Red' }, { code: 'blue', display: 'Blue' }] }] },
});

/** A transaction that writes these ValueSets, then a Patient that is refused: it rolls back. */
const refusedTransaction = (...entries: Record<string, unknown>[]) => ({
  resourceType: 'Bundle',
  type: 'transaction',
  // the Patient is written after the ValueSets (POST, then PUT) and refused
  entry: [...entries, { resource: { resourceType: 'Patient', gender: 'not-a-gender' }, request: { method: 'POST', url: 'Patient' } }],
});

const expandUrl = (url: string) => `ValueSet/$expand?url=${encodeURIComponent(url)}`;

describe('a conformance resource is registered after its transaction commits', () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(() => t.close());

  it('a ValueSet of a transaction that rolls back is not expanded', async () => {
    const url = 'http://example.org/fhir/ValueSet/rolled-back';
    const bundle = refusedTransaction(
      { resource: valueSet(url), request: { method: 'POST', url: 'ValueSet' } },
      { resource: valueSet(url.replace('rolled-back', 'rolled-back-by-id'), 'vs-rolled-back'), request: { method: 'PUT', url: 'ValueSet/vs-rolled-back' } },
    );
    const res = await http(t.base, '', { method: 'POST', json: bundle });
    expect([400, 422]).toContain(res.status);

    expect((await http(t.base, 'ValueSet/vs-rolled-back/$expand')).status).toBe(404);
    const byUrl = await http(t.base, expandUrl(url));
    expect(byUrl.status).toBe(422);
    expect(byUrl.body.issue[0].diagnostics).toMatch(/not known/);
    expect((await http(t.base, expandUrl(url.replace('rolled-back', 'rolled-back-by-id')))).status).toBe(422);
  });

  it('the same transaction without the refused entry commits, and its ValueSet is expanded', async () => {
    const url = 'http://example.org/fhir/ValueSet/committed';
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: valueSet(url), request: { method: 'POST', url: 'ValueSet' } }] };
    expect((await http(t.base, '', { method: 'POST', json: bundle })).status).toBe(200);
    const expansion = await http(t.base, expandUrl(url));
    expect(expansion.status).toBe(200);
    expect(expansion.body.expansion.contains.map((c: { code: string }) => c.code)).toEqual(['red', 'blue']);
  });

  it('a ValueSet the validator cannot use is refused before anything is written', async () => {
    const url = 'http://example.org/fhir/ValueSet/unusable';
    // a pattern RE2 cannot run: refused with 422 (src/validation/userPatterns.ts)
    const unusable = { ...valueSet(url), compose: { include: [{ system: 'http://example.org/cs', filter: [{ property: 'code', op: 'regex', value: '(a)\\1' }] }] } };
    const res = await http(t.base, 'ValueSet', { method: 'POST', json: unusable });
    expect(res.status).toBe(422);
    expect((await http(t.base, `ValueSet?url=${encodeURIComponent(url)}`)).body.total).toBe(0);
  });
});

/** Another worker: a second server on the same PostgreSQL schema, as a second process would be. */
async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (process.env.DATABASE_URL) {
  console.info('conformance-registration: PostgreSQL, two servers on one schema (every worker sees what another committed)');
  describe('every worker sees a conformance resource another one committed (PostgreSQL)', () => {
    let first: Target;
    let second: Target;
    beforeAll(async () => {
      first = await startTarget();
      // the first server's schema: the two share one database, as workers do
      second = await startTarget({ DATABASE_SCHEMA: first.running!.ctx.config.databaseSchema! });
    });
    afterAll(async () => {
      await second.close();
      await first.close();
    });

    it('a ValueSet created through one server is expanded by the other, and gone from it once deleted', async () => {
      const url = 'http://example.org/fhir/ValueSet/shared';
      expect((await http(second.base, expandUrl(url))).status).toBe(422);
      const created = await http(first.base, 'ValueSet', { method: 'POST', json: valueSet(url) });
      expect(created.status).toBe(201);
      expect(await eventually(async () => (await http(second.base, expandUrl(url))).status === 200)).toBe(true);

      const changed = { ...valueSet(url), id: created.body.id, compose: { include: [{ system: 'http://example.org/fhir/CodeSystem/colours', concept: [{ code: 'green' }] }] } };
      expect((await http(first.base, `ValueSet/${created.body.id}`, { method: 'PUT', json: changed })).status).toBe(200);
      const codes = async () => ((await http(second.base, expandUrl(url))).body?.expansion?.contains ?? []).map((c: { code: string }) => c.code).join();
      expect(await eventually(async () => (await codes()) === 'green')).toBe(true);

      expect((await http(first.base, `ValueSet/${created.body.id}`, { method: 'DELETE' })).status).toBe(200);
      expect(await eventually(async () => (await http(second.base, expandUrl(url))).status === 422)).toBe(true);
    });

    it('a worker asked for a profile it does not know loads it from the database at once, notified or not', async () => {
      const url = `http://example.org/fhir/StructureDefinition/read-through-${Date.now()}`;
      // a validator that follows no notification: only the read on a miss can teach it the profile
      const ctx = { ...second.running!.ctx, validator: createServerValidator() };
      await knowProfiles(ctx, [url]);
      expect(ctx.validator.hasProfile(url)).toBe(false);
      const profile = {
        resourceType: 'StructureDefinition',
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
      expect((await http(first.base, 'StructureDefinition', { method: 'POST', json: profile })).status).toBe(201);
      await knowProfiles(ctx, [url]);
      expect(ctx.validator.hasProfile(url)).toBe(true);
    });

    it('a ValueSet of a transaction that rolls back on one server is never known to the other', async () => {
      const url = 'http://example.org/fhir/ValueSet/shared-rolled-back';
      const bundle = refusedTransaction({ resource: valueSet(url), request: { method: 'POST', url: 'ValueSet' } });
      expect([400, 422]).toContain((await http(first.base, '', { method: 'POST', json: bundle })).status);
      // a committed change after it: once the other server has it, it has seen everything before it
      const marker = 'http://example.org/fhir/ValueSet/shared-marker';
      expect((await http(first.base, 'ValueSet', { method: 'POST', json: valueSet(marker) })).status).toBe(201);
      expect(await eventually(async () => (await http(second.base, expandUrl(marker))).status === 200)).toBe(true);
      expect((await http(second.base, expandUrl(url))).status).toBe(422);
    });
  });
} else {
  console.info('conformance-registration: embedded database, one process: the test of two workers on one schema runs with DATABASE_URL only');
}
