import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { createTestIssuer, TestIssuer } from '../../../conformance/testIssuer';
import { ConfigError } from '../../config/config';
import { DEV_ISSUER_ID, loadIssuers, parseIssuers } from './issuers';

describe('loadIssuers', () => {
  let idp: TestIssuer;
  let dir: string;
  let rsa: JWK;
  let rsaPrivate: JWK;
  let ec: JWK;

  beforeAll(async () => {
    idp = await createTestIssuer({ audience: 'https://fhir.test.example/fhir' });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'issuers-test-'));
    const r = await generateKeyPair('RS256', { extractable: true });
    rsa = await exportJWK(r.publicKey);
    rsaPrivate = await exportJWK(r.privateKey);
    ec = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
  });
  afterAll(async () => {
    await idp.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads an issuers file with inline keys', () => {
    const [issuer] = loadIssuers(idp.issuersFile);
    expect(issuer.issuer).toBe(idp.issuer);
    expect(issuer.audience).toEqual([idp.audience]);
    expect(issuer.keySource).toBe('inline');
    expect(typeof issuer.keys).toBe('function');
  });

  it('reads an issuers file whose keys are in a file:// JWK Set', () => {
    const [issuer] = loadIssuers(idp.issuersFileWithJwksUri);
    expect(issuer.keySource).toMatch(/^file:\/\/.*jwks\.json$/);
  });

  it('accepts several issuers, an audience array, EC P-256 keys and https:// key sets', () => {
    const issuers = parseIssuers([
      { issuer: 'https://a.example', audience: ['https://fhir.example/fhir', 'fhir'], jwks: { keys: [rsa, ec] } },
      { issuer: 'https://b.example', audience: 'https://fhir.example/fhir', jwksUri: 'https://b.example/jwks.json' },
    ]);
    expect(issuers.map((i) => [i.issuer, i.audience, i.keySource])).toEqual([
      ['https://a.example', ['https://fhir.example/fhir', 'fhir'], 'inline'],
      ['https://b.example', ['https://fhir.example/fhir'], 'https://b.example/jwks.json'],
    ]);
  });

  it('trusts the development issuer id outside production only', () => {
    const doc = [{ issuer: DEV_ISSUER_ID, audience: 'x', jwks: { keys: [ec] } }];
    expect(parseIssuers(doc)).toHaveLength(1);
    expect(() => parseIssuers(doc, { production: true })).toThrow(/development issuer .* production refuses/);
  });

  const entry = (over: Record<string, unknown>) => ({ issuer: 'https://a.example', audience: 'fhir', jwks: { keys: [rsa] }, ...over });
  it.each<[string, () => unknown, RegExp]>([
    ['not an array', () => ({ issuer: 'x' }), /must be a non-empty JSON array/],
    ['empty', () => [], /must be a non-empty JSON array/],
    ['an entry not an object', () => ['https://a.example'], /\[0\] must be an object/],
    ['an unknown field (typo)', () => [{ issuer: 'https://a.example', audience: 'fhir', jwks_uri: 'https://a.example/jwks' }], /\[0\] has unknown field\(s\) "jwks_uri"/],
    ['no issuer', () => [entry({ issuer: undefined })], /\[0\]\.issuer must be a non-empty string/],
    ['an empty issuer', () => [entry({ issuer: ' ' })], /\[0\]\.issuer must be a non-empty string/],
    ['no audience', () => [entry({ audience: undefined })], /\[0\]\.audience must be/],
    ['an empty audience array', () => [entry({ audience: [] })], /\[0\]\.audience must be/],
    ['a numeric audience', () => [entry({ audience: [42] })], /\[0\]\.audience must be/],
    ['neither jwks nor jwksUri', () => [entry({ jwks: undefined })], /exactly one of "jwks".*"jwksUri"/],
    ['both jwks and jwksUri', () => [entry({ jwksUri: 'https://a.example/jwks' })], /exactly one of "jwks".*"jwksUri"/],
    ['jwks not a key set', () => [entry({ jwks: [rsa] })], /\[0\]\.jwks must be a JWK Set/],
    ['an empty key set', () => [entry({ jwks: { keys: [] } })], /\[0\]\.jwks must be a JWK Set/],
    ['a private key', () => [entry({ jwks: { keys: [rsaPrivate] } })], /\[0\]\.jwks\.keys\[0\] contains private key material \(d, p, q, dp, dq, qi\)/],
    ['a symmetric key', () => [entry({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } })], /contains private key material \(k\)/],
    ['an Ed25519 key', () => [entry({ jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc' }] } })], /key type "OKP"/],
    ['a P-384 key', () => [entry({ jwks: { keys: [{ ...ec, crv: 'P-384' }] } })], /curve "P-384"/],
    ['an RSA key without modulus', () => [entry({ jwks: { keys: [{ kty: 'RSA', e: 'AQAB' }] } })], /RSA key without "n" and "e"/],
    ['a key for another algorithm', () => [entry({ jwks: { keys: [{ ...rsa, alg: 'PS256' }] } })], /algorithm "PS256"/],
    ['an encryption key', () => [entry({ jwks: { keys: [{ ...rsa, use: 'enc' }] } })], /"use": "enc"/],
    ['an http:// key set', () => [entry({ jwks: undefined, jwksUri: 'http://a.example/jwks' })], /jwksUri must be https:\/\/ or file:\/\//],
    ['a relative key set URL', () => [entry({ jwks: undefined, jwksUri: 'jwks.json' })], /jwksUri must be an absolute URL/],
    ['a missing key set file', () => [entry({ jwks: undefined, jwksUri: 'file:///nonexistent/jwks.json' })], /jwksUri file:\/\/\/nonexistent\/jwks\.json cannot be read/],
    ['the same issuer twice', () => [entry({}), entry({ audience: 'other' })], /names issuer "https:\/\/a\.example" twice/],
  ])('refuses %s', (_name, doc, message) => {
    expect(() => parseIssuers(doc())).toThrow(ConfigError);
    expect(() => parseIssuers(doc())).toThrow(message);
  });

  it('refuses a missing file, a file that is not JSON, and a key set file that is not JSON', async () => {
    expect(() => loadIssuers(path.join(dir, 'absent.json'))).toThrow(/AUTH_ISSUERS .*absent\.json cannot be read/);
    const notJson = path.join(dir, 'not.json');
    await fs.writeFile(notJson, '[{ issuer: ');
    expect(() => loadIssuers(notJson)).toThrow(ConfigError);
    expect(() => loadIssuers(notJson)).toThrow(/AUTH_ISSUERS .*not\.json is not JSON/);
    const badJwks = path.join(dir, 'bad-jwks.json');
    await fs.writeFile(badJwks, 'nope');
    const file = path.join(dir, 'issuers.json');
    await fs.writeFile(file, JSON.stringify([{ issuer: 'https://a.example', audience: 'fhir', jwksUri: `file://${badJwks}` }]));
    expect(() => loadIssuers(file)).toThrow(/bad-jwks\.json is not JSON/);
  });
});
