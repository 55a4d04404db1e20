import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { ConfigError, type Config } from '../../config/config';
import { DEV_ISSUER_ID, type TrustedIssuer } from './issuers';

/**
 * The development issuer: used when no AUTH_ISSUERS is configured, so that a developer can
 * run the server and mint tokens for any actor (`npm run token`). It is refused in
 * production (docs/decisions/007-authentication.md).
 */
export interface DevIssuer {
  trusted: TrustedIssuer;
  /** Where the private key lives; undefined when it is kept in memory (DATA_DIR=:memory:). */
  keyFile: string | undefined;
  mintToken(request: MintRequest): Promise<string>;
}

export interface MintRequest {
  fhirUser?: string;
  /** Space-separated scopes, e.g. `user/*.cruds` or `admin`. */
  scope: string;
  /** Defaults to the fhirUser, or `admin`. */
  sub?: string;
  /** The PractitionerRole id acting now. */
  practitionerRole?: string;
  /** Default one hour; at most 30 days. */
  ttlSeconds?: number;
}

type DevIssuerConfig = Pick<Config, 'dataDir' | 'embeddedInMemory' | 'baseUrl' | 'production'>;

const MAX_TTL_SECONDS = 30 * 24 * 3600;

export function devKeyFile(dataDir: string): string {
  return path.join(dataDir, 'dev-issuer', 'key.json');
}

export async function openDevIssuer(config: DevIssuerConfig): Promise<DevIssuer> {
  if (config.production) {
    throw new ConfigError('The development token issuer is refused in production (NODE_ENV=production): configure AUTH_ISSUERS');
  }
  const keyFile = config.embeddedInMemory ? undefined : devKeyFile(config.dataDir);
  const privateJwk = keyFile ? await readOrCreateKey(keyFile) : await newKey();
  const { d: _private, ...publicJwk } = privateJwk;
  const signingKey = await importJWK(privateJwk, 'ES256');

  const trusted: TrustedIssuer = {
    issuer: DEV_ISSUER_ID,
    audience: [config.baseUrl],
    keys: createLocalJWKSet({ keys: [publicJwk] }),
    keySource: keyFile ? `file://${keyFile}` : 'memory',
    // development mode only (it refuses to open in production): generic test suites may run unrestricted
    testClient: true,
  };

  async function mintToken(request: MintRequest): Promise<string> {
    const ttl = request.ttlSeconds ?? 3600;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) throw new Error(`ttlSeconds must be an integer between 1 and ${MAX_TTL_SECONDS}`);
    const scopes = request.scope.split(' ').filter(Boolean);
    if (!request.fhirUser && !scopes.includes('admin') && !scopes.includes('conformance-testing')) throw new Error('A token needs a fhirUser unless its scope includes admin');
    const claims: Record<string, unknown> = { scope: scopes.join(' ') };
    if (request.fhirUser) claims.fhirUser = request.fhirUser;
    if (request.practitionerRole) claims.practitioner_role = request.practitionerRole;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: privateJwk.kid })
      .setIssuer(DEV_ISSUER_ID)
      .setAudience(config.baseUrl)
      .setSubject(request.sub ?? request.fhirUser ?? 'admin')
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
      .setJti(crypto.randomUUID())
      .sign(signingKey);
  }

  return { trusted, keyFile, mintToken };
}

async function newKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const { d: _private, ...pub } = jwk;
  return { ...jwk, alg: 'ES256', use: 'sig', kid: await calculateJwkThumbprint(pub) };
}

/**
 * The key under DATA_DIR, created on first start. Written to a temporary file and linked
 * into place, so two workers starting together both end up with the one key that won.
 */
async function readOrCreateKey(keyFile: string): Promise<JWK> {
  const dir = path.dirname(keyFile);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    return await readKey(keyFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const jwk = await newKey();
  const tmp = path.join(dir, `.key-${process.pid}-${crypto.randomBytes(6).toString('hex')}.json`);
  await fs.writeFile(tmp, JSON.stringify(jwk, null, 2), { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(tmp, keyFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await fs.unlink(tmp);
  }
  return readKey(keyFile);
}

async function readKey(keyFile: string): Promise<JWK> {
  const stat = await fs.stat(keyFile);
  // This key mints tokens for any actor, administrators included: like ssh, refuse a key
  // that other users of the machine can read.
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    throw new ConfigError(`The development issuer key ${keyFile} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(await fs.readFile(keyFile, 'utf8'));
  } catch (e) {
    throw new ConfigError(`The development issuer key ${keyFile} is not JSON: ${(e as Error).message}; delete it to create a new one`);
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string') {
    throw new ConfigError(`The development issuer key ${keyFile} is not an ES256 private key; delete it to create a new one`);
  }
  return jwk;
}
