import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import type { Session } from '../store/session';
import { everything } from './everything';
import { codeSystemValidateCode, expand, valueSetValidateCode } from './terminology';
import { validateOperation } from './validate';

export interface OperationEntry {
  name: string;
  /** Canonical URL of the OperationDefinition. */
  definition: string;
  /** Where it may be invoked: system ([base]/$op), type ([type]/$op), instance ([type]/[id]/$op). */
  system: boolean;
  /** Types it may be invoked on; '*' for every served type. */
  types: string[] | '*';
  /** Invocable on the type itself ([type]/$op). */
  type: boolean;
  instance: boolean;
  /** What the CapabilityStatement says of this server's support, where it is narrower than the definition. */
  documentation?: string;
  /** The operation only reads. */
  affectsState: boolean;
  handler(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse>;
}

/** Every operation the server answers; the router and the CapabilityStatement read this list. */
export const OPERATIONS: OperationEntry[] = [
  {
    name: 'everything',
    definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
    system: false,
    types: ['Patient'],
    type: false,
    instance: true,
    documentation: 'Instance level only (Patient/[id]/$everything), with _since, _type and _count; start and end (care dates) are not supported; not for all patients at once.',
    affectsState: false,
    handler: everything,
  },
  {
    name: 'validate',
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    system: true,
    types: '*',
    type: true,
    instance: true,
    affectsState: false,
    handler: validateOperation,
  },
  {
    name: 'expand',
    definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-expand',
    system: false,
    types: ['ValueSet'],
    type: true,
    instance: true,
    affectsState: false,
    handler: expand,
  },
  {
    name: 'validate-code',
    definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code',
    system: false,
    types: ['ValueSet'],
    type: true,
    instance: true,
    affectsState: false,
    handler: valueSetValidateCode,
  },
  {
    name: 'validate-code',
    definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code',
    system: false,
    types: ['CodeSystem'],
    type: true,
    instance: true,
    affectsState: false,
    handler: codeSystemValidateCode,
  },
];

export function operationAppliesTo(op: OperationEntry, resourceType: string): boolean {
  return op.types === '*' || op.types.includes(resourceType);
}
