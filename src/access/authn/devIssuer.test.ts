import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestIssuer } from '../../../conformance/testIssuer';
import { ConfigError, loadConfig } from '../../config/config';
import { devKeyFile, openDevIssuer } from './devIssuer';
import { DEV_ISSUER_ID } from './issuers';
import { trustedIssuers } from './trustedIssuers';
import { verifyBearer } from './verifyToken';

const BASE = 'http://localhost:8080/fhir';

describe('the development issuer', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dev-issuer-test-'));
  });
  afterEach(() => fs.rm(dataDir, { recursive: true, force: true }));

  const config = (over: Partial<{ production: boolean; embeddedInMemory: boolean }> = {}) => ({
    dataDir,
    embeddedInMemory: false,
    baseUrl: BASE,
    production: false,
    ...over,
  });

  it('creates its key on first start, private to the server user, and reuses it', async () => {
    const first = await openDevIssuer(config());
    expect(first.keyFile).toBe(path.join(dataDir, 'dev-issuer', 'key.json'));
    expect((await fs.stat(path.join(dataDir, 'dev-issuer'))).mode & 0o777).toBe(0o700);
    expect((await fs.stat(first.keyFile!)).mode & 0o777).toBe(0o600);
    const key = JSON.parse(await fs.readFile(first.keyFile!, 'utf8'));
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', d: expect.any(String), kid: expect.any(String) });

    // A token minted before a restart still verifies after it: same key.
    const token = await first.mintToken({ fhirUser: 'Practitioner/123', scope: 'user/*.cruds', practitionerRole: 'r1' });
    const second = await openDevIssuer(config());
    expect(await fs.readFile(second.keyFile!, 'utf8')).toBe(JSON.stringify(key, null, 2));
    const claims = await verifyBearer(`Bearer ${token}`, [second.trusted]);
    expect(claims).toMatchObject({
      issuer: DEV_ISSUER_ID,
      subject: 'Practitioner/123',
      fhirUser: 'Practitioner/123',
      practitionerRole: 'r1',
      scopes: [{ context: 'user', resourceType: '*', operations: 'cruds' }],
    });
    expect(claims.expiresAt! - Date.now() / 1000).toBeGreaterThan(3500);
    expect(second.trusted.audience).toEqual([BASE]);
  });

  it('leaves one key when several workers start at once', async () => {
    const issuers = await Promise.all([1, 2, 3, 4].map(() => openDevIssuer(config())));
    const token = await issuers[0].mintToken({ scope: 'admin' });
    for (const i of issuers) await expect(verifyBearer(`Bearer ${token}`, [i.trusted])).resolves.toMatchObject({ subject: 'admin' });
    expect((await fs.readdir(path.join(dataDir, 'dev-issuer'))).sort()).toEqual(['key.json']);
  });

  it('keeps the key in memory for DATA_DIR=:memory:', async () => {
    const dev = await openDevIssuer(config({ embeddedInMemory: true }));
    expect(dev.keyFile).toBeUndefined();
    expect(await fs.readdir(dataDir)).toEqual([]);
    const token = await dev.mintToken({ fhirUser: 'Patient/p1', scope: 'patient/*.rs', ttlSeconds: 60 });
    await expect(verifyBearer(`Bearer ${token}`, [dev.trusted])).resolves.toMatchObject({ fhirUser: 'Patient/p1' });
  });

  it('mints admin tokens without fhirUser, and refuses tokens naming nobody or with odd lifetimes', async () => {
    const dev = await openDevIssuer(config({ embeddedInMemory: true }));
    const admin = await verifyBearer(`Bearer ${await dev.mintToken({ scope: 'admin', sub: 'ops' })}`, [dev.trusted]);
    expect(admin).toMatchObject({ subject: 'ops', rawScopes: ['admin'] });
    expect(admin.fhirUser).toBeUndefined();
    await expect(dev.mintToken({ scope: 'user/*.rs' })).rejects.toThrow(/needs a fhirUser/);
    await expect(dev.mintToken({ scope: 'admin', ttlSeconds: 0 })).rejects.toThrow(/ttlSeconds/);
    await expect(dev.mintToken({ scope: 'admin', ttlSeconds: 31 * 24 * 3600 })).rejects.toThrow(/ttlSeconds/);
  });

  it('is not trusted by a server with another base URL', async () => {
    const dev = await openDevIssuer(config({ embeddedInMemory: true }));
    const other = await openDevIssuer({ ...config({ embeddedInMemory: true }), baseUrl: 'http://localhost:9090/fhir' });
    const token = await dev.mintToken({ scope: 'admin' });
    // Different key and different audience: either way refused.
    await expect(verifyBearer(`Bearer ${token}`, [other.trusted])).rejects.toThrow(/not meant for this server|does not verify|does not publish/);
  });

  it('refuses to open in production', async () => {
    await expect(openDevIssuer(config({ production: true }))).rejects.toThrow(ConfigError);
    await expect(openDevIssuer(config({ production: true }))).rejects.toThrow(/refused in production/);
    expect(await fs.readdir(dataDir)).toEqual([]);
  });

  it('refuses a key file that other users can read, or that is not its key', async () => {
    const dev = await openDevIssuer(config());
    await fs.chmod(dev.keyFile!, 0o644);
    await expect(openDevIssuer(config())).rejects.toThrow(/readable by other users \(mode 644\): chmod 600/);
    await fs.writeFile(dev.keyFile!, '{"kty":"RSA"}', { mode: 0o600 });
    await fs.chmod(dev.keyFile!, 0o600);
    await expect(openDevIssuer(config())).rejects.toThrow(/is not an ES256 private key/);
    await fs.writeFile(dev.keyFile!, 'garbage');
    await expect(openDevIssuer(config())).rejects.toThrow(/is not JSON/);
  });

  it('is where the token script looks for it', () => {
    expect(devKeyFile('/srv/data')).toBe('/srv/data/dev-issuer/key.json');
  });
});

describe('trustedIssuers', () => {
  it('uses AUTH_ISSUERS when configured, the development issuer otherwise', async () => {
    const idp = await createTestIssuer({ audience: BASE });
    try {
      const fromFile = await trustedIssuers(loadConfig({ AUTH_ISSUERS: idp.issuersFile, DATA_DIR: ':memory:' }));
      expect(fromFile.issuers.map((i) => i.issuer)).toEqual([idp.issuer]);
      expect(fromFile.devIssuer).toBeUndefined();
      const production = await trustedIssuers(loadConfig({ NODE_ENV: 'production', AUTH_ISSUERS: idp.issuersFile, DATA_DIR: ':memory:' }));
      expect(production.issuers.map((i) => i.issuer)).toEqual([idp.issuer]);
    } finally {
      await idp.cleanup();
    }
    const dev = await trustedIssuers(loadConfig({ DATA_DIR: ':memory:' }));
    expect(dev.issuers.map((i) => i.issuer)).toEqual([DEV_ISSUER_ID]);
    expect(dev.devIssuer).toBeDefined();
  });

  it('refuses production without AUTH_ISSUERS even when the config check is bypassed', async () => {
    await expect(trustedIssuers({ authIssuersFile: undefined, production: true, dataDir: '/nonexistent', embeddedInMemory: true, baseUrl: BASE })).rejects.toThrow(
      /refused in production/,
    );
  });
});
