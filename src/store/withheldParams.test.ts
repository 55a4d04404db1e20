import { WITHHELD } from '../access/referenceRedaction';
import { loadSearchParameters } from '../registry/registry';
import { expressionPartsFor } from '../search/searchParameters';
import { WITHHELD_PARAMS } from './searchSql';

/**
 * The search side of decision 013 names by hand the parameters of the withheld elements:
 * they are the reference parameters whose expression is one of those elements. The trail's
 * entities (AuditEvent) are added apart, for a reader shown the trail as seen.
 */
it('WITHHELD_PARAMS names the reference parameters of the elements referenceRedaction withholds', () => {
  const registry = loadSearchParameters();
  const derived: Record<string, string[]> = {};
  for (const [type, elements] of Object.entries(WITHHELD)) {
    if (type === 'AuditEvent') continue;
    for (const element of elements) {
      const path = [type, ...element.path, ...element.reference].join('.');
      for (const def of registry.definitions()) {
        if (def.type !== 'reference' || !def.base.includes(type) || !def.expression) continue;
        if (expressionPartsFor(def.expression, type).includes(path)) (derived[def.code] ??= []).push(type);
      }
    }
  }
  expect(derived).toEqual(WITHHELD_PARAMS);
});

it('the trail entities are withheld by the entity parameter of AuditEvent', () => {
  const registry = loadSearchParameters();
  const entity = registry.definitions().find((d) => d.code === 'entity' && d.base.includes('AuditEvent'));
  expect(WITHHELD.AuditEvent.map((e) => ['AuditEvent', ...e.path, ...e.reference].join('.'))).toEqual(expressionPartsFor(entity!.expression!, 'AuditEvent'));
});
