import type { Knex } from 'knex';
import fs from 'node:fs';
import ClientPgLite from 'knex-pglite';
import type { Session } from './session';
import { textArray } from './searchSql';
import { chunkBatches, copyOut, copyOutBinary, parseBinaryCopyRows, sqlInteger, sqlLiteral } from './copyBinary';
import { checkFile, ContentFiles, contentFilesOf, fileBytes, linkFile, placeFile, writeFile } from './contentFiles';

/**
 * Raw content of a Binary: bytes already in memory (base64 `data` of FHIR JSON), an upload
 * still in its spool file, or the content of a stored version (a new version that keeps it,
 * copied inside the database).
 */
export type BinarySource =
  | { contentType: string; data: Buffer }
  | { contentType: string; stream: BinaryStream }
  | { contentType: string; copyOf: ContentKey };

/** The stored version whose content it is. */
export interface ContentKey {
  compartment: string;
  id: string;
  versionId: number;
}

/** An upload spooled to a file (src/http/readBody.ts), read in chunks when it is written: again if the write is retried. */
export class BinaryStream {
  constructor(private readonly file: string) {}

  /** The spool file (placed in the content directory as it is: src/store/contentFiles.ts). */
  get path(): string {
    return this.file;
  }

  chunks(): AsyncIterable<Buffer> {
    return fs.createReadStream(this.file, { highWaterMark: CHUNK_BYTES });
  }

  /**
   * The upload as content to answer with, read from the spool file as it is sent: the file
   * is removed only once the answer has been sent (src/http/app.ts), and holds the very
   * bytes that were stored.
   */
  async content(contentType: string): Promise<StoredContent> {
    const { size } = await fs.promises.stat(this.file);
    const file = this.file;
    return {
      contentType,
      size,
      async *bytes(start = 0, end = size - 1) {
        if (end < start) return;
        for await (const piece of fs.createReadStream(file, { start, end, highWaterMark: CHUNK_BYTES })) yield piece as Buffer;
      },
    };
  }
}

/**
 * Rows of binary_chunk hold exactly this many bytes, the last one of a content fewer: the
 * chunk that holds a byte offset is found by division (ranged reads), never by a scan.
 */
export const CHUNK_BYTES = 256 * 1024;

/**
 * Chunks written or read per statement: 4 MiB, what a statement holds in memory besides
 * the content itself, and few enough statements that their cost is lost in the bytes'.
 */
const CHUNKS_PER_STATEMENT = 16;

async function* pieces(source: Exclude<BinarySource, { copyOf: ContentKey }>): AsyncGenerator<Buffer> {
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
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      yield all.subarray(0, CHUNK_BYTES);
      const rest = all.subarray(CHUNK_BYTES);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/** Whether a knex handle is the embedded database (PGlite), whose statements are sent by src/store/embeddedClient.ts. */
export function isEmbedded(db: Knex | Knex.Transaction): boolean {
  // a transaction's client is made from the client's prototype, not a copy of it
  return db.client instanceof ClientPgLite;
}

/** The embedded database's statements that send Buffer parameters as they are (src/store/embeddedClient.ts). */
const BINARY_PARAMETERS = { binaryParameters: true };

/**
 * Writes the content a batch of chunks at a time as it comes (from the spool file, never
 * whole in memory), then its content type and size; returns the size.
 *
 * Both databases receive the chunks as binary parameters: node-postgres sends a Buffer in
 * binary format, and so does the embedded client with `binaryParameters` (PGlite's own
 * `query` would send hex text built byte by byte: about 5 s for 40 MiB, or with base64
 * text decoded by the database still three times the CPU; docs/operations/memory.md).
 */
export async function writeBinaryContent(db: Knex | Knex.Transaction, compartment: string, id: string, versionId: number, source: BinarySource): Promise<number> {
  const files = contentFilesOf(db);
  if ('copyOf' in source) {
    // the new version's content type is the source's (a PATCH may change it), its bytes those of `copyOf`
    const kept = files ? await keepFile(db, files, compartment, id, versionId, source.contentType, source.copyOf) : undefined;
    if (kept !== undefined) return kept;
    // a new version that keeps the content (a metadata change): copied by the database, not through this process
    const from = source.copyOf;
    await db.raw(
      'INSERT INTO binary_chunk (compartment, id, version_id, seq, data) SELECT ?, ?, ?, seq, data FROM binary_chunk WHERE compartment = ? AND id = ? AND version_id = ?',
      [compartment, id, versionId, from.compartment, from.id, from.versionId],
    );
    const copied = await db.raw<{ rows: { size: string | number | null; legacy: number | null }[] }>(
      'INSERT INTO binary_content (compartment, id, version_id, content_type, data, size) SELECT ?, ?, ?, ?, data, size FROM binary_content WHERE compartment = ? AND id = ? AND version_id = ?' +
        ' RETURNING size, length(data) AS legacy',
      [compartment, id, versionId, source.contentType, from.compartment, from.id, from.versionId],
    );
    if (copied.rows.length !== 1) throw new Error(`Binary/${from.id} version ${from.versionId} has no stored content to keep`);
    return Number(copied.rows[0].size ?? copied.rows[0].legacy ?? 0);
  }
  if (files) {
    const size = 'data' in source ? source.data.length : (await fs.promises.stat(source.stream.path)).size;
    if (size >= files.minBytes) {
      // large content goes to a file, written before its row (docs/decisions/036-binary-content-files.md)
      const name = 'data' in source ? await writeFile(db, files, source.data) : await placeFile(db, files, source.stream.path);
      await insertFileRow(db, name, [compartment, id, versionId, source.contentType, size]);
      return size;
    }
  }
  const embedded = isEmbedded(db);
  // the chunks numbered from `first` on, with their key: one INSERT's text and bindings
  const chunkRows = (batch: Buffer[], first: number) => ({
    sql: `INSERT INTO binary_chunk (compartment, id, version_id, seq, data) VALUES ${batch.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
    bindings: batch.flatMap((piece, i) => [compartment, id, versionId, first + i, piece]),
  });
  const insertContent = 'INSERT INTO binary_content (compartment, id, version_id, content_type, size) VALUES (?, ?, ?, ?, ?)';
  if ('data' in source && source.data.length <= CHUNK_BYTES * CHUNKS_PER_STATEMENT) {
    // content in memory that one statement holds (a document of an MHD submission): its chunks and its type in one round trip
    const batch: Buffer[] = [];
    for (let at = 0; at < source.data.length; at += CHUNK_BYTES) batch.push(source.data.subarray(at, at + CHUNK_BYTES));
    const chunks = chunkRows(batch, 0);
    const content = [compartment, id, versionId, source.contentType, source.data.length];
    const insert = batch.length ? db.raw(`WITH chunks AS (${chunks.sql}) ${insertContent}`, [...chunks.bindings, ...content]) : db.raw(insertContent, content);
    await (embedded ? insert.options(BINARY_PARAMETERS) : insert);
    return source.data.length;
  }
  let seq = 0;
  let size = 0;
  for await (const batch of chunkBatches(pieces(source), CHUNKS_PER_STATEMENT)) {
    const chunks = chunkRows(batch, seq);
    const insert = db.raw(chunks.sql, chunks.bindings);
    await (embedded ? insert.options(BINARY_PARAMETERS) : insert);
    seq += batch.length;
    for (const piece of batch) size += piece.length;
  }
  await db.raw(insertContent, [compartment, id, versionId, source.contentType, size]);
  return size;
}

/** The row of a content kept in a file (every Binary is written in a transaction: its rollback takes the file, src/store/contentFiles.ts). */
async function insertFileRow(db: Knex | Knex.Transaction, name: string, row: [string, string, number, string, number]): Promise<void> {
  await db.raw('INSERT INTO binary_content (compartment, id, version_id, content_type, size, file) VALUES (?, ?, ?, ?, ?, ?)', [...row, name]);
}

/** A new version that keeps content held in a file gets a link of its own to it; undefined: the content is in the database. */
async function keepFile(db: Knex | Knex.Transaction, files: ContentFiles, compartment: string, id: string, versionId: number, contentType: string, from: ContentKey): Promise<number | undefined> {
  const rows = await db.raw<{ rows: { size: string; file: string | null }[] }>(
    'SELECT size::text, file FROM binary_content WHERE compartment = ? AND id = ? AND version_id = ?',
    [from.compartment, from.id, from.versionId],
  );
  const row = rows.rows[0];
  if (!row?.file) return undefined;
  const size = Number(row.size);
  await insertFileRow(db, await linkFile(db, files, row.file), [compartment, id, versionId, contentType, size]);
  return size;
}

/**
 * Stored content, read when it is sent: its bytes come from the database a few chunks at a
 * time (or the byte range asked for, from the chunks that hold it), so a large document is
 * never held whole.
 */
export interface StoredContent {
  contentType: string;
  size: number;
  /** The bytes from `start` to `end` inclusive (the whole content by default), in order. */
  bytes(start?: number, end?: number): AsyncIterable<Buffer>;
}

const asBuffer = (data: Buffer | Uint8Array) => (Buffer.isBuffer(data) ? data : Buffer.from(data));

/** Content already in memory, as stored content. */
export function contentInMemory(contentType: string, data: Buffer): StoredContent {
  return {
    contentType,
    size: data.length,
    async *bytes(start = 0, end = data.length - 1) {
      if (end >= start) yield data.subarray(start, end + 1);
    },
  };
}

/**
 * The content of a stored version: its type and size now, its bytes when they are read.
 * The bytes are read through `session.db`: the pool for a read, whose statements may run
 * after the read's own ended (a version's content never changes once written); a
 * transaction's reads take them while it is open (readWholeContent).
 */
export async function readBinaryContent(
  session: Session,
  compartment: string,
  id: string,
  versionId: number,
  /** `sending`: the bytes will be sent (a GET of the content): a small content comes with its type and size. */
  options: { sending?: boolean } = {},
): Promise<StoredContent | undefined> {
  if (options.sending) {
    const found = await contentWithChunks(session, { compartment, id, versionId });
    if (found !== 'larger') return found;
  }
  const rows = await session.query<{ content_type: string; data: Buffer | Uint8Array | null; size: string | number | null; file: string | null }>(
    `SELECT content_type, data, size, file FROM binary_content WHERE compartment = ? AND id = ? AND version_id = ?`,
    [compartment, id, versionId],
  );
  if (!rows[0]) return undefined;
  // content written before chunks existed (migration 003) is in the row itself
  if (rows[0].data !== null) return contentInMemory(rows[0].content_type, asBuffer(rows[0].data));
  const size = Number(rows[0].size);
  const db = session.db;
  const label = `Binary/${id} version ${versionId}`;
  if (rows[0].file !== null) return await contentInFile(db, rows[0].content_type, size, rows[0].file, label);
  return {
    contentType: rows[0].content_type,
    size,
    bytes: (start = 0, end = size - 1) => chunkReader(chunkSource(db, { compartment, id, versionId }), size, start, end, label),
  };
}

/**
 * Content up to one statement's worth of chunks (4 MiB) whole in the statement that reads
 * its type and size: one round trip fewer for a document of ordinary size, holding no more
 * than the chunk reader holds for one statement. 'larger': only the row was read (its
 * chunks are read as they are sent).
 */
async function contentWithChunks(session: Session, key: ContentKey): Promise<StoredContent | undefined | 'larger'> {
  await session.flush();
  const rows = parseBinaryCopyRows(
    await copyOut(
      session.db,
      `SELECT c.content_type, c.data, c.size::text, k.data, c.file
         FROM binary_content c
         LEFT JOIN binary_chunk k ON c.size <= ${sqlInteger(CHUNKS_PER_STATEMENT * CHUNK_BYTES)} AND k.compartment = c.compartment AND k.id = c.id AND k.version_id = c.version_id
        WHERE c.compartment = ${sqlLiteral(key.compartment)} AND c.id = ${sqlLiteral(key.id)} AND c.version_id = ${sqlInteger(key.versionId)}
        ORDER BY k.seq`,
    ),
    5,
  );
  if (!rows[0]) return undefined;
  const [type, data, sizeText, , file] = rows[0];
  const contentType = type!.toString('utf8');
  if (data !== null) return contentInMemory(contentType, data);
  const size = Number(sizeText!.toString('latin1'));
  if (file !== null) return await contentInFile(session.db, contentType, size, file.toString('utf8'), `Binary/${key.id} version ${key.versionId}`);
  if (size > CHUNKS_PER_STATEMENT * CHUNK_BYTES) return 'larger';
  const chunks = rows.filter((r) => r[3] !== null).map((r) => r[3]!);
  const label = `Binary/${key.id} version ${key.versionId}`;
  // the chunk reader's checks (every chunk there, each of its size), on chunks in memory
  return { contentType, size, bytes: (start = 0, end = size - 1) => chunkReader(async (from, to) => chunks.slice(from, to + 1), size, start, end, label) };
}

/** Bytes read from a content file at a time: few system calls, little memory per download. */
const FILE_READ_BYTES = 1024 * 1024;

/** Content held in a file (docs/decisions/036-binary-content-files.md), checked now, read as it is sent. */
async function contentInFile(db: Knex | Knex.Transaction, contentType: string, size: number, file: string, label: string): Promise<StoredContent> {
  const files = contentFilesOf(db);
  if (!files) throw new Error(`${label} is held in the content file ${file}, and no content directory is configured (CONTENT_DIR)`);
  await checkFile(files, file, size);
  return { contentType, size, bytes: (start = 0, end = size - 1) => fileBytes(files, file, start, end, FILE_READ_BYTES) };
}

/** The chunks `from` to `to` of a stored content, from the database. */
function chunkSource(db: Knex | Knex.Transaction, key: ContentKey): (from: number, to: number) => Promise<Buffer[]> {
  return (from, to) => copyOutBinary(db, key, from, to);
}

/** The whole content in one buffer: for an answer that must carry it whole (FHIR JSON inside a Bundle, XML). */
export async function readWholeContent(content: StoredContent): Promise<Buffer> {
  const data = Buffer.allocUnsafe(content.size);
  let at = 0;
  for await (const piece of content.bytes()) at += piece.copy(data, at);
  return data.subarray(0, at);
}

async function* chunkReader(fetch: (from: number, to: number) => Promise<Buffer[]>, size: number, start: number, end: number, label: string): AsyncGenerator<Buffer> {
  if (end < start) return;
  const first = Math.floor(start / CHUNK_BYTES);
  const last = Math.floor(end / CHUNK_BYTES);
  let sent = 0;
  for (let seq = first; seq <= last; seq += CHUNKS_PER_STATEMENT) {
    const upTo = Math.min(last, seq + CHUNKS_PER_STATEMENT - 1);
    const chunks = await fetch(seq, upTo);
    if (chunks.length !== upTo - seq + 1) throw new Error(`${label}: chunks ${seq}-${upTo} are missing`);
    for (let i = 0; i < chunks.length; i++) {
      const n = seq + i;
      const chunk = chunks[i];
      // every chunk but the last is full: the offsets of the others depend on it
      const expected = n < Math.floor((size - 1) / CHUNK_BYTES) ? CHUNK_BYTES : size - n * CHUNK_BYTES;
      if (chunk.length !== expected) throw new Error(`${label}: chunk ${n} holds ${chunk.length} bytes, ${expected} expected`);
      const from = n === first ? start - n * CHUNK_BYTES : 0;
      const to = n === last ? end - n * CHUNK_BYTES + 1 : chunk.length;
      const piece = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      sent += piece.length;
      yield piece;
    }
  }
  if (sent !== end - start + 1) throw new Error(`${label}: ${sent} bytes read, ${end - start + 1} expected`);
}

/** Which of these content file names a row of binary_content names (the sweep of unnamed files, scripts/contentSweep.ts). */
export async function namedContentFiles(db: Knex | Knex.Transaction, names: string[]): Promise<Set<string>> {
  const res = await db.raw<{ rows: { file: string }[] }>('SELECT file FROM binary_content WHERE file = ANY(?::text[])', [textArray(names)]);
  return new Set(res.rows.map((r) => r.file));
}
