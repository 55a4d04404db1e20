import { coreStructureDefinition } from '../validation/loader';
import type { TypeElements } from '../search/elementsParameter';

/** The top-level elements of each type, from its core R4 StructureDefinition (read once per type). */
const cache = new Map<string, TypeElements | undefined>();

export function typeElements(type: string): TypeElements | undefined {
  if (cache.has(type)) return cache.get(type);
  const sd = coreStructureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`) as { snapshot?: { element: { path: string }[] } } | undefined;
  let elements: TypeElements | undefined;
  if (sd?.snapshot) {
    const names = new Set<string>();
    const choices = new Set<string>();
    for (const el of sd.snapshot.element) {
      const parts = el.path.split('.');
      if (parts.length !== 2) continue;
      if (parts[1].endsWith('[x]')) choices.add(parts[1].slice(0, -3));
      names.add(parts[1].replace('[x]', ''));
    }
    elements = { names, choices };
  }
  cache.set(type, elements);
  return elements;
}
