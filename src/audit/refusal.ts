/**
 * What a refusal was about (the record, the resource), attached to the error that carries
 * it from where the policy refused to where the refusal is audited (src/audit/auditTrail.ts).
 */
export interface RefusalFacts {
  /** The patient whose record the refused access was to. */
  patient?: string;
  /** `Type/id` of the resource refused, when one was. */
  resource?: string;
}

const refusals = new WeakMap<object, RefusalFacts>();

/** Marks `error` as a refusal concerning `facts`; returns it, to be thrown. */
export function concerning<E extends object>(error: E, facts: RefusalFacts): E {
  refusals.set(error, facts);
  return error;
}

/** The facts of a refusal, if `error` was marked. */
export function refusalOf(error: unknown): RefusalFacts | undefined {
  return error && typeof error === 'object' ? refusals.get(error) : undefined;
}

/** Keeps the facts when an error is wrapped in another (a Bundle entry's error). */
export function carryRefusal<E extends object>(from: unknown, to: E): E {
  const facts = refusalOf(from);
  if (facts) refusals.set(to, facts);
  return to;
}
