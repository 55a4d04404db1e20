import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createTestIssuer, TestIssuer } from '../../../conformance/testIssuer';
import { FhirError, operationOutcome, Unauthorized } from '../../errors';
import { loadIssuers, parseIssuers, TrustedIssuer } from './issuers';
import { verifyBearer } from './verifyToken';

const BASE = 'https://fhir.test.example/fhir';

/** The refusal verifyBearer throws, for assertions on its status, headers and message. */
async function refusal(p: Promise<unknown>): Promise<FhirError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected a refusal, got claims');
}

describe('verifyBearer', () => {
  let idp: TestIssuer;
  let other: TestIssuer;
  let issuers: TrustedIssuer[];

  beforeAll(async () => {
    idp = await createTestIssuer({ audience: BASE });
    other = await createTestIssuer({ audience: BASE });
    issuers = loadIssuers(idp.issuersFile);
  });
  afterAll(async () => {
    await idp.cleanup();
    await other.cleanup();
  });

  const bearer = (token: string) => `Bearer ${token}`;

  it('returns the claims of a practitioner token', async () => {
    const token = await idp.mint({ sub: 'psc|899700870589', fhirUser: 'Practitioner/123', scope: 'openid fhirUser user/*.cruds', practitioner_role: 'role-7' });
    const claims = await verifyBearer(bearer(token), issuers, { baseUrl: BASE });
    expect(claims).toEqual({
      issuer: idp.issuer,
      subject: 'psc|899700870589',
      fhirUser: 'Practitioner/123',
      scopes: [{ context: 'user', resourceType: '*', operations: 'cruds' }],
      rawScopes: ['openid', 'fhirUser', 'user/*.cruds'],
      practitionerRole: 'role-7',
      expiresAt: expect.any(Number),
    });
  });

  it('verifies with keys read from a file:// JWK Set as well', async () => {
    const token = await idp.mint({ sub: 'p1', fhirUser: 'Patient/p1', scope: 'patient/DocumentReference.rs' });
    const claims = await verifyBearer(bearer(token), loadIssuers(idp.issuersFileWithJwksUri));
    expect(claims.fhirUser).toBe('Patient/p1');
    expect(claims.scopes).toEqual([{ context: 'patient', resourceType: 'DocumentReference', operations: 'rs' }]);
  });

  it('accepts an admin token without fhirUser, and a token without scope', async () => {
    const admin = await verifyBearer(bearer(await idp.mint({ sub: 'ops-1', scope: 'admin' })), issuers);
    expect(admin.fhirUser).toBeUndefined();
    expect(admin.rawScopes).toEqual(['admin']);
    expect(admin.scopes).toEqual([]);
    const noScope = await verifyBearer(bearer(await idp.mint({ sub: 'd1', fhirUser: 'Device/lab-engine' })), issuers);
    expect(noScope.scopes).toEqual([]);
    expect(noScope.rawScopes).toEqual([]);
  });

  it('reads the scheme case-insensitively', async () => {
    const token = await idp.mint({ sub: 'r1', fhirUser: 'RelatedPerson/r1', scope: 'patient/*.rs' });
    await expect(verifyBearer(`bearer  ${token}`, issuers)).resolves.toMatchObject({ fhirUser: 'RelatedPerson/r1' });
  });

  it('accepts an absolute fhirUser under this server only, as a relative reference', async () => {
    const token = await idp.mint({ sub: 'x', fhirUser: `${BASE}/Practitioner/123`, scope: 'user/*.rs' });
    expect((await verifyBearer(bearer(token), issuers, { baseUrl: BASE })).fhirUser).toBe('Practitioner/123');
    expect((await refusal(verifyBearer(bearer(token), issuers, { baseUrl: 'https://elsewhere.example/fhir' }))).message).toMatch(/another server/);
    expect((await refusal(verifyBearer(bearer(token), issuers))).message).toMatch(/another server/);
  });

  it('verifies ES256 tokens from an issuer with an EC key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const ecIssuers = parseIssuers([{ issuer: 'https://ec.example', audience: BASE, jwks: { keys: [await exportJWK(publicKey)] } }]);
    const token = await new SignJWT({ sub: 's', fhirUser: 'Device/d1', scope: 'system/DocumentReference.c' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('https://ec.example')
      .setAudience(BASE)
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await verifyBearer(bearer(token), ecIssuers)).fhirUser).toBe('Device/d1');
  });

  describe('refusals without a token: a bare Bearer challenge', () => {
    it.each([
      [undefined, /Authentication required/],
      ['', /Authentication required/],
      ['Basic dXNlcjpwYXNz', /Only bearer tokens are accepted/],
      ['Bearer', /Only bearer tokens are accepted/],
    ])('%j', async (header, message) => {
      const e = await refusal(verifyBearer(header, issuers));
      expect(e).toBeInstanceOf(Unauthorized);
      expect(e.status).toBe(401);
      expect(e.headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
      expect(e.message).toMatch(message);
      expect(operationOutcome(e.issues).issue[0]).toMatchObject({ severity: 'error', code: 'login' });
    });
  });

  describe('refusals of a token that was sent: invalid_token, and why', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const ok = { sub: 'p', fhirUser: 'Practitioner/123', scope: 'user/*.rs' };

    it.each<[string, () => Promise<string>, RegExp]>([
      ['garbage', async () => 'not-a-jwt', /not a signed JWT/],
      ['an encrypted token', async () => 'a.b.c.d.e', /Encrypted tokens \(JWE\) are not accepted/],
      ['a token with an undecodable header', async () => 'eyJub3QganNvbg.eyJ9.c2ln', /not a well-formed JWT/],
      ['an oversized token', async () => 'a'.repeat(20000), /too long/],
      ['expired', () => idp.mint(ok, { exp: now() - 120 }), /has expired/],
      ['not valid yet', () => idp.mint(ok, { nbf: now() + 600 }), /not valid yet/],
      ['issued in the future', () => idp.mint(ok, { iat: now() + 600 }), /issued in the future/],
      ['without exp', () => idp.mint(ok, { exp: null }), /no "exp" claim/],
      ['without sub', () => idp.mint({ fhirUser: 'Practitioner/123', scope: 'user/*.rs' }), /no "sub" claim/],
      ['for another audience', () => idp.mint(ok, { audience: 'https://other.example/fhir' }), /not meant for this server/],
      ['from an unknown issuer', () => other.mint(ok), /not issued by an issuer this server trusts/],
      ['without issuer', () => new SignJWT({ ...ok }).setProtectedHeader({ alg: 'RS256' }).setAudience(BASE).setExpirationTime('5m').sign(idp.privateKey), /not issued by an issuer/],
      ['signed by another key under a trusted issuer name', () => idp.mint(ok, { privateKey: other.privateKey }), /signature does not verify/],
      ['signed by another key with an unknown kid', () => idp.mint(ok, { privateKey: other.privateKey, kid: 'unknown-kid' }), /key its issuer does not publish/],
      ['with alg none', async () => {
        const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
        const body = base64url.encode(JSON.stringify({ ...ok, iss: idp.issuer, aud: BASE, exp: now() + 300 }));
        return `${header}.${body}.`;
      }, /signature algorithm is not accepted/],
      ['with HS256 keyed by the issuer public key (algorithm confusion)', async () => {
        const pem = createPublicKey({ key: idp.publicJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
        return new SignJWT({ ...ok }).setProtectedHeader({ alg: 'HS256' }).setIssuer(idp.issuer).setAudience(BASE).setExpirationTime('5m').sign(new TextEncoder().encode(pem));
      }, /signature algorithm is not accepted/],
      ['with a sub that is not a string', () => idp.mint({ ...ok, sub: 42 as unknown as string }), /"sub" claim must be a non-empty string|"sub" claim is not valid/],
      ['with a scope array', () => idp.mint({ ...ok, scope: ['user/*.rs'] as unknown as string }), /"scope" claim must be a space-separated string/],
      ['naming no actor and not admin', () => idp.mint({ sub: 'p', scope: 'user/*.rs' }), /"fhirUser" claim is required unless the scope includes admin/],
      ['with fhirUser of another type', () => idp.mint({ ...ok, fhirUser: 'Organization/1' }), /"fhirUser" claim must be Practitioner\/\{id\}/],
      ['with a malformed fhirUser id', () => idp.mint({ ...ok, fhirUser: 'Practitioner/1 2' }), /"fhirUser" claim must be/],
      ['with a fhirUser naming a version', () => idp.mint({ ...ok, fhirUser: 'Practitioner/1/_history/2' }), /"fhirUser" claim must be/],
      ['with a fhirUser id too long', () => idp.mint({ ...ok, fhirUser: `Patient/${'a'.repeat(65)}` }), /"fhirUser" claim must be/],
      ['with a numeric fhirUser', () => idp.mint({ ...ok, fhirUser: 7 as unknown as string }), /"fhirUser" claim must be a string/],
      ['with practitioner_role for a patient', () => idp.mint({ sub: 'p', fhirUser: 'Patient/1', scope: 'patient/*.rs', practitioner_role: 'r1' }), /only meaningful for a Practitioner/],
      ['with a malformed practitioner_role', () => idp.mint({ ...ok, practitioner_role: 'Role/../x y' }), /must be a PractitionerRole id/],
    ])('%s', async (_name, makeToken, message) => {
      const token = await makeToken();
      const e = await refusal(verifyBearer(bearer(token), issuers, { baseUrl: BASE }));
      expect(e).toBeInstanceOf(Unauthorized);
      expect(e.status).toBe(401);
      expect(e.message).toMatch(message);
      const challenge = e.headers['WWW-Authenticate'];
      expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$/);
      // The diagnostics say why without repeating the token or any part of it.
      for (const part of token.split('.').filter((p) => p.length > 8)) {
        expect(e.message).not.toContain(part);
        expect(challenge).not.toContain(part);
      }
    });

    it('tolerates the configured clock skew, and no more', async () => {
      const expiredTenSecondsAgo = await idp.mint(ok, { exp: now() - 10 });
      await expect(verifyBearer(bearer(expiredTenSecondsAgo), issuers)).resolves.toMatchObject({ subject: 'p' });
      expect((await refusal(verifyBearer(bearer(expiredTenSecondsAgo), issuers, { clockSkewSeconds: 5 }))).message).toMatch(/expired/);
      const notBeforeInTwentySeconds = await idp.mint(ok, { nbf: now() + 20 });
      await expect(verifyBearer(bearer(notBeforeInTwentySeconds), issuers, { clockSkewSeconds: 30 })).resolves.toBeDefined();
      expect((await refusal(verifyBearer(bearer(notBeforeInTwentySeconds), issuers, { clockSkewSeconds: 0 }))).message).toMatch(/not valid yet/);
    });

    it('checks time against the given clock', async () => {
      const token = await idp.mint(ok, { ttlSeconds: 60 });
      const inAnHour = new Date(Date.now() + 3600_000);
      expect((await refusal(verifyBearer(bearer(token), issuers, { now: inAnHour }))).message).toMatch(/expired/);
    });
  });

  it('answers 503, not 401, when a remote key set cannot be fetched', async () => {
    const remote = parseIssuers([{ issuer: idp.issuer, audience: BASE, jwksUri: 'https://127.0.0.1:9/jwks.json' }]);
    const token = await idp.mint({ sub: 'p', fhirUser: 'Practitioner/1' });
    const e = await refusal(verifyBearer(bearer(token), remote));
    expect(e.status).toBe(503);
    expect(e.message).toMatch(/keys cannot be fetched/);
  });
  describe('tokens verified lately (decision 026)', () => {
    it('answers the same claims again, and still refuses the same token with its signature altered', async () => {
      const token = await idp.mint({ sub: 'p2', fhirUser: 'Patient/p2', scope: 'patient/*.rs' });
      const first = await verifyBearer(bearer(token), issuers, { baseUrl: BASE });
      const again = await verifyBearer(bearer(token), issuers, { baseUrl: BASE });
      expect(again).toEqual(first);
      const [head, body, signature] = token.split('.');
      const altered = `${head}.${body}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
      expect((await refusal(verifyBearer(bearer(altered), issuers, { baseUrl: BASE }))).message).toMatch(/signature does not verify|not a well-formed/);
      // nor does a token with the same signature and other claims hit the verified one
      const forged = `${head}.${base64url.encode(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), fhirUser: 'Patient/other' }))}.${signature}`;
      expect((await refusal(verifyBearer(bearer(forged), issuers, { baseUrl: BASE }))).message).toMatch(/signature does not verify/);
    });

    it('is not taken as verified by another list of trusted issuers', async () => {
      const token = await idp.mint({ sub: 'p3', fhirUser: 'Patient/p3', scope: 'patient/*.rs' });
      await verifyBearer(bearer(token), issuers, { baseUrl: BASE });
      const otherIssuers = loadIssuers(other.issuersFile);
      expect((await refusal(verifyBearer(bearer(token), otherIssuers, { baseUrl: BASE }))).message).toMatch(/not issued by an issuer this server trusts/);
    });

    it('is refused once its exp has passed, though it verified before', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const token = await idp.mint({ sub: 'p4', fhirUser: 'Patient/p4', scope: 'patient/*.rs' }, { exp });
      expect((await verifyBearer(bearer(token), issuers, { baseUrl: BASE, clockSkewSeconds: 0 })).subject).toBe('p4');
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 100));
      expect((await refusal(verifyBearer(bearer(token), issuers, { baseUrl: BASE, clockSkewSeconds: 0 }))).message).toBe('The token has expired');
    });
  });
});
