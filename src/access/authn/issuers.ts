import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../../config/config';

/**
 * The identity providers this server trusts (AUTH_ISSUERS), checked once at start-up:
 * any defect stops the server with a message naming the entry and the field
 * (docs/decisions/007-authentication.md).
 */
export interface TrustedIssuer {
  issuer: string;
  /** Accepted `aud` values (a token must name one of them). */
  audience: string[];
  /** The issuer's public keys, as jose looks them up by the token's header. */
  keys: JWTVerifyGetKey;
  /** Where the keys come from, for logs: 'inline', 'file://…' or 'https://…'. */
  keySource: string;
  /**
   * Outside production only: this issuer's tokens with the `conformance-testing` scope act
   * as an unrestricted test client (generic FHIR test suites). Production refuses it.
   */
  testClient?: boolean;
}

/** The development issuer's id: refused in production wherever it appears. */
export const DEV_ISSUER_ID = 'urn:dmp-fhir:dev-issuer';

const ENTRY_FIELDS = new Set(['issuer', 'audience', 'jwks', 'jwksUri', 'testClient']);
/** Members that only a private (or symmetric) key has: a trust file holds public keys only. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a JWK Set holds public RSA or EC P-256 keys only (the keys RS256/ES256 verify with). */
function checkKeySet(jwks: Json, where: string): JSONWebKeySet {
  if (!isObject(jwks) || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new ConfigError(`${where} must be a JWK Set: an object with a non-empty "keys" array`);
  }
  jwks.keys.forEach((key: Json, i: number) => {
    const at = `${where}.keys[${i}]`;
    if (!isObject(key)) throw new ConfigError(`${at} must be a JWK object`);
    const priv = PRIVATE_MEMBERS.filter((m) => m in key);
    if (priv.length) {
      throw new ConfigError(`${at} contains private key material (${priv.join(', ')}): a trust file holds the issuer's public keys only`);
    }
    if (key.kty === 'RSA') {
      if (typeof key.n !== 'string' || typeof key.e !== 'string') throw new ConfigError(`${at} is an RSA key without "n" and "e"`);
    } else if (key.kty === 'EC') {
      if (key.crv !== 'P-256') throw new ConfigError(`${at} is an EC key on curve ${JSON.stringify(key.crv)}: only P-256 (ES256) is accepted`);
      if (typeof key.x !== 'string' || typeof key.y !== 'string') throw new ConfigError(`${at} is an EC key without "x" and "y"`);
    } else {
      throw new ConfigError(`${at} has key type ${JSON.stringify(key.kty)}: only RSA (RS256) and EC (ES256) keys are accepted`);
    }
    if (key.alg !== undefined && key.alg !== 'RS256' && key.alg !== 'ES256') {
      throw new ConfigError(`${at} is for algorithm ${JSON.stringify(key.alg)}: only RS256 and ES256 are accepted`);
    }
    if (key.use !== undefined && key.use !== 'sig') throw new ConfigError(`${at} has "use": ${JSON.stringify(key.use)}; a signing key has "use": "sig" or none`);
  });
  return jwks as unknown as JSONWebKeySet;
}

function keysFromUri(uri: string, where: string): { keys: JWTVerifyGetKey; keySource: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ConfigError(`${where}.jwksUri must be an absolute URL (file:///… or https://…), got "${uri}"`);
  }
  if (url.protocol === 'https:') return { keys: createRemoteJWKSet(url), keySource: url.href };
  if (url.protocol === 'file:') {
    const file = fileURLToPath(url);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${where}.jwksUri ${url.href} cannot be read: ${(e as Error).message}`);
    }
    let jwks: Json;
    try {
      jwks = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${where}.jwksUri ${url.href} is not JSON: ${(e as Error).message}`);
    }
    return { keys: createLocalJWKSet(checkKeySet(jwks, `${where}.jwksUri (${url.href})`)), keySource: url.href };
  }
  throw new ConfigError(`${where}.jwksUri must be https:// or file:// (keys fetched in clear could be replaced on the way), got "${url.protocol}"`);
}

function checkEntry(entry: Json, where: string, production: boolean): TrustedIssuer {
  if (!isObject(entry)) throw new ConfigError(`${where} must be an object { "issuer", "audience", "jwks" | "jwksUri" }`);
  const unknown = Object.keys(entry).filter((k) => !ENTRY_FIELDS.has(k));
  if (unknown.length) {
    throw new ConfigError(`${where} has unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; the fields are issuer, audience, jwks, jwksUri`);
  }
  const { issuer, audience } = entry;
  if (typeof issuer !== 'string' || issuer.trim() === '') throw new ConfigError(`${where}.issuer must be a non-empty string`);
  if (production && issuer === DEV_ISSUER_ID) {
    throw new ConfigError(`${where}.issuer is the development issuer (${DEV_ISSUER_ID}), which production refuses to trust`);
  }
  const audiences = typeof audience === 'string' ? [audience] : audience;
  if (!Array.isArray(audiences) || audiences.length === 0 || !audiences.every((a) => typeof a === 'string' && a !== '')) {
    throw new ConfigError(`${where}.audience must be a non-empty string or a non-empty array of them`);
  }
  if (entry.testClient !== undefined && typeof entry.testClient !== 'boolean') throw new ConfigError(`${where}.testClient must be true or false`);
  if (production && entry.testClient === true) {
    throw new ConfigError(`${where}.testClient is true: production refuses unrestricted test clients`);
  }
  const hasJwks = entry.jwks !== undefined;
  const hasUri = entry.jwksUri !== undefined;
  if (hasJwks === hasUri) throw new ConfigError(`${where} must have exactly one of "jwks" (the keys) or "jwksUri" (where they are)`);
  if (hasUri && typeof entry.jwksUri !== 'string') throw new ConfigError(`${where}.jwksUri must be a string`);
  const { keys, keySource } = hasJwks
    ? { keys: createLocalJWKSet(checkKeySet(entry.jwks, `${where}.jwks`)), keySource: 'inline' }
    : keysFromUri(entry.jwksUri as string, where);
  return { issuer, audience: audiences as string[], keys, keySource, ...(entry.testClient === true ? { testClient: true } : {}) };
}

/** Reads and checks the AUTH_ISSUERS file. Throws ConfigError on any defect. */
export function loadIssuers(file: string, options: { production?: boolean } = {}): TrustedIssuer[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`AUTH_ISSUERS ${file} cannot be read: ${(e as Error).message}`);
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`AUTH_ISSUERS ${file} is not JSON: ${(e as Error).message}`);
  }
  return parseIssuers(parsed, { ...options, source: file });
}

/** Checks an issuers document (the parsed AUTH_ISSUERS file). */
export function parseIssuers(doc: Json, options: { production?: boolean; source?: string } = {}): TrustedIssuer[] {
  const source = options.source ?? 'AUTH_ISSUERS';
  if (!Array.isArray(doc) || doc.length === 0) {
    throw new ConfigError(`AUTH_ISSUERS ${source} must be a non-empty JSON array of { "issuer", "audience", "jwks" | "jwksUri" }`);
  }
  const issuers = doc.map((entry, i) => checkEntry(entry, `AUTH_ISSUERS ${source} [${i}]`, options.production ?? false));
  const seen = new Set<string>();
  for (const { issuer } of issuers) {
    // Two entries for one issuer would make the key set used depend on their order.
    if (seen.has(issuer)) throw new ConfigError(`AUTH_ISSUERS ${source} names issuer "${issuer}" twice: put all its keys in one entry`);
    seen.add(issuer);
  }
  return issuers;
}
