import { checkedTargets, isSubsetted, mayHoldWithheld, restoreWithheld, targetOf, withheldItems, withholdUnreadable } from './referenceRedaction';

const BASE = 'https://fhir.example/r4';
const hidden = new Set(['DocumentReference/h1', 'DocumentReference/h2']);
const readable = (t: { resourceType: string; id: string }) => !hidden.has(`${t.resourceType}/${t.id}`);

describe('targetOf: the resources of this server a reference names', () => {
  it.each([
    ['DocumentReference/d1', { resourceType: 'DocumentReference', id: 'd1' }],
    [`${BASE}/DocumentReference/d1`, { resourceType: 'DocumentReference', id: 'd1' }],
    ['DocumentReference/d1/_history/2', { resourceType: 'DocumentReference', id: 'd1' }],
    ['https://elsewhere.example/fhir/DocumentReference/d1', undefined],
    ['#contained', undefined],
    ['urn:uuid:0d3e2c4a-0000-4000-8000-000000000000', undefined],
  ])('%s', (reference, expected) => {
    expect(targetOf({ reference }, BASE)).toEqual(expected);
  });
  it('a reference by identifier names no resource here', () => {
    expect(targetOf({ identifier: { value: 'x' } }, BASE)).toBeUndefined();
  });
});

describe('withholdUnreadable', () => {
  const list = {
    resourceType: 'List',
    id: 'l',
    meta: { versionId: '3', tag: [{ system: 'urn:t', code: 'kept' }] },
    status: 'current',
    mode: 'working',
    entry: [{ item: { reference: 'DocumentReference/v1' } }, { item: { reference: 'DocumentReference/h1' } }, { item: { reference: `${BASE}/DocumentReference/h2` } }, { item: { reference: 'https://elsewhere.example/DocumentReference/h1' } }],
  };
  it('removes the List entries whose item the reader cannot read, and tags the List SUBSETTED', () => {
    const out = withholdUnreadable(list, BASE, readable)!;
    expect((out.entry as any[]).map((e) => e.item.reference)).toEqual(['DocumentReference/v1', 'https://elsewhere.example/DocumentReference/h1']);
    expect((out.meta as any).tag).toEqual([{ system: 'urn:t', code: 'kept' }, expect.objectContaining({ code: 'SUBSETTED' })]);
    expect((out.meta as any).versionId).toBe('3');
    expect(isSubsetted(out)).toBe(true);
    // the stored resource is not changed
    expect(list.entry).toHaveLength(4);
  });
  it('leaves a resource whose references are all readable as it is', () => {
    expect(withholdUnreadable(list, BASE, () => true)).toBeUndefined();
  });
  it('removes relatesTo and context.related of a DocumentReference, dropping the emptied elements', () => {
    const doc = {
      resourceType: 'DocumentReference',
      relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/h1' } }],
      context: { related: [{ reference: 'DocumentReference/h2' }] },
    };
    const out = withholdUnreadable(doc, BASE, readable)!;
    expect(out.relatesTo).toBeUndefined();
    expect(out.context).toBeUndefined();
    const withPeriod = withholdUnreadable({ ...doc, context: { period: { start: '2026-01-01' }, related: [{ reference: 'DocumentReference/h2' }, { reference: 'Patient/p1' }] } }, BASE, readable)!;
    expect(withPeriod.context).toEqual({ period: { start: '2026-01-01' }, related: [{ reference: 'Patient/p1' }] });
  });
  it('removes Provenance targets and entities the reader cannot read', () => {
    const provenance = { resourceType: 'Provenance', target: [{ reference: 'DocumentReference/v1' }, { reference: 'DocumentReference/h1' }], entity: [{ role: 'source', what: { reference: 'DocumentReference/h2' } }] };
    expect(checkedTargets(provenance, BASE).map((t) => t.id)).toEqual(['v1', 'h1', 'h2']);
    const out = withholdUnreadable(provenance, BASE, readable)!;
    expect(out.target).toEqual([{ reference: 'DocumentReference/v1' }]);
    expect(out.entity).toBeUndefined();
  });
  it('looks at the text before parsing: only the checked types, only with a checked element', () => {
    expect(mayHoldWithheld('List', '{"entry": []}')).toBe(true);
    expect(mayHoldWithheld('List', '{"status": "current"}')).toBe(false);
    expect(mayHoldWithheld('Observation', '{"entry": []}')).toBe(false);
    expect(mayHoldWithheld('DocumentReference', '{"context": {"related": []}}')).toBe(true);
  });
});

describe('isSubsetted', () => {
  it('knows the tag by system and code', () => {
    expect(isSubsetted({ meta: { tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' }] } })).toBe(true);
    expect(isSubsetted({ meta: { tag: [{ system: 'urn:other', code: 'SUBSETTED' }] } })).toBe(false);
    expect(isSubsetted({})).toBe(false);
  });
});

describe('a writer keeps what they were not shown', () => {
  const doc = {
    resourceType: 'DocumentReference',
    relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/h1' } }, { code: 'appends', target: { reference: 'DocumentReference/v1' } }],
    context: { related: [{ reference: 'DocumentReference/h2' }] },
  };
  it('the items withheld are put back after those the writer sent, once', () => {
    const withheld = withheldItems(doc, BASE, readable);
    expect([...withheld.keys()]).toEqual(['relatesTo', 'context.related']);
    const view = withholdUnreadable(doc, BASE, readable, false)!;
    expect(view.meta).toBeUndefined();
    // the writer dropped the relation they saw and added a period
    const sent = { ...view, relatesTo: undefined, context: { period: { start: '2026-01-01' } } };
    const kept = restoreWithheld(sent, withheld);
    expect(kept.relatesTo).toEqual([doc.relatesTo[0]]);
    expect(kept.context).toEqual({ period: { start: '2026-01-01' }, related: [{ reference: 'DocumentReference/h2' }] });
    // sending them back (a client that knew them) does not double them
    expect(restoreWithheld(doc, withheld)).toEqual(doc);
  });
  it('nothing is withheld from a reader who reads every target', () => {
    expect(withheldItems(doc, BASE, () => true).size).toBe(0);
  });
});
