import crypto from 'node:crypto';
import { BadRequest } from '../errors';

/**
 * Page links carry the keyset boundary in a signed token bound to the query it was
 * issued for: a client can neither forge a boundary nor reuse a token to widen
 * another query (docs/decisions/002-paging.md).
 */
export interface PageState {
  /** Values of the sort columns of the boundary row. */
  keys: unknown[];
  /** 'n': rows after the boundary; 'p': rows before it (a previous page). */
  direction: 'n' | 'p';
}

function mac(secret: string, payload: string, query: string): string {
  return crypto.createHmac('sha256', secret).update(payload).update('\0').update(query).digest('base64url').slice(0, 32);
}

export function encodePageToken(secret: string, query: string, state: PageState): string {
  const payload = Buffer.from(JSON.stringify([state.direction, state.keys])).toString('base64url');
  return `${payload}.${mac(secret, payload, query)}`;
}

export function decodePageToken(secret: string, query: string, token: string): PageState {
  const dot = token.lastIndexOf('.');
  const payload = token.slice(0, dot);
  const signature = token.slice(dot + 1);
  const expected = mac(secret, payload, query);
  if (dot < 0 || signature.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) {
    throw new BadRequest('Invalid or tampered page token, or token used with a different query');
  }
  try {
    const [direction, keys] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if ((direction !== 'n' && direction !== 'p') || !Array.isArray(keys)) throw new Error('shape');
    return { direction, keys };
  } catch {
    throw new BadRequest('Malformed page token');
  }
}
