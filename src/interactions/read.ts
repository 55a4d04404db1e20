import { Gone, NotFound } from '../errors';
import { readBinaryContent } from '../store/binaryContent';
import { readCurrent, readVersion, CurrentRow } from '../store/resources';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, etag, parseETag } from './common';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

function notModified(req: FhirRequest, row: CurrentRow): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.split(',').some((t) => t.trim() === '*' || parseETag(t) === row.versionId);
  }
  const ifModifiedSince = req.headers['if-modified-since'];
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    // HTTP dates have second precision
    return !Number.isNaN(since) && Math.floor(row.lastUpdated.getTime() / 1000) * 1000 <= since;
  }
  return false;
}

/**
 * Whether the current version's Last-Modified date may keep a range (If-Range): an HTTP date
 * has second precision, and a version written in the same second as the one before has the
 * same date as its predecessor, so a client holding part of the earlier content would be
 * sent the rest of the later one (RFC 9110 §8.8.2.2: such a date is not a strong validator).
 */
async function dateIsStrong(session: Session, type: string, id: string, row: CurrentRow): Promise<boolean> {
  if (row.versionId === 1) return true;
  const previous = await readVersion(session, type, id, row.versionId - 1);
  return previous !== undefined && Math.floor(previous.lastUpdated.getTime() / 1000) !== Math.floor(row.lastUpdated.getTime() / 1000);
}

async function respondWith(session: Session, req: FhirRequest, type: string, id: string, row: CurrentRow, current: boolean): Promise<FhirResponse> {
  const response: FhirResponse = {
    status: 200,
    resourceText: row.body!,
    location: `${type}/${id}/_history/${row.versionId}`,
    versionId: row.versionId,
    lastModified: row.lastUpdated,
  };
  if (notModified(req, row)) return { ...response, status: 304, resourceText: undefined };
  if (type === 'Binary') {
    // the bytes are read as they are sent (src/http/app.ts): the answer holds their type and size
    const content = await readBinaryContent(session, row.compartment, id, row.versionId, { sending: req.method === 'GET' });
    if (content) response.binary = content;
    // a version's content never changes: only the current one's date can stand for two contents
    if (current && req.headers['if-range'] !== undefined && !(await dateIsStrong(session, type, id, row))) response.lastModifiedIsWeak = true;
  }
  return response;
}

/** read: GET [type]/[id]. A deleted resource answers 410 Gone. */
export async function read(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const id = assertId(req.id);
  const row = await readCurrent(session, type, id);
  if (!row) throw new NotFound(`${type}/${id} is not known`);
  if (row.deleted) throw new Gone(`${type}/${id} was deleted`, { ETag: etag(row.versionId) });
  return respondWith(session, req, type, id, row, true);
}

/** vread: GET [type]/[id]/_history/[vid]. */
export async function vread(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const id = assertId(req.id);
  const versionId = Number(req.versionId);
  if (!/^\d+$/.test(req.versionId ?? '')) throw new NotFound(`Version "${req.versionId}" of ${type}/${id} is not known`);
  const row = await readVersion(session, type, id, versionId);
  if (!row) throw new NotFound(`${type}/${id}/_history/${req.versionId} is not known`);
  if (row.deleted) throw new Gone(`${type}/${id}/_history/${versionId} is a deletion`, { ETag: etag(versionId) });
  return respondWith(session, req, type, id, row, false);
}
