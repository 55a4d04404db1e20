/**
 * _elements (search.html#elements): the element names of a value that are not elements of
 * the type. Strict handling refuses them (400), lenient handling ignores them with a warning,
 * as an unknown search parameter. Pure: the type's elements are given.
 */

/** The top-level elements of a type: their names, and the names of its choice elements (value[x] is `value`). */
export interface TypeElements {
  names: ReadonlySet<string>;
  choices: ReadonlySet<string>;
}

/** Whether a step names a top-level element: itself, or a choice element with its type (valueQuantity). */
function isElement(step: string, known: TypeElements): boolean {
  if (known.names.has(step)) return true;
  for (const base of known.choices) if (step.length > base.length && step.startsWith(base) && /^[A-Z]/.test(step.slice(base.length))) return true;
  return false;
}

/**
 * The names of `value` (comma-separated, each optionally prefixed by the type) that name no
 * element of `type`, as written (an empty name is ""). A value that is empty altogether is no
 * constraint: none.
 */
export function invalidElementNames(type: string, value: string, known: TypeElements): string[] {
  if (value.trim() === '') return [];
  const invalid: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim())) {
    const name = raw.startsWith(`${type}.`) ? raw.slice(type.length + 1) : raw;
    const steps = name.split('.');
    // the first step is what subsetting keeps; a deeper path is kept whole but must have no empty step
    if (steps.some((s) => s === '') || !isElement(steps[0], known)) invalid.push(raw);
  }
  return invalid;
}

/** The sentence that names them: a warning under lenient handling (`ignored`), the 400 under strict. */
export function invalidElementsText(type: string, invalid: string[], ignored = true): string {
  const named = invalid.map((n) => (n === '' ? 'an empty name' : `"${n}"`)).join(', ');
  return `_elements names ${named}, which ${invalid.length === 1 ? 'is not an element' : 'are not elements'} of ${type}${ignored ? ': ignored' : ''}`;
}

/** Why a read's _elements is refused under strict handling, undefined when every name is an element (or the type's elements are not known). */
export function strictElementsRefusal(type: string, value: string, known: TypeElements | undefined): string | undefined {
  const invalid = known ? invalidElementNames(type, value, known) : [];
  return invalid.length ? invalidElementsText(type, invalid, false) : undefined;
}
