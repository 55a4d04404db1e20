import crypto from 'node:crypto';
import knexFactory from 'knex';
import { loadConfig } from '../config/config';
import { copyOut, parseBinaryCopy, parseBinaryCopyRows, sqlLiteral } from './copyBinary';
import { Database, openDatabase } from './database';
import { CopyOutReader } from './embeddedCopyOut';

/**
 * `copyOut` on the database the suite runs on (the embedded one reads the COPY's protocol
 * messages, src/store/embeddedCopyOut.ts): every byte comes back as stored, in the order of
 * the rows; a refused COPY is an error with the database's message and leaves the
 * connection usable.
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

/** Every byte value, then random bytes: `size` in all. */
function content(size: number): Buffer {
  const data = crypto.randomBytes(size);
  for (let i = 0; i < 256; i++) data[i] = i;
  return data;
}

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

/** Protocol messages: a type byte, a length that counts itself, the body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('CopyOutReader', () => {
  const data = [Buffer.from('PGCOPY'), Buffer.alloc(0), content(300)];
  const output = Buffer.concat([
    message('H', Buffer.from([0, 0, 1, 0, 0])),
    ...data.map((d) => message('d', d)),
    message('c', Buffer.alloc(0)),
    message('C', Buffer.from('COPY 1\0')),
    message('Z', Buffer.from('I')),
  ]);

  it('gathers the CopyData, however the output is cut', () => {
    for (let cut = 0; cut <= output.length; cut++) {
      const reader = new CopyOutReader();
      reader.push(output.subarray(0, cut));
      reader.push(output.subarray(cut));
      expect(reader.result()).toEqual(Buffer.concat(data));
    }
    const byByte = new CopyOutReader();
    for (let i = 0; i < output.length; i++) byByte.push(output.subarray(i, i + 1));
    expect(byByte.result()).toEqual(Buffer.concat(data));
  });

  it('keeps nothing of the pieces it was given (they are reused memory)', () => {
    const reader = new CopyOutReader();
    const piece = Buffer.from(output);
    reader.push(piece);
    piece.fill(0);
    expect(reader.result()).toEqual(Buffer.concat(data));
  });

  it('throws the ErrorResponse, and refuses an output that ends inside a message', () => {
    const reader = new CopyOutReader();
    reader.push(message('E', Buffer.from('SERROR\0C42703\0Mcolumn "x" does not exist\0\0')));
    expect(() => reader.result()).toThrow(expect.objectContaining({ message: 'column "x" does not exist', code: '42703' }));
    const cut = new CopyOutReader();
    cut.push(output.subarray(0, 12));
    expect(() => cut.result()).toThrow('inside a protocol message');
  });
});
