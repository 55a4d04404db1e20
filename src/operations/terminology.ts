import { BadRequest, NotFound, Unprocessable } from '../errors';
import { assertId } from '../interactions/common';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { parametersBody } from './parameters';

/** Operation inputs from the query and from a Parameters body (POST), by name. */
function inputs(req: FhirRequest): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of req.query) if (!k.startsWith('_')) out.set(k, v);
  for (const [name, value] of parametersBody(req.body)) out.set(name, value);
  return out;
}

const text = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

function integer(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(String(v))) throw new BadRequest(`${name} must be a non-negative integer, got "${String(v)}"`);
  return Number(v);
}

/** The canonical URL of the instance an instance-level operation was invoked on. */
async function instanceUrl(session: Session, req: FhirRequest, type: string): Promise<string | undefined> {
  if (!req.id) return undefined;
  const row = await readCurrent(session, type, assertId(req.id));
  if (!row || row.deleted || !row.body) throw new NotFound(`${type}/${req.id} is not known`);
  return (JSON.parse(row.body) as { url?: string }).url;
}

/** ValueSet/$expand and ValueSet/[id]/$expand (url, filter, count, offset). */
export async function expand(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  if (!ctx.validator) throw new BadRequest('Terminology is not available on this server', 'not-supported');
  const input = inputs(req);
  const url = (await instanceUrl(session, req, 'ValueSet')) ?? text(input.get('url'));
  if (!url) throw new BadRequest('$expand needs a ValueSet: the url parameter, or ValueSet/[id]/$expand', 'required');
  const expansion = ctx.validator.expandValueSet(url.split('|')[0], {
    filter: text(input.get('filter')),
    count: integer('count', input.get('count')),
    offset: integer('offset', input.get('offset')),
  });
  if (!expansion) {
    throw new Unprocessable([{ severity: 'error', code: 'not-found', diagnostics: `ValueSet ${url} is not known here, or cannot be expanded from the code systems this server holds` }]);
  }
  return { status: 200, resource: expansion as Record<string, unknown> };
}

function codingInput(input: Map<string, unknown>): { system?: string; code?: string; display?: string } {
  const coding = (input.get('coding') ?? (input.get('codeableConcept') as { coding?: unknown[] } | undefined)?.coding?.[0]) as
    | { system?: string; code?: string; display?: string }
    | undefined;
  return {
    system: text(input.get('system')) ?? coding?.system,
    code: text(input.get('code')) ?? coding?.code,
    display: text(input.get('display')) ?? coding?.display,
  };
}

function result(outcome: { result: boolean; message?: string; display?: string }): FhirResponse {
  const parameter: Record<string, unknown>[] = [{ name: 'result', valueBoolean: outcome.result }];
  if (outcome.message) parameter.push({ name: 'message', valueString: outcome.message });
  if (outcome.display) parameter.push({ name: 'display', valueString: outcome.display });
  return { status: 200, resource: { resourceType: 'Parameters', parameter } };
}

/** ValueSet/$validate-code and ValueSet/[id]/$validate-code (url, code, system, display, coding, codeableConcept). */
export async function valueSetValidateCode(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  if (!ctx.validator) throw new BadRequest('Terminology is not available on this server', 'not-supported');
  const input = inputs(req);
  const url = (await instanceUrl(session, req, 'ValueSet')) ?? text(input.get('url'));
  if (!url) throw new BadRequest('$validate-code needs a ValueSet: the url parameter, or ValueSet/[id]/$validate-code', 'required');
  const concept = input.get('codeableConcept') as { coding?: { system?: string; code?: string; display?: string }[] } | undefined;
  if (concept && !input.get('coding') && !input.get('code') && (concept.coding?.length ?? 0) > 1) {
    // a CodeableConcept is in the value set when one of its codings is (ValueSet-validate-code)
    const outcomes = concept.coding!.filter((c) => c.code).map((c) => ctx.validator!.validateCode({ url: url.split('|')[0], system: c.system, code: c.code!, display: c.display }));
    const valid = outcomes.find((o) => o.result);
    return result(valid ?? { result: false, message: outcomes.map((o) => o.message).filter(Boolean).join('; ') });
  }
  const { system, code, display } = codingInput(input);
  if (!code) throw new BadRequest('$validate-code needs a code (code, coding or codeableConcept)', 'required');
  return result(ctx.validator.validateCode({ url: url.split('|')[0], system, code, display }));
}

/** CodeSystem/$validate-code and CodeSystem/[id]/$validate-code (url, code, display, coding). */
export async function codeSystemValidateCode(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  if (!ctx.validator) throw new BadRequest('Terminology is not available on this server', 'not-supported');
  const input = inputs(req);
  const coding = codingInput(input);
  const url = (await instanceUrl(session, req, 'CodeSystem')) ?? text(input.get('url')) ?? coding.system;
  if (!url) throw new BadRequest('$validate-code needs a CodeSystem: the url parameter, or CodeSystem/[id]/$validate-code', 'required');
  if (!coding.code) throw new BadRequest('$validate-code needs a code', 'required');
  return result(ctx.validator.validateCode({ codeSystemUrl: url.split('|')[0], code: coding.code, display: coding.display }));
}
