export { domainChecks, runDomainChecks, parseConditionalPatientReference } from './checks';
export type { DomainCheck } from './checks';
export { nirFormatValid, nirKey, nirKeyValid, NIR_PATTERN } from './nir';
export {
  SYSTEMS,
  NIR_SYSTEMS,
  rppsIdNatPsValid,
  adeliIdNatPsValid,
  finessFormatValid,
  luhnValid,
  sirenValid,
  siretValid,
} from './identifiers';
