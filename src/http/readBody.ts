import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Request } from 'express';
import { PayloadTooLarge } from '../errors';

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

let spoolDir: string | undefined;

/** A request body written to a private temporary file; `remove` deletes it. */
export interface SpooledBody {
  file: string;
  size: number;
  remove(): void;
}

/**
 * Writes the request body to a temporary file as it arrives (413 past the limit, the file
 * removed and the rest drained). A raw Binary upload is spooled so that the database
 * transaction that stores it never waits on the client: a slow or stalled upload holds a
 * file, not a connection, and memory stays bounded whatever the size.
 */
export async function spoolBody(req: Request, limit: number): Promise<SpooledBody> {
  checkDeclaredLength(req, limit);
  spoolDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-upload-'));
  const file = path.join(spoolDir, crypto.randomUUID());
  const remove = () => fs.rm(file, { force: true }, () => undefined);
  const out = fs.createWriteStream(file, { mode: 0o600 });
  let size = 0;
  let complete = false;
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) break;
      if (!out.write(chunk)) await once(out, 'drain');
    }
    complete = size <= limit;
  } finally {
    // whatever stopped the reading (the limit, an aborted request), the rest is drained
    if (!complete) req.resume();
    out.end();
    await once(out, 'close');
    if (!complete) remove();
  }
  if (!complete) throw new PayloadTooLarge(`The request body exceeds the limit of ${limit} bytes`);
  return { file, size, remove };
}
