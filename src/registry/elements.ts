import { coreStructureDefinition } from '../validation/loader';
import type { TypeElements } from '../search/elementsParameter';

/**
 * The top-level elements of a type, from its core R4 StructureDefinition, read once per type:
 * their names (value[x] is `value`), the choice elements, and which are in the summary or
 * mandatory (_summary, _elements: src/interactions/subsetting.ts, src/search/elementsParameter.ts).
 */
export interface TopLevelElements extends TypeElements {
  summary: ReadonlySet<string>;
  mandatory: ReadonlySet<string>;
}

const cache = new Map<string, TopLevelElements | undefined>();

export function typeElements(type: string): TopLevelElements | undefined {
  if (cache.has(type)) return cache.get(type);
  const sd = coreStructureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`) as
    | { snapshot?: { element: { path: string; isSummary?: boolean; min?: number }[] } }
    | undefined;
  let elements: TopLevelElements | undefined;
  if (sd?.snapshot) {
    const names = new Set<string>();
    const choices = new Set<string>();
    const summary = new Set<string>();
    const mandatory = new Set<string>();
    for (const el of sd.snapshot.element) {
      const parts = el.path.split('.');
      if (parts.length !== 2) continue;
      if (parts[1].endsWith('[x]')) choices.add(parts[1].slice(0, -3));
      const name = parts[1].replace('[x]', '');
      names.add(name);
      if (el.isSummary) summary.add(name);
      if ((el.min ?? 0) > 0) mandatory.add(name);
    }
    elements = { names, choices, summary, mandatory };
  }
  cache.set(type, elements);
  return elements;
}
