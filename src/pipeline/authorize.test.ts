import type { Route } from '../interactions/dispatch';
import type { FhirRequest } from '../interactions/types';
import { reachesOtherRecords } from './authorize';

const req = (query: [string, string][]): FhirRequest => ({ method: 'GET', query, headers: {}, prefer: {} });
const route = (interaction: Route['interaction']): Route => ({ interaction, resourceType: 'DocumentReference', id: 'x' });

describe('reachesOtherRecords: may a request naming records return resources of others?', () => {
  it.each([
    ['a read of one resource', 'read', [], false],
    ['a read, whatever its parameters', 'read', [['_include', 'DocumentReference:author']], false],
    ['a search by patient', 'search-type', [['patient', 'p1']], false],
    ['a search by patient and type', 'search-type', [['patient', 'p1'], ['type', '11488-4']], false],
    ['an _include', 'search-type', [['patient', 'p1'], ['_include', 'DocumentReference:relatesto']], true],
    ['an _include:iterate', 'search-type', [['patient', 'p1'], ['_include:iterate', '*']], true],
    ['a _revinclude', 'search-type', [['patient', 'p1'], ['_revinclude', 'Provenance:target']], true],
    ['a _has', 'search-type', [['patient', 'p1'], ['_has:List:item:code', 'x']], true],
    ['a chain', 'search-type', [['patient', 'p1'], ['author.name', 'x']], true],
    ['a _list', 'search-type', [['patient', 'p1'], ['_list', 'l1']], true],
    ['a compartment search with _revinclude', 'search-compartment', [['_revinclude', 'Provenance:target']], true],
  ] as [string, Route['interaction'], [string, string][], boolean][])('%s', (_n, interaction, query, expected) => {
    expect(reachesOtherRecords(route(interaction), req(query))).toBe(expected);
  });
});
