import { BadRequest } from '../errors';
import { dateRange } from '../search/dateRange';

/** The output formats of a bulk export: the IG's NDJSON type and the abbreviations servers must accept. */
export const NDJSON_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
export const NDJSON = 'application/fhir+ndjson';

/** Parameters of the IG that this server does not serve: refused, unless the client asked for lenient handling. */
const NOT_SERVED = new Set(['_typeFilter', '_elements', 'patient', 'includeAssociatedData', '_until']);
/** Types never exported: document content is read one document at a time through its DocumentReference. */
export const NOT_EXPORTED = new Set(['Binary']);

export interface ExportRequest {
  types: string[];
  since?: string;
}

/**
 * The kick-off parameters of `$export` (docs/decisions/020-bulk-data.md): `_type` among the
 * served types (Binary excepted), `_since` an instant, `_outputFormat` NDJSON. Pure: the
 * types this export serves, those the server knows (a patient-level export serves fewer)
 * and the handling preference are given.
 */
export function parseExportRequest(params: [string, string][], served: string[], lenient: boolean, known: string[] = served): ExportRequest {
  let types: string[] | undefined;
  let since: string | undefined;
  for (const [name, value] of params) {
    if (name === '_type') {
      const named = value.split(',').map((s) => s.trim()).filter(Boolean);
      // an empty _type would export nothing, which no client asks for on purpose
      if (named.length === 0) throw new BadRequest('_type names no resource type: give a comma-separated list of types, or leave _type out for all of them');
      for (const t of named) {
        if (NOT_EXPORTED.has(t)) throw new BadRequest(`_type: ${t} is not exported; read a document's content through its DocumentReference`, 'not-supported');
        if (!served.includes(t) && known.includes(t)) throw new BadRequest(`_type: ${t} is outside the patient compartment: Patient/$export and Group/[id]/$export export patient records only ([base]/$export exports the others)`, 'not-supported');
        if (!served.includes(t)) throw new BadRequest(`_type: unknown resource type "${t}"`, 'not-supported');
      }
      types = [...new Set([...(types ?? []), ...named])];
    } else if (name === '_since') {
      // an instant: a date alone or a partial date would be ambiguous about the time zone
      if (since !== undefined) throw new BadRequest('_since is given more than once: an export has one starting instant');
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) || !dateRange(value)) throw new BadRequest(`_since must be an instant (2024-01-31T12:00:00Z), got "${value}"`);
      since = new Date(value).toISOString();
    } else if (name === '_outputFormat') {
      // a `+` sent unencoded arrives as a space: `application/fhir ndjson` can only mean the IG's type
      if (!NDJSON_FORMATS.includes(value === 'application/fhir ndjson' ? NDJSON : value)) throw new BadRequest(`_outputFormat "${value}" is not supported: ${NDJSON_FORMATS.join(', ')}`, 'not-supported');
    } else if (name === '_format' || name === '_pretty') continue;
    else if (!lenient) throw new BadRequest(NOT_SERVED.has(name) ? `$export: "${name}" is not supported by this server` : `$export does not take parameter "${name}"`, 'not-supported');
  }
  return { types: types ?? served.filter((t) => !NOT_EXPORTED.has(t)), ...(since ? { since } : {}) };
}

/** Whether the kick-off asked for asynchronous processing, as the IG requires (`Prefer: respond-async`). */
export function asksRespondAsync(prefer: string | undefined): boolean {
  return (prefer ?? '').split(/[,;]/).some((p) => p.trim().toLowerCase() === 'respond-async');
}
