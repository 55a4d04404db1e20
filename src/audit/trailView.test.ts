import { auditEvent } from './auditEvent';
import { eventAsSeen, Hidden, namedBy, SUBSETTED } from './trailView';

const agent = { reference: 'Practitioner/gp', display: 'Paul Martin', professions: [] };
const request = { recorded: '2026-01-01T00:00:00Z', serverUrl: 'https://fhir.example/fhir' };
const hiding = (ids: string[]): Hidden => ({ visible: (ref) => !ids.includes(ref.split('/')[1]), hiddenId: (id) => ids.includes(id) });
const tagged = (e: Record<string, any>) => (e.meta?.tag ?? []).some((t: { code: string }) => t.code === SUBSETTED.code);

describe('the trail as the patient sees it', () => {
  const search = auditEvent(agent, { interaction: 'search-type' }, 0, { patient: 'p1', resources: ['DocumentReference/shown', 'DocumentReference/secret'], query: 'subject=Patient/p1', queriedType: 'DocumentReference' }, request);

  it('names everything it names, texts included', () => {
    const named = namedBy(search);
    expect(named.references).toEqual(expect.arrayContaining(['Patient/p1', 'DocumentReference/shown', 'DocumentReference/secret']));
    expect(named.words).toEqual(expect.arrayContaining(['subject', 'p1']));
  });

  it('an event naming nothing hidden is the same object', () => {
    expect(eventAsSeen(search, hiding([]))).toBe(search);
  });

  it('drops the hidden entity and the query of a search that found it, tagged SUBSETTED', () => {
    const seen = eventAsSeen(search, hiding(['secret']));
    expect(seen.entity.map((e: any) => e.what.reference)).toEqual(['Patient/p1', 'DocumentReference/shown']);
    expect(tagged(seen)).toBe(true);
    expect(JSON.stringify(seen)).not.toContain('secret');
  });

  it('drops a query naming a hidden id even when the search did not return it', () => {
    const e = auditEvent(agent, { interaction: 'search-type' }, 0, { patient: 'p1', resources: ['DocumentReference/shown'], query: '_id=secret%2Cshown', queriedType: 'DocumentReference' }, request);
    const seen = eventAsSeen(e, hiding(['secret']));
    expect(seen.entity.some((x: any) => x.role.code === '24')).toBe(false);
    expect(seen.entity.map((x: any) => x.what.reference)).toEqual(['Patient/p1', 'DocumentReference/shown']);
  });

  it("a refusal's reason and target naming a hidden resource become neutral", () => {
    const e = auditEvent(agent, { interaction: 'read' }, 4, { resources: [], target: 'GET DocumentReference/secret' }, { ...request, outcomeDesc: 'DocumentReference/secret is hidden from the caller' });
    const seen = eventAsSeen(e, hiding(['secret']));
    expect(seen.outcomeDesc).toBe('Refused by the access policy');
    expect(seen.entity).toEqual([expect.objectContaining({ what: { display: 'Withheld from this reader' } })]);
    expect(JSON.stringify(seen)).not.toContain('secret');
  });

  it('a history of a hidden resource names it nowhere', () => {
    const e = auditEvent(agent, { interaction: 'history-instance' }, 0, { patient: 'p1', resources: ['DocumentReference/secret/_history/1'], query: '', queriedType: 'DocumentReference/secret/_history' }, request);
    expect(JSON.stringify(eventAsSeen(e, hiding(['secret'])))).not.toContain('secret');
  });

  it("an agent of another record's patient side is withheld; a professional and the reader's own side are not", () => {
    const byOther = auditEvent({ reference: 'Patient/p2', professions: [] }, { interaction: 'read' }, 4, { patient: 'p1', resources: ['DocumentReference/d1'] }, request);
    expect(namedBy(byOther).references).toContain('Patient/p2');
    const seen = eventAsSeen(byOther, hiding(['p2']));
    expect(JSON.stringify(seen)).not.toContain('p2');
    expect(seen.agent[0].who).toEqual({ display: 'Withheld from this reader' });
    expect(tagged(seen)).toBe(true);
    const byOwn = auditEvent({ reference: 'RelatedPerson/rp1', professions: [] }, { interaction: 'read' }, 0, { patient: 'p1', resources: ['DocumentReference/d1'] }, request);
    expect(eventAsSeen(byOwn, hiding(['p2']))).toBe(byOwn);
    const byProfessional = auditEvent(agent, { interaction: 'read' }, 0, { patient: 'p1', resources: ['DocumentReference/d1'] }, request);
    expect(eventAsSeen(byProfessional, hiding(['gp']))).toBe(byProfessional);
  });
});
