import type { Issue } from '../errors';
import { literalPatternProblem } from './fhirpathRegex';
import { patternProblem } from './userRegex';

/**
 * The regular expressions a conformance resource written through the API carries, checked
 * before the validator takes it: the regex filters of a ValueSet's compose, the patterns
 * given to matches(), matchesFull() and replaceMatches() in a StructureDefinition's
 * constraints, and the regex extensions of a Questionnaire's items. They run on RE2 (userRegex.ts); one RE2 cannot run is refused here, with the
 * pattern named, rather than found later while validating someone else's resource.
 */
export function userPatternIssues(resource: any): Issue[] {
  if (resource?.resourceType === 'ValueSet') return valueSetIssues(resource);
  if (resource?.resourceType === 'StructureDefinition') return constraintIssues(resource);
  if (resource?.resourceType === 'Questionnaire') return questionnaireIssues(resource);
  return [];
}

const REGEX_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/regex';

/** The regex extensions of a Questionnaire's items: each answer is matched against them (questionnaireItemRules.ts). */
function questionnaireIssues(q: any): Issue[] {
  const issues: Issue[] = [];
  const walk = (items: unknown, path: string) => {
    if (!Array.isArray(items)) return;
    items.forEach((item: any, i: number) => {
      const at = `${path}.item[${i}]`;
      (Array.isArray(item?.extension) ? item.extension : []).forEach((e: any, j: number) => {
        if (e?.url !== REGEX_EXTENSION) return;
        const problem = typeof e.valueString === 'string' ? patternProblem(e.valueString) : 'the regex extension needs a valueString';
        if (problem) issues.push(refusal(`item ${String(item?.linkId ?? i)}: ${problem}`, `${at}.extension[${j}].valueString`));
      });
      walk(item?.item, at);
    });
  };
  walk(q.item, 'Questionnaire');
  return issues;
}

const refusal = (diagnostics: string, expression: string): Issue => ({ severity: 'error', code: 'not-supported', diagnostics, expression: [expression] });

function valueSetIssues(vs: any): Issue[] {
  const issues: Issue[] = [];
  for (const part of ['include', 'exclude'] as const) {
    const list = vs.compose?.[part];
    if (!Array.isArray(list)) continue;
    list.forEach((inc: any, i: number) => {
      if (!Array.isArray(inc?.filter)) return;
      inc.filter.forEach((f: any, j: number) => {
        if (f?.op !== 'regex') return;
        const problem = typeof f.value === 'string' ? patternProblem(f.value) : 'a regex filter needs a string value';
        if (problem) issues.push(refusal(`ValueSet filter: ${problem}`, `ValueSet.compose.${part}[${i}].filter[${j}].value`));
      });
    });
  }
  return issues;
}

// FHIRPath.js (and its UCUM tables) take ~100 ms to load: only when a profile is written
let parse: ((expression: string) => unknown) | undefined;

function constraintIssues(sd: any): Issue[] {
  const issues: Issue[] = [];
  for (const part of ['snapshot', 'differential'] as const) {
    const elements = sd[part]?.element;
    if (!Array.isArray(elements)) continue;
    elements.forEach((e: any, i: number) => {
      if (!Array.isArray(e?.constraint)) return;
      e.constraint.forEach((c: any, j: number) => {
        if (typeof c?.expression !== 'string' || !/matches|replaceMatches/.test(c.expression)) return;
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        parse ??= require('fhirpath').parse as (expression: string) => unknown;
        let ast: unknown;
        try {
          ast = parse(c.expression);
        } catch {
          return; // an expression FHIRPath.js cannot read is skipped by the validator (invariants.ts)
        }
        const problem = literalPatternProblem(ast as Parameters<typeof literalPatternProblem>[0]);
        if (problem) issues.push(refusal(`constraint ${c.key ?? j}: ${problem}`, `StructureDefinition.${part}.element[${i}].constraint[${j}].expression`));
      });
    });
  }
  return issues;
}
