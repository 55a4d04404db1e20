/**
 * Where this process last saw a resource whose compartment the locator alone knows
 * (src/store/locator.ts, docs/decisions/018-partitioning.md): a read by id tries that
 * compartment first and saves the locator look-up when the row is there.
 *
 * A hint is never trusted: it only chooses where to look first. The row read there by its
 * full key is the resource's current row (ids are unique through the locator, and a
 * version and its move are one statement), and a miss (the resource moved through another
 * worker, was never there, or is hidden from the caller) asks the locator as before. So a
 * stale hint costs one statement and can never answer for another record; nothing has to
 * be told when a resource moves elsewhere.
 *
 * Bounded: the oldest hints go first past `MAX_HINTS` (about 160 bytes each, 3 MiB in all).
 */
export const MAX_HINTS = 20_000;
const hints = new Map<string, string>();

const keyOf = (resourceType: string, id: string) => `${resourceType}/${id}`;

/**
 * The string as one flat copy. A key made by concatenation, or an id from
 * crypto.randomUUID(), is a tree of pieces that V8 keeps as it is in a Map: about 1 kB a
 * hint instead of 160 bytes.
 */
const flat = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

/** The compartment `Type/id` was last seen in by this process, if any. */
export function hintedCompartment(resourceType: string, id: string): string | undefined {
  return hints.get(keyOf(resourceType, id));
}

/** Remembers where `Type/id` is (as the locator or a committed write just said). */
export function rememberCompartment(resourceType: string, id: string, compartment: string): void {
  const key = keyOf(resourceType, id);
  if (hints.get(key) === compartment) return;
  hints.delete(key);
  if (hints.size >= MAX_HINTS) hints.delete(hints.keys().next().value as string);
  hints.set(flat(key), flat(compartment));
}

/** Drops a hint that proved wrong. */
export function forgetCompartment(resourceType: string, id: string): void {
  hints.delete(keyOf(resourceType, id));
}

/** How many hints are held (tests). */
export function hintCount(): number {
  return hints.size;
}
