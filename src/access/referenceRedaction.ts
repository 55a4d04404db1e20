/**
 * The references a reader may not follow, withheld from what they read
 * (docs/decisions/013-references-to-hidden-resources.md). Pure: which elements of a
 * resource name resources of this server, and the resource without those whose target is
 * not readable. Whether a target is readable is the store's question (the same SQL as a
 * read by id).
 */
import { SUBSETTED, tagSubsetted } from '../subsettedTag';

/** An element that holds references: removed, item by item, when its reference names a resource the reader cannot read. */
interface WithheldElement {
  /** The path of the array (or single element) that is removed, from the resource root. */
  path: string[];
  /** The Reference inside one item of that array ([] = the item is the Reference). */
  reference: string[];
  /** Readers (actor kinds) shown these references whatever they may read. */
  notFor?: string[];
}

/** Per resource type, the elements whose references are checked: those of the MHD document-sharing resources. */
export const WITHHELD: Readonly<Record<string, WithheldElement[]>> = {
  List: [{ path: ['entry'], reference: ['item'] }],
  DocumentReference: [
    { path: ['relatesTo'], reference: ['target'] },
    { path: ['context', 'related'], reference: [] },
  ],
  Provenance: [
    { path: ['target'], reference: [] },
    { path: ['entity'], reference: ['what'] },
  ],
  // the patient reads their record's trail, which names what professionals read (a document invisible to the patient
  // among them); the investigator reads it whole (docs/decisions/009-audit.md)
  AuditEvent: [{ path: ['entity'], reference: ['what'], notFor: ['admin'] }],
  // a cohort's administrator does not read the records closed to them (opposed, closed): their membership neither (docs/decisions/030-groups.md)
  Group: [{ path: ['member'], reference: ['entity'] }],
};

/** The checked elements of a type for this reader (an actor kind; undefined: every element). */
const elementsFor = (resourceType: unknown, reader: string | undefined): WithheldElement[] =>
  (WITHHELD[String(resourceType)] ?? []).filter((e) => !reader || !e.notFor?.includes(reader));

/** The name of each checked element, for a look at the stored text before parsing it. */
const KEYS: Record<string, string[]> = Object.fromEntries(Object.entries(WITHHELD).map(([type, elements]) => [type, elements.map((e) => `"${e.path[e.path.length - 1]}"`)]));

/** The JSON Pointers of the checked elements of a type: what a shortened resource may lose below them. */
export function withheldPointers(resourceType: string): string[] {
  return (WITHHELD[resourceType] ?? []).map((e) => `/${e.path.join('/')}`);
}

/** Whether a stored resource of this type may hold a checked reference (cheap: no parsing). */
export function mayHoldWithheld(resourceType: string, text: string): boolean {
  const keys = KEYS[resourceType];
  return keys !== undefined && keys.some((k) => text.includes(k));
}

export interface Target {
  resourceType: string;
  id: string;
}

const RELATIVE = /^([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/**
 * The resource of this server a reference names, or undefined when it names none (another
 * server, an identifier, a contained resource, a placeholder): those are left as they are.
 */
export function targetOf(reference: unknown, baseUrl: string): Target | undefined {
  const value = (reference as { reference?: unknown } | undefined)?.reference;
  if (typeof value !== 'string') return undefined;
  const local = value.startsWith(`${baseUrl}/`) ? value.slice(baseUrl.length + 1) : value;
  const m = RELATIVE.exec(local);
  return m ? { resourceType: m[1], id: m[2] } : undefined;
}

const at = (value: unknown, path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined), value);

const itemsAt = (resource: Record<string, unknown>, path: string[]): unknown[] => {
  const v = at(resource, path);
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
};

/** Every resource of this server the checked elements of `resource` name. */
export function checkedTargets(resource: Record<string, unknown>, baseUrl: string, reader?: string): Target[] {
  const out: Target[] = [];
  for (const element of elementsFor(resource.resourceType, reader)) {
    for (const item of itemsAt(resource, element.path)) {
      const target = targetOf(at(item, element.reference), baseUrl);
      if (target) out.push(target);
    }
  }
  return out;
}

/**
 * `resource` without the items of checked elements whose target `readable` refuses,
 * tagged SUBSETTED; undefined when nothing is withheld (the stored text goes out as is).
 */
export function withholdUnreadable(resource: Record<string, unknown>, baseUrl: string, readable: (t: Target) => boolean, tag = true, reader?: string): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const element of elementsFor(resource.resourceType, reader)) {
    const current = at(out ?? resource, element.path);
    if (current === undefined) continue;
    const items = Array.isArray(current) ? current : [current];
    const kept = items.filter((item) => {
      const target = targetOf(at(item, element.reference), baseUrl);
      return !target || readable(target);
    });
    if (kept.length === items.length) continue;
    out = replaceAt(out ?? resource, element.path, Array.isArray(current) ? (kept.length ? kept : undefined) : undefined);
  }
  if (!out || !tag) return out;
  return tagSubsetted(out);
}

/** The items of each checked element that a writer could not see, by element (its path joined with '.'). */
export type WithheldItems = Map<string, unknown[]>;

/** The items of the checked elements of `resource` whose target `readable` refuses: what its reader was not shown. */
export function withheldItems(resource: Record<string, unknown>, baseUrl: string, readable: (t: Target) => boolean, reader?: string): WithheldItems {
  const out: WithheldItems = new Map();
  for (const element of elementsFor(resource.resourceType, reader)) {
    const hidden = itemsAt(resource, element.path).filter((item) => {
      const target = targetOf(at(item, element.reference), baseUrl);
      return target !== undefined && !readable(target);
    });
    if (hidden.length) out.set(element.path.join('.'), hidden);
  }
  return out;
}

/**
 * `next` (what a writer sent, or patched, from the resource as they read it) with the items
 * they were not shown put back after theirs: a writer changes what they see, and cannot
 * remove what they cannot see (docs/decisions/013-references-to-hidden-resources.md).
 */
export function restoreWithheld(next: Record<string, unknown>, withheld: WithheldItems): Record<string, unknown> {
  let out = next;
  for (const [key, hidden] of withheld) {
    const path = key.split('.');
    const current = at(out, path);
    const items = Array.isArray(current) ? current : current === undefined ? [] : [current];
    const present = new Set(items.map((i) => JSON.stringify(i)));
    const missing = hidden.filter((i) => !present.has(JSON.stringify(i)));
    if (missing.length) out = replaceAt(out, path, [...items, ...missing]);
  }
  return out;
}

/**
 * The withheld items a write names itself (before restoreWithheld): the writer was not shown
 * them, so naming one is a guess, checked like any new reference (docs/decisions/013).
 */
export function namedWithheld(next: Record<string, unknown>, withheld: WithheldItems): unknown[] {
  const out: unknown[] = [];
  for (const [key, hidden] of withheld) {
    const current = at(next, key.split('.'));
    const items = Array.isArray(current) ? current : current === undefined ? [] : [current];
    const present = new Set(items.map((i) => JSON.stringify(i)));
    out.push(...hidden.filter((i) => present.has(JSON.stringify(i))));
  }
  return out;
}

/** A copy of `value` with the element at `path` replaced (removed when undefined), and an emptied parent object removed too. */
function replaceAt(value: Record<string, unknown>, path: string[], replacement: unknown): Record<string, unknown> {
  const [key, ...rest] = path;
  const copy = { ...value };
  const next = rest.length ? replaceAt((copy[key] as Record<string, unknown>) ?? {}, rest, replacement) : replacement;
  if (next === undefined || (rest.length && Object.keys(next as object).length === 0)) delete copy[key];
  else copy[key] = next;
  return copy;
}

/** Whether a resource sent to be stored is a subset a read gave (docs/decisions/013-references-to-hidden-resources.md). */
export function isSubsetted(resource: Record<string, unknown>): boolean {
  const tags = (resource.meta as { tag?: unknown } | undefined)?.tag;
  return Array.isArray(tags) && tags.some((t) => t && typeof t === 'object' && (t as { code?: unknown }).code === SUBSETTED.code && (t as { system?: unknown }).system === SUBSETTED.system);
}
