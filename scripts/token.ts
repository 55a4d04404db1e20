/**
 * Prints a bearer token signed by the development issuer (docs/decisions/007-authentication.md),
 * for a server started without AUTH_ISSUERS on the same DATA_DIR and BASE_URL/PORT.
 *
 *   npm run token -- --fhir-user Practitioner/123 --scope "user/*.cruds" [--role <PractitionerRole id>] [--ttl 3600]
 *   npm run token -- --admin
 *
 * The token goes to stdout alone (for `TOKEN=$(npm run --silent token -- …)`); what it is
 * goes to stderr.
 */
import { openDevIssuer } from '../src/access/authn/devIssuer';
import { parseTokenArgs, TOKEN_USAGE, TokenUsageError } from '../src/access/authn/tokenRequest';
import { ConfigError, loadConfig } from '../src/config/config';

async function main(): Promise<void> {
  let request;
  try {
    request = parseTokenArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof TokenUsageError)) throw e;
    if (e.message) console.error(e.message);
    console.error(TOKEN_USAGE);
    process.exit(e.message ? 2 : 0);
  }
  const config = loadConfig(process.env);
  if (config.authIssuersFile) {
    throw new ConfigError('AUTH_ISSUERS is set: the server trusts those issuers only, and would refuse a development token. Get a token from your identity provider.');
  }
  if (config.embeddedInMemory) {
    throw new ConfigError('DATA_DIR=:memory: keeps the development key inside the server process: use a DATA_DIR on disk to mint tokens from here.');
  }
  const dev = await openDevIssuer(config);
  const token = await dev.mintToken(request);
  process.stdout.write(`${token}\n`);
  console.error(
    `Signed by ${dev.trusted.issuer} (key ${dev.keyFile}) for ${config.baseUrl}: ` +
      `${request.fhirUser ?? (request.scope.split(' ').includes('conformance-testing') ? 'unrestricted test client' : 'administrator')}, scope "${request.scope}", valid ${request.ttlSeconds ?? 3600} s`,
  );
}

main().catch((e) => {
  console.error(e instanceof ConfigError || e instanceof Error ? e.message : e);
  process.exit(1);
});
