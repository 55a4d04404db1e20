/**
 * The references of a written resource that this server must resolve
 * (docs/decisions/014-integrity.md): local ones, which must name a current resource, and
 * contained ones, which must name a contained resource.
 */
import { localTarget } from '../referenceString';

export interface LocalReference {
  kind: 'local';
  targetType: string;
  targetId: string;
  /** The version of a version-specific reference. */
  targetVersion?: string;
  /** The element holding the reference, as a FHIRPath (`DocumentReference.author[0]`). */
  expression: string;
  reference: string;
}

export interface ContainedReference {
  kind: 'contained';
  /** The contained id named (without `#`). */
  targetId: string;
  expression: string;
  reference: string;
}

/** Types whose references are not checked: the trail of what happened, and self-contained Bundles. */
const UNCHECKED_TYPES = new Set(['AuditEvent', 'Bundle']);

export function checksReferences(resourceType: string): boolean {
  return !UNCHECKED_TYPES.has(resourceType);
}

/**
 * Every reference of `resource` that is local (relative, or absolute under `baseUrl`,
 * which ends with `/`) or contained. Logical references, urn: placeholders and other
 * absolute URLs are not listed: they are not resolved here.
 */
export function resolvableReferences(resource: Record<string, unknown>, baseUrl: string): (LocalReference | ContainedReference)[] {
  const resourceType = String(resource.resourceType);
  if (!checksReferences(resourceType)) return [];
  const found: (LocalReference | ContainedReference)[] = [];
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${path}[${i}]`));
      return;
    }
    if (!value || typeof value !== 'object') return;
    const reference = (value as { reference?: unknown }).reference;
    if (typeof reference === 'string') {
      const ref = classify(reference, baseUrl, path);
      if (ref) found.push(ref);
    }
    for (const [k, v] of Object.entries(value)) {
      // the narrative's links are not references; a contained resource's are, under its own path
      if (k === 'text' || k === 'reference') continue;
      if (v && typeof v === 'object') walk(v, `${path}.${k}`);
    }
  };
  walk(resource, resourceType);
  return found;
}

function classify(reference: string, baseUrl: string, expression: string): LocalReference | ContainedReference | undefined {
  if (reference.startsWith('#')) return reference.length > 1 ? { kind: 'contained', targetId: reference.slice(1), expression, reference } : undefined;
  const t = localTarget(reference, baseUrl);
  if (!t) return undefined;
  return { kind: 'local', targetType: t.resourceType, targetId: t.id, ...(t.version !== undefined ? { targetVersion: t.version } : {}), expression, reference };
}

/** The ids of a resource's contained resources. */
export function containedIds(resource: Record<string, unknown>): Set<string> {
  const ids = new Set<string>();
  if (Array.isArray(resource.contained)) for (const c of resource.contained) if (c && typeof (c as { id?: unknown }).id === 'string') ids.add((c as { id: string }).id);
  return ids;
}
