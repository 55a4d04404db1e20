import { BadRequest, NotFound } from '../http/errors';
import type { Session } from '../store/session';
import { assertId } from './common';
import { parseRequestSearch, patientCompartmentCondition, searchBundle } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/**
 * Compartment search: GET Patient/[id]/[type]?… — a type search restricted to the
 * patient's compartment. `Patient/[id]/*` searches every type of the compartment that
 * this server serves (only common parameters then apply: _id, _lastUpdated …).
 */
export async function searchCompartment(ctx: InteractionContext, session: Session, req: FhirRequest, type: string): Promise<FhirResponse> {
  const patientId = assertId(req.id);
  const strict = req.prefer.handling === 'strict';
  if (type !== '*') {
    if (!ctx.registry.isSupported(type)) throw new NotFound(`Resource type "${type}" is not supported by this server`);
    if (type !== 'Patient' && (ctx.registry.types.get(type)?.patientCompartmentParams ?? []).length === 0) {
      throw new BadRequest(`${type} is not in the Patient compartment`);
    }
    const search = parseRequestSearch(ctx, type, req.query, strict);
    return searchBundle(ctx, session, search, {
      path: `Patient/${patientId}/${type}`,
      constraints: req.constraints,
      extra: patientCompartmentCondition(ctx, type, patientId),
    });
  }
  // Every compartment type, one search each, merged into one Bundle (no paging across types).
  const entries: unknown[] = [];
  for (const entry of ctx.registry.types.values()) {
    if (entry.type !== 'Patient' && entry.patientCompartmentParams.length === 0) continue;
    const search = parseRequestSearch(ctx, entry.type, req.query, false);
    search.count = ctx.config.maxPageSize;
    const bundle = await searchBundle(ctx, session, search, {
      path: `Patient/${patientId}/${entry.type}`,
      constraints: req.constraints,
      extra: patientCompartmentCondition(ctx, entry.type, patientId),
    });
    entries.push(...(((bundle.resource as { entry?: { search?: { mode: string } }[] }).entry ?? []).filter((e) => e.search?.mode === 'match')));
  }
  return {
    status: 200,
    resource: { resourceType: 'Bundle', type: 'searchset', total: entries.length, link: [{ relation: 'self', url: `${ctx.config.baseUrl}/Patient/${patientId}/*` }], ...(entries.length ? { entry: entries } : {}) },
  };
}
