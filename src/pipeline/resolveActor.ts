import type { ActingRole, Actor, Coding, TokenClaims } from '../access/actor';
import { relative } from '../access/policy/recordFacts';
import { Unauthorized } from '../errors';
import { peekResource, practitionerRoles } from '../store/accessFacts';
import type { Session } from '../store/session';

const firstCoding = (concept: any): Coding | undefined => {
  const c = (concept?.coding ?? []).find((x: any) => typeof x?.code === 'string');
  return c ? { system: c.system, code: c.code } : undefined;
};

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
export async function resolveActor(session: Session, claims: TokenClaims, now: number): Promise<Actor> {
  const base = { subject: claims.subject, scopes: claims.scopes, authenticatedBy: 'token' as const };
  if (!claims.fhirUser) {
    if (claims.rawScopes.includes('admin')) return { ...base, kind: 'admin' };
    throw new Unauthorized('The token names no fhirUser and carries no admin scope: it identifies nobody this server knows');
  }
  const [type, id] = relative(claims.fhirUser).split('/');
  const stored = type && id ? await peekResource(session, type, id) : undefined;
  if (!stored || stored.deleted || !stored.resource) throw new Unauthorized(`The token's fhirUser ${claims.fhirUser} is not known to this server`);
  const resource = stored.resource;
  if (resource.active === false) throw new Unauthorized(`The token's fhirUser ${claims.fhirUser} is inactive`);
  switch (type) {
    case 'Patient':
      return { ...base, kind: 'patient', id };
    case 'RelatedPerson': {
      const patient = typeof resource.patient?.reference === 'string' ? relative(resource.patient.reference) : '';
      if (!patient.startsWith('Patient/')) throw new Unauthorized(`RelatedPerson/${id} represents no patient`);
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
      const roles = (await practitionerRoles(session, id)).filter((r) => actsNow(r, now));
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
