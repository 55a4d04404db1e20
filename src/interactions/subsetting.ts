import { RawJson } from '../json/rawJson';
import { decimalTexts, stringifyWithDecimals } from '../json/decimals';
import { typeElements } from '../registry/elements';
import { tagSubsetted } from '../subsettedTag';

/**
 * _summary and _elements: returns a subset of a resource, tagged SUBSETTED as the
 * specification requires. Summary and mandatory elements come from the official R4
 * StructureDefinitions (isSummary, min), read once per type (src/registry/elements.ts).
 */

function matches(key: string, names: ReadonlySet<string>): boolean {
  if (names.has(key)) return true;
  // choice elements: valueQuantity is value[x]
  for (const n of names) if (key.startsWith(n) && /^[A-Z]/.test(key.slice(n.length))) return true;
  return false;
}

/**
 * A stored resource as answered (a read, a Bundle entry): its text as is, or parsed and
 * subset. A Binary's content is stored apart and not carried in Bundles: there it is marked
 * SUBSETTED (its read gives the content).
 */
export function entryResource(text: string, summary: string | undefined, elements: string[] | undefined, resourceType?: string): RawJson {
  const subsets = (elements !== undefined && elements.length > 0 && (!summary || summary === 'false')) || summary === 'true' || summary === 'text' || summary === 'data';
  if (!subsets && resourceType !== 'Binary') return new RawJson(text);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const subset = subsets ? applySubsetting(parsed, summary, elements) : tagSubsetted(parsed);
  // a subset keeps its elements where they were: the stored decimals keep their text
  return new RawJson(stringifyWithDecimals(subset, decimalTexts(text)));
}

export function applySubsetting(
  resource: Record<string, unknown>,
  summary: string | undefined,
  elements: string[] | undefined,
): Record<string, unknown> {
  const type = String(resource.resourceType);
  if (elements && elements.length && (!summary || summary === 'false')) {
    const flags = typeElements(type);
    const keep = new Set(elements.map((e) => (e.startsWith(`${type}.`) ? e.slice(type.length + 1) : e).split('.')[0]));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(resource)) {
      if (k === 'resourceType' || k === 'id' || k === 'meta' || matches(k, keep) || (flags && matches(k, flags.mandatory))) out[k] = v;
    }
    return tagSubsetted(out);
  }
  if (summary === 'true') {
    const flags = typeElements(type);
    if (!flags) return resource;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(resource)) {
      if (k === 'resourceType' || k === 'id' || k === 'meta' || matches(k, flags.summary)) out[k] = v;
    }
    return tagSubsetted(out);
  }
  if (summary === 'text') {
    const flags = typeElements(type);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(resource)) {
      if (k === 'resourceType' || k === 'id' || k === 'meta' || k === 'text' || (flags && matches(k, flags.mandatory))) out[k] = v;
    }
    return tagSubsetted(out);
  }
  if (summary === 'data') {
    const { text: _text, ...rest } = resource;
    return tagSubsetted(rest);
  }
  return resource;
}
