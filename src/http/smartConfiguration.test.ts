import { smartConfiguration } from './smartConfiguration';

describe('smartConfiguration', () => {
  const document = smartConfiguration();

  it('states the SMART scope capabilities this server enforces', () => {
    expect(document.capabilities).toEqual(['permission-v2', 'permission-v1', 'permission-patient', 'permission-user']);
    expect(document.scopes_supported).toEqual(expect.arrayContaining(['patient/*.rs', 'user/*.cruds', 'system/*.cruds']));
  });

  it('names no endpoint this server does not serve: it runs no authorization server and is no OpenID issuer', () => {
    for (const field of ['authorization_endpoint', 'token_endpoint', 'issuer', 'jwks_uri', 'registration_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'management_endpoint']) {
      expect(document).not.toHaveProperty(field);
    }
    // capabilities that only an authorization server can honour
    for (const capability of ['launch-ehr', 'launch-standalone', 'sso-openid-connect', 'client-public', 'client-confidential-symmetric', 'client-confidential-asymmetric', 'permission-offline', 'context-ehr-patient']) {
      expect(document.capabilities).not.toContain(capability);
    }
  });

  it('lists only scopes the scope parser honours (or admin)', async () => {
    const { parseScope } = await import('../access/authn/scopes');
    for (const scope of document.scopes_supported as string[]) expect(scope === 'admin' || parseScope(scope) !== undefined).toBe(true);
  });

  it('gives each caller its own copy', () => {
    (smartConfiguration().capabilities as string[]).push('launch-ehr');
    expect(smartConfiguration().capabilities).not.toContain('launch-ehr');
  });
});
