/**
 * Who is calling, once authenticated: what the policy decides on. Built from a verified
 * token (or client certificate) and the actor's own resources on this server.
 */

export interface Coding {
  system?: string;
  code: string;
}

/** A SMART v2 scope, parsed: `patient/DocumentReference.rs` → {context: 'patient', resourceType: 'DocumentReference', operations: 'rs'}. */
export interface Scope {
  context: 'patient' | 'user' | 'system';
  /** A resource type or '*'. */
  resourceType: string;
  /** Subset of 'cruds', in that order. */
  operations: string;
}

/** The role a practitioner acts in now (a PractitionerRole of theirs). */
export interface ActingRole {
  roleId: string;
  /** PractitionerRole.code: the profession (TRE_G15). */
  profession?: Coding;
  /** PractitionerRole.specialty (TRE_R38). */
  specialties: Coding[];
  /** PractitionerRole.organization, as `Organization/{id}`. */
  organization?: string;
}

interface ActorBase {
  /** The token's `sub` (or the certificate subject). */
  subject: string;
  /** SMART scopes granted; `admin` is carried by the admin kind. */
  scopes: Scope[];
  authenticatedBy: 'token' | 'certificate';
  /** The name of the actor's resource, as the audit trail shows it. */
  display?: string;
}

export interface PractitionerActor extends ActorBase {
  kind: 'practitioner';
  id: string;
  /** RPPS (or ADELI) national identifier, when the Practitioner carries one. */
  nationalId?: string;
  roles: ActingRole[];
}
export interface PatientActor extends ActorBase {
  kind: 'patient';
  id: string;
}
/** A legal representative (RelatedPerson of a minor), acting for `patientId`. */
export interface RelatedPersonActor extends ActorBase {
  kind: 'related-person';
  id: string;
  patientId: string;
}
/** A system or catalogue application (Device), depositing for its owner organisation. */
export interface DeviceActor extends ActorBase {
  kind: 'device';
  id: string;
  deviceType?: Coding;
  organization?: string;
}
export interface AdminActor extends ActorBase {
  kind: 'admin';
  /** The `legal-hold` scope: reads and restores archived records (docs/decisions/017-record-lifecycle.md). */
  legalHold?: boolean;
}

export type Actor = PractitionerActor | PatientActor | RelatedPersonActor | DeviceActor | AdminActor;

/** The verified claims of a bearer token, before the actor's resources are looked up. */
export interface TokenClaims {
  issuer: string;
  subject: string;
  /** `Practitioner/{id}`, `Patient/{id}`, `RelatedPerson/{id}` or `Device/{id}`; absent for an admin. */
  fhirUser?: string;
  scopes: Scope[];
  /** The raw scope strings (for `admin`, `launch/patient`, …). */
  rawScopes: string[];
  practitionerRole?: string;
  expiresAt?: number;
  /** An unrestricted test client (an issuer marked testClient, outside production only). */
  testClient?: boolean;
}
