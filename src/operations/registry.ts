import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import type { Session } from '../store/session';
import { everything } from './everything';

export interface OperationEntry {
  name: string;
  /** Canonical URL of the OperationDefinition. */
  definition: string;
  /** Where it may be invoked: system ([base]/$op), type ([type]/$op), instance ([type]/[id]/$op). */
  system: boolean;
  types: string[];
  instance: boolean;
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
    instance: true,
    affectsState: false,
    handler: everything,
  },
];
