import { DOCUMENT_CODES, withIns } from '../../conformance/frenchFixtures';
import { http, startTarget, statementRecorder, Target } from '../../conformance/harness';

/**
 * SQL statements per search interaction: one for the page, one more for all the
 * _include/_revinclude rows of the page (never one per match), one more for an accurate
 * total. A regression here is a performance bug (N+1).
 */
let t: Target;
let counted: ReturnType<typeof statementRecorder>;
beforeAll(async () => {
  t = await startTarget();
  counted = statementRecorder(t);
});
afterAll(() => t.close());

const TAG = 'urn:test:search-query-count|qc';
const meta = { tag: [{ system: 'urn:test:search-query-count', code: 'qc' }] };
const DOCS = 25;
/** The patient's INS: a NIR with a valid key (97 - body mod 97). */
const NIR = '180029912345610';
let patientId: string;
const practitioners: string[] = [];

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: { ...resource, meta } });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
  return res.body;
}

beforeAll(async () => {
  const gp = await create({ resourceType: 'Practitioner', name: [{ family: 'Traitant' }] });
  const org = await create({ resourceType: 'Organization', name: 'Centre' });
  patientId = (
    // an INS comes with the INS traits (the INS profile applies by default)
    await create(
      withIns(
        {
          resourceType: 'Patient',
          name: [{ family: 'Compté' }],
          generalPractitioner: [{ reference: `Practitioner/${gp.id}` }],
          managingOrganization: { reference: `Organization/${org.id}` },
        },
        'urn:oid:1.2.250.1.213.1.4.8',
        NIR,
      ),
    )
  ).id;
  for (let i = 0; i < DOCS; i++) {
    const author = await create({ resourceType: 'Practitioner', name: [{ family: `Auteur${i}` }] });
    practitioners.push(author.id);
    const doc = await create({
      resourceType: 'DocumentReference',
      status: 'current',
      ...DOCUMENT_CODES,
      subject: { reference: `Patient/${patientId}` },
      author: [{ reference: `Practitioner/${author.id}` }],
      custodian: { reference: `Organization/${org.id}` },
      date: `2024-01-${String(i + 1).padStart(2, '0')}T10:00:00Z`,
      // content held elsewhere: inline data would be published as a Binary of the record (ITI-105), and counted here
      content: [{ attachment: { contentType: 'text/plain', url: 'https://documents.example/content' } }],
    });
    await create({ resourceType: 'Provenance', target: [{ reference: `DocumentReference/${doc.id}` }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: `Practitioner/${author.id}` } }] });
  }
});

const get = async (path: string) => {
  const res = await http(t.base, path);
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.text}`);
  return res.body;
};
const mode = (bundle: any, m: string) => (bundle.entry ?? []).filter((e: any) => e.search?.mode === m);
const nextOf = (bundle: any): string | undefined => bundle.link?.find((l: any) => l.relation === 'next')?.url;

describe('statements per search', () => {
  it('a search is one statement', async () => {
    const { result, sql } = await counted(() => get(`DocumentReference?_tag=${TAG}&subject=Patient/${patientId}&_count=10`));
    expect(mode(result, 'match')).toHaveLength(10);
    expect(sql).toHaveLength(1);
  });

  it('a search with a chain and a _has is still one statement', async () => {
    const { result, sql } = await counted(() =>
      get(`Patient?_tag=${TAG}&identifier=urn:oid:1.2.250.1.213.1.4.8|${NIR}&general-practitioner.name=traitant&_has:DocumentReference:subject:type=http://loinc.org|11488-4`),
    );
    expect(mode(result, 'match').map((e: any) => e.resource.id)).toEqual([patientId]);
    expect(sql).toHaveLength(1);
  });

  it('a complete result (no next page) needs no count statement for its total', async () => {
    const { result, sql } = await counted(() => get(`DocumentReference?_tag=${TAG}&_count=50&_total=accurate`));
    expect(result.total).toBe(DOCS);
    expect(sql).toHaveLength(1);
  });

  it.each([20, 5])('_include + _revinclude on a page of %i matches is two statements (no N+1)', async (count) => {
    const { result, sql } = await counted(() =>
      get(`DocumentReference?_tag=${TAG}&_count=${count}&_sort=date&_include=DocumentReference:author&_include=DocumentReference:custodian&_revinclude=Provenance:target`),
    );
    const matches = mode(result, 'match');
    expect(matches).toHaveLength(count);
    const included = mode(result, 'include').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
    // one author and one provenance per match, the custodian once
    expect(included.filter((k: string) => k.startsWith('Practitioner/'))).toHaveLength(count);
    expect(included.filter((k: string) => k.startsWith('Provenance/'))).toHaveLength(count);
    expect(included.filter((k: string) => k.startsWith('Organization/'))).toHaveLength(1);
    expect(sql).toHaveLength(2);
  });

  it('_include:iterate adds one statement per iteration, not per resource', async () => {
    const { result, sql } = await counted(() =>
      get(`DocumentReference?_tag=${TAG}&_count=20&_include=DocumentReference:subject&_include:iterate=Patient:general-practitioner`),
    );
    expect(mode(result, 'match')).toHaveLength(20);
    expect(mode(result, 'include')).toHaveLength(2);
    // page, then round 1 (the patient), then round 2 (its practitioner); round 3 finds nothing new to follow
    expect(sql.length).toBeGreaterThanOrEqual(3);
    expect(sql.length).toBeLessThanOrEqual(4);
  });

  it('_total=accurate on a paged result is two statements, on every page', async () => {
    const first = await counted(() => get(`DocumentReference?_tag=${TAG}&_count=10&_total=accurate`));
    expect(first.result.total).toBe(DOCS);
    expect(mode(first.result, 'match')).toHaveLength(10);
    expect(first.sql).toHaveLength(2);
    expect(first.sql.some((s) => /count\(\*\)/i.test(s))).toBe(true);
    const next = nextOf(first.result);
    expect(next).toBeDefined();
    const second = await counted(() => get(next!.slice(t.base.length + 1)));
    expect(second.result.total).toBe(DOCS);
    expect(second.sql).toHaveLength(2);
  });

  it('_summary=count is one statement', async () => {
    const { result, sql } = await counted(() => get(`DocumentReference?_tag=${TAG}&_summary=count`));
    expect(result.total).toBe(DOCS);
    expect(sql).toHaveLength(1);
  });

  it('$everything is two statements at most', async () => {
    const { result, sql } = await counted(() => get(`Patient/${patientId}/$everything?_count=10`));
    expect(mode(result, 'match')).toHaveLength(10);
    expect(sql.length).toBeLessThanOrEqual(2);
  });

  it('$everything with all of the compartment on one page is two statements at most', async () => {
    const { result, sql } = await counted(() => get(`Patient/${patientId}/$everything?_count=100`));
    // the patient and its documents as matches; the practitioners and the organisation they reference as includes
    expect(mode(result, 'match')).toHaveLength(DOCS + 1);
    expect(mode(result, 'include')).toHaveLength(DOCS + 2);
    expect(sql.length).toBeLessThanOrEqual(2);
  });

  it('a compartment search is one statement', async () => {
    const { result, sql } = await counted(() => get(`Patient/${patientId}/DocumentReference?_count=10`));
    expect(mode(result, 'match')).toHaveLength(10);
    expect(sql).toHaveLength(1);
  });
});
