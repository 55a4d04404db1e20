import { findProfilesDir } from '../registry/registry';
import { domainChecks } from './domain';
import { Validator } from './index';

/** The validator the server uses: base R4, our profiles/ and the named domain checks. */
export function createServerValidator(profilesDir: string = findProfilesDir()): Validator {
  const validator = Validator.create({ conformanceDirs: [profilesDir] });
  for (const check of domainChecks) validator.addDomainCheck(check);
  return validator;
}
