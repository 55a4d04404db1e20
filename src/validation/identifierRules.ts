/**
 * An Identifier whose system is urn:ietf:rfc:3986 says its value is a URI (identifier registry:
 * "as defined by RFC 3986 … for OIDs and UUIDs, use the URN form"), and an RFC 3986 URI starts
 * with its scheme: "2.16.840.1.113883.6.57" is not one, "urn:oid:2.16.840.1.113883.6.57" is
 * (the HL7 validator checks it so). Pure.
 */
import type { Issue } from '../errors';

const URI_SYSTEM = 'urn:ietf:rfc:3986';
/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" */
const HAS_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

export function identifierIssues(identifier: any, path: string): Issue[] {
  if (identifier?.system !== URI_SYSTEM || typeof identifier.value !== 'string' || HAS_SCHEME.test(identifier.value)) return [];
  return [
    {
      severity: 'error',
      code: 'code-invalid',
      diagnostics: `if identifier.system is '${URI_SYSTEM}', then the identifier.value must be a full URI (e.g. start with a scheme), not '${identifier.value}'`,
      expression: [path],
    },
  ];
}
