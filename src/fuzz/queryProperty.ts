import fc from 'fast-check';
import { Config, loadConfig } from '../config/config';
import { BadRequest } from '../errors';
import { parseRequestSearch } from '../interactions/search';
import type { InteractionContext } from '../interactions/types';
import { defaultRegistryInstance } from '../registry/registry';
import { SearchTooCostly } from '../search/parseSearch';
import { assertOwnRefusal, assertWithinBound, PropertyFailure, PropertySettings, run } from './bounds';

/**
 * Search query parsing (SearchParser as parseRequestSearch runs it, with the server's
 * registry and default limits) on query strings from a grammar of real parameter names,
 * modifiers, chains, _has, result parameters, prefixes, escapes and percent-encoding:
 * - the parse either returns a parsed search or throws BadRequest (or SearchTooCostly,
 *   its 400 for a query past a limit), in strict and lenient handling alike, within the bound;
 * - a parsed search keeps within the limits it was given: page size, parameters.
 */

export interface QueryInput {
  resourceType: string;
  /** The query string as sent (after `?`). */
  query: string;
  strict: boolean;
}

const TYPES = ['Patient', 'Observation', 'DocumentReference', 'Encounter', 'AuditEvent', 'Condition', 'Practitioner', 'Organization'];

/** The server's context as far as the parser reads it: registry and configuration. */
let context: InteractionContext | undefined;
function searchContext(): InteractionContext {
  context ??= { registry: defaultRegistryInstance(), config: loadConfig({}) as Config } as InteractionContext;
  return context;
}

const RESULT_NAMES = [
  '_count', '_total', '_summary', '_elements', '_page', '_format', '_pretty', '_sort', '_include', '_revinclude', '_include:iterate',
  '_revinclude:iterate', '_include:recurse', '_id', '_lastUpdated', '_list', '_text', '_content', '_filter', '_type', '_has', '_tag', '_profile', '_security',
];
const HOSTILE_NAMES = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'length', '', ':', '.', '_has:', '_has::', 'a b', '%', '😀'];
const MODIFIERS = [
  ':missing', ':exact', ':contains', ':not', ':text', ':in', ':not-in', ':below', ':above', ':identifier', ':of-type', ':Patient', ':Organization',
  ':Group', ':Nonexistent', ':', '::', ':__proto__', ':toString', ':constructor', ':iterate',
];
const VALUE_PIECES = [
  'ge', 'lt', 'eq', 'ne', 'sa', 'eb', 'ap', 'gt', 'le', 'xx', '2020', '2020-02', '2020-02-30', '2020-02-03T10:00:00+02:00', '2020-02-03T10:00Z',
  '2020-02-03T24:00', '99999-01', '0000', '-2020', '1e999', '-0', '.5', '1.', 'NaN', 'Infinity', '0x10', '72', '1'.repeat(400),
  'http://loinc.org', '|', '8867-4', 'a', 'Paul', 'é', '\u0000', '%00', '%ZZ', '%C3%A9', '%C3', '%2C', '%26', '%3D', '+', ',', '\\,', '\\', '\\\\',
  '$', '\\$', '\\|', '*', 'Patient/1', 'Patient/', 'http://x/fhir/Patient/1', 'true', 'false', 'none', 'estimate', 'accurate', 'count', 'text', 'data',
  'Patient:organization', 'Observation:subject', 'Observation:subject:Patient', 'Patient:*', '*:*', '-', '-birthdate', 'name,-_id', '_lastUpdated',
  'id,name', '__proto__', 'constructor', ' ', '=', '&',
];

let arbitrary: fc.Arbitrary<QueryInput> | undefined;

/** The query grammar (built on first use: it lists the registry's parameter names). */
export function queryInput(): fc.Arbitrary<QueryInput> {
  if (arbitrary) return arbitrary;
  const registry = searchContext().registry;
  const codes = [...new Set(TYPES.flatMap((t) => [...registry.searchParams(t).keys()]))].sort();
  const code = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...codes) }, fc.constantFrom(...RESULT_NAMES), fc.constantFrom(...HOSTILE_NAMES));
  const has = fc
    .array(fc.tuple(fc.constantFrom(...TYPES, 'Nope', 'patient'), fc.constantFrom('subject', 'patient', 'entity', 'organization', 'general-practitioner', 'x', '')), { minLength: 1, maxLength: 4 })
    .map((levels) => levels.map(([t, ref]) => `_has:${t}:${ref}:`).join(''));
  const name = fc
    .tuple(
      fc.option(has, { freq: 5 }),
      code,
      fc.array(fc.tuple(fc.option(fc.constantFrom(...MODIFIERS), { freq: 3 }), code), { maxLength: 5 }),
      fc.option(fc.constantFrom(...MODIFIERS), { freq: 2 }),
    )
    .map(([prefix, head, chain, modifier]) => (prefix ?? '') + head + chain.map(([m, c]) => `${m ?? ''}.${c}`).join('') + (modifier ?? ''));
  const value = fc.oneof(
    { weight: 8, arbitrary: fc.array(fc.constantFrom(...VALUE_PIECES), { maxLength: 6 }).map((p) => p.join('')) },
    fc.tuple(fc.integer({ min: 0, max: 1500 }), fc.constantFrom('a', '2020', '1', '')).map(([n, v]) => Array(n + 1).fill(v).join(',')),
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
  );
  const pair = fc.oneof({ weight: 10, arbitrary: fc.tuple(name, value).map(([n, v]) => `${n}=${v}`) }, name, fc.constantFrom('&', '=', '==', '&&'));
  arbitrary = fc.record({
    resourceType: fc.constantFrom(...TYPES),
    query: fc.oneof({ weight: 10, arbitrary: fc.array(pair, { maxLength: 8 }) }, fc.array(pair, { minLength: 25, maxLength: 40 })).map((pairs) => pairs.join('&')),
    strict: fc.boolean(),
  });
  return arbitrary;
}

const isOwnRefusal = (e: unknown) => e instanceof BadRequest || e instanceof SearchTooCostly;

/** How the runs ended. */
export const queryStats = { parsed: 0, refused: 0 };

export function checkQuery(input: QueryInput, settings: PropertySettings): void {
  const ctx = searchContext();
  const pairs = [...new URLSearchParams(input.query)] as [string, string][];
  const parsed = run(() => parseRequestSearch(ctx, input.resourceType, pairs, input.strict));
  assertWithinBound(parsed, settings.boundMs, 'parseRequestSearch');
  assertOwnRefusal(parsed, isOwnRefusal, 'parseRequestSearch');
  if (!parsed.ok) {
    queryStats.refused++;
    return;
  }
  queryStats.parsed++;
  const search = parsed.value;
  if (!Number.isSafeInteger(search.count) || search.count < 0 || search.count > ctx.config.maxPageSize) {
    throw new PropertyFailure(`the parsed _count ${search.count} is not within 0..${ctx.config.maxPageSize}`);
  }
  if (search.clauses.length > ctx.config.searchMaxParameters) throw new PropertyFailure(`${search.clauses.length} clauses parsed, past the limit of ${ctx.config.searchMaxParameters}`);
  if (input.strict && search.warnings.length) throw new PropertyFailure('strict handling returned warnings instead of refusing');
}

/** Loads the registry and configuration, so that the time bound measures the parse. */
export function warmQuery(): void {
  checkQuery({ resourceType: 'Patient', query: 'name=x', strict: false }, { boundMs: Infinity });
}
