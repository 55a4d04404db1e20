import { authorization, http, startTarget, statementRecorder, Target } from '../../conformance/harness';
import { document, PATIENT_DOC, REPORT } from '../../conformance/accessFixtures';
import { withIns } from '../../conformance/frenchFixtures';
import { forgetCompartment, hintedCompartment, rememberCompartment } from './locationHints';

/** SQL statements per hot-path interaction: a regression here is a performance bug. */
let t: Target;
let counted: ReturnType<typeof statementRecorder>;
beforeAll(async () => {
  t = await startTarget();
  counted = statementRecorder(t);
});
afterAll(() => t.close());

// a local identifier: a national one is claimed first (below)
const patient = { resourceType: 'Patient', name: [{ family: 'Bernard' }], identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.7', value: 'IPP-180029912345610' }] };

describe('statements per interaction', () => {
  it('create is one statement (resource, history and every index kind in one round trip)', async () => {
    const { result, sql } = await counted(() => http(t.base, 'Patient', { method: 'POST', json: patient }));
    expect(result.status).toBe(201);
    expect(sql).toHaveLength(1);
    expect(sql[0]).toMatch(/INSERT INTO resource_history/);
    expect(sql[0]).toMatch(/INSERT INTO idx_token/);
  });

  it('a create carrying an INS claims it, then writes in one statement, inside a transaction (docs/decisions/014-integrity.md)', async () => {
    const { result, sql } = await counted(() => http(t.base, 'Patient', { method: 'POST', json: withIns(patient, 'urn:oid:1.2.250.1.213.1.4.8', '180029912345610') }));
    expect(result.status).toBe(201);
    expect(sql.map((s) => s.trim().split(/\s+/)[0].toUpperCase())).toEqual(['BEGIN;', 'INSERT', 'WITH', 'COMMIT;']);
    expect(sql[1]).toMatch(/INSERT INTO identifier_claim/);
  });

  it('read is one statement', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const { result, sql } = await counted(() => http(t.base, `Patient/${created.body.id}`));
    expect(result.status).toBe(200);
    expect(sql).toHaveLength(1);
  });

  it("a read of a record's resource by id this process has not seen is a locator look-up, then one read by its full key (docs/decisions/018-partitioning.md)", async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const doc = await http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, REPORT, `Patient/${owner.body.id}`) });
    expect(doc.status).toBe(201);
    // as when another worker wrote it
    forgetCompartment('DocumentReference', doc.body.id);
    const { result, sql } = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`));
    expect(result.status).toBe(200);
    expect(sql).toHaveLength(2);
    expect(sql[0]).toMatch(/FROM resource_locator/);
    expect(sql[1]).toMatch(/WHERE r\.compartment = \$1 AND r\.resource_type = \$2 AND r\.id = \$3/);
  });

  it('a read of a resource this process wrote or located is one read by its full key where it was (src/store/locationHints.ts)', async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const doc = await http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, REPORT, `Patient/${owner.body.id}`) });
    const afterCreate = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`));
    expect(afterCreate.result.status).toBe(200);
    expect(afterCreate.sql).toHaveLength(1);
    expect(afterCreate.sql[0]).toMatch(/WHERE r\.compartment = \$1 AND r\.resource_type = \$2 AND r\.id = \$3/);
    forgetCompartment('DocumentReference', doc.body.id);
    await http(t.base, `DocumentReference/${doc.body.id}`);
    const afterLocator = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`));
    expect(afterLocator.sql).toHaveLength(1);
  });

  it('a hint that names the wrong record is not believed: the read misses there, asks the locator and reads where it says', async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const other = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const doc = await http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, REPORT, `Patient/${owner.body.id}`) });
    // as when another worker moved it to the record it is in
    rememberCompartment('DocumentReference', doc.body.id, other.body.id);
    const { result, sql } = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`));
    expect(result.status).toBe(200);
    expect(result.body.subject.reference).toBe(`Patient/${owner.body.id}`);
    expect(sql).toHaveLength(3);
    expect(sql[1]).toMatch(/FROM resource_locator/);
    expect(hintedCompartment('DocumentReference', doc.body.id)).toBe(owner.body.id);
  });

  it("the patient's read of their document: the actor with the record's facts where the document was last seen, the read where the facts found it, the AuditEvent", async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const doc = await http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, REPORT, `Patient/${owner.body.id}`) });
    expect(doc.status).toBe(201);
    const token = await t.issuer!.mint({ sub: 'p', fhirUser: `Patient/${owner.body.id}`, scope: 'patient/*.rs' });
    const { result, sql } = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`, { headers: { authorization: `Bearer ${token}` } }));
    expect(result.status).toBe(200);
    expect(sql).toHaveLength(3);
    expect(sql[0]).toMatch(/^WITH target AS/);
    expect(sql[1]).toMatch(/WHERE r\.compartment = \$1 AND r\.resource_type = \$2 AND r\.id = \$3/);
    expect(sql[2]).toMatch(/INSERT INTO resource_history/);
    expect(sql[2]).toMatch(/AuditEvent/);
    // not seen by this process: the locator first
    forgetCompartment('DocumentReference', doc.body.id);
    const unseen = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`, { headers: { authorization: `Bearer ${token}` } }));
    expect(unseen.result.status).toBe(200);
    expect(unseen.sql).toHaveLength(4);
    expect(unseen.sql[0]).toMatch(/FROM resource_locator/);
    expect(unseen.sql[1]).toMatch(/^WITH target AS/);
  });

  it("a hint that names another record does not lend that record's facts: the patient's read asks the locator and decides on the document's own record", async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const other = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const doc = await http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, REPORT, `Patient/${owner.body.id}`) });
    const ownerToken = await t.issuer!.mint({ sub: 'p', fhirUser: `Patient/${owner.body.id}`, scope: 'patient/*.rs' });
    const otherToken = await t.issuer!.mint({ sub: 'q', fhirUser: `Patient/${other.body.id}`, scope: 'patient/*.rs' });
    rememberCompartment('DocumentReference', doc.body.id, other.body.id);
    const asOther = await counted(() => http(t.base, `DocumentReference/${doc.body.id}`, { headers: { authorization: `Bearer ${otherToken}` } }));
    expect(asOther.result.status).toBe(404);
    expect(asOther.sql.some((s) => /FROM resource_locator/.test(s))).toBe(true);
    rememberCompartment('DocumentReference', doc.body.id, other.body.id);
    const asOwner = await http(t.base, `DocumentReference/${doc.body.id}`, { headers: { authorization: `Bearer ${ownerToken}` } });
    expect(asOwner.status).toBe(200);
    expect(asOwner.body.id).toBe(doc.body.id);
  });

  it('a retrieval of a stored document (ITI-68): the read where its content was written, the content with its chunks in one statement', async () => {
    const bytes = Buffer.alloc(300 * 1024, 7);
    const created = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/pdf', ...authorization(t.base) } });
    expect(created.status).toBe(201);
    const id = /Binary\/([^/]+)/.exec(created.headers.get('location') ?? '')![1];
    const { result, sql } = await counted(async () => {
      const res = await fetch(`${t.base}/Binary/${id}`, { headers: { accept: 'application/pdf', ...authorization(t.base) } });
      return { status: res.status, data: Buffer.from(await res.arrayBuffer()) };
    });
    expect(result.status).toBe(200);
    expect(result.data.equals(bytes)).toBe(true);
    // the Binary was located when its content was written: no locator look-up
    expect(sql).toHaveLength(2);
    expect(sql[0]).toMatch(/FROM resource r/);
    // the bytes as they are stored, not as hex text (src/store/copyBinary.ts)
    expect(sql[1]).toMatch(/^COPY \(SELECT c\.content_type.*LEFT JOIN binary_chunk.*TO (STDOUT|'\/dev\/blob') WITH \(FORMAT binary\)$/s);
  });

  it('update is a locking read and one write inside a transaction', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const { result, sql } = await counted(() => http(t.base, `Patient/${created.body.id}`, { method: 'PUT', json: { ...patient, id: created.body.id } }));
    expect(result.status).toBe(200);
    expect(sql.map((s) => s.trim().split(/\s+/)[0].toUpperCase())).toEqual(['BEGIN;', 'SELECT', 'WITH', 'COMMIT;']);
  });

  it('a patch is one locking read and one write inside a transaction', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const { result, sql } = await counted(() =>
      http(t.base, `Patient/${created.body.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json-patch+json' },
        body: JSON.stringify([{ op: 'add', path: '/gender', value: 'female' }]),
      }),
    );
    expect(result.status).toBe(200);
    expect(sql.map((s) => s.trim().split(/\s+/)[0].toUpperCase())).toEqual(['BEGIN;', 'SELECT', 'WITH', 'COMMIT;']);
  });

  it("a deposit into a record takes the record's share lock in its state check's statement; an update takes it before the locator's lock (docs/decisions/017-record-lifecycle.md)", async () => {
    const owner = await http(t.base, 'Patient', { method: 'POST', json: patient });
    const token = await t.issuer!.mint({ sub: 'p', fhirUser: `Patient/${owner.body.id}`, scope: 'patient/*.cruds' });
    const headers = { authorization: `Bearer ${token}` };
    const deposit = () => http(t.base, 'DocumentReference', { method: 'POST', json: document(owner.body, PATIENT_DOC, `Patient/${owner.body.id}`), headers });
    expect((await deposit()).status).toBe(201);
    const created = await counted(deposit);
    expect(created.result.status).toBe(201);
    const locking = (sql: string[]) => sql.filter((s) => /FOR KEY SHARE/.test(s));
    // the facts the write is decided on, read from the locked Patient row: no statement of its own
    expect(locking(created.sql)).toHaveLength(1);
    expect(locking(created.sql)[0]).toMatch(/^WITH held AS/);
    expect(created.sql).toHaveLength(9);
    const doc = created.result.body;
    const updated = await counted(() => http(t.base, `DocumentReference/${doc.id}`, { method: 'PUT', json: { ...doc, status: 'superseded' }, headers }));
    expect(updated.result.status).toBe(200);
    const kinds = updated.sql.map((s) => (/FOR KEY SHARE/.test(s) ? (/^WITH held/.test(s) ? 'facts' : 'record') : /FROM resource_locator .*FOR UPDATE/.test(s) ? 'locator' : /FOR UPDATE/.test(s) ? 'row' : 'other'));
    expect(kinds.filter((k) => k !== 'other')).toEqual(['record', 'locator', 'row', 'facts']);
  });

  it('a one-entry transaction is BEGIN, one write, COMMIT', async () => {
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:1', resource: patient, request: { method: 'POST', url: 'Patient' } }] };
    const { result, sql } = await counted(() => http(t.base, '', { method: 'POST', json: bundle }));
    expect(result.status).toBe(200);
    expect(sql).toHaveLength(3);
  });

  it('a 50-entry transaction still writes in one statement', async () => {
    const entry = Array.from({ length: 50 }, (_, i) => ({
      fullUrl: `urn:uuid:p${i}`,
      resource: { ...patient, identifier: [{ system: 'urn:test', value: `b${i}` }] },
      request: { method: 'POST', url: 'Patient' },
    }));
    const { result, sql } = await counted(() => http(t.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry } }));
    expect(result.status).toBe(200);
    expect(sql).toHaveLength(3);
  });
});
