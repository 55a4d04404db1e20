import type { InteractionContext } from './types';

/**
 * PDSm archiving (isArchived extension on DocumentReference and List): an archived document
 * or submission set stays readable by id and searchable, but leaves the default lists
 * (XDS status Archived in the DMP). A DocumentReference or List search that does not name
 * `isArchived` therefore gets `isArchived:not=true` added — shown in the Bundle's self link,
 * so the client sees what was searched; `isArchived=true` lists the archived ones, and any
 * other use of the parameter (`isArchived:missing`, `isArchived=false`) is taken as asked.
 * Conditional requests (a PATCH archiving or unarchiving by identifier) are not narrowed.
 */
const ARCHIVABLE = new Set(['DocumentReference', 'List']);
export const IS_ARCHIVED = 'isArchived';

export function leaveArchivedOut(ctx: InteractionContext, type: string, query: [string, string][]): [string, string][] {
  if (!ARCHIVABLE.has(type) || !ctx.registry.searchParams(type).has(IS_ARCHIVED)) return query;
  if (query.some(([name]) => name === IS_ARCHIVED || name.startsWith(`${IS_ARCHIVED}:`))) return query;
  return [...query, [`${IS_ARCHIVED}:not`, 'true']];
}
