import { findProfilesDir } from '../registry/registry';
import { officialDefinitions } from '../search/searchParameters';
import { capabilityStatementCheck } from './capabilityStatementRules';
import { codeSystemCheck } from './codeSystemRules';
import { conceptMapCheck } from './conceptMapRules';
import { domainChecks } from './domain';
import { Validator } from './index';
import { loadProfileMap } from './profileMap';
import { questionnaireLookup, questionnaireResponseCheck, valueSetDisplay, valueSetMembership } from './questionnaireResponse';

/** The validator the server uses: base R4, our profiles/ and the named domain checks. */
export function createServerValidator(profilesDir: string = findProfilesDir()): Validator {
  const validator = Validator.create({ conformanceDirs: [profilesDir] });
  for (const check of domainChecks) validator.addDomainCheck(check);
  // the national record's profiles apply whether or not a resource claims them (docs/decisions/014-integrity.md)
  validator.useProfileMap(loadProfileMap(profilesDir));
  // A QuestionnaireResponse is checked against its Questionnaire, including ones loaded through the API.
  validator.addBoundDomainCheck((v) => questionnaireResponseCheck(questionnaireLookup(v), { valueSetContains: valueSetMembership(v), valueSetDisplayProblem: valueSetDisplay(v) }));
  // a CapabilityStatement declares its search parameters with the type of their official definition
  let types: Map<string, string> | undefined;
  validator.addDomainCheck(capabilityStatementCheck((url) => (types ??= new Map(officialDefinitions().map((d) => [d.url, d.type]))).get(url)));
  // a CodeSystem that supplements another says so by its content mode
  validator.addDomainCheck(codeSystemCheck);
  // a ConceptMap maps codes of its source value set to codes of its target value set
  validator.addBoundDomainCheck((v) => conceptMapCheck(v));
  return validator;
}
