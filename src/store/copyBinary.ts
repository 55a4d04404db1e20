import type { Knex } from 'knex';
import type { ContentKey } from './binaryContent';
import { literal } from './searchSql';

/**
 * Binary content out of the embedded database by PostgreSQL's binary COPY format through
 * PGlite's `/dev/blob`: the bytes leave its WebAssembly memory as they are. A statement's
 * results would carry bytea as hex text, parsed in JavaScript byte by byte: some sixty
 * times slower (docs/operations/memory.md).
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

/** The values of the one-column binary COPY file `file`, in order (a NULL is refused). */
export function parseBinaryCopy(file: Buffer): Buffer[] {
  if (!file.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not a binary COPY file');
  let at = SIGNATURE.length + 4;
  at += 4 + file.readInt32BE(at);
  const values: Buffer[] = [];
  for (;;) {
    const fields = file.readInt16BE(at);
    at += 2;
    if (fields === -1) return values;
    if (fields !== 1) throw new Error(`binary COPY: ${fields} fields in a row, 1 expected`);
    const length = file.readInt32BE(at);
    at += 4;
    if (length < 0) throw new Error('binary COPY: a NULL value');
    values.push(file.subarray(at, at + length));
    at += length;
  }
}

/** A string literal of SQL text (standard_conforming_strings, PostgreSQL's default): COPY takes no parameters. */
export function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL character cannot be in a SQL literal');
  return literal(value);
}

function sqlInteger(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`${n} is not an integer`);
  return String(n);
}

/** Chunks `from` to `to` (sequence numbers, inclusive) of a content, in order. */
export async function copyOutBinary(db: Knex | Knex.Transaction, key: ContentKey, from: number, to: number): Promise<Buffer[]> {
  const select =
    `SELECT data FROM binary_chunk WHERE compartment = ${sqlLiteral(key.compartment)} AND id = ${sqlLiteral(key.id)}` +
    ` AND version_id = ${sqlInteger(key.versionId)} AND seq BETWEEN ${sqlInteger(from)} AND ${sqlInteger(to)} ORDER BY seq`;
  const result = (await db.raw(`COPY (${select}) TO '/dev/blob' WITH (FORMAT binary)`)) as { blob?: Blob };
  if (!result.blob) return [];
  return parseBinaryCopy(Buffer.from(await result.blob.arrayBuffer()));
}
