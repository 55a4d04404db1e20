import type { Coding } from '../actor';
import { VISIBILITY_SYSTEM } from './recordFacts';
import { canonicalJson } from '../../json/canonicalJson';

/**
 * What a write does to a resource's visibility labels (meta.security codes of TRE_A07),
 * and whether it changes anything else: the facts the write rules on masking and
 * invisibility decide on. Pure, on plain JSON.
 */

type Json = Record<string, any>;

/** A label is its system and code (display and version are ignored, as $meta-add/$meta-delete match them). */
const isLabel = (c: unknown, code: string) => (c as Coding | null)?.system === VISIBILITY_SYSTEM && (c as Coding | null)?.code === code;

/** The TRE_A07 codes a resource carries in meta.security. */
export function visibilityLabels(resource: Json | undefined): Set<string> {
  const out = new Set<string>();
  const security = resource?.meta?.security;
  if (!Array.isArray(security)) return out;
  for (const c of security) if (c?.system === VISIBILITY_SYSTEM && typeof c.code === 'string') out.add(c.code);
  return out;
}

/** The TRE_A07 codes a write adds and removes (a new resource: every label it carries is added). */
export function labelChange(previous: Json | undefined, next: Json): { added: Set<string>; removed: Set<string> } {
  const before = visibilityLabels(previous);
  const after = visibilityLabels(next);
  return { added: new Set([...after].filter((c) => !before.has(c))), removed: new Set([...before].filter((c) => !after.has(c))) };
}

/** The resource less what a version stamps (meta.versionId, meta.lastUpdated) and less the given labels. */
function withoutLabels(resource: Json, codes: string[]): string {
  const meta: Json = { ...(resource.meta ?? {}) };
  delete meta.versionId;
  delete meta.lastUpdated;
  if (Array.isArray(meta.security)) meta.security = meta.security.filter((c: unknown) => !codes.some((code) => isLabel(c, code)));
  if (Array.isArray(meta.security) && meta.security.length === 0) delete meta.security;
  const rest: Json = { ...resource };
  delete rest.meta;
  if (Object.keys(meta).length > 0) rest.meta = meta;
  return canonicalJson(rest);
}

/**
 * Whether `next` differs from `previous` by nothing but adding or removing the given
 * TRE_A07 labels (a version that changes nothing at all counts as such).
 */
export function differsOnlyByLabels(previous: Json, next: Json, codes: string[]): boolean {
  return withoutLabels(previous, codes) === withoutLabels(next, codes);
}
