import type { Coding } from '../access/actor';

/**
 * What one caller may read, as data the SQL builder turns into conditions on every
 * resource row a statement touches: matches, totals, chains, `_has`, includes, history,
 * `$everything`, reads by id (docs/decisions/008-access-model.md). Every store read takes
 * one through its Session, so a read path cannot forget it.
 */
export interface Visibility {
  /** Only rows in these patient compartments ('' = resources outside any patient compartment); absent = every compartment. */
  compartments?: string[];
  /** Types readable outside any patient compartment even when `compartments` does not list '' (the directory). */
  sharedTypes?: string[];
  /** Rows carrying one of these security labels (meta.security) are hidden, except where an exception says otherwise. */
  excludedSecurityLabels?: LabelRule[];
  /** Rows of `resourceType` are visible only if their token `param` is one of `codes` (the habilitation matrix). */
  requiredTokens?: { resourceType: string; param: string; codes: Coding[] }[];
  /** Rows of `resourceType` whose token `param` is one of `codes` are hidden (the patient's notifications, from the care team). */
  excludedTokens?: { resourceType: string; param: string; codes: Coding[] }[];
  /** Resource types that may be read at all. */
  resourceTypes?: string[];
  /** Resource types never read, whatever the compartment (a professional and the audit trail of their patients). */
  excludedTypes?: string[];
  /** DocumentReference rows are visible only if one of these rules lets them through (the habilitation matrix, one rule per acting role). */
  readableDocuments?: DocumentRule[];
  /** A Binary that DocumentReferences point to is visible only through one of them that is visible. */
  binaryFollowsDocument?: boolean;
  /** A Communication whose `about` names a resource hidden from the caller is hidden with it (a notice of a document not yet shown). */
  noticesFollowAbout?: boolean;
  /**
   * Messages of the secure messaging (Communications with a thread) and the Binaries they
   * carry are visible only when one of `participants` takes part in their thread, copy not
   * deleted (docs/decisions/016-messaging.md). `only`: no other Communication or Binary (a Device).
   * `patientSide`: nor the messages the patient's side deleted one by one.
   */
  messages?: { participants: string[]; only?: boolean; patientSide?: boolean };
  /** The caller's own Subscriptions (outside any record) are readable: those whose owner is this `fhirUser` (decision 010). */
  ownSubscriptions?: string;
  /** Rows of opposed and closed records (a `record_closure` row) are hidden: for callers not limited to `compartments` (decision 017). */
  closedRecordsHidden?: boolean;
  /** AuditEvents are shown without what they name that the caller cannot read (src/store/trailView.ts, decision 009). */
  trailAsSeen?: boolean;
  /** The patient's own folders are hidden: Lists whose `source` is a Patient and that are not an MHD SubmissionSet (decision 021). */
  patientFoldersHidden?: boolean;
}

/** The documents one role may read: by class (category), by type, never the excluded types. */
export interface DocumentRule {
  classSystem: string;
  classes: string[];
  types: Coding[];
  /** Never readable; also matches a stored type with this code and no system. */
  excludedTypes: Coding[];
  /** Readable when the document carries no category. */
  typesWithoutClass: Coding[];
}

export interface LabelRule {
  system?: string;
  code: string;
  /** The label does not hide rows whose `author` is one of these references (`Practitioner/1`). */
  exceptAuthors?: string[];
  /** The label does not hide rows in these compartments (the records whose treating physician is the caller). */
  exceptCompartments?: string[];
}

/**
 * No restriction: for start-up, migrations and maintenance that act for no caller. Every
 * use is a place that reads without an actor: `grep -rn UNRESTRICTED src` lists them.
 */
export const UNRESTRICTED: Visibility = Object.freeze({});

/** Nothing at all: what a caller gets before the policy has said anything. */
export const NOTHING: Visibility = Object.freeze({ compartments: [], resourceTypes: [] });

/** A pure restatement for tests and logs: whether the visibility restricts anything. */
export function isUnrestricted(v: Visibility): boolean {
  return !v.compartments && !v.sharedTypes && !v.excludedSecurityLabels?.length && !v.requiredTokens?.length && !v.excludedTokens?.length && !v.resourceTypes && !v.excludedTypes?.length && !v.binaryFollowsDocument && !v.readableDocuments && !v.noticesFollowAbout && !v.trailAsSeen && !v.ownSubscriptions && !v.closedRecordsHidden && !v.messages && !v.patientFoldersHidden;
}
