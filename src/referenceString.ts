/**
 * What a reference string names, read one way for every module: the `Type/id` it ends with,
 * the version of a version-specific reference, and the base URL before it. Pure; below
 * every other module (it imports none).
 */
export interface ReferenceTarget {
  /** What stands before `Type/id` (a base URL without its last `/`); undefined for a relative reference. */
  base?: string;
  resourceType: string;
  id: string;
  /** The version of a version-specific reference (`…/_history/[vid]`). */
  version?: string;
}

const TARGET = /^(?:(.*)\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([^/]+))?$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The target of a reference ending with `Type/id` or `Type/id/_history/vid`, relative or
 * after any base; undefined for anything else (a contained `#id`, a urn:, a search URL).
 * A version that is no id makes it name nothing, unless `anyVersion`.
 */
export function referenceTarget(reference: string, anyVersion = false): ReferenceTarget | undefined {
  const m = TARGET.exec(reference);
  if (!m || (m[4] !== undefined && !anyVersion && !ID.test(m[4]))) return undefined;
  return { base: m[1], resourceType: m[2], id: m[3], version: m[4] };
}

/**
 * The target of a reference to this server: relative, or absolute under `baseUrl` (which
 * ends with `/`); undefined for anything else.
 */
export function localTarget(reference: string, baseUrl: string | undefined): ReferenceTarget | undefined {
  const t = referenceTarget(baseUrl && reference.startsWith(baseUrl) ? reference.slice(baseUrl.length) : reference);
  return t && t.base === undefined ? t : undefined;
}

/** `Type/id` of a reference (relative or absolute, with or without `_history`); undefined for anything else. */
export function typedId(reference: unknown): string | undefined {
  const t = typeof reference === 'string' ? referenceTarget(reference, true) : undefined;
  return t && `${t.resourceType}/${t.id}`;
}

/** The id of the `resourceType` a reference names (relative or absolute, not version-specific); undefined for anything else. */
export function referencedId(reference: string, resourceType: string): string | undefined {
  const t = referenceTarget(reference);
  return t && t.resourceType === resourceType && t.version === undefined ? t.id : undefined;
}

/** The id of the `resourceType` a reference names, relative or absolute, version-specific or not; undefined for anything else. */
export function namedId(reference: string, resourceType: string): string | undefined {
  const t = referenceTarget(reference);
  return t?.resourceType === resourceType ? t.id : undefined;
}
