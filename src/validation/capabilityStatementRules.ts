/**
 * A CapabilityStatement's search parameters, as the HL7 validator checks them: one that
 * names its definition declares that definition's type (a `date` parameter defined as a
 * `token` cannot be searched as the statement says). A definition not known here is not
 * judged. Pure: the caller says how to find a definition's type.
 */
import type { Issue } from '../errors';
import type { DomainCheck } from './engine';

const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);

export function capabilityStatementIssues(cs: any, definitionType: (url: string) => string | undefined): Issue[] {
  const issues: Issue[] = [];
  const checkParams = (params: unknown, path: string) =>
    arr(params).forEach((sp, k) => {
      if (typeof sp?.definition !== 'string' || typeof sp.type !== 'string') return;
      const defined = definitionType(sp.definition);
      if (defined === undefined || defined === sp.type) return;
      issues.push({
        severity: 'error',
        code: 'business-rule',
        diagnostics: `Type mismatch - SearchParameter '${sp.definition}' type is ${defined}, but type here is ${sp.type}`,
        expression: [`${path}.searchParam[${k}]`],
      });
    });
  arr(cs?.rest).forEach((rest, i) => {
    checkParams(rest?.searchParam, `CapabilityStatement.rest[${i}]`);
    arr(rest?.resource).forEach((r, j) => checkParams(r?.searchParam, `CapabilityStatement.rest[${i}].resource[${j}]`));
  });
  return issues;
}

export function capabilityStatementCheck(definitionType: (url: string) => string | undefined): DomainCheck {
  return {
    name: 'capability-statement',
    appliesTo: (resource: any) => resource?.resourceType === 'CapabilityStatement',
    check: (cs: any) => capabilityStatementIssues(cs, definitionType),
  };
}
