import type { Actor } from '../access/actor';

/**
 * What a bulk export answers to besides who asked (docs/decisions/020-bulk-data.md): the
 * token's SMART scopes and the roles the practitioner acts in (the legal-hold scope of an
 * administrator), as a canonical text compared for equality. A token of the same person
 * with other rights gets 404, as another caller does. No actor: the unrestricted test
 * client, which carries no scopes.
 */
export function exportRights(actor: Actor | undefined): string {
  if (!actor) return 'unrestricted';
  const scopes = [...new Set(actor.scopes.map((s) => `${s.context}/${s.resourceType}.${s.operations}`))].sort();
  const roles = actor.kind === 'practitioner' ? [...new Set(actor.roles.map((r) => r.roleId))].sort() : [];
  return JSON.stringify({ kind: actor.kind, scopes, roles, ...(actor.kind === 'admin' && actor.legalHold ? { legalHold: true } : {}) });
}
