import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type KeyLike } from 'jose';

/**
 * An identity provider for the test suites, as an external one would be: its own RSA key,
 * an AUTH_ISSUERS file the server is started with, and tokens signed with that key.
 * Keys and files live in a temporary directory removed by cleanup().
 */
export interface TestIssuer {
  issuer: string;
  audience: string;
  /** AUTH_ISSUERS file with the public key inline (`jwks`). */
  issuersFile: string;
  /** AUTH_ISSUERS file pointing at the key set with `jwksUri: file://…`. */
  issuersFileWithJwksUri: string;
  /** The public JWK Set file (what an IdP publishes). */
  jwksFile: string;
  publicJwk: JWK;
  privateKey: KeyLike;
  /** A token as the identity provider would issue it; `options` bend it for negative tests. */
  mint(claims?: TestClaims, options?: MintOptions): Promise<string>;
  cleanup(): Promise<void>;
}

export interface TestClaims {
  sub?: string;
  fhirUser?: string;
  scope?: string;
  practitioner_role?: string;
  [claim: string]: unknown;
}

export interface MintOptions {
  /** Lifetime from now (default 300 s); ignored when `exp` is given. */
  ttlSeconds?: number;
  /** Absolute times in seconds since the epoch; `exp: null` leaves exp out. */
  exp?: number | null;
  nbf?: number;
  iat?: number;
  issuer?: string;
  audience?: string | string[];
  /** Sign with another key (e.g. an attacker's) under this issuer's name. */
  privateKey?: KeyLike;
  kid?: string;
}

/** `testClient`: the issuers files mark this issuer so that `conformance-testing` tokens act unrestricted (never in production). */
export async function createTestIssuer(opts: { audience: string; issuer?: string; testClient?: boolean }): Promise<TestIssuer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'test-issuer-'));
  const issuer = opts.issuer ?? `https://idp-${crypto.randomBytes(4).toString('hex')}.test.example`;
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const publicJwk: JWK = { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };

  const jwksFile = path.join(dir, 'jwks.json');
  const issuersFile = path.join(dir, 'issuers.json');
  const issuersFileWithJwksUri = path.join(dir, 'issuers-jwks-uri.json');
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [publicJwk] }));
  const marks = opts.testClient ? { testClient: true } : {};
  await fs.writeFile(issuersFile, JSON.stringify([{ issuer, audience: opts.audience, jwks: { keys: [publicJwk] }, ...marks }]));
  await fs.writeFile(
    issuersFileWithJwksUri,
    JSON.stringify([{ issuer, audience: opts.audience, jwksUri: pathToFileURL(jwksFile).href, ...marks }]),
  );

  async function mint(claims: TestClaims = {}, o: MintOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = { ...claims };
    payload.iat = o.iat ?? now;
    if (o.exp !== null) payload.exp = o.exp ?? now + (o.ttlSeconds ?? 300);
    if (o.nbf !== undefined) payload.nbf = o.nbf;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: o.kid ?? publicJwk.kid })
      .setIssuer(o.issuer ?? issuer)
      .setAudience(o.audience ?? opts.audience)
      .sign(o.privateKey ?? privateKey);
  }

  return {
    issuer,
    audience: opts.audience,
    issuersFile,
    issuersFileWithJwksUri,
    jwksFile,
    publicJwk,
    privateKey,
    mint,
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
