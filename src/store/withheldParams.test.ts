import { WITHHELD } from '../access/referenceRedaction';
import { loadSearchParameters } from '../registry/registry';
import { expressionPartsFor } from '../search/searchParameters';
import { TRAIL_PERSON_PARAMS, WITHHELD_PARAMS, withheldSort } from './searchSql';

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

it('the trail parameters naming a patient\'s side are those whose expression is AuditEvent.agent.who', () => {
  const registry = loadSearchParameters();
  const onWho = registry
    .definitions()
    .filter((d) => d.type === 'reference' && d.base.includes('AuditEvent') && d.expression && expressionPartsFor(d.expression, 'AuditEvent').some((p) => p.startsWith('AuditEvent.agent.who')))
    .map((d) => d.code)
    .sort();
  expect(onWho).toEqual([...TRAIL_PERSON_PARAMS].sort());
});

describe('withheldSort: a sort by what the trail view withholds is refused to its readers', () => {
  it.each([
    ['agent, reader of the trail as seen', { trailAsSeen: true }, 'AuditEvent', ['agent'], true],
    ['patient then date', { trailAsSeen: true }, 'AuditEvent', ['date', 'patient'], true],
    ['entity', { trailAsSeen: true }, 'AuditEvent', ['entity'], true],
    ['date', { trailAsSeen: true }, 'AuditEvent', ['date'], false],
    ['agent, an investigator', {}, 'AuditEvent', ['agent'], false],
    ['another type', { trailAsSeen: true }, 'DocumentReference', ['patient'], false],
  ] as [string, { trailAsSeen?: boolean }, string, string[], boolean][])('%s', (_n, visibility, type, codes, refused) => {
    expect(withheldSort(visibility, type, codes.map((code) => ({ code }))) !== undefined).toBe(refused);
  });
});
