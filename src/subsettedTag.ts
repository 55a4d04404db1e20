/**
 * The tag of a resource answered in part (R4 Search 3.1.1.5.7: `_summary` and `_elements`;
 * and a resource shortened for its reader, docs/decisions/013-references-to-hidden-resources.md).
 * Pure; below every other module (it imports none).
 */
export const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

/** `resource` with SUBSETTED among its `meta.tag` (added once); `resource` itself is left as it is. */
export function tagSubsetted(resource: Record<string, unknown>): Record<string, unknown> {
  const meta = { ...((resource.meta as Record<string, unknown>) ?? {}) };
  const tags = Array.isArray(meta.tag) ? [...(meta.tag as { code?: string }[])] : [];
  if (!tags.some((t) => t?.code === SUBSETTED.code)) tags.push(SUBSETTED);
  return { ...resource, meta: { ...meta, tag: tags } };
}
