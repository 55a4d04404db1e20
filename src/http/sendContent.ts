import type { ServerResponse } from 'node:http';
import type { StoredContent } from '../store/binaryContent';

/**
 * Writes `pieces` to the answer as they come, waiting while the client is slower than the
 * database: what is held is the piece being read and what the socket buffers, never the
 * content. A client that goes away ends the reading; a failure of the reading, after the
 * headers left, cuts the connection (the client sees a short body, not a whole wrong one).
 */
export async function writePieces(res: ServerResponse, pieces: AsyncIterable<Buffer | string>): Promise<void> {
  try {
    for await (const piece of pieces) {
      if (res.destroyed) return;
      if (!res.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
  } catch (e) {
    res.destroy();
    throw e;
  }
  res.end();
}

/** The length of the base64 text of `size` bytes (padded). */
export const base64Length = (size: number): number => Math.ceil(size / 3) * 4;

/**
 * The base64 text of a sequence of pieces, as one text: bytes are carried over between
 * pieces so that each is encoded in whole groups of three, and the padding comes last only.
 */
export async function* base64Pieces(pieces: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let carry = Buffer.alloc(0);
  for await (const piece of pieces) {
    const bytes = carry.length ? Buffer.concat([carry, piece]) : piece;
    const whole = bytes.length - (bytes.length % 3);
    if (whole > 0) yield bytes.subarray(0, whole).toString('base64');
    carry = Buffer.from(bytes.subarray(whole));
  }
  if (carry.length) yield carry.toString('base64');
}

/**
 * A stored Binary as FHIR JSON with its content as base64 `data`, written as it is read:
 * the resource's own text (which has no `data`) opened, the member added last. JSON does
 * not order members, and a 40 MiB document is not built as one 53 MiB string.
 */
export function binaryJsonPieces(resourceText: string, content: StoredContent): { length: number; pieces: AsyncIterable<Buffer | string> } {
  // no content, no member: an empty string is not a FHIR primitive value
  if (content.size === 0) return { length: Buffer.byteLength(resourceText), pieces: (async function* () { yield resourceText; })() };
  const close = resourceText.lastIndexOf('}');
  if (close < 0) throw new Error('a stored resource is not a JSON object');
  const opening = `${resourceText.slice(0, close).trimEnd()},"data":"`;
  const closing = `"${resourceText.slice(close)}`;
  async function* pieces(): AsyncGenerator<Buffer | string> {
    yield opening;
    yield* base64Pieces(content.bytes());
    yield closing;
  }
  return { length: Buffer.byteLength(opening) + base64Length(content.size) + Buffer.byteLength(closing), pieces: pieces() };
}
