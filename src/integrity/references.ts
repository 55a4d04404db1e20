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

/** A Bundle's placeholder (`urn:uuid:`, `urn:oid:`): it resolves only within its Bundle, and never reaches a write resolved. */
export interface PlaceholderReference {
  kind: 'placeholder';
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
 * which ends with `/`) or contained, and the Bundle placeholders left in it (refused:
 * decision 014, amendment of 2026-12-07). Logical references and other absolute URLs are
 * not listed: they are not resolved here.
 */
export function resolvableReferences(resource: Record<string, unknown>, baseUrl: string): (LocalReference | ContainedReference | PlaceholderReference)[] {
  const resourceType = String(resource.resourceType);
  if (!checksReferences(resourceType)) return [];
  const found: (LocalReference | ContainedReference | PlaceholderReference)[] = [];
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

const PLACEHOLDER = /^urn:(uuid|oid):/i;

function classify(reference: string, baseUrl: string, expression: string): LocalReference | ContainedReference | PlaceholderReference | undefined {
  if (reference.startsWith('#')) return reference.length > 1 ? { kind: 'contained', targetId: reference.slice(1), expression, reference } : undefined;
  if (PLACEHOLDER.test(reference)) return { kind: 'placeholder', expression, reference };
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
