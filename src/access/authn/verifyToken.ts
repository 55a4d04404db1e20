import crypto from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { FhirError, Unauthorized } from '../../errors';
import type { TokenClaims } from '../actor';
import type { TrustedIssuer } from './issuers';
import { hasAdminScope, parseScopes } from './scopes';

/**
 * Verifies `Authorization: Bearer <JWT>` against the trusted issuers and returns its claims
 * (docs/decisions/007-authentication.md). Every refusal is an Unauthorized whose message
 * says why, and never repeats the token or a value read from it.
 */

/** The scope an unrestricted test client's token carries (only from an issuer marked testClient, never in production). */
export const TEST_CLIENT_SCOPE = 'conformance-testing';

export const ACCEPTED_ALGORITHMS = ['RS256', 'ES256'];

export interface VerifyOptions {
  /** Tolerance on exp, nbf and iat, in seconds (default 30). */
  clockSkewSeconds?: number;
  /** This server's base URL: an absolute fhirUser is accepted only under it. */
  baseUrl?: string;
  /** The time to check against (tests). */
  now?: Date;
}

// Far above any real token; refused before any parsing.
const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const FHIR_USER = /^(Practitioner|Patient|RelatedPerson|Device)\/[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** The token in an Authorization header, or a 401 saying what is wrong with the header. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw new Unauthorized('Authentication required: send Authorization: Bearer <token>', false);
  }
  const m = /^([A-Za-z]+) +(.*)$/.exec(header.trim());
  if (!m || m[1].toLowerCase() !== 'bearer') {
    throw new Unauthorized('Only bearer tokens are accepted: send Authorization: Bearer <token>', false);
  }
  const token = m[2].trim();
  if (token.length > MAX_TOKEN_LENGTH) throw new Unauthorized('The bearer token is too long');
  if (token.split('.').length === 5) throw new Unauthorized('Encrypted tokens (JWE) are not accepted: send a signed JWT');
  if (!COMPACT_JWS.test(token)) throw new Unauthorized('The bearer token is not a signed JWT (compact serialisation)');
  return token;
}

/**
 * Tokens verified lately, by the SHA-256 of their text, per list of trusted issuers
 * (docs/decisions/026-verified-token-cache.md): only successes, each used before its `exp`
 * and for at most a minute after its verification; the oldest go first past the bound.
 */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;
interface Verified {
  claims: TokenClaims;
  /** ms since the epoch: the token's exp, or its verification plus the TTL, whichever is first. */
  until: number;
  /** The options it was verified with: another base URL or clock skew verifies again. */
  baseUrl: string | undefined;
  skew: number | undefined;
}
const verifiedTokens = new WeakMap<readonly TrustedIssuer[], Map<string, Verified>>();

export async function verifyBearer(header: string | undefined, issuers: readonly TrustedIssuer[], options: VerifyOptions = {}): Promise<TokenClaims> {
  const token = bearerToken(header);
  // a verification against a given time (tests) is never answered from, nor kept in, the map
  if (options.now) return verifyToken(token, issuers, options);
  let verified = verifiedTokens.get(issuers);
  if (!verified) verifiedTokens.set(issuers, (verified = new Map()));
  const key = crypto.createHash('sha256').update(token).digest('base64');
  const now = Date.now();
  const known = verified.get(key);
  if (known && known.until > now && known.baseUrl === options.baseUrl && known.skew === options.clockSkewSeconds) return { ...known.claims };
  if (known) verified.delete(key);
  const claims = await verifyToken(token, issuers, options);
  // exp is required: a token without one was refused above
  const until = Math.min(now + VERIFIED_TTL_MS, (claims.expiresAt ?? 0) * 1000);
  if (until > now) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(key, { claims: { ...claims }, until, baseUrl: options.baseUrl, skew: options.clockSkewSeconds });
  }
  return claims;
}

async function verifyToken(token: string, issuers: readonly TrustedIssuer[], options: VerifyOptions): Promise<TokenClaims> {
  const skew = options.clockSkewSeconds ?? 30;

  let alg: unknown;
  let unverified: JWTPayload;
  try {
    alg = decodeProtectedHeader(token).alg;
    unverified = decodeJwt(token);
  } catch {
    throw new Unauthorized('The bearer token is not a well-formed JWT');
  }
  // Checked before any key is looked up: `none` and HS256 (a public key used as an HMAC
  // secret) never reach a verifier. jose enforces the same list below.
  if (typeof alg !== 'string' || !ACCEPTED_ALGORITHMS.includes(alg)) {
    throw new Unauthorized(`The token's signature algorithm is not accepted (only ${ACCEPTED_ALGORITHMS.join(' and ')})`);
  }
  // The claimed issuer picks the one key set the signature may verify with.
  const trusted = typeof unverified.iss === 'string' ? issuers.find((i) => i.issuer === unverified.iss) : undefined;
  if (!trusted) throw new Unauthorized('The token was not issued by an issuer this server trusts');

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, trusted.keys, {
      issuer: trusted.issuer,
      audience: trusted.audience,
      algorithms: ACCEPTED_ALGORITHMS,
      clockTolerance: skew,
      requiredClaims: ['exp', 'sub'],
      currentDate: options.now,
    }));
  } catch (e) {
    throw verificationFailure(e, trusted);
  }

  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (typeof payload.iat === 'number' && payload.iat > now + skew) throw new Unauthorized('The token is issued in the future (check the clocks)');
  return claimsOf(payload, trusted, options);
}

/** A failed verification as the 401 (or, keys unreachable, 503) it is. */
function verificationFailure(e: unknown, issuer: TrustedIssuer): FhirError {
  if (e instanceof joseErrors.JWTExpired) return new Unauthorized('The token has expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return new Unauthorized(`The token has no "${e.claim}" claim`);
    switch (e.claim) {
      case 'aud':
        return new Unauthorized('The token is not meant for this server (audience)');
      case 'nbf':
        return new Unauthorized('The token is not valid yet (nbf)');
      case 'iss':
        return new Unauthorized('The token was not issued by an issuer this server trusts');
      default:
        return new Unauthorized(`The token's "${e.claim}" claim is not valid`);
    }
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new Unauthorized('The token signature does not verify');
  if (e instanceof joseErrors.JWKSNoMatchingKey) return new Unauthorized('The token is signed with a key its issuer does not publish');
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return new Unauthorized('The token does not say which of its issuer\'s keys signed it (kid)');
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return new Unauthorized(`The token's signature algorithm is not accepted (only ${ACCEPTED_ALGORITHMS.join(' and ')})`);
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JOSENotSupported) {
    return new Unauthorized('The bearer token is not a well-formed JWT');
  }
  // Anything else while the keys are remote is the identity provider being unreachable or
  // answering nonsense: not the client's fault, and worth retrying.
  if (issuer.keySource.startsWith('https:')) {
    return new FhirError(503, [{ severity: 'error', code: 'transient', diagnostics: 'The token issuer\'s keys cannot be fetched; try again later' }], { 'Retry-After': '30' });
  }
  throw e;
}

function claimsOf(payload: JWTPayload, issuer: TrustedIssuer, options: VerifyOptions): TokenClaims {
  const { sub, scope } = payload;
  if (typeof sub !== 'string' || sub === '' || sub.length > 255) throw new Unauthorized('The token\'s "sub" claim must be a non-empty string');
  if (scope !== undefined && typeof scope !== 'string') throw new Unauthorized('The token\'s "scope" claim must be a space-separated string');
  const rawScopes = (scope ?? '').split(' ').filter(Boolean);
  const { scopes } = parseScopes(scope ?? '');

  const fhirUser = fhirUserOf(payload.fhirUser, options.baseUrl);
  const testClient = issuer.testClient === true && rawScopes.includes(TEST_CLIENT_SCOPE);
  if (!fhirUser && !hasAdminScope(rawScopes) && !testClient) {
    throw new Unauthorized('The token names no actor: a "fhirUser" claim is required unless the scope includes admin');
  }
  const practitionerRole = practitionerRoleOf(payload.practitioner_role, fhirUser);

  return {
    issuer: issuer.issuer,
    subject: sub,
    ...(fhirUser ? { fhirUser } : {}),
    scopes,
    rawScopes,
    ...(practitionerRole ? { practitionerRole } : {}),
    ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp } : {}),
    ...(testClient ? { testClient: true } : {}),
  };
}

/**
 * `fhirUser` as a relative reference. SMART writes it as an absolute URL: that is accepted
 * only under this server's base URL; any other server's resource is not an actor here.
 */
function fhirUserOf(claim: unknown, baseUrl: string | undefined): string | undefined {
  if (claim === undefined) return undefined;
  if (typeof claim !== 'string') throw new Unauthorized('The token\'s "fhirUser" claim must be a string');
  let reference = claim;
  if (/^https?:\/\//i.test(claim)) {
    const base = baseUrl?.replace(/\/+$/, '');
    if (!base || !claim.startsWith(`${base}/`)) throw new Unauthorized('The token\'s "fhirUser" names a resource on another server');
    reference = claim.slice(base.length + 1);
  }
  if (!FHIR_USER.test(reference)) {
    throw new Unauthorized('The token\'s "fhirUser" claim must be Practitioner/{id}, Patient/{id}, RelatedPerson/{id} or Device/{id}');
  }
  return reference;
}

function practitionerRoleOf(claim: unknown, fhirUser: string | undefined): string | undefined {
  if (claim === undefined) return undefined;
  if (!fhirUser?.startsWith('Practitioner/')) throw new Unauthorized('The token\'s "practitioner_role" claim is only meaningful for a Practitioner');
  const id = typeof claim === 'string' ? claim.replace(/^PractitionerRole\//, '') : undefined;
  if (!id || !RESOURCE_ID.test(id)) throw new Unauthorized('The token\'s "practitioner_role" claim must be a PractitionerRole id');
  return id;
}
