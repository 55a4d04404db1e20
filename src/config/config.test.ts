import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('defaults to the embedded database on port 8080 under ./data', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir.endsWith('/data')).toBe(true);
    expect(c.baseUrl).toBe('http://localhost:8080/fhir');
    expect(c.binaryMaxBytes).toBe(50 * 1024 * 1024);
  });

  it('follows PORT, DATA_DIR, BASE_URL and sizes with suffixes', () => {
    const c = loadConfig({ PORT: '9090', DATA_DIR: '/tmp/x', BASE_URL: 'https://fhir.example.fr/fhir/', BINARY_MAX_BYTES: '2m' });
    expect(c.port).toBe(9090);
    expect(c.dataDir).toBe('/tmp/x');
    expect(c.baseUrl).toBe('https://fhir.example.fr/fhir');
    expect(c.binaryMaxBytes).toBe(2 * 1024 * 1024);
  });

  it('listens on loopback unless HOST says otherwise', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('spools uploads under the data directory, with a quota of at least one upload, and pages expire after an hour', () => {
    const c = loadConfig({ DATA_DIR: '/srv/fhir' });
    expect(c.spoolDir).toBe('/srv/fhir/spool');
    expect(c.spoolMaxBytes).toBeGreaterThanOrEqual(c.binaryMaxBytes);
    expect(c.pageTokenTtlSeconds).toBe(3600);
    expect(loadConfig({}).spoolDir.endsWith('/data/spool')).toBe(true);
    expect(loadConfig({ DATA_DIR: ':memory:' }).spoolDir.endsWith('/data/spool')).toBe(true);
    const custom = loadConfig({ SPOOL_DIR: '/var/spool/fhir', SPOOL_MAX_BYTES: '1g', PAGE_TOKEN_TTL: '600' });
    expect([custom.spoolDir, custom.spoolMaxBytes, custom.pageTokenTtlSeconds]).toEqual(['/var/spool/fhir', 1024 ** 3, 600]);
  });

  // docs/decisions/036-binary-content-files.md: files by default only beside an embedded database on disk
  it.each([
    [{ DATA_DIR: '/srv/fhir' }, '/srv/fhir/content'],
    [{ DATA_DIR: ':memory:' }, undefined],
    [{ DATABASE_URL: 'postgres://db/fhir', DATA_DIR: '/srv/fhir' }, undefined],
    [{ DATABASE_URL: 'postgres://db/fhir', CONTENT_DIR: '/mnt/shared/content' }, '/mnt/shared/content'],
    [{ DATA_DIR: ':memory:', CONTENT_DIR: '/tmp/content' }, '/tmp/content'],
  ])('keeps large Binary content in files where %j says: %s', (env, dir) => {
    const c = loadConfig(env);
    expect([c.contentDir, c.contentFileMinBytes]).toEqual([dir, 1024 * 1024]);
  });

  it('takes the threshold of content files as a size', () => {
    expect(loadConfig({ CONTENT_FILE_MIN_BYTES: '64k' }).contentFileMinBytes).toBe(64 * 1024);
    expect(() => loadConfig({ CONTENT_FILE_MIN_BYTES: 'big' })).toThrow(/CONTENT_FILE_MIN_BYTES/);
  });

  it.each([
    [{ PAGE_TOKEN_TTL: '0' }, /PAGE_TOKEN_TTL/],
    [{ PAGE_TOKEN_TTL: '1h' }, /PAGE_TOKEN_TTL/],
    [{ BINARY_MAX_BYTES: '10m', SPOOL_MAX_BYTES: '5m' }, /SPOOL_MAX_BYTES/],
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /PORT must be between/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must start with postgres/],
    [{ BASE_URL: 'ftp://x' }, /BASE_URL/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ BINARY_MAX_BYTES: 'lots' }, /BINARY_MAX_BYTES/],
    [{ DEFAULT_PAGE_SIZE: '50', MAX_PAGE_SIZE: '10' }, /DEFAULT_PAGE_SIZE/],
  ])('rejects %j with a clear message', (env, message) => {
    expect(() => loadConfig(env as Record<string, string>)).toThrow(ConfigError);
    expect(() => loadConfig(env as Record<string, string>)).toThrow(message);
  });
});

describe('request body limits', () => {
  it('default to what a document submission needs, and follow the environment', () => {
    const c = loadConfig({});
    expect([c.jsonMaxBytes, c.jsonMaxDepth, c.jsonMaxNodes, c.jsonMaxArrayLength]).toEqual([32 * 1024 * 1024, 100, 100_000, 10_000]);
    const set = loadConfig({ JSON_MAX_BYTES: '40m', JSON_MAX_DEPTH: '200', JSON_MAX_NODES: '500000', JSON_MAX_ARRAY_LENGTH: '20000' });
    expect([set.jsonMaxBytes, set.jsonMaxDepth, set.jsonMaxNodes, set.jsonMaxArrayLength]).toEqual([40 * 1024 * 1024, 200, 500_000, 20_000]);
  });

  it.each([
    [{ JSON_MAX_DEPTH: '5000' }, /JSON_MAX_DEPTH must be between 8 and 1000/],
    [{ JSON_MAX_DEPTH: 'deep' }, /JSON_MAX_DEPTH must be an integer/],
    [{ JSON_MAX_NODES: '10' }, /JSON_MAX_NODES must be between/],
    [{ JSON_MAX_ARRAY_LENGTH: '-1' }, /JSON_MAX_ARRAY_LENGTH must be an integer/],
  ])('rejects %j', (env, message) => {
    expect(() => loadConfig(env as Record<string, string>)).toThrow(message);
  });
});

describe('query limits', () => {
  it('default to the values of decision 005, the Bundle entries lower on the embedded database', () => {
    const embedded = loadConfig({});
    expect(embedded).toMatchObject({ maxUrlLength: 8192, searchMaxParameters: 30, searchMaxValues: 1000, searchMaxChainDepth: 3, searchMaxHasDepth: 2, searchMaxChainTargets: 100, elementsMaxNames: 100, dbStatementTimeoutMs: 30000 });
    expect(embedded.bundleMaxEntries).toBe(100);
    expect(loadConfig({ DATABASE_URL: 'postgres://x@h/db' }).bundleMaxEntries).toBe(1000);
  });

  it('follows the environment, 0 turning the statement timeout off', () => {
    const c = loadConfig({ SEARCH_MAX_PARAMETERS: '50', BUNDLE_MAX_ENTRIES: '5000', DB_STATEMENT_TIMEOUT_MS: '0', MAX_URL_LENGTH: '4096' });
    expect(c).toMatchObject({ searchMaxParameters: 50, bundleMaxEntries: 5000, dbStatementTimeoutMs: 0, maxUrlLength: 4096 });
  });

  it.each([
    [{ SEARCH_MAX_PARAMETERS: '0' }, /SEARCH_MAX_PARAMETERS must be between 1/],
    [{ SEARCH_MAX_VALUES: 'many' }, /SEARCH_MAX_VALUES must be an integer/],
    [{ SEARCH_MAX_CHAIN_DEPTH: '11' }, /SEARCH_MAX_CHAIN_DEPTH must be between 0 and 10/],
    [{ SEARCH_MAX_HAS_DEPTH: '-1' }, /SEARCH_MAX_HAS_DEPTH must be an integer/],
    [{ SEARCH_MAX_CHAIN_TARGETS: '0' }, /SEARCH_MAX_CHAIN_TARGETS/],
    [{ ELEMENTS_MAX_NAMES: '0' }, /ELEMENTS_MAX_NAMES/],
    [{ BUNDLE_MAX_ENTRIES: '0' }, /BUNDLE_MAX_ENTRIES/],
    [{ MAX_URL_LENGTH: '20000' }, /MAX_URL_LENGTH must be between 256 and 16000/],
    [{ DB_STATEMENT_TIMEOUT_MS: '30s' }, /DB_STATEMENT_TIMEOUT_MS must be an integer/],
  ])('rejects %j with a clear message', (env, message) => {
    expect(() => loadConfig(env as Record<string, string>)).toThrow(ConfigError);
    expect(() => loadConfig(env as Record<string, string>)).toThrow(message);
  });
});
