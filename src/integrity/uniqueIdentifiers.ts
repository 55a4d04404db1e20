/**
 * National identifiers that name one person, professional or structure: a current
 * resource of the type claims them, and no other may hold the same one
 * (docs/decisions/014-integrity.md).
 */
export const NATIONAL_IDENTIFIER_SYSTEMS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  // INS-NIR, INS-NIA, INS-NIR-TEST, INS-NIR-DEMO
  Patient: ['urn:oid:1.2.250.1.213.1.4.8', 'urn:oid:1.2.250.1.213.1.4.9', 'urn:oid:1.2.250.1.213.1.4.10', 'urn:oid:1.2.250.1.213.1.4.11'],
  // idNatPS: 8 + RPPS or 0 + ADELI
  Practitioner: ['urn:oid:1.2.250.1.71.4.2.1'],
  // idNatStruct, FINESS, SIREN/SIRET
  Organization: ['urn:oid:1.2.250.1.71.4.2.2', 'http://finess.sante.gouv.fr', 'https://sirene.fr', 'http://sirene.fr'],
});

/** The NSS slice of FR Core shares the INS-NIR system: the insured person's number, carried by their children too. */
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';

export interface IdentifierClaim {
  system: string;
  value: string;
  /** Where the identifier is in the resource, for the refusal. */
  expression: string;
}

export function claimsUniqueIdentifiers(resourceType: string): boolean {
  return resourceType in NATIONAL_IDENTIFIER_SYSTEMS;
}

/** The national identifiers a resource claims (none for a type without any). */
export function identifierClaims(resource: Record<string, unknown>): IdentifierClaim[] {
  const resourceType = String(resource.resourceType);
  const systems = NATIONAL_IDENTIFIER_SYSTEMS[resourceType];
  if (!systems || !Array.isArray(resource.identifier)) return [];
  const claims: IdentifierClaim[] = [];
  const seen = new Set<string>();
  resource.identifier.forEach((identifier: unknown, i: number) => {
    if (!identifier || typeof identifier !== 'object') return;
    const { system, value, use, type } = identifier as { system?: unknown; value?: unknown; use?: unknown; type?: { coding?: { system?: string; code?: string }[] } };
    if (typeof system !== 'string' || typeof value !== 'string' || !systems.includes(system)) return;
    if (use === 'old') return;
    if (type?.coding?.some?.((c) => c?.system === V2_0203 && c?.code === 'NH')) return;
    const key = `${system}|${value}`;
    if (seen.has(key)) return;
    seen.add(key);
    claims.push({ system, value, expression: `${resourceType}.identifier[${i}]` });
  });
  return claims;
}
