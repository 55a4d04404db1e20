import { BadRequest, FhirError, Issue, NotFound, operationOutcome } from '../errors';
import { assertId } from '../interactions/common';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { parametersBody } from './parameters';

/** ResourceValidationMode (R4): `profile` checks the resource against the profiles alone, like no mode. */
type Mode = 'create' | 'update' | 'delete' | 'profile';
const MODES: Mode[] = ['create', 'update', 'delete', 'profile'];

interface ValidateInput {
  resource?: Record<string, unknown>;
  mode?: Mode;
  profiles: string[];
  /** conformance resources that are the context of this validation only (decision 028) */
  definitions: Record<string, unknown>[];
}

const INPUT_PARAMETERS = new Set(['resource', 'mode', 'profile', 'definition']);
const DEFINITION_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire']);

const isDefinition = (r: unknown): r is Record<string, unknown> => !!r && typeof r === 'object' && DEFINITION_TYPES.has(String((r as { resourceType?: unknown }).resourceType));

/** A `definition` parameter: one conformance resource, or a Bundle whose conformance resources are taken (its other entries are not definitions). */
function definitionsOf(value: unknown): Record<string, unknown>[] {
  const r = value as Record<string, unknown> | undefined;
  if (r?.resourceType === 'Bundle') {
    const entries = Array.isArray(r.entry) ? (r.entry as { resource?: unknown }[]) : [];
    return entries.map((e) => e?.resource).filter(isDefinition);
  }
  if (!isDefinition(r)) {
    throw new BadRequest('A "definition" parameter of $validate is a StructureDefinition, ValueSet, CodeSystem or Questionnaire, or a Bundle of them', 'value');
  }
  return [r];
}

/**
 * A Parameters body is the operation's input when it carries nothing but the operation's
 * parameters; any other Parameters is the resource to validate (Parameters/$validate, or
 * $validate of a Parameters resource).
 */
function isOperationInput(body: Record<string, unknown>): boolean {
  if (body.resourceType !== 'Parameters' || !Array.isArray(body.parameter) || body.parameter.length === 0) return false;
  return body.parameter.every((p: unknown) => {
    const { name } = (p ?? {}) as { name?: unknown };
    return typeof name === 'string' && INPUT_PARAMETERS.has(name);
  });
}

/** The body of $validate: a resource as is, or a Parameters with resource, mode and profile. */
function readInput(req: FhirRequest): ValidateInput {
  const profiles = req.query.filter(([k]) => k === 'profile').map(([, v]) => v);
  let mode = req.query.find(([k]) => k === 'mode')?.[1] as Mode | undefined;
  const body = req.body as Record<string, unknown> | undefined;
  let resource: Record<string, unknown> | undefined;
  const definitions: Record<string, unknown>[] = [];
  if (body && typeof body === 'object' && !Array.isArray(body) && isOperationInput(body)) {
    for (const [name, value] of parametersBody(body)) {
      if (name === 'resource') resource = value as Record<string, unknown>;
      else if (name === 'definition') definitions.push(...definitionsOf(value));
      else if (name === 'mode') mode = String(value) as Mode;
      else if (name === 'profile') profiles.push(String(value));
    }
  } else if (body && typeof body === 'object' && !Array.isArray(body)) {
    resource = body;
  } else if (body !== undefined) {
    throw new BadRequest('The body of $validate is a resource, or a Parameters with a "resource" parameter', 'structure');
  }
  if (mode !== undefined && !MODES.includes(mode)) throw new BadRequest(`mode must be create, update, delete or profile, got "${String(mode)}"`, 'value');
  return { resource, mode, profiles, definitions };
}

const ALL_OK: Issue = { severity: 'information', code: 'informational', diagnostics: 'Validation successful: no issues found' };

/**
 * $validate at system, type and instance level. A completed validation always answers
 * 200: the verdict is in the OperationOutcome's issues. A validation that cannot be done
 * — the instance does not exist, a requested profile is unknown — is an error (404, 400).
 */
export async function validateOperation(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  if (!ctx.validator) throw new BadRequest('Validation is not available on this server', 'not-supported');
  const input = readInput(req);
  let validator = ctx.validator;
  if (input.definitions.length) {
    // the definitions are this call's context, never stored (decision 028)
    if (!validator.withDefinitions) throw new BadRequest('This server cannot take definitions in $validate', 'not-supported');
    const layer = validator.withDefinitions(input.definitions);
    if (!layer.validator) throw new FhirError(400, layer.issues);
    validator = layer.validator;
  }
  const issues: Issue[] = [];
  if (input.mode === 'delete') {
    if (!req.resourceType || !req.id) throw new BadRequest('mode=delete needs an instance: [type]/[id]/$validate');
    const current = await readCurrent(session, req.resourceType, assertId(req.id), { withBody: false });
    if (!current || current.deleted) throw new NotFound(`${req.resourceType}/${req.id} does not exist`);
  } else {
    if (!input.resource && req.resourceType && req.id) {
      // [type]/[id]/$validate without a resource: the stored resource is checked (against the profiles asked for)
      const current = await readCurrent(session, req.resourceType, assertId(req.id));
      if (!current || current.deleted) throw new NotFound(`${req.resourceType}/${req.id} does not exist`);
      input.resource = JSON.parse(current.body!) as Record<string, unknown>;
    }
    if (!input.resource) throw new BadRequest('$validate needs a resource: the body itself, or a Parameters with a "resource" parameter', 'required');
    const type = input.resource.resourceType;
    if (req.resourceType && type !== req.resourceType) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: `The resource is a ${String(type)} but $validate was invoked on ${req.resourceType}`, expression: ['resourceType'] });
    }
    // (a missing id in update mode is reported by the validator itself)
    if (input.mode === 'update' && input.resource.id !== undefined && req.id && input.resource.id !== req.id) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: `mode=update: id "${String(input.resource.id)}" differs from the URL's "${req.id}"`, expression: [`${String(type)}.id`] });
    }
    const unknown = input.profiles.filter((p) => !validator.hasProfile(p));
    if (unknown.length > 0) {
      throw new FhirError(400, unknown.map((p) => ({ severity: 'error', code: 'not-supported', diagnostics: `Profile '${p}' is not known to this server, so the resource cannot be validated against it`, expression: [String(type)] })));
    }
    // without a create/update mode the question is conformance, not acceptance: an unknown extension is an error there (decision 023)
    const conformance = input.mode === undefined || input.mode === 'profile';
    issues.push(...validator.validate(input.resource, { profiles: input.profiles, mode: input.mode === 'profile' ? undefined : input.mode, unknownExtensions: conformance ? 'error' : 'warning' }));
  }
  return { status: 200, resource: operationOutcome(issues.length ? issues : [ALL_OK]) as unknown as Record<string, unknown> };
}
