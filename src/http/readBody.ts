import { once } from 'node:events';
import fs from 'node:fs';
import type { Request } from 'express';
import type { Config } from '../config/config';
import { PayloadTooLarge } from '../errors';
import { busy, uploadSpool } from './uploadSpool';

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

/** A request body written to a private spool file; `remove` deletes it (once) and frees its bytes. */
export interface SpooledBody {
  file: string;
  size: number;
  remove(): void;
}

/**
 * Writes the request body to a spool file as it arrives (413 past the limit, 503 when the
 * spool is full; the file removed and the rest drained either way). A raw Binary upload is
 * spooled so that the database transaction that stores it never waits on the client: a
 * slow or stalled upload holds a file, not a connection, and memory stays bounded whatever
 * the size. The caller removes the file once the request is answered.
 */
export async function spoolBody(req: Request, config: Config): Promise<SpooledBody> {
  const limit = config.binaryMaxBytes;
  checkDeclaredLength(req, limit);
  const spool = uploadSpool(config);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && !spool.fits(declared)) {
    req.resume();
    throw busy();
  }
  const file = spool.newFile();
  let taken = 0;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    spool.give(taken);
    fs.rm(file, { force: true }, () => undefined);
  };
  // a buffer of 1 MiB: the file is written while the next pieces arrive, not one piece at a time
  const out = fs.createWriteStream(file, { mode: 0o600, flags: 'wx', highWaterMark: 1024 * 1024 });
  let size = 0;
  let failure: unknown;
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        failure = new PayloadTooLarge(`The request body exceeds the limit of ${limit} bytes`);
        break;
      }
      spool.take(chunk.length);
      taken += chunk.length;
      if (!out.write(chunk)) await once(out, 'drain');
    }
  } catch (e) {
    failure = e;
  } finally {
    // whatever stopped the reading (a limit, a full spool, an aborted request), the rest is drained
    if (failure) req.resume();
    out.end();
    await once(out, 'close').catch(() => undefined);
    if (failure) remove();
  }
  if (failure) throw failure;
  return { file, size, remove };
}
