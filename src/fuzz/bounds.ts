import { FhirError } from '../errors';

/**
 * What every fuzzed parser owes whatever it is given: an answer or one of its own
 * refusals, in bounded time. A TypeError, a "Maximum call stack size exceeded" or a
 * parser that takes seconds on a few kilobytes is a defect even when the HTTP layer
 * would turn it into a 4xx, because the refusal then says nothing true to the client
 * and the same input may do worse elsewhere.
 */

/** The outcome of one call: its value, or what it threw. */
export type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; error: unknown; ms: number };

/** Runs `fn`, timing it; a throw is kept as the outcome, not propagated. */
export function run<T>(fn: () => T): Outcome<T> {
  const started = performance.now();
  try {
    const value = fn();
    return { ok: true, value, ms: performance.now() - started };
  } catch (error) {
    return { ok: false, error, ms: performance.now() - started };
  }
}

/** A broken property: thrown from a predicate so that fast-check records and shrinks the input. */
export class PropertyFailure extends Error {}

/** Fails when the call took longer than `boundMs` (Infinity: no bound, as in unit tests). */
export function assertWithinBound(outcome: Outcome<unknown>, boundMs: number, what: string): void {
  if (outcome.ms > boundMs) throw new PropertyFailure(`${what} took ${Math.round(outcome.ms)} ms, more than the bound of ${boundMs} ms`);
}

/** Fails unless the call succeeded or threw one of `allowed` (the module's own refusals). */
export function assertOwnRefusal(outcome: Outcome<unknown>, allowed: (error: unknown) => boolean, what: string): void {
  if (outcome.ok || allowed(outcome.error)) return;
  const e = outcome.error;
  const shown = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
  throw new PropertyFailure(`${what} threw ${shown}, which is not one of its own refusals`);
}

/** A 4xx domain error (BadRequest, PayloadTooLarge, SearchTooCostly ...). */
export const isClientError = (e: unknown): e is FhirError => e instanceof FhirError && e.status >= 400 && e.status < 500;

/** Settings of a property run: per-input time bound. */
export interface PropertySettings {
  boundMs: number;
}
