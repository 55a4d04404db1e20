import { RE2JS } from 're2js';

/**
 * Regular expressions that come from users (FHIRPath matches() in a patch path or an
 * uploaded profile's constraint, a regex filter of an uploaded ValueSet) run on RE2:
 * matching takes time linear in the input whatever the pattern, so no pattern can freeze
 * the server by catastrophic backtracking as JavaScript's RegExp can. Patterns are written
 * in the JavaScript flavour that FHIRPath.js accepted (\uXXXX, (?<name>…)) and translated;
 * what RE2 cannot run in linear time (backreferences, lookaround) is refused, never handed
 * to RegExp instead. See docs/decisions/005-request-limits.md.
 */

/** A pattern RE2 cannot compile, or too long: the message names the pattern. */
export class UnsupportedPattern extends Error {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`regular expression "${pattern}" is not supported (${reason}); backreferences and lookaround are not available`);
  }
}

/** Longer patterns are refused: compiling costs memory in proportion to the pattern. */
export const MAX_PATTERN_LENGTH = 1000;

export const FLAGS = { caseInsensitive: RE2JS.CASE_INSENSITIVE, multiline: RE2JS.MULTILINE, dotAll: RE2JS.DOTALL } as const;

// Compiled patterns are reused: an invariant's pattern is met at every element it applies to.
const CACHE_SIZE = 500;
const cache = new Map<string, RE2JS>();

/** The pattern compiled for RE2 (cached); UnsupportedPattern when it cannot be. */
export function compileUserPattern(pattern: string, flags = 0): RE2JS {
  const key = `${flags}/${pattern}`;
  const hit = cache.get(key);
  if (hit) return hit;
  if (pattern.length > MAX_PATTERN_LENGTH) throw new UnsupportedPattern(pattern.slice(0, 60) + '…', `longer than ${MAX_PATTERN_LENGTH} characters`);
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern), flags);
  } catch (e) {
    throw new UnsupportedPattern(pattern, (e as Error).message.replace(/^error parsing regexp: /, ''));
  }
  if (cache.size >= CACHE_SIZE) cache.clear();
  cache.set(key, compiled);
  return compiled;
}

/** Why the pattern cannot be used, or undefined when it can. */
export function patternProblem(pattern: string): string | undefined {
  try {
    compileUserPattern(pattern);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Does the pattern match some part of `text` (RegExp.test)? */
export function findsIn(pattern: string, text: string, flags = 0): boolean {
  return compileUserPattern(pattern, flags).test(text);
}

/** Does the pattern match the whole of `text` (as `^(?:pattern)$`)? */
export function matchesWhole(pattern: string, text: string, flags = 0): boolean {
  return compileUserPattern(pattern, flags).testExact(text);
}

/** Every match replaced as String.prototype.replace with a global pattern does ($1, $&, $$ …). */
export function replaceAll(pattern: string, text: string, replacement: string, flags = 0): string {
  return compileUserPattern(pattern, flags).matcher(text).replaceAll(replacement);
}
