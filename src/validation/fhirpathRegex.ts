import type { UserInvocationTable } from 'fhirpath';
import { FLAGS, findsIn, matchesWhole, patternProblem, replaceAll } from './userRegex';

/**
 * FHIRPath's regular expression functions on RE2 (userRegex.ts), for every FHIRPath the
 * server evaluates: passed as `userInvocationTable` to fhirpath.compile / evaluate, they
 * take the place of FHIRPath.js's own matches(), matchesFull() and replaceMatches(), which
 * build a backtracking RegExp from whatever pattern the expression holds.
 *
 * Same semantics as FHIRPath.js: matches() is true when the pattern matches some part of
 * the string (anchor it with ^…$ for the whole string), matchesFull() the whole string;
 * flags `i` (case-insensitive) and `m` (multi-line); `.` matches new lines too.
 * replaceMatches() replaces every match, with $1 … for groups.
 */

/** FHIRPath.js passes collections as arrays of plain values (no internalStructures). */
type Collection = unknown[];

function singletonString(coll: Collection, what: string): string | undefined {
  if (coll.length > 1) throw new Error(`${what}: expected a single string, got ${coll.length} items`);
  const v = coll[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

/** A parameter: a string, or an empty collection ([]). */
function param(p: unknown): string | undefined {
  return typeof p === 'string' ? p : undefined;
}

function flagsOf(flags: unknown): number {
  let out = FLAGS.dotAll;
  const f = param(flags);
  if (f === undefined) return out;
  for (const ch of f) {
    if (ch === 'i') out |= FLAGS.caseInsensitive;
    else if (ch === 'm') out |= FLAGS.multiline;
    else throw new Error('matches/matchesFull flags must only contain i and/or m');
  }
  return out;
}

export const regexFunctions: UserInvocationTable = {
  matches: {
    fn: (coll: Collection, regex: unknown, flags?: unknown): boolean | [] => {
      const s = singletonString(coll, 'matches');
      const p = param(regex);
      return s === undefined || p === undefined ? [] : findsIn(p, s, flagsOf(flags));
    },
    arity: { 1: ['String'], 2: ['String', 'String'] },
  },
  matchesFull: {
    fn: (coll: Collection, regex: unknown, flags?: unknown): boolean | [] => {
      const s = singletonString(coll, 'matchesFull');
      const p = param(regex);
      return s === undefined || p === undefined ? [] : matchesWhole(p, s, flagsOf(flags));
    },
    arity: { 1: ['String'], 2: ['String', 'String'] },
  },
  replaceMatches: {
    fn: (coll: Collection, regex: unknown, substitution: unknown): string | [] => {
      const s = singletonString(coll, 'replaceMatches');
      const p = param(regex);
      const r = param(substitution);
      return s === undefined || p === undefined || r === undefined ? [] : replaceAll(p, s, r);
    },
    arity: { 2: ['String', 'String'] },
  },
};

const REGEX_FUNCTIONS = new Set(Object.keys(regexFunctions));

interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

/** A FHIRPath string literal's value ('…' with \-escapes, as FHIRPath.js reads it). */
export function stringLiteralValue(text: string): string {
  return text.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|.)/g, (match, sub: string) => {
    const simple: Record<string, string> = { '\\r': '\r', '\\n': '\n', '\\t': '\t', '\\f': '\f' };
    if (simple[match]) return simple[match];
    return sub.length > 1 ? String.fromCharCode(parseInt(sub.slice(1), 16)) : sub;
  });
}

/** The patterns written as string literals in matches(), matchesFull() and replaceMatches() calls. */
export function literalPatterns(ast: AstNode): string[] {
  const out: string[] = [];
  const visit = (node: AstNode) => {
    if (node.type === 'Functn' && REGEX_FUNCTIONS.has(node.children?.[0]?.text ?? '')) {
      const first = node.children?.[1]?.children?.[0];
      const literal = first?.type === 'TermExpression' ? first.children?.[0]?.children?.[0] : undefined;
      if (literal?.type === 'StringLiteral' && literal.text) out.push(stringLiteralValue(literal.text));
    }
    for (const c of node.children ?? []) visit(c);
  };
  visit(ast);
  return out;
}

/** The first problem of the literal patterns of a parsed expression, naming the pattern. */
export function literalPatternProblem(ast: AstNode): string | undefined {
  for (const p of literalPatterns(ast)) {
    const problem = patternProblem(p);
    if (problem) return problem;
  }
  return undefined;
}
