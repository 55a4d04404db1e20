import type { Config } from '../../config/config';
import { openDevIssuer, type DevIssuer } from './devIssuer';
import { loadIssuers, type TrustedIssuer } from './issuers';

/**
 * The issuers a server trusts, from its configuration: the AUTH_ISSUERS file, or else the
 * development issuer (which refuses to open in production). Called once at start-up; a
 * ConfigError stops the server.
 */
export async function trustedIssuers(
  config: Pick<Config, 'authIssuersFile' | 'production' | 'dataDir' | 'embeddedInMemory' | 'baseUrl'>,
): Promise<{ issuers: TrustedIssuer[]; devIssuer?: DevIssuer }> {
  if (config.authIssuersFile) return { issuers: loadIssuers(config.authIssuersFile, { production: config.production }) };
  const devIssuer = await openDevIssuer(config);
  return { issuers: [devIssuer.trusted], devIssuer };
}
