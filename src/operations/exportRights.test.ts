import type { Actor } from '../access/actor';
import { exportRights } from './exportRights';

const practitioner = (scopes: string[], roles: string[]): Actor => ({
  kind: 'practitioner',
  id: 'p1',
  subject: 'Practitioner/p1',
  authenticatedBy: 'token',
  scopes: scopes.map((s) => {
    const [context, rest] = s.split('/');
    const [resourceType, operations] = rest.split('.');
    return { context: context as 'user', resourceType, operations };
  }),
  roles: roles.map((roleId) => ({ roleId, specialties: [] })),
});

describe('exportRights', () => {
  const all = exportRights(practitioner(['user/*.cruds'], ['r1']));
  it.each([
    ['the same scopes and roles, in another order', practitioner(['user/*.cruds'], ['r1']), true],
    ['narrower scopes', practitioner(['user/Patient.rs'], ['r1']), false],
    ['wider scopes', practitioner(['user/*.cruds', 'patient/*.rs'], ['r1']), false],
    ['another acting role', practitioner(['user/*.cruds'], ['r2']), false],
    ['an additional acting role', practitioner(['user/*.cruds'], ['r1', 'r2']), false],
    ['no actor (test client)', undefined, false],
  ])('%s → %s', (_name, actor, same) => expect(exportRights(actor) === all).toBe(same));

  it('does not depend on the order of scopes and roles', () => {
    expect(exportRights(practitioner(['user/Patient.rs', 'user/Observation.rs'], ['b', 'a']))).toBe(exportRights(practitioner(['user/Observation.rs', 'user/Patient.rs'], ['a', 'b'])));
  });

  it('tells an administrator with legal hold from one without', () => {
    const admin = (legalHold: boolean): Actor => ({ kind: 'admin', subject: 'a', scopes: [], authenticatedBy: 'token', legalHold });
    expect(exportRights(admin(true))).not.toBe(exportRights(admin(false)));
  });
});
