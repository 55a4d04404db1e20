import { Issue, MethodNotAllowed, Unprocessable } from '../errors';
import { canonicalJson } from '../json/canonicalJson';
import { VISIBILITY_SYSTEM } from '../access/policy/recordFacts';

/**
 * What PDSm lets a PATCH change on a stored DocumentReference (flux 03/04; docs/decisions/
 * 021-document-metadata-life.md): its status, its securityLabel, its visibility labels
 * (meta.security, where the access rules read them) and the isArchived extension. Pure:
 * the stored version and the patched one in, the elements changed out of that list and
 * the values refused, out.
 */

type Json = Record<string, unknown>;

export const IS_ARCHIVED_URL = 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived';

const isArchivedExtension = (e: unknown) => (e as { url?: unknown } | null)?.url === IS_ARCHIVED_URL;
const otherExtensions = (r: Json) => (Array.isArray(r.extension) ? r.extension.filter((e) => !isArchivedExtension(e)) : []);

/** The elements of the resource, with meta less what a version stamps and less meta.security. */
function elements(r: Json): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(r)) {
    if (key === 'meta' || key === 'extension') continue;
    out.set(key, value);
  }
  const meta = { ...((r.meta as Json | undefined) ?? {}) };
  delete meta.versionId;
  delete meta.lastUpdated;
  delete meta.security;
  for (const [key, value] of Object.entries(meta)) out.set(`meta.${key}`, value);
  const extensions = otherExtensions(r);
  if (extensions.length) out.set('extension', extensions);
  return out;
}

const ALLOWED = new Set(['status', 'securityLabel']);

/** The elements a patch changed that PDSm does not let it change, in FHIRPath form ([] when none). */
export function forbiddenChanges(stored: Json, patched: Json): string[] {
  const before = elements(stored);
  const after = elements(patched);
  const changed: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (ALLOWED.has(key)) continue;
    if (canonicalJson(before.get(key)) !== canonicalJson(after.get(key))) changed.push(key === 'extension' ? 'DocumentReference.extension (other than isArchived)' : `DocumentReference.${key}`);
  }
  return changed.sort();
}

/**
 * Values the allowed elements may not take through a PATCH: a TRE_A07 visibility code in
 * securityLabel (the access rules read meta.security), `entered-in-error` (a deletion in
 * disguise, and not an MHD status), an isArchived extension without a boolean.
 */
export function refusedValues(stored: Json, patched: Json): Issue[] {
  const issues: Issue[] = [];
  // a visibility code already there (sent at submission) is left alone; one the patch adds is refused
  const visibilityCodes = (r: Json) =>
    (Array.isArray(r.securityLabel) ? r.securityLabel : []).map((label) => {
      const codings = (label as { coding?: unknown } | null)?.coding;
      return Array.isArray(codings) ? codings.filter((c) => c?.system === VISIBILITY_SYSTEM).map((c) => String(c.code)) : [];
    });
  const before = new Set(visibilityCodes(stored).flat());
  visibilityCodes(patched).forEach((codes, i) => {
    if (codes.some((c) => !before.has(c))) {
      issues.push({
        severity: 'error',
        code: 'business-rule',
        diagnostics: 'The visibility labels (TRE_A07: MASQUE_PS, INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX) are set in meta.security, where the access rules read them, not in securityLabel',
        expression: [`DocumentReference.securityLabel[${i}]`],
      });
    }
  });
  if (patched.status === 'entered-in-error' && stored.status !== 'entered-in-error') {
    issues.push({ severity: 'error', code: 'business-rule', diagnostics: 'A document is not set entered-in-error by PATCH: its author deletes it (DELETE)', expression: ['DocumentReference.status'] });
  }
  const archived = Array.isArray(patched.extension) ? patched.extension.filter(isArchivedExtension) : [];
  if (archived.length > 1 || archived.some((e) => typeof (e as { valueBoolean?: unknown }).valueBoolean !== 'boolean')) {
    issues.push({ severity: 'error', code: 'value', diagnostics: `The isArchived extension (${IS_ARCHIVED_URL}) appears once, with a valueBoolean`, expression: ['DocumentReference.extension'] });
  }
  return issues;
}

/**
 * PDSm: a PATCH or a PUT of a stored document changes its status, labels and archiving,
 * nothing else (405 otherwise), with values the access rules can honour (422); compared on
 * the result, whatever the request's form (docs/decisions/021-document-metadata-life.md,
 * 029-dmp-submissions.md).
 */
export function assertDocumentMetadataChange(stored: Json, changed: Json, method: 'PATCH' | 'PUT'): void {
  const forbidden = forbiddenChanges(stored, changed);
  if (forbidden.length > 0) {
    throw new MethodNotAllowed(
      `A ${method} of a stored DocumentReference changes only status, securityLabel, meta.security (visibility labels) and the isArchived extension (PDSm): this one changes ${forbidden.join(', ')}. Replace the document to change its other metadata.`,
      ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'],
    );
  }
  const refused = refusedValues(stored, changed);
  if (refused.length > 0) throw new Unprocessable(refused);
}
