import crypto from 'node:crypto';
import { loadConfig } from '../config/config';
import { QUERY_CANCELED } from './cancellation';
import { openDatabase } from './database';
import { freshReads } from './freshReads';

/** A read whose runs are resolved by hand, with the order of what happened. */
function manualRead() {
  const log: string[] = [];
  const pending: { resolve: (v: number) => void; reject: (e: Error) => void }[] = [];
  let runs = 0;
  const read = () =>
    new Promise<number>((resolve, reject) => {
      const run = ++runs;
      log.push(`start ${run}`);
      pending.push({ resolve: (v) => (log.push(`end ${run}`), resolve(v)), reject });
    });
  return { read, log, pending, runs: () => runs };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('fresh reads', () => {
  it('a lone caller gets a read of its own, started when it asks', async () => {
    const m = manualRead();
    const get = freshReads(m.read);
    const a = get();
    expect(m.log).toEqual(['start 1']);
    m.pending[0].resolve(7);
    expect(await a).toBe(7);
    const b = get();
    expect(m.log).toEqual(['start 1', 'end 1', 'start 2']);
    m.pending[1].resolve(8);
    expect(await b).toBe(8);
  });

  it('callers who ask while a read runs share the next one, started after that read ends (never the one already running)', async () => {
    const m = manualRead();
    const get = freshReads(m.read);
    const first = get();
    const [b, c, d] = [get(), get(), get()];
    expect(m.runs()).toBe(1);
    m.pending[0].resolve(1);
    expect(await first).toBe(1);
    await settle();
    expect(m.log).toEqual(['start 1', 'end 1', 'start 2']);
    // one asking now, while the second runs, waits for a third
    const e = get();
    m.pending[1].resolve(2);
    expect(await Promise.all([b, c, d])).toEqual([2, 2, 2]);
    await settle();
    expect(m.runs()).toBe(3);
    m.pending[2].resolve(3);
    expect(await e).toBe(3);
  });

  it('a failed read fails the callers it serves; the next caller starts another', async () => {
    const m = manualRead();
    const get = freshReads(m.read);
    const first = get();
    const shared = [get(), get()];
    m.pending[0].reject(new Error('down'));
    await expect(first).rejects.toThrow('down');
    await settle();
    m.pending[1].reject(new Error('still down'));
    for (const s of shared) await expect(s).rejects.toThrow('still down');
    const later = get();
    expect(m.runs()).toBe(3);
    m.pending[2].resolve(9);
    expect(await later).toBe(9);
  });

  it('a read shared by requests is not stopped when the client of the request that started it goes away', async () => {
    const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
    const db = await openDatabase(
      loadConfig({ PORT: '0', DATA_DIR: ':memory:', ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}) }),
    );
    try {
      const request = db.forRequest();
      // the request's handle works while its client is there, in and out of a transaction
      expect(((await request.knex.raw('SELECT 1 AS n')) as { rows: { n: number }[] }).rows[0].n).toBe(1);
      expect(await request.knex.transaction(async (trx) => ((await trx.raw('SELECT 2 AS n')) as { rows: { n: number }[] }).rows[0].n)).toBe(2);
      const get = freshReads(async () => Number(((await request.shared.raw('SELECT 41 + 1 AS n')) as { rows: { n: number }[] }).rows[0].n));
      request.abort();
      // the same statement through the gone request's own handle is refused, on the pool as in a transaction
      await expect(request.knex.raw('SELECT 1')).rejects.toMatchObject({ code: QUERY_CANCELED });
      await expect(request.knex.transaction((trx) => trx.raw('SELECT 1'))).rejects.toMatchObject({ code: QUERY_CANCELED });
      // the shared handle, and the database's own, still work
      await expect(get()).resolves.toBe(42);
      expect(((await db.knex.raw('SELECT 3 AS n')) as { rows: { n: number }[] }).rows[0].n).toBe(3);
      // a client gone while its transaction runs: the transaction's next statement is refused, and it rolls back
      const during = db.forRequest();
      await db.knex.raw('CREATE TABLE gone_test (n int)');
      await expect(
        during.knex.transaction(async (trx) => {
          await trx.raw('INSERT INTO gone_test VALUES (1)');
          during.abort();
          await trx.raw('INSERT INTO gone_test VALUES (2)');
        }),
      ).rejects.toMatchObject({ code: QUERY_CANCELED });
      expect(((await db.knex.raw('SELECT count(*)::int AS n FROM gone_test')) as { rows: { n: number }[] }).rows[0].n).toBe(0);
    } finally {
      if (schema) await db.knex.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    }
  });
});
