import path from 'node:path';
import { ConfigError, loadConfig } from './config';

describe('loadConfig: authentication and transport', () => {
  it('defaults to development authentication, plain HTTP, no CORS, 30 s skew, 365-day consents', () => {
    const c = loadConfig({});
    expect(c.authIssuersFile).toBeUndefined();
    expect(c.production).toBe(false);
    expect(c.nodeEnv).toBe('');
    expect(c.tls).toBeUndefined();
    expect(c.clockSkewSeconds).toBe(30);
    expect(c.corsOrigins).toEqual([]);
    expect(c.consentDefaultDays).toBe(365);
  });

  it('reads issuers, TLS paths, skew, origins and the consent default', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      AUTH_ISSUERS: 'conf/issuers.json',
      TLS_CERT: '/etc/fhir/cert.pem',
      TLS_KEY: '/etc/fhir/key.pem',
      TLS_CLIENT_CA: '/etc/fhir/igc-sante.pem',
      AUTH_CLOCK_SKEW_SECONDS: '5',
      CORS_ORIGINS: 'https://app.example.fr, http://localhost:3000',
      CONSENT_DEFAULT_DAYS: '90',
    });
    expect(c.production).toBe(true);
    expect(c.authIssuersFile).toBe(path.resolve('conf/issuers.json'));
    expect(c.tls).toEqual({ cert: '/etc/fhir/cert.pem', key: '/etc/fhir/key.pem', clientCa: '/etc/fhir/igc-sante.pem' });
    expect(c.clockSkewSeconds).toBe(5);
    expect(c.corsOrigins).toEqual(['https://app.example.fr', 'http://localhost:3000']);
    expect(c.consentDefaultDays).toBe(90);
  });

  it('allows HTTPS without client certificates', () => {
    expect(loadConfig({ TLS_CERT: 'c.pem', TLS_KEY: 'k.pem' }).tls).toEqual({ cert: path.resolve('c.pem'), key: path.resolve('k.pem'), clientCa: undefined });
  });

  it.each([
    [{ NODE_ENV: 'production' }, /NODE_ENV=production requires AUTH_ISSUERS/],
    [{ TLS_CERT: 'c.pem' }, /TLS_CERT and TLS_KEY go together/],
    [{ TLS_KEY: 'k.pem' }, /TLS_CERT and TLS_KEY go together/],
    [{ TLS_CLIENT_CA: 'ca.pem' }, /TLS_CLIENT_CA needs TLS_CERT and TLS_KEY/],
    [{ AUTH_CLOCK_SKEW_SECONDS: '-1' }, /AUTH_CLOCK_SKEW_SECONDS must be an integer/],
    [{ AUTH_CLOCK_SKEW_SECONDS: '3600' }, /AUTH_CLOCK_SKEW_SECONDS must be between 0 and 300/],
    [{ CORS_ORIGINS: '*' }, /CORS_ORIGINS may not be "\*"/],
    [{ CORS_ORIGINS: 'https://a.fr,*' }, /CORS_ORIGINS may not be "\*"/],
    [{ CORS_ORIGINS: 'https://app.example.fr/' }, /CORS_ORIGINS entries must be origins/],
    [{ CORS_ORIGINS: 'https://app.example.fr/path' }, /CORS_ORIGINS entries must be origins/],
    [{ CORS_ORIGINS: 'app.example.fr' }, /CORS_ORIGINS entries must be origins/],
    [{ CORS_ORIGINS: 'ftp://app.example.fr' }, /CORS_ORIGINS entries must be origins/],
    [{ CONSENT_DEFAULT_DAYS: '0' }, /CONSENT_DEFAULT_DAYS must be between 1 and 3650/],
  ])('rejects %j with a clear message', (env, message) => {
    expect(() => loadConfig(env as Record<string, string>)).toThrow(ConfigError);
    expect(() => loadConfig(env as Record<string, string>)).toThrow(message);
  });
});
