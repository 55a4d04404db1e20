import crypto from 'node:crypto';
import knexFactory from 'knex';
import { loadConfig } from '../config/config';
import { CHUNK_BYTES, writeBinaryContent } from './binaryContent';
import { copyOut, parseBinaryCopy, parseBinaryCopyRows, sqlLiteral } from './copyBinary';
import { Database, openDatabase } from './database';

/**
 * Binary content written by chunks as binary statement parameters, on the database the
 * suite runs on (the embedded one sends them through src/store/embeddedClient.ts): every
 * byte value arrives as it was, the text parameters beside them too, a failed statement
 * leaves the connection usable, and the statements go through knex like any other. And
 * read back by `copyOut` (the embedded database reads the COPY's protocol messages,
 * src/store/embeddedCopyOut.ts): every byte as stored, in the order of the rows; a refused
 * COPY is an error with the database's message and leaves the connection usable.
 */
const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
let db: Database;

beforeAll(async () => {
  db = await openDatabase(loadConfig({ DATA_DIR: ':memory:', ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}) }));
}, 180000);

afterAll(async () => {
  await db?.close();
  if (schema) {
    const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  }
});

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

/** Every byte value, then random bytes: `size` in all. */
function content(size: number): Buffer {
  const data = crypto.randomBytes(size);
  for (let i = 0; i < 256; i++) data[i] = i;
  return data;
}

async function storedChunks(compartment: string, id: string, versionId: number): Promise<{ seq: number; size: number; md5: string }[]> {
  const result = await db.knex.raw<{ rows: { seq: number; size: number; md5: string }[] }>(
    'SELECT seq, length(data) AS size, md5(data) AS md5 FROM binary_chunk WHERE compartment = ? AND id = ? AND version_id = ? ORDER BY seq',
    [compartment, id, versionId],
  );
  return result.rows.map((r) => ({ seq: Number(r.seq), size: Number(r.size), md5: r.md5 }));
}

describe('writing Binary content by chunks', () => {
  it('stores every byte as it was, with the text parameters beside it, in one statement per 16 chunks', async () => {
    const data = content(40 * CHUNK_BYTES + 1000);
    const compartment = "Patient/o'brien-é";
    const statements: string[] = [];
    const count = (q: { sql: string }) => statements.push(q.sql);
    db.knex.on('query', count);
    let size: number;
    try {
      size = await db.knex.transaction((trx) => writeBinaryContent(trx, compartment, 'doc-1', 1, { contentType: 'application/pdf', data }));
    } finally {
      db.knex.off('query', count);
    }
    expect(size).toBe(data.length);
    // 41 chunks: three statements of at most 16, and the content's row (BEGIN and COMMIT besides)
    expect(statements.filter((s) => s.startsWith('INSERT INTO binary_chunk'))).toHaveLength(3);
    expect(statements.filter((s) => s.startsWith('INSERT INTO binary_content'))).toHaveLength(1);
    const expected = Array.from({ length: 41 }, (_, seq) => {
      const chunk = data.subarray(seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES);
      return { seq, size: chunk.length, md5: md5(chunk) };
    });
    expect(await storedChunks(compartment, 'doc-1', 1)).toEqual(expected);
  });

  it('an empty content is stored as no chunk', async () => {
    expect(await db.knex.transaction((trx) => writeBinaryContent(trx, 'Patient/p1', 'empty', 1, { contentType: 'text/plain', data: Buffer.alloc(0) }))).toBe(0);
    expect(await storedChunks('Patient/p1', 'empty', 1)).toEqual([]);
  });

  it('refuses a chunk already stored with the database error, and the connection answers the next statement', async () => {
    const data = content(CHUNK_BYTES + 10);
    await db.knex.transaction((trx) => writeBinaryContent(trx, 'Patient/p2', 'twice', 1, { contentType: 'application/pdf', data }));
    await expect(db.knex.transaction((trx) => writeBinaryContent(trx, 'Patient/p2', 'twice', 1, { contentType: 'application/pdf', data }))).rejects.toMatchObject({ code: '23505' });
    const after = await db.knex.raw<{ rows: { n: number | string }[] }>('SELECT count(*) AS n FROM binary_chunk WHERE id = ?', ['twice']);
    expect(Number(after.rows[0].n)).toBe(2);
    expect(await storedChunks('Patient/p2', 'twice', 1)).toEqual([
      { seq: 0, size: CHUNK_BYTES, md5: md5(data.subarray(0, CHUNK_BYTES)) },
      { seq: 1, size: 10, md5: md5(data.subarray(CHUNK_BYTES)) },
    ]);
  });
});

describe('copyOut', () => {
  it('gives every byte of every row as stored, in order', async () => {
    const values = [content(300 * 1024), Buffer.alloc(0), content(5000), content(64 * 1024 + 3)];
    const select = values.map((v, i) => `SELECT ${i} AS n, decode(${sqlLiteral(v.toString('hex'))}, 'hex') AS data`).join(' UNION ALL ');
    const file = await copyOut(db.knex, `SELECT data FROM (${select}) v ORDER BY n`);
    expect(parseBinaryCopy(file)).toEqual(values);
  });

  it('gives text, NULL and numbers of several columns', async () => {
    const rows = parseBinaryCopyRows(await copyOut(db.knex, `SELECT 'é''t' AS a, NULL::text AS b, 42::text AS c`), 3);
    expect(rows).toEqual([[Buffer.from("é't"), null, Buffer.from('42')]]);
  });

  it('refuses with the database message, and the connection serves the next statement', async () => {
    await expect(copyOut(db.knex, 'SELECT no_such_column FROM (SELECT 1 AS a) v')).rejects.toThrow(/no_such_column/);
    const again = await db.knex.raw<{ rows: { one: number }[] }>('SELECT 1 AS one');
    expect(Number(again.rows[0].one)).toBe(1);
    // in a transaction: it is refused there, and a later one works
    await expect(db.knex.transaction((trx) => copyOut(trx, 'SELECT no_such_column FROM (SELECT 1 AS a) v'))).rejects.toThrow(/no_such_column/);
    expect(parseBinaryCopy(await db.knex.transaction((trx) => copyOut(trx, `SELECT 'x'::bytea`)))).toEqual([Buffer.from('x')]);
  });
});
