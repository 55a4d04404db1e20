/**
 * Rows written to the search index tables, one shape per parameter kind.
 * Extraction (src/search/extract.ts) produces them from a resource; the store
 * writes them in the same statement as the resource version.
 */

export interface TokenRow extends Grouped {
  param: string;
  /** Coding.system / Identifier.system / ContactPoint.system; null when absent. */
  system: string | null;
  /** Coding.code / Identifier.value / primitive value (booleans as 'true'/'false'). */
  code: string | null;
  /** Display or CodeableConcept.text / Identifier.type.text, normalised for :text (see normalizeString). */
  text: string | null;
}

export interface StringRow extends Grouped {
  param: string;
  /** normalizeString(value): lower case, accents removed, whitespace collapsed. */
  value: string;
  /** The value as written, for :exact. */
  exact: string;
}

export interface ReferenceRow extends Grouped {
  param: string;
  /** Resource type of a local reference (relative `Type/id` or absolute URL of this server). */
  targetType: string | null;
  targetId: string | null;
  /** Version of a versioned local reference (`Type/id/_history/n`), else null. */
  targetVersion: string | null;
  /** Absolute URL (external references and canonicals), else null. */
  url: string | null;
  /** Reference.identifier, for the :identifier modifier. */
  identifierSystem: string | null;
  identifierValue: string | null;
}

/** Date values as the inclusive instant range [low, high] that their precision covers. */
export interface DateRow extends Grouped {
  param: string;
  /** ISO instant (UTC, millisecond precision); null = open (-infinity). */
  low: string | null;
  /** ISO instant (UTC, millisecond precision); null = open (+infinity). */
  high: string | null;
}

export interface NumberRow extends Grouped {
  param: string;
  /** Decimal as written (string, to keep precision). */
  value: string;
}

export interface QuantityRow extends Grouped {
  param: string;
  value: string;
  system: string | null;
  code: string | null;
  unit: string | null;
}

export interface UriRow extends Grouped {
  param: string;
  value: string;
}

/**
 * Rows of a composite parameter's components carry `param` = `<composite code>$<component index>`
 * and the same `group` for the components of one element, so that a composite search matches
 * components of the same element (e.g. one Observation.component's code and value).
 */
export interface Grouped {
  group?: number;
}

export interface IndexRows {
  token: TokenRow[];
  string: StringRow[];
  reference: ReferenceRow[];
  date: DateRow[];
  number: NumberRow[];
  quantity: QuantityRow[];
  uri: UriRow[];
}

export const INDEX_KINDS = ['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri'] as const;
export type IndexKind = (typeof INDEX_KINDS)[number];

export function emptyIndexRows(): IndexRows {
  return { token: [], string: [], reference: [], date: [], number: [], quantity: [], uri: [] };
}
