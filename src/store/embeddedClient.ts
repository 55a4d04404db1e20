import type { PGlite } from '@electric-sql/pglite';
import type knexFactory from 'knex';
import { CopyOutReader, simpleQueryMessage } from './embeddedCopyOut';

/**
 * The knex client of the embedded database (PGlite), with two additions: a statement run
 * with the option `{ binaryParameters: true }` sends its Buffer parameters in the binary
 * format of PostgreSQL's extended protocol, in one message sized once; and one run with
 * `{ copyOut: true }` (a `COPY … TO STDOUT`, no parameters) answers with the COPY's bytes
 * as `copy`, read from the protocol messages (src/store/embeddedCopyOut.ts).
 *
 * PGlite's own `query` writes a bytea parameter as `\x…` hex text built in JavaScript byte
 * by byte; with its serializer replaced it sends the bytes, but copies each statement's
 * message some eight times while building it (its message writer grows by copying), which
 * for a raw upload of 40 MiB keeps the garbage collector busy most of the time. Here each
 * statement's message is built once, and PGlite copies it into its WebAssembly memory
 * natively (docs/operations/memory.md has the figures).
 *
 * Only for statements that return no rows (INSERT, UPDATE, DELETE): the answer carries the
 * number of rows written.
 */

/** A parameter of such a statement: a Buffer goes in binary format, anything else as text. */
export type BinaryStatementParameter = Buffer | string | number | null;

type ClientClass = typeof knexFactory.Client;

interface StatementObject {
  sql: string;
  bindings?: BinaryStatementParameter[];
  options?: { binaryParameters?: boolean; copyOut?: boolean };
  response?: unknown;
}

export function embeddedClient(Base: ClientClass): ClientClass {
  const run = (Base.prototype as unknown as { _query(this: unknown, c: unknown, o: unknown): Promise<unknown> })._query;
  class Embedded extends Base {
    async _query(connection: PGlite, obj: StatementObject): Promise<unknown> {
      if (obj.options?.copyOut) {
        if (obj.bindings?.length) throw new Error('COPY takes no parameters');
        const reader = new CopyOutReader();
        const message = simpleQueryMessage(obj.sql);
        await connection.runExclusive(() => connection.execProtocolRawStream(message, { onRawData: (piece) => reader.push(piece) }));
        obj.response = { rows: [], fields: [], affectedRows: 0, copy: reader.result() };
        return obj;
      }
      if (!obj.options?.binaryParameters) return run.call(this, connection, obj);
      const message = extendedQueryMessage(obj.sql, obj.bindings ?? []);
      // the same lock as PGlite's own statements: none of theirs runs between these messages
      const { messages } = await connection.runExclusive(() => connection.execProtocol(message));
      const complete = messages.find((m) => m.name === 'commandComplete') as { text?: string } | undefined;
      const affectedRows = Number(/(\d+)$/.exec(complete?.text ?? '')?.[1] ?? 0);
      obj.response = { rows: [], fields: [], affectedRows };
      return obj;
    }
  }
  return Embedded as unknown as ClientClass;
}

/**
 * Parse (unnamed statement, parameter types inferred), Bind (text format for text, binary
 * for Buffers; results in text), Execute and Sync: PostgreSQL's extended query protocol.
 * `sql` has PostgreSQL's `$1, $2 …` placeholders (knex writes them for the `?` of a statement).
 */
export function extendedQueryMessage(sql: string, params: BinaryStatementParameter[]): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const values = params.map((p) => (p === null ? null : Buffer.isBuffer(p) ? p : Buffer.from(String(p), 'utf8')));
  const parseLength = 4 + 1 + text.length + 2;
  const bindLength = 4 + 1 + 1 + 2 + 2 * params.length + 2 + values.reduce((n, v) => n + 4 + (v?.length ?? 0), 0) + 2;
  const message = Buffer.allocUnsafe(1 + parseLength + 1 + bindLength + (1 + 4 + 1 + 4) + (1 + 4));
  let at = 0;
  // Parse: name "", the text, no declared types
  at = message.writeUInt8(0x50, at);
  at = message.writeInt32BE(parseLength, at);
  at = message.writeUInt8(0, at);
  at += text.copy(message, at);
  at = message.writeInt16BE(0, at);
  // Bind: portal "", statement "", a format per parameter, the values, results in text
  at = message.writeUInt8(0x42, at);
  at = message.writeInt32BE(bindLength, at);
  at = message.writeUInt8(0, at);
  at = message.writeUInt8(0, at);
  at = message.writeInt16BE(params.length, at);
  for (const p of params) at = message.writeInt16BE(Buffer.isBuffer(p) ? 1 : 0, at);
  at = message.writeInt16BE(params.length, at);
  for (const v of values) {
    at = message.writeInt32BE(v === null ? -1 : v.length, at);
    if (v) at += v.copy(message, at);
  }
  at = message.writeInt16BE(0, at);
  // Execute: portal "", no row limit
  at = message.writeUInt8(0x45, at);
  at = message.writeInt32BE(4 + 1 + 4, at);
  at = message.writeUInt8(0, at);
  at = message.writeInt32BE(0, at);
  // Sync: ends the statement (and, after an error, what PostgreSQL skipped of it)
  at = message.writeUInt8(0x53, at);
  at = message.writeInt32BE(4, at);
  if (at !== message.length) throw new Error(`extended query message: ${at} bytes written, ${message.length} expected`);
  return message;
}
