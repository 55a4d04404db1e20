import type { Knex } from 'knex';
import fs from 'node:fs';
import type { Session } from './session';

/** Raw content of a Binary: bytes already in memory (base64 `data` of FHIR JSON), or an upload still arriving. */
export type BinarySource = { contentType: string; data: Buffer } | { contentType: string; stream: BinaryStream };

/** An upload spooled to a file (src/http/readBody.ts), read in chunks when it is written: again if the write is retried. */
export class BinaryStream {
  constructor(private readonly file: string) {}

  chunks(): AsyncIterable<Buffer> {
    return fs.createReadStream(this.file, { highWaterMark: CHUNK_BYTES });
  }
}

/** Rows of binary_chunk hold at most this many bytes. */
export const CHUNK_BYTES = 256 * 1024;

async function* pieces(source: BinarySource): AsyncGenerator<Buffer> {
  if ('data' in source) {
    for (let at = 0; at < source.data.length; at += CHUNK_BYTES) yield source.data.subarray(at, at + CHUNK_BYTES);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of source.stream.chunks()) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= CHUNK_BYTES) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, CHUNK_BYTES);
      const rest = all.subarray(CHUNK_BYTES);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/** Writes the content chunk by chunk as it comes, then its content type and size; returns the size. */
export async function writeBinaryContent(db: Knex | Knex.Transaction, compartment: string, id: string, versionId: number, source: BinarySource): Promise<number> {
  let seq = 0;
  let size = 0;
  for await (const piece of pieces(source)) {
    await db.raw('INSERT INTO binary_chunk (compartment, id, version_id, seq, data) VALUES (?, ?, ?, ?, ?)', [compartment, id, versionId, seq++, piece]);
    size += piece.length;
  }
  await db.raw('INSERT INTO binary_content (compartment, id, version_id, content_type, size) VALUES (?, ?, ?, ?, ?)', [compartment, id, versionId, source.contentType, size]);
  return size;
}

const asBuffer = (data: Buffer | Uint8Array) => (Buffer.isBuffer(data) ? data : Buffer.from(data));

/** Chunks fetched per query when content is read back: the bytes held besides the content itself. */
const CHUNKS_PER_QUERY = 16;

export async function readBinaryContent(session: Session, compartment: string, id: string, versionId: number): Promise<{ contentType: string; data: Buffer } | undefined> {
  const rows = await session.query<{ content_type: string; data: Buffer | Uint8Array | null; size: string | number | null }>(
    `SELECT content_type, data, size FROM binary_content WHERE compartment = ? AND id = ? AND version_id = ?`,
    [compartment, id, versionId],
  );
  if (!rows[0]) return undefined;
  if (rows[0].data !== null) return { contentType: rows[0].content_type, data: asBuffer(rows[0].data) };
  // the content is copied into one buffer of its size, a few chunks at a time: held whole once,
  // not once as rows and again as their concatenation
  const data = Buffer.allocUnsafe(Number(rows[0].size));
  let at = 0;
  for (let seq = 0; ; seq += CHUNKS_PER_QUERY) {
    const chunks = await session.query<{ data: Buffer | Uint8Array }>(
      `SELECT data FROM binary_chunk WHERE compartment = ? AND id = ? AND version_id = ? AND seq >= ? AND seq < ? ORDER BY seq`,
      [compartment, id, versionId, seq, seq + CHUNKS_PER_QUERY],
    );
    for (const chunk of chunks) at += asBuffer(chunk.data).copy(data, at);
    if (chunks.length < CHUNKS_PER_QUERY) break;
  }
  if (at !== data.length) throw new Error(`Binary/${id} version ${versionId}: ${at} bytes stored in chunks, ${data.length} recorded`);
  return { contentType: rows[0].content_type, data };
}
