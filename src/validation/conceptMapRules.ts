/**
 * A ConceptMap's codes and its value sets. R4 ConceptMap.source[x] is "the source value set that
 * contains the concepts that are being mapped", target[x] "the target value set which provides
 * context for the mappings": a mapped code (group.element.code, in the code system
 * group.source) outside the source value set, or a target code (group.element.target.code, in
 * group.target) outside the target value set, is not a concept of the map's context. The HL7
 * validator reports it as an error. The specification says it without a SHALL, so a conformance
 * verdict reports an error and a write a warning (DomainContext.verdict). Nothing is said when
 * the value set is not known here or its membership cannot be decided (a code system whose
 * content is not held, e.g. SNOMED CT filters).
 */
import type { Issue } from '../errors';
import type { DomainCheck, DomainContext } from './engine';

export type Membership = (valueSet: string, system: string | undefined, code: string) => boolean | undefined;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function conceptMapIssues(cm: any, inValueSet: Membership, verdict = true): Issue[] {
  const source = str(cm?.sourceCanonical) ?? str(cm?.sourceUri);
  const target = str(cm?.targetCanonical) ?? str(cm?.targetUri);
  if (!source && !target) return [];
  const severity = verdict ? 'error' : 'warning';
  const out: Issue[] = [];
  const outside = (which: 'source' | 'target', valueSet: string | undefined, system: string | undefined, code: string | undefined, expression: string) => {
    if (!valueSet || !code || inValueSet(valueSet, system, code) !== false) return;
    out.push({
      severity,
      code: 'code-invalid',
      diagnostics: `The ${which} code '${code}'${system ? ` (${system})` : ''} is not in the ${which} value set ${valueSet} of the ConceptMap`,
      expression: [expression],
    });
  };
  const groups: any[] = Array.isArray(cm.group) ? cm.group : [];
  groups.forEach((g, gi) => {
    const elements: any[] = Array.isArray(g?.element) ? g.element : [];
    elements.forEach((e, ei) => {
      const at = `ConceptMap.group[${gi}].element[${ei}]`;
      outside('source', source, str(g.source), str(e?.code), `${at}.code`);
      const targets: any[] = Array.isArray(e?.target) ? e.target : [];
      targets.forEach((t, ti) => outside('target', target, str(g.target), str(t?.code), `${at}.target[${ti}].code`));
    });
  });
  return out;
}

/** The check, with the value sets of the validator it is bound to (its layer sees the supplied definitions). */
export function conceptMapCheck(validator: { inValueSet: Membership }): DomainCheck {
  return {
    name: 'concept-map-value-sets',
    appliesTo: (resource: any) => resource?.resourceType === 'ConceptMap',
    check: (cm: any, context?: DomainContext) => conceptMapIssues(cm, (vs, system, code) => validator.inValueSet(vs, system, code), !!context?.verdict),
  };
}
