import { BadRequest, MethodNotAllowed, NotFound } from '../errors';
import type { Session } from '../store/session';
import { capabilityStatement } from './capabilities';
import { create } from './create';
import { conditionalDelete, remove } from './delete';
import { history } from './history';
import { conditionalPatch, patch } from './patch';
import { read, vread } from './read';
import { searchType } from './search';
import { searchCompartment } from './searchCompartment';
import { OPERATIONS, operationAppliesTo } from '../operations/registry';
import { exportCancel, exportFile, exportStatus } from '../operations/bulkExport';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';
import { conditionalUpdate, update } from './update';
import { withholdUnreadableReferences } from './withheldReferences';

export type Interaction =
  | 'capabilities'
  | 'transaction'
  | 'history-system'
  | 'search-type'
  | 'create'
  | 'conditional-update'
  | 'conditional-patch'
  | 'conditional-delete'
  | 'history-type'
  | 'read'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'vread'
  | 'search-compartment'
  | 'operation'
  | 'bulk-status'
  | 'bulk-cancel'
  | 'bulk-file';

export interface Route {
  interaction: Interaction;
  resourceType?: string;
  id?: string;
  versionId?: string;
  operation?: string;
  /** Compartment search: the type searched inside Patient/[id], or '*'. */
  compartmentType?: string;
  /** The file of a bulk export ([base]/_bulk/[id]/[file]). */
  file?: string;
}

/** Maps a method and the path below the FHIR base to an interaction (shared by HTTP and Bundle entries). */
export function route(method: string, segments: string[]): Route {
  const [a, b, c, d] = segments;
  const n = segments.length;
  const not = (allow: string[]) => new MethodNotAllowed(`${method} is not allowed on /${segments.join('/')}`, allow);
  const READS = ['GET', 'HEAD'];
  const op = segments.find((s) => s.startsWith('$'));
  if (op) {
    const at = segments.indexOf(op);
    if (at !== n - 1 || at > 2) throw new NotFound(`Unknown path /${segments.join('/')}`);
    return { interaction: 'operation', operation: op.slice(1), resourceType: at >= 1 ? a : undefined, id: at === 2 ? b : undefined };
  }
  if (n === 0) {
    if (method === 'POST') return { interaction: 'transaction' };
    if (method === 'GET') throw new BadRequest('Search across all resource types is not supported: search one type, e.g. GET [base]/Patient', 'not-supported');
    throw not(['POST']);
  }
  if (n === 1 && a === 'metadata') {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'capabilities' };
    throw not(READS);
  }
  if (n === 1 && a === '_history') {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'history-system' };
    throw not(READS);
  }
  if (a === '_bulk' && (n === 2 || n === 3)) {
    // a bulk export's status and files (docs/decisions/020-bulk-data.md)
    if (n === 3) {
      if (method === 'GET') return { interaction: 'bulk-file', id: b, file: c };
      throw not(['GET']);
    }
    if (method === 'GET') return { interaction: 'bulk-status', id: b };
    if (method === 'DELETE') return { interaction: 'bulk-cancel', id: b };
    throw not(['GET', 'DELETE']);
  }
  if (!/^[A-Z][A-Za-z]+$/.test(a)) throw new NotFound(`Unknown resource type "${a}"`);
  if (n === 1) {
    const byMethod: Record<string, Interaction> = {
      GET: 'search-type',
      HEAD: 'search-type',
      POST: 'create',
      PUT: 'conditional-update',
      PATCH: 'conditional-patch',
      DELETE: 'conditional-delete',
    };
    if (!byMethod[method]) throw not(Object.keys(byMethod));
    return { interaction: byMethod[method], resourceType: a };
  }
  if (n === 2 && b === '_search') {
    if (method === 'POST' || method === 'GET') return { interaction: 'search-type', resourceType: a };
    throw not(['GET', 'POST']);
  }
  if (n === 2 && b === '_history') {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'history-type', resourceType: a };
    throw not(READS);
  }
  if (n === 2) {
    const byMethod: Record<string, Interaction> = { GET: 'read', HEAD: 'read', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
    if (!byMethod[method]) throw not(Object.keys(byMethod));
    return { interaction: byMethod[method], resourceType: a, id: b };
  }
  if (n === 3 && a === 'Patient' && (c === '*' || /^[A-Z][A-Za-z]+$/.test(c))) {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'search-compartment', resourceType: a, id: b, compartmentType: c };
    throw not(READS);
  }
  if (n === 3 && c === '_history') {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'history-instance', resourceType: a, id: b };
    throw not(READS);
  }
  if (n === 4 && c === '_history') {
    if (method === 'GET' || method === 'HEAD') return { interaction: 'vread', resourceType: a, id: b, versionId: d };
    throw not(READS);
  }
  throw new NotFound(`Unknown path /${segments.join('/')}`);
}

/** An operation that reads nothing stored, invoked on a type this server does not store but R4 defines ([type]/$validate). */
function storageFreeOn(ctx: InteractionContext, r: Route): boolean {
  if (r.interaction !== 'operation' || r.id || !r.resourceType) return false;
  return OPERATIONS.some((o) => o.name === r.operation && o.storageFree && o.type) && Boolean(ctx.validator?.isResourceType(r.resourceType));
}

/** Interactions that write, and so run in one database transaction. */
export const WRITES = new Set<Interaction>(['create', 'conditional-update', 'conditional-patch', 'conditional-delete', 'update', 'patch', 'delete', 'transaction']);

export async function perform(ctx: InteractionContext, session: Session, r: Route, req: FhirRequest): Promise<FhirResponse> {
  const res = await performInteraction(ctx, session, r, req);
  // an answer names nothing its reader cannot read (a transaction's entries went through here one by one)
  return r.interaction === 'transaction' ? res : withholdUnreadableReferences(ctx, session, r.resourceType, res);
}

async function performInteraction(ctx: InteractionContext, session: Session, r: Route, req: FhirRequest): Promise<FhirResponse> {
  if (r.resourceType && !ctx.registry.isSupported(r.resourceType) && !storageFreeOn(ctx, r)) {
    throw new NotFound(`Resource type "${r.resourceType}" is not supported by this server`);
  }
  // the caller's scopes, for a lone request and for each Bundle entry alike
  session.access.checkInteraction?.(r, req);
  switch (r.interaction) {
    case 'capabilities':
      return { status: 200, resource: capabilityStatement(ctx) as unknown as Record<string, unknown> };
    case 'search-type':
      return searchType(ctx, session, req);
    case 'create':
      return create(ctx, session, req);
    case 'conditional-update':
      return conditionalUpdate(ctx, session, req);
    case 'conditional-patch':
      return conditionalPatch(ctx, session, req);
    case 'conditional-delete':
      return conditionalDelete(ctx, session, req);
    case 'read':
      return read(ctx, session, req);
    case 'vread':
      return vread(ctx, session, req);
    case 'update':
      return update(ctx, session, req);
    case 'patch':
      return patch(ctx, session, req);
    case 'delete':
      return remove(ctx, session, req);
    case 'history-system':
    case 'history-type':
    case 'history-instance':
      return history(ctx, session, req);
    case 'search-compartment':
      return searchCompartment(ctx, session, req, r.compartmentType!);
    case 'operation': {
      const named = OPERATIONS.filter((o) => o.name === r.operation && (!r.resourceType || operationAppliesTo(o, r.resourceType)));
      const op = named.find((o) => (r.id ? o.instance : r.resourceType ? o.type : o.system));
      const where = r.resourceType ? `${r.resourceType}${r.id ? '/[id]' : ''}/$${r.operation}` : `$${r.operation}`;
      if (!op && named.length > 0) {
        const levels = [named.some((o) => o.system) && `[base]/$${r.operation}`, named.some((o) => o.type) && `${r.resourceType ?? '[type]'}/$${r.operation}`, named.some((o) => o.instance) && `${r.resourceType ?? '[type]'}/[id]/$${r.operation}`].filter(Boolean);
        throw new BadRequest(`${where} is not supported: invoke it as ${levels.join(' or ')}`, 'not-supported');
      }
      if (!op) throw new NotFound(`Operation $${r.operation} is not supported${r.resourceType ? ` on ${r.resourceType}${r.id ? '/[id]' : ''}` : ''}`);
      if (op.affectsState && req.method === 'GET') throw new MethodNotAllowed(`$${op.name} changes data: invoke it with POST`, ['POST']);
      return op.handler(ctx, session, req);
    }
    case 'transaction':
      throw new BadRequest('A Bundle cannot be nested in a transaction entry');
    case 'bulk-status':
      return exportStatus(ctx, session, r.id);
    case 'bulk-cancel':
      return exportCancel(ctx, session, r.id);
    case 'bulk-file':
      return exportFile(ctx, session, r.id, r.file);
  }
}
