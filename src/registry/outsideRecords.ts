/**
 * Types the R4 Patient CompartmentDefinition places in a patient compartment but that this
 * server files outside any record (compartment ''), whatever they reference
 * (docs/decisions/030-groups.md): a Group names several patients, so filing it in its
 * first member's record would show the whole cohort to every reader of that record.
 */
export const OUTSIDE_RECORDS: ReadonlySet<string> = new Set(['Group']);
