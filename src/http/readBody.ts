import type { Request } from 'express';
import { PayloadTooLarge } from './errors';

/**
 * Reads the request body as it streams in, stopping with 413 as soon as the limit is
 * passed (a declared Content-Length over the limit is refused before reading).
 */
export function readBody(req: Request, limit: number): Promise<Buffer> {
  try {
    checkDeclaredLength(req, limit);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(new PayloadTooLarge(`The request body exceeds the limit of ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
    });
  });
}

function checkDeclaredLength(req: Request, limit: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new PayloadTooLarge(`The request body (${declared} bytes) exceeds the limit of ${limit} bytes`);
  }
}

/**
 * The request body as its chunks arrive, for a consumer that writes them on (a Binary
 * upload streamed into the database). Past the limit it throws 413 and drains the rest,
 * so that the answer still reaches the client.
 */
export function streamBody(req: Request, limit: number): AsyncIterable<Buffer> {
  checkDeclaredLength(req, limit);
  return {
    async *[Symbol.asyncIterator]() {
      let size = 0;
      let complete = false;
      try {
        // not destroyed when reading stops early: the socket must stay up for the error answer
        for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > limit) break;
          yield chunk;
        }
        complete = size <= limit;
      } finally {
        // whatever stopped the reading (the limit, a failed write), the rest of the body is
        // drained so that the connection can carry the answer and the next request
        if (!complete) req.resume();
      }
      if (!complete) throw new PayloadTooLarge(`The request body exceeds the limit of ${limit} bytes`);
    },
  };
}
