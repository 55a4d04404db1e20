import type { ActingRole, Actor, Coding, TokenClaims } from '../access/actor';
import type { CertificateIdentity } from '../access/authn/clientCertificate';
import { parseScopes } from '../access/authn/scopes';
import { relative } from '../access/policy/recordFacts';
import { Unauthorized } from '../errors';
import { SYSTEMS } from '../validation/domain/identifiers';
import { actorResources, actorResourcesWithFacts, FactsRead, FactsWanted, practitionersByIdNatPs, StoredResource } from '../store/accessFacts';
import type { Session } from '../store/session';

const firstCoding = (concept: any): Coding | undefined => {
  const c = (concept?.coding ?? []).find((x: any) => typeof x?.code === 'string');
  return c ? { system: c.system, code: c.code } : undefined;
};

/** A person's name (or a device's), as an app shows it: HumanName.text, else given names and family. */
export function displayName(resource: Record<string, any>): string | undefined {
  if (resource.resourceType === 'Device') {
    const name = (resource.deviceName ?? []).find((n: any) => typeof n?.name === 'string')?.name;
    return typeof name === 'string' ? name : undefined;
  }
  const names: any[] = Array.isArray(resource.name) ? resource.name : [];
  const name = names.find((n) => n?.use === 'official') ?? names.find((n) => n?.use !== 'old') ?? names[0];
  if (!name) return undefined;
  if (typeof name.text === 'string' && name.text.trim()) return name.text.trim();
  const parts = [...(Array.isArray(name.prefix) ? name.prefix : []), ...(Array.isArray(name.given) ? name.given : []), name.family].filter((p) => typeof p === 'string' && p);
  return parts.length ? parts.join(' ') : undefined;
}

/** A role acts now when active and inside its period. */
function actsNow(role: Record<string, any>, now: number): boolean {
  if (role.active === false) return false;
  const start = role.period?.start ? Date.parse(role.period.start) : undefined;
  const end = role.period?.end ? Date.parse(role.period.end) : undefined;
  return !(start !== undefined && start > now) && !(end !== undefined && end < now);
}

function actingRole(role: Record<string, any>): ActingRole {
  const codings = (list: any[] | undefined) => (list ?? []).map(firstCoding).filter((c): c is Coding => Boolean(c));
  return {
    roleId: String(role.id),
    profession: codings(role.code)[0],
    specialties: codings(role.specialty),
    organization: typeof role.organization?.reference === 'string' ? relative(role.organization.reference) : undefined,
  };
}

/**
 * The actor behind verified claims: their resource must exist on this server and be
 * active, or the token is refused (401). A practitioner acts in the PractitionerRole the
 * token names (it must be theirs and active) or in all their active roles.
 */
export async function resolveActor(session: Session, claims: TokenClaims, now: number, authenticatedBy: Actor['authenticatedBy'] = 'token'): Promise<Actor> {
  return (await resolveActorWithFacts(session, claims, now, authenticatedBy)).actor;
}

/** The types of actor whose access depends on the records' facts (a patient, a representative, a professional). */
const PEOPLE = ['Patient', 'RelatedPerson', 'Practitioner'];

/**
 * `resolveActor`, reading in the same statement the facts `wanted` of the records a request
 * addresses (for a person: systems and administrators are not decided on them).
 */
export async function resolveActorWithFacts(
  session: Session,
  claims: TokenClaims,
  now: number,
  authenticatedBy: Actor['authenticatedBy'] = 'token',
  wanted?: FactsWanted,
  /** `Patient/{id}` that may be inactive for this request: the person withdrawing their opposition (decision 017). */
  inactiveAllowed?: string,
): Promise<{ actor: Actor; facts?: FactsRead }> {
  const base = { subject: claims.subject, scopes: claims.scopes, authenticatedBy };
  if (!claims.fhirUser) {
    if (claims.rawScopes.includes('admin')) return { actor: { ...base, kind: 'admin', ...(claims.rawScopes.includes('legal-hold') ? { legalHold: true } : {}) } };
    throw new Unauthorized('The token names no fhirUser and carries no admin scope: it identifies nobody this server knows');
  }
  const [type, id] = relative(claims.fhirUser).split('/');
  // the actor's resource and, for a practitioner, their roles: one statement (with the facts of the request's records)
  const withFacts = wanted && PEOPLE.includes(type);
  const found = type && id ? await (withFacts ? actorResourcesWithFacts(session, type, id, wanted) : actorResources(session, type, id)) : undefined;
  const facts = found && 'facts' in found ? (found.facts as FactsRead) : undefined;
  return { actor: actorOf(found, claims, type, id, base, now, inactiveAllowed), facts };
}

function actorOf(
  found: { actor: StoredResource | undefined; roles: Record<string, any>[] } | undefined,
  claims: TokenClaims,
  type: string,
  id: string,
  base: { subject: string; scopes: TokenClaims['scopes']; authenticatedBy: Actor['authenticatedBy'] },
  now: number,
  inactiveAllowed?: string,
): Actor {
  const stored = found?.actor;
  if (!stored || stored.deleted || !stored.resource) throw new Unauthorized(`The token's fhirUser ${claims.fhirUser} is not known to this server`);
  const resource = stored.resource;
  if (resource.active === false && `${type}/${id}` !== inactiveAllowed) throw new Unauthorized(`The token's fhirUser ${claims.fhirUser} is inactive`);
  const display = displayName(resource);
  if (display) Object.assign(base, { display });
  switch (type) {
    case 'Patient':
      return { ...base, kind: 'patient', id };
    case 'RelatedPerson': {
      const patient = typeof resource.patient?.reference === 'string' ? relative(resource.patient.reference) : '';
      if (!patient.startsWith('Patient/')) throw new Unauthorized(`RelatedPerson/${id} represents no patient`);
      // a representation that has ended (the minor came of age, a guardianship was lifted) or not begun is no representation
      if (!actsNow(resource, now)) throw new Unauthorized(`RelatedPerson/${id} does not represent the patient now (RelatedPerson.period)`);
      return { ...base, kind: 'related-person', id, patientId: patient.slice('Patient/'.length) };
    }
    case 'Device':
      return {
        ...base,
        kind: 'device',
        id,
        deviceType: firstCoding(resource.type),
        organization: typeof resource.owner?.reference === 'string' ? relative(resource.owner.reference) : undefined,
      };
    case 'Practitioner': {
      const roles = found!.roles.filter((r) => actsNow(r, now));
      const chosen = claims.practitionerRole ? roles.filter((r) => r.id === claims.practitionerRole) : roles;
      if (claims.practitionerRole && chosen.length === 0) {
        throw new Unauthorized(`PractitionerRole/${claims.practitionerRole} is not an active role of Practitioner/${id}`);
      }
      const nationalId = (resource.identifier ?? []).find((i: any) => typeof i?.value === 'string')?.value;
      return { ...base, kind: 'practitioner', id, nationalId, roles: chosen.map(actingRole) };
    }
    default:
      throw new Unauthorized(`fhirUser must be a Practitioner, Patient, RelatedPerson or Device, not ${type}`);
  }
}

/**
 * What a professional's certificate grants: the scopes an EHR acting for its user holds.
 * The policy (consent, habilitation matrix, masks) bounds what they get, as for a token.
 */
export const CERTIFICATE_SCOPES = 'user/*.cruds';

/** Marks claims built from a client certificate (no token issuer vouched for them). */
export const CERTIFICATE_ISSUER = 'tls-client-certificate';

/**
 * The claims of a verified client certificate: the Practitioner whose idNatPS identifier
 * (`8` + RPPS, system urn:oid:1.2.250.1.71.4.2.1) is the certificate's, who must be unique,
 * current and active. Refusals are 401 with a bare Bearer challenge: no token was sent,
 * and a token is the other way in.
 */
export async function certificateClaims(session: Session, identity: CertificateIdentity): Promise<TokenClaims> {
  const found = await practitionersByIdNatPs(session, SYSTEMS.idNatPs, identity.idNat);
  if (found.length === 0) throw new Unauthorized('No Practitioner on this server carries the RPPS number of the client certificate', false);
  // two directory entries for one professional: choosing one would be a guess
  if (found.length > 1) throw new Unauthorized('Several Practitioners on this server carry the RPPS number of the client certificate', false);
  if (found[0].active === false) throw new Unauthorized('The Practitioner named by the client certificate is inactive', false);
  return {
    issuer: CERTIFICATE_ISSUER,
    subject: identity.subject,
    fhirUser: `Practitioner/${found[0].id}`,
    scopes: parseScopes(CERTIFICATE_SCOPES).scopes,
    rawScopes: [CERTIFICATE_SCOPES],
  };
}
