/**
 * The output of `COPY … TO STDOUT` on the embedded database (PGlite), read from the
 * protocol messages PostgreSQL writes, not from PGlite's `/dev/blob`.
 *
 * PGlite hands what a statement wrote to `/dev/blob` over as a Blob: its bytes were copied
 * out of the WebAssembly memory, then into the Blob's own store, then once more when read.
 * The Blob's store is native memory the JavaScript heap does not count, so the collector
 * is in no hurry to free it: under a few hundred Binary reads a second the process grew past
 * 1 GiB (docs/operations/memory.md). Here each protocol message is copied once, into a
 * Buffer the collector counts, as PGlite writes it out.
 */

/** PostgreSQL's simple query message ('Q') for `sql`. */
export function simpleQueryMessage(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const message = Buffer.allocUnsafe(1 + 4 + text.length);
  message.writeUInt8(0x51, 0);
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
}

/** An ErrorResponse of the database: its message, SQLSTATE code and severity. */
export class EmbeddedDatabaseError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly severity: string | undefined,
  ) {
    super(message);
    this.name = 'EmbeddedDatabaseError';
  }
}

const COPY_DATA = 0x64; // 'd'
const ERROR_RESPONSE = 0x45; // 'E'

/**
 * Gathers the CopyData of a statement's protocol output, fed in pieces as they come (a
 * message may be cut anywhere between two pieces). Other messages are read only for an
 * ErrorResponse.
 */
export class CopyOutReader {
  private readonly head = Buffer.alloc(5);
  private headBytes = 0;
  private body: Buffer | undefined;
  private bodyBytes = 0;
  private readonly data: Buffer[] = [];
  private error: EmbeddedDatabaseError | undefined;

  /** `piece` may be a view of memory that is reused once this returns: what is kept is copied. */
  push(piece: Uint8Array): void {
    let at = 0;
    while (at < piece.length) {
      if (!this.body) {
        const n = Math.min(5 - this.headBytes, piece.length - at);
        this.head.set(piece.subarray(at, at + n), this.headBytes);
        this.headBytes += n;
        at += n;
        if (this.headBytes < 5) return;
        this.headBytes = 0;
        this.body = Buffer.allocUnsafe(this.head.readInt32BE(1) - 4);
        this.bodyBytes = 0;
      }
      const n = Math.min(this.body.length - this.bodyBytes, piece.length - at);
      this.body.set(piece.subarray(at, at + n), this.bodyBytes);
      this.bodyBytes += n;
      at += n;
      if (this.bodyBytes === this.body.length) {
        this.message(this.head[0], this.body);
        this.body = undefined;
      }
    }
  }

  /** The COPY's bytes; throws the statement's error, or if the output ended inside a message. */
  result(): Buffer {
    if (this.error) throw this.error;
    if (this.body || this.headBytes) throw new Error('COPY output ended inside a protocol message');
    return this.data.length === 1 ? this.data[0] : Buffer.concat(this.data);
  }

  private message(type: number, body: Buffer): void {
    if (type === COPY_DATA) this.data.push(body);
    else if (type === ERROR_RESPONSE) this.error ??= errorResponse(body);
  }
}

/** The fields of an ErrorResponse: a type byte, a NUL-terminated string, …, then a NUL. */
function errorResponse(body: Buffer): EmbeddedDatabaseError {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(body[at]), body.toString('utf8', at + 1, end));
    at = end + 1;
  }
  return new EmbeddedDatabaseError(fields.get('M') ?? 'database error', fields.get('C'), fields.get('S'));
}
