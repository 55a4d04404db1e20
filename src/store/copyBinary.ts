import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { ContentKey, isEmbedded } from './binaryContent';
import { literal } from './searchSql';

/**
 * Binary content out of the database by PostgreSQL's binary COPY format: the bytes come as
 * they are stored. A statement's results carry bytea as hex text (node-postgres has no
 * binary result format): twice the bytes on the wire, then decoded to a string and parsed
 * back in JavaScript (on PGlite byte by byte, some sixty times slower; docs/operations/memory.md).
 * On the embedded database the COPY's protocol messages are read as PGlite writes them
 * (src/store/embeddedCopyOut.ts; its `/dev/blob` would hand them over as a Blob, native
 * memory the collector does not count); PostgreSQL streams it to the connection
 * (pg-copy-streams).
 */

/** Groups an async sequence into arrays of at most `size`. */
export async function* chunkBatches<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** The rows of the binary COPY file `file`, each of `columns` values (null for NULL), in order. */
export function parseBinaryCopyRows(file: Buffer, columns: number): (Buffer | null)[][] {
  if (!file.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not a binary COPY file');
  let at = SIGNATURE.length + 4;
  at += 4 + file.readInt32BE(at);
  const rows: (Buffer | null)[][] = [];
  for (;;) {
    const fields = file.readInt16BE(at);
    at += 2;
    if (fields === -1) return rows;
    if (fields !== columns) throw new Error(`binary COPY: ${fields} fields in a row, ${columns} expected`);
    const row: (Buffer | null)[] = [];
    for (let i = 0; i < fields; i++) {
      const length = file.readInt32BE(at);
      at += 4;
      if (length < 0) {
        row.push(null);
        continue;
      }
      row.push(file.subarray(at, at + length));
      at += length;
    }
    rows.push(row);
  }
}

/** The values of the one-column binary COPY file `file`, in order (a NULL is refused). */
export function parseBinaryCopy(file: Buffer): Buffer[] {
  return parseBinaryCopyRows(file, 1).map(([value]) => {
    if (value === null) throw new Error('binary COPY: a NULL value');
    return value;
  });
}

/** A string literal of SQL text (standard_conforming_strings, PostgreSQL's default): COPY takes no parameters. */
export function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL character cannot be in a SQL literal');
  return literal(value);
}

export function sqlInteger(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`${n} is not an integer`);
  return String(n);
}

/**
 * The result of `select` as a binary COPY file. Its values are SQL text (COPY takes no
 * parameters): literals made by sqlLiteral and sqlInteger only. On PostgreSQL it runs on
 * the transaction's connection, or on one of the pool's for the time of the COPY.
 */
export async function copyOut(db: Knex | Knex.Transaction, select: string): Promise<Buffer> {
  const copy = `COPY (${select}) TO STDOUT WITH (FORMAT binary)`;
  if (isEmbedded(db)) {
    const result = (await db.raw(copy).options({ copyOut: true })) as { copy: Buffer };
    return result.copy;
  }
  const client = db.client as { acquireConnection(): Promise<PoolClient>; releaseConnection(c: PoolClient): Promise<void>; emit(event: 'query', q: object): void };
  const connection = await client.acquireConnection();
  // seen by whoever watches knex's statements, like the ones knex runs itself
  client.emit('query', { sql: copy, bindings: [] });
  try {
    const parts: Buffer[] = [];
    for await (const part of connection.query(copyTo(copy))) parts.push(part as Buffer);
    return Buffer.concat(parts);
  } finally {
    // a transaction hands out its own connection and keeps it
    if (!db.isTransaction) await client.releaseConnection(connection);
  }
}

/** Chunks `from` to `to` (sequence numbers, inclusive) of a content, in order. */
export async function copyOutBinary(db: Knex | Knex.Transaction, key: ContentKey, from: number, to: number): Promise<Buffer[]> {
  const select =
    `SELECT data FROM binary_chunk WHERE compartment = ${sqlLiteral(key.compartment)} AND id = ${sqlLiteral(key.id)}` +
    ` AND version_id = ${sqlInteger(key.versionId)} AND seq BETWEEN ${sqlInteger(from)} AND ${sqlInteger(to)} ORDER BY seq`;
  return parseBinaryCopy(await copyOut(db, select));
}
