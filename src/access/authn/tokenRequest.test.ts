import { parseTokenArgs, TokenUsageError } from './tokenRequest';

describe('parseTokenArgs (npm run token)', () => {
  it.each([
    [['--fhir-user', 'Practitioner/123', '--scope', 'user/*.cruds'], { fhirUser: 'Practitioner/123', scope: 'user/*.cruds' }],
    [
      ['--fhir-user=Practitioner/123', '--scope=user/*.cruds openid', '--role', 'role-1', '--ttl', '600', '--sub', 'psc|1'],
      { fhirUser: 'Practitioner/123', scope: 'user/*.cruds openid', practitionerRole: 'role-1', ttlSeconds: 600, sub: 'psc|1' },
    ],
    [['--fhir-user', 'Patient/p1', '--scope', 'patient/*.rs'], { fhirUser: 'Patient/p1', scope: 'patient/*.rs' }],
    [['--admin'], { scope: 'admin' }],
    [['--admin', '--scope', 'system/*.rs'], { scope: 'system/*.rs admin' }],
    [['--admin', '--scope', 'admin'], { scope: 'admin' }],
  ])('%j', (argv, expected) => {
    expect(parseTokenArgs(argv)).toEqual(expected);
  });

  it.each([
    [[], /--fhir-user, or .* --admin/],
    [['--fhir-user', 'Practitioner/123'], /--scope is required/],
    [['--fhir-user', 'Organization/1', '--scope', 'user/*.rs'], /--fhir-user must be/],
    [['--fhir-user', 'Patient/p1', '--scope', 'patient/*.rs', '--role', 'r1'], /--role goes with --fhir-user Practitioner/],
    [['--fhir-user', 'Practitioner/1', '--scope', 'user/*.rs', '--role', 'a b'], /--role must be a PractitionerRole id/],
    [['--admin', '--ttl', 'soon'], /--ttl needs a number/],
    [['--scope'], /--scope needs a value/],
    [['--admni'], /Unknown argument "--admni"/],
    [['--help'], /^$/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseTokenArgs(argv)).toThrow(TokenUsageError);
    expect(() => parseTokenArgs(argv)).toThrow(message);
  });
});
