/**
 * A CodeSystem supplement's content mode. R4 defines the content mode `supplement` as "the
 * resource doesn't define any new concepts; it just provides additional designations and
 * properties to another code system", the one `supplements` names: a CodeSystem that names the
 * code system it supplements declares itself a supplement by that mode (as the HL7 validator
 * checks it). Pure.
 */
import type { Issue } from '../errors';
import type { DomainCheck } from './engine';

export function codeSystemIssues(cs: any): Issue[] {
  if (typeof cs?.supplements !== 'string' || cs.content === 'supplement') return [];
  return [
    {
      severity: 'error',
      code: 'business-rule',
      diagnostics: `CodeSystem Supplements SHALL have a content value of 'supplement' (this one supplements ${cs.supplements}, with content '${cs.content ?? ''}')`,
      expression: ['CodeSystem.content'],
    },
  ];
}

export const codeSystemCheck: DomainCheck = {
  name: 'code-system-supplement',
  appliesTo: (resource: any) => resource?.resourceType === 'CodeSystem',
  check: (cs: any) => codeSystemIssues(cs),
};
