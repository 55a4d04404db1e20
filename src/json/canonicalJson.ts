type Json = Record<string, unknown>;

/** JSON text with object keys sorted: two values are equal when their canonical texts are. */
export function canonicalJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as Json).sort().map((k) => [k, sorted((v as Json)[k])]));
    return v;
  };
  return JSON.stringify(sorted(value) ?? null);
}
