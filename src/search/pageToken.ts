import crypto from 'node:crypto';
import { BadRequest, FhirError } from '../errors';

/**
 * Page links carry the keyset boundary in an opaque, expiring token: the boundary's sort
 * values (a patient's name, a birth date) are encrypted, and the token is bound to the
 * query it was issued for and to the caller, so a client can neither read nor forge a
 * boundary, nor reuse a token to widen another query or hand it to someone else
 * (docs/decisions/002-paging.md).
 */
export interface PageState {
  /** Values of the sort columns of the boundary row. */
  keys: unknown[];
  /** 'n': rows after the boundary; 'p': rows before it (a previous page). */
  direction: 'n' | 'p';
}

/** What a token is bound to: it decrypts only for the same query and the same caller. */
export interface PageBinding {
  /** The canonical query the page belongs to (path and the parameters actually used). */
  query: string;
  /**
   * Who asked for the first page: the authenticated subject once access control passes it,
   * '' until then. A token issued to one caller does not open for another.
   */
  caller: string;
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** version + iv + tag + the smallest ciphertext of a JSON array. */
const MIN_BYTES = 1 + IV_BYTES + TAG_BYTES + 2;
/** Longer than any token we issue (sort values are short); refused before decoding. */
const MAX_TOKEN_CHARS = 8192;

const keys = new Map<string, Buffer>();

/** The AES-256 key for page tokens, derived from the shared secret (one derivation per secret). */
function tokenKey(secret: string): Buffer {
  let key = keys.get(secret);
  if (!key) {
    key = Buffer.from(crypto.hkdfSync('sha256', secret, '', 'fhir page token v1', 32));
    if (keys.size > 8) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

function associatedData(binding: PageBinding): Buffer {
  // lengths first, so that no (caller, query) pair can be shifted into another
  return Buffer.from(`v${VERSION}\n${binding.caller.length}:${binding.caller}\n${binding.query.length}:${binding.query}`, 'utf8');
}

/** `ttlSeconds`: how long the link stays valid; `now` (milliseconds) for tests. */
export function encodePageToken(secret: string, binding: PageBinding, state: PageState, ttlSeconds: number, now = Date.now()): string {
  const expires = Math.floor(now / 1000) + ttlSeconds;
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', tokenKey(secret), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(binding));
  const plain = Buffer.from(JSON.stringify([state.direction, state.keys, expires]), 'utf8');
  const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), sealed]).toString('base64url');
}

const INVALID = 'Invalid page token: it was altered, comes from another server, or was issued for another query or caller; follow the links of a search answer';

/**
 * The boundary a token carries: 400 for anything that is not a token this server issued for
 * this query and caller, 410 for one of ours that has expired (the search is to be run again).
 */
export function decodePageToken(secret: string, binding: PageBinding, token: string, now = Date.now()): PageState {
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw new BadRequest(INVALID);
  const bytes = Buffer.from(token, 'base64url');
  // only the canonical encoding: Node ignores trailing characters that make no whole byte
  if (bytes.length < MIN_BYTES || bytes[0] !== VERSION || bytes.toString('base64url') !== token) throw new BadRequest(INVALID);
  let plain: Buffer;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', tokenKey(secret), bytes.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(binding));
    decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    plain = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new BadRequest(INVALID);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(plain.toString('utf8'));
  } catch {
    throw new BadRequest(INVALID);
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw new BadRequest(INVALID);
  const [direction, keys, expires] = parsed as unknown[];
  if ((direction !== 'n' && direction !== 'p') || !Array.isArray(keys) || typeof expires !== 'number') throw new BadRequest(INVALID);
  if (Math.floor(now / 1000) >= expires) {
    throw new FhirError(410, [{ severity: 'error', code: 'expired', diagnostics: 'This page link has expired: run the search again from its first page' }]);
  }
  return { direction, keys };
}
