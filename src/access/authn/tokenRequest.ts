import type { MintRequest } from './devIssuer';

/**
 * The command line of `npm run token` as a mint request for the development issuer:
 *   --fhir-user Practitioner/123 --scope "user/*.cruds" [--role <PractitionerRole id>] [--ttl 3600] [--sub …]
 *   --admin [--scope …]
 *   --test-client
 */
export const TOKEN_USAGE = `Usage: npm run token -- --fhir-user Practitioner/123 --scope "user/*.cruds" [--role <PractitionerRole id>] [--ttl 3600] [--sub <subject>]
       npm run token -- --admin [--ttl 3600]
       npm run token -- --test-client [--ttl 3600]   (unrestricted, for generic FHIR test suites; development only)
Prints a token signed by the development issuer key under DATA_DIR, for the audience BASE_URL
(default http://localhost:$PORT/fhir). Not available with AUTH_ISSUERS or NODE_ENV=production.`;

export class TokenUsageError extends Error {}

const FHIR_USER = /^(Practitioner|Patient|RelatedPerson|Device)\/[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** A TokenUsageError with an empty message means --help. */
export function parseTokenArgs(argv: readonly string[]): MintRequest {
  let fhirUser: string | undefined;
  let scope: string | undefined;
  let role: string | undefined;
  let sub: string | undefined;
  let ttl: number | undefined;
  let admin = false;
  let testClient = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const [name, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new TokenUsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--fhir-user':
        fhirUser = value();
        break;
      case '--scope':
        scope = value();
        break;
      case '--role':
        role = value();
        break;
      case '--sub':
        sub = value();
        break;
      case '--ttl': {
        const v = value();
        if (!/^\d+$/.test(v)) throw new TokenUsageError(`--ttl needs a number of seconds, got "${v}"`);
        ttl = Number(v);
        break;
      }
      case '--admin':
        admin = true;
        break;
      case '--test-client':
        testClient = true;
        break;
      case '--help':
      case '-h':
        throw new TokenUsageError('');
      default:
        throw new TokenUsageError(`Unknown argument "${arg}"`);
    }
  }
  if (fhirUser !== undefined && !FHIR_USER.test(fhirUser)) {
    throw new TokenUsageError(`--fhir-user must be Practitioner/{id}, Patient/{id}, RelatedPerson/{id} or Device/{id}, got "${fhirUser}"`);
  }
  if (role !== undefined) {
    if (!fhirUser?.startsWith('Practitioner/')) throw new TokenUsageError('--role goes with --fhir-user Practitioner/{id}');
    if (!RESOURCE_ID.test(role)) throw new TokenUsageError(`--role must be a PractitionerRole id, got "${role}"`);
  }
  if (testClient) return { scope: 'conformance-testing', sub: sub ?? 'test-client', ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) };
  if (!admin && !fhirUser) throw new TokenUsageError('Name the actor with --fhir-user, or ask for an administrator token with --admin');
  if (!admin && scope === undefined) throw new TokenUsageError('--scope is required, e.g. --scope "user/*.cruds"');
  const scopes = (scope ?? '').split(/\s+/).filter(Boolean);
  if (admin && !scopes.includes('admin')) scopes.push('admin');
  return {
    scope: scopes.join(' '),
    ...(fhirUser ? { fhirUser } : {}),
    ...(role ? { practitionerRole: role } : {}),
    ...(sub ? { sub } : {}),
    ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
  };
}
