import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { http, startTarget, Target } from '../harness';
import { consent, document, Json, ircp, ref, REPORT, requests } from '../accessFixtures';
import { PARTITIONED_TABLES, partitionTables } from '../../src/store/partitioning';

/**
 * The patient tables hash-partitioned by compartment (docs/decisions/018-partitioning.md):
 * every statement a read by id, a vread, a patient-scoped search, a compartment search and
 * $everything send is run again under EXPLAIN ANALYZE, and must have read at most the
 * partition of the record it names (and the directory's, for a caller who reads the
 * directory). With DATABASE_PARTITIONS the server partitions its schema itself; otherwise
 * (embedded, plain PostgreSQL) it is partitioned here, right after start-up, by the same function.
 */
const PARTITIONS = 4;
let t: Target;
let knex: Knex;
const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};

/** The statements the server sends while `fn` runs. */
async function statementsOf(fn: () => Promise<unknown>): Promise<{ sql: string; bindings: unknown[] }[]> {
  const seen: { sql: string; bindings: unknown[] }[] = [];
  const listener = (q: { sql: string; bindings?: unknown[] }) => seen.push({ sql: q.sql, bindings: q.bindings ?? [] });
  knex.on('query', listener);
  try {
    await fn();
  } finally {
    knex.removeListener('query', listener);
  }
  // reads only: the writes of a read (its audit trail) are not run twice
  return seen.filter((s) => /^\s*(WITH|SELECT)/i.test(s.sql) && !/\b(INSERT INTO|UPDATE \w+ \w* ?SET|DELETE FROM)\b/i.test(s.sql));
}

type PlanNode = { 'Relation Name'?: string; 'Actual Loops'?: number; Plans?: PlanNode[]; [k: string]: unknown };

/** The partitions a statement read rows from (scans that ran at least once), by table. */
async function partitionsRead(statement: { sql: string; bindings: unknown[] }): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  await knex.transaction(async (trx) => {
    // the statement as sent, numbered parameters and all, back into knex's placeholders
    const order: unknown[] = [];
    const sql = statement.sql.replace(/\$(\d+)\b/g, (_, n) => {
      order.push(statement.bindings[Number(n) - 1]);
      return '?';
    });
    const res = await trx.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, order as Knex.RawBinding[]);
    const raw = res.rows[0]['QUERY PLAN'];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw)[0];
    const walk = (node: PlanNode) => {
      const name = node['Relation Name'];
      const m = name ? /^(.*)_p(\d+)$/.exec(name) : null;
      if (m && (node['Actual Loops'] ?? 0) > 0 && (PARTITIONED_TABLES as readonly string[]).includes(m[1])) {
        const set = out.get(m[1]) ?? new Set<string>();
        set.add(name!);
        out.set(m[1], set);
      }
      for (const child of node.Plans ?? []) walk(child);
      for (const value of Object.values(node)) if (value && typeof value === 'object' && !Array.isArray(value) && 'Node Type' in (value as object)) walk(value as PlanNode);
    };
    walk(plan.Plan);
    for (const sub of plan.Plans ?? []) walk(sub);
    await trx.rollback();
  }).catch((e) => {
    if (!/Transaction rejected with non-error: undefined/.test(String(e))) throw e;
  });
  return out;
}

/** The partition of `resource` holding the rows of a compartment. */
async function partitionOf(compartment: string): Promise<string> {
  const rows = (await knex.raw(`SELECT tableoid::regclass::text AS part FROM resource WHERE compartment = ? LIMIT 1`, [compartment])).rows;
  return String(rows[0].part).replace(/^.*\./, '').replace(/^resource_/, '');
}

/** Every statement `fn` sends reads, of each partitioned table, only the partitions of `allowed` (suffixes `p0`…). */
async function expectConfined(fn: () => Promise<{ status: number }>, allowed: string[], expectedStatus = 200): Promise<void> {
  const statements = await statementsOf(async () => expect((await fn()).status).toBe(expectedStatus));
  let partitioned = 0;
  for (const s of statements) {
    for (const [table, parts] of await partitionsRead(s)) {
      partitioned++;
      const suffixes = [...parts].map((p) => p.slice(table.length + 1));
      if (!suffixes.every((p) => allowed.includes(p))) throw new Error(`${table}: read ${[...parts].join(', ')} (allowed ${allowed.join(', ')}) in\n${s.sql}`);
    }
  }
  // the check saw the statements that read the patient tables
  expect(partitioned).toBeGreaterThan(0);
}

beforeAll(async () => {
  t = await startTarget();
  knex = t.running!.ctx.db.knex;
  // partitioned by the server itself with DATABASE_PARTITIONS; otherwise (embedded, plain PostgreSQL) now, before any data
  await partitionTables(knex, Number(process.env.DATABASE_URL && process.env.DATABASE_PARTITIONS) || PARTITIONS);
  const kinds = (await knex.raw(`SELECT relname, relkind FROM pg_class WHERE relname = ANY(?::text[]) AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`, [`{${PARTITIONED_TABLES.join(',')}}`])).rows;
  expect(kinds.filter((k: { relkind: string }) => k.relkind === 'p').length).toBe(PARTITIONED_TABLES.length);

  x.gp = await create({ resourceType: 'Practitioner', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: `8${String(crypto.randomInt(1e11)).padStart(11, '0')}` }], name: [{ family: `Part-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante', code: '10' }] }] });
  // patients until two records sit in partitions other than each other's and the directory's
  const patients: Json[] = [];
  const directory = await partitionOf('');
  for (let i = 0; i < 40 && patients.length < 2; i++) {
    const p = await create({ resourceType: 'Patient', name: [{ family: `Part-${RUN}-${i}` }], birthDate: '1970-01-01' });
    const part = await partitionOf(p.id);
    if (part !== directory && !patients.some((q) => q.part === part)) patients.push({ ...p, part });
  }
  expect(patients.length).toBe(2);
  [x.p1, x.p2] = patients;
  x.directory = directory;
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.gp = await mint(ref(x.gp));
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.doc = await create(document(x.p1, REPORT, ref(x.gp)));
  x.doc2 = await create(document(x.p2, REPORT, ref(x.gp)));
  await create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: ref(x.p1) }, valueQuantity: { value: 72 } });
});
afterAll(() => t.close());

describe('on hash-partitioned tables, a statement that names a record reads its partition only', () => {
  it('a read and a vread by id, of a document (located) and of a Patient', async () => {
    await expectConfined(() => get(`DocumentReference/${x.doc.id}`), [x.p1.part]);
    await expectConfined(() => get(`DocumentReference/${x.doc.id}/_history/1`), [x.p1.part]);
    await expectConfined(() => get(`Patient/${x.p1.id}`), [x.p1.part]);
  });

  it('an instance history', async () => {
    await expectConfined(() => get(`DocumentReference/${x.doc.id}/_history`), [x.p1.part]);
  });

  it('searches naming the patient: patient=, subject=Patient/x, Patient/x/*, $everything', async () => {
    for (const path of [
      `DocumentReference?patient=${x.p1.id}`,
      `DocumentReference?subject=Patient/${x.p1.id}&type=http://loinc.org|${REPORT.code}`,
      `Observation?subject=Patient/${x.p1.id}&code=8867-4&_sort=-date`,
      `Patient/${x.p1.id}/DocumentReference`,
    ]) {
      await expectConfined(() => get(path), [x.p1.part]);
    }
    // with the directory resources the record's resources reference (its practitioners)
    await expectConfined(() => get(`Patient/${x.p1.id}/$everything`), [x.p1.part, x.directory]);
  });

  it('the same searches as the patient and as a professional with access to that one record', async () => {
    // their visibility adds the directory (practitioners named by the documents)
    for (const token of [tok.p1, tok.gp]) {
      await expectConfined(() => get(`DocumentReference?patient=${x.p1.id}`, token), [x.p1.part, x.directory]);
      await expectConfined(() => get(`DocumentReference/${x.doc.id}`, token), [x.p1.part, x.directory]);
      await expectConfined(() => get(`Patient/${x.p1.id}/$everything`, token), [x.p1.part, x.directory]);
    }
  });

  it('a document of another record stays hidden through the same paths', async () => {
    const search = await get(`DocumentReference?patient=${x.p2.id}`, tok.p1);
    expect(search.status === 403 || (search.status === 200 && (search.body.entry ?? []).length === 0)).toBe(true);
    expect((await get(`DocumentReference/${x.doc2.id}`, tok.p1)).status).toBe(404);
    expect((await get(`DocumentReference/${x.doc2.id}/_history/1`, tok.p1)).status).toBe(404);
  });

  it('writes land in the record: update, a move to another record, and reads after it', async () => {
    // (an Observation: a stored document's subject does not change, decision 029)
    const obs = await create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: ref(x.p1) }, valueQuantity: { value: 60 } });
    const moved = { ...obs, subject: { reference: ref(x.p2) } };
    const res = await http(t.base, `Observation/${obs.id}`, { method: 'PUT', json: moved });
    expect(res.status).toBe(200);
    const read = await get(`Observation/${obs.id}`);
    expect(read.body.subject.reference).toBe(ref(x.p2));
    // its older version stays in the record it left, and is found there
    const history = await get(`Observation/${obs.id}/_history`);
    expect(history.body.entry.map((e: Json) => e.resource.meta.versionId)).toEqual(['2', '1']);
    expect((await get(`Observation/${obs.id}/_history/1`)).body.subject.reference).toBe(ref(x.p1));
    await expectConfined(() => get(`Observation/${obs.id}/_history`), [x.p1.part, x.p2.part]);
    // the record it left no longer lists it; the patient it left no longer reads it
    expect((await get(`Observation?patient=${x.p1.id}&_id=${obs.id}`)).body.entry ?? []).toEqual([]);
    expect((await get(`Observation/${obs.id}`, tok.p1)).status).toBe(404);
    // a stored document does not move: its PUT changes its status, labels or archiving only (405)
    expect((await http(t.base, `DocumentReference/${x.doc.id}`, { method: 'PUT', json: { ...x.doc, subject: { reference: ref(x.p2) } } })).status).toBe(405);
  });
});
