import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { startTarget, Target } from '../harness';
import { A07, consent, document as documentResource, G15, ircp, Json, ref, REPORT, requests } from '../accessFixtures';
import { RECORD_REFUSAL_SYSTEM } from '../../src/access/policy/recordState';

/**
 * A write into a record racing a lifecycle operation on it (docs/decisions/017-record-lifecycle.md,
 * amendment of 2026-12-06). On PostgreSQL each side is held at a chosen point by a gate: a
 * transaction of the test, on a connection of its own, that inserts (without committing)
 * the row the held side is about to insert; the other side is then sent, and the test
 * watches who waits for whom in `pg_blocking_pids`. The outcome is one of two: the write
 * committed before the operation (which waited for it, and saw it), or it is refused as a
 * write into a closed record; never a version in a record after its closure. The embedded
 * database (one connection) runs the two one after the other: the same outcomes hold.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, send, mint } = requests(() => t);
const knex = (): Knex => t.running!.ctx.db.knex;
const onPostgres = () => t.running!.ctx.db.kind === 'postgres';
const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Course-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  tok.gp = await mint(ref(x.gp));
});

/** An open record the general practitioner deposits in (declared consent), with one document of theirs; the patient's token. */
async function record(name: string): Promise<{ patient: Json; doc: Json; token: string }> {
  const patient = await create({ resourceType: 'Patient', name: [{ family: `${name}-${RUN}` }], birthDate: '1980-01-01' });
  await create(consent(patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  const doc = await create(documentResource(patient, REPORT, ref(x.gp), [], undefined, `first of ${name} ${RUN}`));
  return { patient, doc, token: await mint(ref(patient), 'patient/*.cruds') };
}

/** A request in flight, and whether it has been answered. */
function inFlight(p: Promise<{ status: number; body: any }>): { answer: Promise<{ status: number; body: any }>; answered: () => boolean } {
  let done = false;
  const answer = p.finally(() => {
    done = true;
  });
  return { answer, answered: () => done };
}

const pause = () => new Promise((r) => setTimeout(r, 20));

/** Waits until `blocker`'s transaction holds up another backend (its pid), or until `answered` says the request watched was answered instead. */
async function heldBy(watch: Knex, blocker: number, answered: () => boolean): Promise<number | undefined> {
  for (;;) {
    const rows = (await watch.raw('SELECT pid FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))', [blocker])).rows as { pid: number }[];
    if (rows[0]) return rows[0].pid;
    if (answered()) return undefined;
    await pause();
  }
}

/**
 * Runs `gated` held at the row `gate` inserts (PostgreSQL), sends `other` while it is held,
 * and lets it go: what `other` did while `gated` was held (`waited`: blocked by it), and both answers.
 */
async function race(gate: (trx: Knex.Transaction) => Promise<unknown>, gated: () => Promise<any>, other: () => Promise<any>) {
  if (!onPostgres()) {
    // one connection: the two requests are served one after the other, in either order
    const [a, b] = await Promise.all([gated(), other()]);
    return { waited: undefined, cycle: false, first: a, second: b };
  }
  const trx = await knex().transaction();
  const watch = knex();
  try {
    const gatePid = Number((await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    await gate(trx);
    const held = inFlight(gated());
    const heldPid = await heldBy(watch, gatePid, held.answered);
    if (heldPid === undefined) throw new Error(`the gated request was answered without waiting for the gate: ${JSON.stringify((await held.answer).body)}`);
    const sent = inFlight(other());
    const otherPid = await heldBy(watch, heldPid, sent.answered);
    await trx.rollback();
    // until both are answered: does either wait for the other while the other waits for it (a deadlock, until PostgreSQL breaks it)?
    let cycle = false;
    while (otherPid !== undefined && !(held.answered() && sent.answered())) {
      const rows = (await watch.raw('SELECT pid, pg_blocking_pids(pid)::text AS by FROM pg_stat_activity WHERE pid = ANY(?::int[])', [`{${heldPid},${otherPid}}`])).rows as { pid: number; by: string }[];
      const blocks = (a: number, b: number) => rows.some((r) => Number(r.pid) === b && r.by.replace(/[{}]/g, '').split(',').map(Number).includes(a));
      if (blocks(heldPid, otherPid) && blocks(otherPid, heldPid)) cycle = true;
      await pause();
    }
    return { waited: otherPid !== undefined, cycle, first: await held.answer, second: await sent.answer };
  } finally {
    if (!trx.isCompleted()) await trx.rollback();
  }
}

/** The gate that holds a write of version `versionId` of `Type/id` in `compartment` at its history row. */
const historyGate = (compartment: string, type: string, id: string, versionId: number) => (trx: Knex.Transaction) =>
  trx.raw(`INSERT INTO resource_history (compartment, resource_type, id, version_id, last_updated, deleted, body, method) VALUES (?, ?, ?, ?, now(), false, NULL, 'PUT')`, [compartment, type, id, versionId]);

/** The gate that holds a closure at its `record_closure` row (after it took the record's lock and wrote the Patient's new version). */
const closureGate = (compartment: string) => (trx: Knex.Transaction) =>
  trx.raw(`INSERT INTO record_closure (compartment, state, mode, closed_at, retain_until) VALUES (?, 'closed', 'archive', now(), now())`, [compartment]);

/** A write into the record by the general practitioner: their document hidden from the patient (a visibility label, decision 021). */
const updated = (doc: Json) => send('PUT', ref(doc), tok.gp, { ...doc, meta: { security: [{ system: A07, code: 'INVISIBLE_PATIENT' }] } });
const close = (token: string, patient: Json, mode: 'archive' | 'delete') => send('POST', `Patient/${patient.id}/$close?mode=${mode}`, token, { resourceType: 'Parameters' });
const detailsCode = (body: Json) => body?.issue?.[0]?.details?.coding?.[0];

async function rowsOf(table: string, compartment: string, where = ''): Promise<number> {
  return Number((await knex().raw(`SELECT count(*)::int AS n FROM ${table} WHERE compartment = ?${where}`, [compartment])).rows[0].n);
}

describe('a write and a closure of the same record', () => {
  it('a write past its state check holds the closure back: the closure waits for its commit, and archives what it wrote', async () => {
    const r = await record('Ecrit');
    const out = await race(historyGate(r.patient.id, 'DocumentReference', r.doc.id, 2), () => updated(r.doc), () => close(r.token, r.patient, 'archive'));
    if (onPostgres()) expect([out.waited, out.cycle]).toEqual([true, false]);
    // the embedded database may have served the closure first: then the write was refused as one into a closed record
    const refused = !onPostgres() && out.first.status === 403;
    if (refused) expect(detailsCode(out.first.body)).toEqual({ system: RECORD_REFUSAL_SYSTEM, code: 'RECORD_CLOSED' });
    expect([out.first.status, out.second.status]).toEqual([refused ? 403 : 200, 200]);
    // the version is in the record the closure archived, written before it: the closure's version of the Patient came after
    const row = (await knex().raw(`SELECT version_id, body::text AS body FROM resource WHERE compartment = ? AND resource_type = 'DocumentReference' AND id = ?`, [r.patient.id, r.doc.id])).rows[0];
    if (refused) expect(Number(row.version_id)).toBe(1);
    else expect([Number(row.version_id), JSON.parse(row.body).meta.security]).toEqual([2, [{ system: A07, code: 'INVISIBLE_PATIENT' }]]);
    expect(await rowsOf('record_closure', r.patient.id)).toBe(1);
  });

  it('a deposit sent while a closure holds the record waits for it, then is refused as a deposit into a closed record', async () => {
    const r = await record('Ferme');
    const description = `deposited during the closure ${RUN}`;
    const deposit = () => send('POST', 'DocumentReference', tok.gp, documentResource(r.patient, REPORT, ref(x.gp), [], undefined, description));
    const out = await race(closureGate(r.patient.id), () => close(r.token, r.patient, 'archive'), deposit);
    if (onPostgres()) expect([out.waited, out.cycle]).toEqual([true, false]);
    expect(out.first.status).toBe(200);
    // the embedded database may have served the deposit first: then it was written before the closure
    const refused = out.second.status === 403;
    if (onPostgres() || refused) {
      expect(out.second.status).toBe(403);
      expect(detailsCode(out.second.body)).toEqual({ system: RECORD_REFUSAL_SYSTEM, code: 'RECORD_CLOSED' });
    } else expect(out.second.status).toBe(201);
    const stored = await rowsOf('resource', r.patient.id, ` AND resource_type = 'DocumentReference' AND body ->> 'description' = '${description}'`);
    expect(stored).toBe(refused ? 0 : 1);
  });

  it('a deletion of the record waits for a write in flight and then deletes what it wrote: no row of the record is left, and nothing deadlocks', async () => {
    const r = await record('Efface');
    const out = await race(historyGate(r.patient.id, 'DocumentReference', r.doc.id, 2), () => updated(r.doc), () => close(r.token, r.patient, 'delete'));
    if (onPostgres()) expect([out.waited, out.cycle]).toEqual([true, false]);
    expect([out.first.status, out.second.status]).toEqual([200, 200]);
    for (const table of ['resource', 'resource_history', 'resource_locator', 'idx_reference']) expect([table, await rowsOf(table, r.patient.id)]).toEqual([table, 0]);
  });

  it('a write that locks a resource of the record while its deletion holds the record waits before taking any row of it: no deadlock', async () => {
    const r = await record('Verrou');
    // an administrators' cohort naming the patient: the deletion locks it (to erase the patient from it) after the record's lock
    const cohort = await create({ resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: ref(r.patient) } }] });
    const cohortGate = (trx: Knex.Transaction) => trx.raw(`SELECT id FROM resource WHERE compartment = '' AND resource_type = 'Group' AND id = ? FOR UPDATE`, [cohort.id]);
    const out = await race(cohortGate, () => close(r.token, r.patient, 'delete'), () => updated(r.doc));
    if (onPostgres()) expect([out.waited, out.cycle]).toEqual([true, false]);
    expect(out.first.status).toBe(200);
    // the deletion came first: the write finds nothing to change (and may not create at that id); on the embedded database the write
    // may also have come first, and been deleted with the record
    expect(onPostgres() ? [403, 404] : [200, 403, 404]).toContain(out.second.status);
    for (const table of ['resource', 'resource_history', 'resource_locator']) expect([table, await rowsOf(table, r.patient.id)]).toEqual([table, 0]);
  });
});

describe("the server's own writes for a caller", () => {
  it('closing a conversation while the record is being closed waits for the closure, then is refused: the message is not rewritten', async () => {
    const r = await record('Message');
    const opening = await create(
      {
        resourceType: 'Communication',
        status: 'in-progress',
        subject: { reference: ref(r.patient) },
        sender: { reference: ref(x.gp) },
        recipient: [{ reference: ref(r.patient) }],
        sent: new Date().toISOString(),
        payload: [{ contentString: `message ${RUN}` }],
      },
      tok.gp,
    );
    const out = await race(closureGate(r.patient.id), () => close(r.token, r.patient, 'archive'), () => send('POST', `Communication/${opening.id}/$close`, tok.gp));
    if (onPostgres()) expect([out.waited, out.cycle]).toEqual([true, false]);
    expect(out.first.status).toBe(200);
    const current = (await knex().raw(`SELECT version_id, body ->> 'status' AS status FROM resource WHERE compartment = ? AND resource_type = 'Communication' AND id = ?`, [r.patient.id, opening.id])).rows[0];
    if (onPostgres() || out.second.status === 403) {
      expect([out.second.status, detailsCode(out.second.body)?.code]).toEqual([403, 'RECORD_CLOSED']);
      expect([Number(current.version_id), current.status]).toEqual([1, 'in-progress']);
    } else expect([out.second.status, current.status]).toEqual([200, 'completed']);
  });
});

describe('writes into the same open record', () => {
  it('do not wait for each other: a deposit is answered while another write into the record is held', async () => {
    const r = await record('Partage');
    const deposit = () => send('POST', 'DocumentReference', tok.gp, documentResource(r.patient, REPORT, ref(x.gp), [], undefined, `alongside ${RUN}`));
    const out = await race(historyGate(r.patient.id, 'DocumentReference', r.doc.id, 2), () => updated(r.doc), deposit);
    if (onPostgres()) expect(out.waited).toBe(false);
    expect([out.first.status, out.second.status]).toEqual([200, 201]);
  });

  it('a write after the closure is refused; the record reopened by the legal-hold administrator takes deposits again', async () => {
    const r = await record('Rouvert');
    expect((await close(r.token, r.patient, 'archive')).status).toBe(200);
    const deposit = () => send('POST', 'DocumentReference', tok.gp, documentResource(r.patient, REPORT, ref(x.gp), [], undefined, `after ${RUN}`));
    const refused = await deposit();
    expect([refused.status, detailsCode(refused.body)?.code]).toEqual([403, 'RECORD_CLOSED']);
    const legalHold = await mint(undefined, 'admin legal-hold');
    expect((await send('POST', `Patient/${r.patient.id}/$reopen`, legalHold, { resourceType: 'Parameters' })).status).toBe(200);
    expect((await deposit()).status).toBe(201);
  });
});
