import { http, startTarget, Target } from '../harness';

/**
 * Search basics (http://hl7.org/fhir/R4/search.html) over HTTP: parameter types and
 * modifiers, AND/OR, result parameters, paging links, error handling. Every data set
 * carries its own meta.tag so that tests stay independent within the shared database.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TAG_SYSTEM = 'urn:test:search';
const tag = (code: string) => ({ system: TAG_SYSTEM, code });
const tagParam = (code: string) => `${TAG_SYSTEM}|${code}`;

type Pairs = [string, string][];
const qs = (pairs: Pairs) => new URLSearchParams(pairs).toString();

/** GET [type]?pairs, expecting 200. */
async function search(type: string, pairs: Pairs, headers: Record<string, string> = {}): Promise<any> {
  const res = await http(t.base, `${type}?${qs(pairs)}`, { headers });
  if (res.status !== 200) throw new Error(`GET ${type}?${qs(pairs)} answered ${res.status}: ${res.text}`);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('searchset');
  return res.body;
}

/** Follows an absolute link of a Bundle (next, previous, self). */
async function follow(url: string): Promise<{ status: number; body: any; text: string }> {
  expect(url.startsWith(`${t.base}/`)).toBe(true);
  return http(t.base, url.slice(t.base.length + 1));
}

const matches = (bundle: any): any[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource);
const ids = (bundle: any): string[] => matches(bundle).map((r) => r.id);
const link = (bundle: any, relation: string): string | undefined => bundle.link?.find((l: any) => l.relation === relation)?.url;
const sorted = (a: string[]) => [...a].sort();

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
  return res.body;
}

// The main data set: five patients created one after the other (distinct lastUpdated).
const DS = 'basics';
const people = {
  martin: { family: 'Martin', given: ['Léa'], gender: 'female', birthDate: '1990-05-17', identifier: [{ system: 'urn:oid:ins', value: '111' }] },
  dupont: { family: 'Dupont', given: ['Leon'], gender: 'male', birthDate: '1990-11-02', identifier: [{ system: 'urn:oid:ins', value: '222' }] },
  lefevre: { family: 'Lefèvre', given: ['Anne'], gender: 'male', birthDate: '1985-01-20', identifier: [{ system: 'urn:other', value: '111' }] },
  bernard: { family: 'Bernard', given: ['Marie-Léa'], gender: 'female', birthDate: '2001-07-07', identifier: [{ value: '333' }] },
  martinez: { family: 'MARTINEZ', given: ['Paul'], gender: 'other', identifier: [{ system: 'urn:oid:ins', value: '555' }] },
};
type Person = keyof typeof people;
const p: Record<Person, any> = {} as Record<Person, any>;
const obs: Record<string, any> = {};
/** Server ids of the named patients. */
const idsOf = (...names: Person[]) => names.map((n) => p[n].id as string);

beforeAll(async () => {
  for (const name of Object.keys(people) as Person[]) {
    const { family, given, ...rest } = people[name];
    p[name] = await create({ resourceType: 'Patient', meta: { tag: [tag(DS)] }, name: [{ family, given }], ...rest });
    await sleep(5);
  }
  for (const name of ['martin', 'dupont'] as Person[]) {
    obs[name] = await create({
      resourceType: 'Observation',
      meta: { tag: [tag(DS)] },
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
      subject: { reference: `Patient/${p[name].id}` },
    });
  }
});

/** Patients of the main data set matching the extra parameters, as server ids. */
async function patients(...pairs: Pairs): Promise<string[]> {
  return ids(await search('Patient', [['_tag', tagParam(DS)], ...pairs]));
}

describe('GET and POST _search', () => {
  it('POST [type]/_search with a form body gives the same result as GET', async () => {
    const params = { _tag: tagParam(DS), gender: 'male,other', _sort: 'family' };
    const viaGet: any = await t.client.search({ resourceType: 'Patient', searchParams: params });
    const viaPost: any = await t.client.search({ resourceType: 'Patient', searchParams: params, options: { postSearch: true } as never });
    expect(ids(viaGet)).toEqual(idsOf('dupont', 'lefevre', 'martinez'));
    expect(ids(viaPost)).toEqual(ids(viaGet));
    expect(viaPost.total).toBe(viaGet.total);
  });

  it('POST _search combines URL parameters and form parameters', async () => {
    const res = await http(t.base, `Patient/_search?${qs([['_tag', tagParam(DS)]])}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: qs([['gender', 'female']]),
    });
    expect(res.status).toBe(200);
    expect(sorted(ids(res.body))).toEqual(sorted(idsOf('martin', 'bernard')));
  });
});

describe('string parameters', () => {
  it('match by starts-with, ignoring case and accents', async () => {
    expect(await patients(['name', 'lea'])).toEqual(idsOf('martin'));
    expect(await patients(['name', 'LÉA'])).toEqual(idsOf('martin'));
    expect(sorted(await patients(['name', 'le']))).toEqual(sorted(idsOf('martin', 'dupont', 'lefevre')));
    expect(await patients(['family', 'lefevre'])).toEqual(idsOf('lefevre'));
    expect(await patients(['family', 'LEFÈ'])).toEqual(idsOf('lefevre'));
    // starts-with, not contains
    expect(await patients(['family', 'artin'])).toEqual([]);
  });

  it(':exact matches the whole string, case- and accent-sensitive', async () => {
    expect(await patients(['family:exact', 'Martin'])).toEqual(idsOf('martin'));
    expect(await patients(['family:exact', 'martin'])).toEqual([]);
    expect(await patients(['family:exact', 'Mart'])).toEqual([]);
    expect(await patients(['given:exact', 'Léa'])).toEqual(idsOf('martin'));
    expect(await patients(['given:exact', 'Lea'])).toEqual([]);
  });

  it(':contains matches anywhere in the string, ignoring case and accents', async () => {
    expect(sorted(await patients(['family:contains', 'ART']))).toEqual(sorted(idsOf('martin', 'martinez')));
    expect(sorted(await patients(['given:contains', 'LEA']))).toEqual(sorted(idsOf('martin', 'bernard')));
    expect(await patients(['given:contains', 'xyz'])).toEqual([]);
  });

  it('OR with a comma, AND by repeating the parameter', async () => {
    expect(sorted(await patients(['family', 'dup,bern']))).toEqual(sorted(idsOf('dupont', 'bernard')));
    expect(await patients(['name', 'marie'], ['name', 'bern'])).toEqual(idsOf('bernard'));
    expect(await patients(['name', 'lea'], ['name', 'dup'])).toEqual([]);
  });
});

describe('token parameters', () => {
  it('system|code, code, |code and system|', async () => {
    expect(await patients(['identifier', 'urn:oid:ins|111'])).toEqual(idsOf('martin'));
    expect(sorted(await patients(['identifier', '111']))).toEqual(sorted(idsOf('martin', 'lefevre')));
    expect(await patients(['identifier', '|333'])).toEqual(idsOf('bernard'));
    expect(await patients(['identifier', '|111'])).toEqual([]);
    expect(await patients(['identifier', '333'])).toEqual(idsOf('bernard'));
    expect(sorted(await patients(['identifier', 'urn:oid:ins|']))).toEqual(sorted(idsOf('martin', 'dupont', 'martinez')));
  });

  it('OR with a comma, AND by repeating the parameter or combining parameters', async () => {
    expect(sorted(await patients(['gender', 'male,other']))).toEqual(sorted(idsOf('dupont', 'lefevre', 'martinez')));
    expect(await patients(['identifier', '111'], ['identifier', 'urn:other|111'])).toEqual(idsOf('lefevre'));
    expect(await patients(['identifier', '111'], ['gender', 'female'])).toEqual(idsOf('martin'));
    expect(sorted(await patients(['identifier', 'urn:oid:ins|222,|333']))).toEqual(sorted(idsOf('dupont', 'bernard')));
  });

  it('_id with several ids (OR), and repeated _id (AND)', async () => {
    const bundle = await search('Patient', [['_id', idsOf('martin', 'lefevre').join(',')]]);
    expect(sorted(ids(bundle))).toEqual(sorted(idsOf('martin', 'lefevre')));
    expect(ids(await search('Patient', [['_id', p.martin.id], ['_id', p.lefevre.id]]))).toEqual([]);
    expect(ids(await search('Patient', [['_id', 'no-such-id']]))).toEqual([]);
  });
});

describe('reference parameters', () => {
  it('subject=Type/id, subject=id and the absolute URL find the same resource', async () => {
    const find = async (value: string) => ids(await search('Observation', [['_tag', tagParam(DS)], ['subject', value]]));
    expect(await find(`Patient/${p.martin.id}`)).toEqual([obs.martin.id]);
    expect(await find(p.martin.id)).toEqual([obs.martin.id]);
    expect(await find(`${t.base}/Patient/${p.martin.id}`)).toEqual([obs.martin.id]);
    expect(sorted(await find(`Patient/${p.martin.id},Patient/${p.dupont.id}`))).toEqual(sorted([obs.martin.id, obs.dupont.id]));
    expect(await find(`Patient/${p.lefevre.id}`)).toEqual([]);
    expect(await find(`Practitioner/${p.martin.id}`)).toEqual([]);
    expect(ids(await search('Observation', [['_tag', tagParam(DS)], ['subject:Patient', p.dupont.id]]))).toEqual([obs.dupont.id]);
  });
});

describe('date parameters', () => {
  it('eq with partial dates matches values within the period', async () => {
    expect(sorted(await patients(['birthdate', '1990']))).toEqual(sorted(idsOf('martin', 'dupont')));
    expect(await patients(['birthdate', '1990-05'])).toEqual(idsOf('martin'));
    expect(await patients(['birthdate', 'eq1990-05-17'])).toEqual(idsOf('martin'));
    expect(await patients(['birthdate', '1990-05-18'])).toEqual([]);
  });

  it('ge, gt, le and lt prefixes', async () => {
    expect(sorted(await patients(['birthdate', 'ge1990-05-17']))).toEqual(sorted(idsOf('martin', 'dupont', 'bernard')));
    expect(sorted(await patients(['birthdate', 'gt1990-05-17']))).toEqual(sorted(idsOf('dupont', 'bernard')));
    expect(await patients(['birthdate', 'lt1990'])).toEqual(idsOf('lefevre'));
    expect(sorted(await patients(['birthdate', 'le1990-05-17']))).toEqual(sorted(idsOf('lefevre', 'martin')));
    expect(sorted(await patients(['birthdate', 'ge1990'], ['birthdate', 'lt1991']))).toEqual(sorted(idsOf('martin', 'dupont')));
  });

  it('_lastUpdated with gt, lt, ge and le', async () => {
    const at = p.lefevre.meta.lastUpdated as string;
    expect(sorted(await patients(['_lastUpdated', `gt${at}`]))).toEqual(sorted(idsOf('bernard', 'martinez')));
    expect(sorted(await patients(['_lastUpdated', `ge${at}`]))).toEqual(sorted(idsOf('lefevre', 'bernard', 'martinez')));
    expect(sorted(await patients(['_lastUpdated', `lt${at}`]))).toEqual(sorted(idsOf('martin', 'dupont')));
    expect(sorted(await patients(['_lastUpdated', `le${at}`]))).toEqual(sorted(idsOf('martin', 'dupont', 'lefevre')));
    expect(await patients(['_lastUpdated', `gt${p.dupont.meta.lastUpdated}`], ['_lastUpdated', `lt${p.bernard.meta.lastUpdated}`])).toEqual(idsOf('lefevre'));
  });

  it('a malformed date is refused with 400 naming the parameter', async () => {
    const res = await http(t.base, `Patient?${qs([['birthdate', '1990-13-45']])}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
    expect(JSON.stringify(res.body.issue)).toMatch(/birthdate/);
    const lastUpdated = await http(t.base, `Patient?${qs([['_lastUpdated', 'gtyesterday']])}`);
    expect(lastUpdated.status).toBe(400);
    expect(JSON.stringify(lastUpdated.body.issue)).toMatch(/_lastUpdated/);
  });
});

describe('_sort', () => {
  it('sorts on birthdate ascending and descending', async () => {
    const withDate = (list: string[]) => list.filter((id) => id !== p.martinez.id);
    expect(withDate(await patients(['_sort', 'birthdate']))).toEqual(idsOf('lefevre', 'martin', 'dupont', 'bernard'));
    expect(withDate(await patients(['_sort', '-birthdate']))).toEqual(idsOf('bernard', 'dupont', 'martin', 'lefevre'));
  });

  it('sorts on family, case-insensitively, both ways', async () => {
    expect(await patients(['_sort', 'family'])).toEqual(idsOf('bernard', 'dupont', 'lefevre', 'martin', 'martinez'));
    expect(await patients(['_sort', '-family'])).toEqual(idsOf('martinez', 'martin', 'lefevre', 'dupont', 'bernard'));
  });

  it('sorts on name', async () => {
    // family and given names agree on the order, whichever part of the name the server sorts on
    const made: string[] = [];
    for (const [family, given] of [['Collin', 'Claire'], ['Aubert', 'Alice'], ['Blanc', 'Bruno']]) {
      made.push((await create({ resourceType: 'Patient', meta: { tag: [tag('sort-name')] }, name: [{ family, given: [given] }] })).id);
    }
    const [collin, aubert, blanc] = made;
    expect(ids(await search('Patient', [['_tag', tagParam('sort-name')], ['_sort', 'name']]))).toEqual([aubert, blanc, collin]);
    expect(ids(await search('Patient', [['_tag', tagParam('sort-name')], ['_sort', '-name']]))).toEqual([collin, blanc, aubert]);
  });

  it('sorts on _lastUpdated both ways', async () => {
    const order = idsOf('martin', 'dupont', 'lefevre', 'bernard', 'martinez');
    expect(await patients(['_sort', '_lastUpdated'])).toEqual(order);
    expect(await patients(['_sort', '-_lastUpdated'])).toEqual([...order].reverse());
  });

  it('sorts on two keys', async () => {
    expect(await patients(['_sort', 'gender,-birthdate'])).toEqual(idsOf('bernard', 'martin', 'dupont', 'lefevre', 'martinez'));
    expect(await patients(['_sort', '-gender,family'])).toEqual(idsOf('martinez', 'dupont', 'lefevre', 'bernard', 'martin'));
  });
});

describe('paging', () => {
  const PAGED = 'paged';
  const originals: string[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 11; i++) {
      const day = String(i + 1).padStart(2, '0');
      originals.push((await create({ resourceType: 'Patient', meta: { tag: [tag(PAGED)] }, birthDate: `1970-01-${day}`, name: [{ family: `Page${day}` }] })).id);
    }
  });

  /** Follows next links from the first page, calling between() after each page. */
  async function walk(first: any, between: (page: number) => Promise<void> = async () => undefined): Promise<{ pages: string[][] }> {
    const pages: string[][] = [ids(first)];
    let bundle = first;
    for (let guard = 0; link(bundle, 'next'); guard++) {
      if (guard > 50) throw new Error('too many pages');
      await between(pages.length);
      const res = await follow(link(bundle, 'next')!);
      expect(res.status).toBe(200);
      bundle = res.body;
      pages.push(ids(bundle));
    }
    return { pages };
  }

  it.each([
    ['the default order', [] as Pairs],
    ['_sort=birthdate', [['_sort', 'birthdate']] as Pairs],
    ['_sort=-_lastUpdated', [['_sort', '-_lastUpdated']] as Pairs],
  ])('visits every match exactly once with %s, even while matching resources are created', async (_name, sort) => {
    const first = await search('Patient', [['_tag', tagParam(PAGED)], ['_count', '4'], ...sort]);
    expect(ids(first)).toHaveLength(4);
    expect(link(first, 'next')).toBeDefined();
    expect(link(first, 'previous')).toBeUndefined();
    const extra: string[] = [];
    try {
      const { pages } = await walk(first, async (page) => {
        if (page === 1) {
          // new matches, some before and some after the boundary in any order
          for (const date of ['1960-01-01', '1970-01-05', '1999-12-31']) {
            extra.push((await create({ resourceType: 'Patient', meta: { tag: [tag(PAGED)] }, birthDate: date })).id);
          }
        }
      });
      for (const page of pages) expect(page.length).toBeLessThanOrEqual(4);
      const seen = pages.flat();
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of originals) expect(seen).toContain(id);
      for (const id of seen) expect([...originals, ...extra]).toContain(id);
    } finally {
      // the extra matches must not disturb the other paging tests
      for (const id of extra) await http(t.base, `Patient/${id}`, { method: 'DELETE' });
    }
  });

  it('keeps the sort order across pages', async () => {
    const first = await search('Patient', [['_tag', tagParam(PAGED)], ['_count', '3'], ['_sort', '-birthdate']]);
    const { pages } = await walk(first);
    expect(pages.flat()).toEqual([...originals].reverse());
    expect(pages.map((x) => x.length)).toEqual([3, 3, 3, 2]);
  });

  it('the previous link of page 2 returns page 1', async () => {
    const first = await search('Patient', [['_tag', tagParam(PAGED)], ['_count', '4'], ['_sort', 'birthdate']]);
    const second = await follow(link(first, 'next')!);
    expect(second.status).toBe(200);
    expect(ids(second.body)).toEqual(originals.slice(4, 8));
    const previous = link(second.body, 'previous');
    expect(previous).toBeDefined();
    const back = await follow(previous!);
    expect(back.status).toBe(200);
    expect(ids(back.body)).toEqual(ids(first));
    expect(ids(back.body)).toEqual(originals.slice(0, 4));
  });

  it('_total=accurate gives the total on every page of a paged search', async () => {
    const first = await search('Patient', [['_tag', tagParam(PAGED)], ['_count', '2'], ['_total', 'accurate']]);
    expect(ids(first)).toHaveLength(2);
    expect(first.total).toBe(11);
    const second = await follow(link(first, 'next')!);
    expect(second.body.total).toBe(11);
  });

  it('a tampered page token is refused with 400', async () => {
    const first = await search('Patient', [['_tag', tagParam(PAGED)], ['_count', '2']]);
    const next = new URL(link(first, 'next')!);
    const token = next.searchParams.get('_page')!;
    expect(token).toBeTruthy();
    const flipped = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    next.searchParams.set('_page', flipped);
    const res = await follow(next.toString());
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    // a genuine token reused with another query is refused too
    const other = await http(t.base, `Patient?${qs([['_tag', tagParam(DS)], ['_count', '2'], ['_page', token]])}`);
    expect(other.status).toBe(400);
  });
});

describe('result parameters', () => {
  it('_summary=count gives only the total', async () => {
    const bundle = await search('Patient', [['_tag', tagParam(DS)], ['_summary', 'count']]);
    expect(bundle.total).toBe(5);
    expect(matches(bundle)).toEqual([]);
  });

  it('_elements=name returns only name, id and meta, tagged SUBSETTED', async () => {
    const bundle = await search('Patient', [['_tag', tagParam(DS)], ['_elements', 'name']]);
    const resources = matches(bundle);
    expect(resources).toHaveLength(5);
    for (const r of resources) {
      expect(Object.keys(r).sort()).toEqual(['id', 'meta', 'name', 'resourceType']);
      expect(r.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED', system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue' })]));
    }
    const martin = resources.find((r) => r.id === p.martin.id);
    expect(martin.name).toEqual([{ family: 'Martin', given: ['Léa'] }]);
    // the stored resource is untouched
    const read: any = await t.client.read({ resourceType: 'Patient', id: p.martin.id });
    expect(read.birthDate).toBe('1990-05-17');
    expect(read.meta.tag.some((x: any) => x.code === 'SUBSETTED')).toBe(false);
  });

  it('ignores an unknown parameter with a warning outcome entry, or refuses it under Prefer: handling=strict', async () => {
    const lenient = await search('Patient', [['_tag', tagParam(DS)], ['gender', 'female'], ['shoe-size', '42']]);
    expect(sorted(ids(lenient))).toEqual(sorted(idsOf('martin', 'bernard')));
    const outcome = (lenient.entry ?? []).find((e: any) => e.search?.mode === 'outcome');
    expect(outcome).toBeDefined();
    expect(outcome.resource.resourceType).toBe('OperationOutcome');
    expect(outcome.resource.issue[0].severity).toBe('warning');
    expect(JSON.stringify(outcome.resource.issue)).toMatch(/shoe-size/);

    const strict = await http(t.base, `Patient?${qs([['_tag', tagParam(DS)], ['shoe-size', '42']])}`, { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(strict.body.issue)).toMatch(/shoe-size/);
  });

  it('the self link shows only the parameters used', async () => {
    const bundle = await search('Patient', [['family', 'martin'], ['shoe-size', '42'], ['_count', '3']]);
    const self = new URL(link(bundle, 'self')!);
    expect(`${self.origin}${self.pathname}`).toBe(`${t.base}/Patient`);
    expect([...self.searchParams.keys()].sort()).toEqual(['_count', 'family']);
    expect(self.searchParams.get('family')).toBe('martin');
    expect(self.searchParams.get('_count')).toBe('3');
    // the self link reproduces the search
    const again = await follow(self.toString());
    expect(ids(again.body)).toEqual(ids(bundle));
  });
});

describe('deleted and updated resources', () => {
  it('no search returns a deleted resource', async () => {
    const start = new Date().toISOString();
    const kept = await create({ resourceType: 'Patient', meta: { tag: [tag('deleted')] }, name: [{ family: 'Effacé' }], identifier: [{ system: 'urn:del', value: 'd1' }], birthDate: '1950-01-01' });
    const removed = await create({ resourceType: 'Patient', meta: { tag: [tag('deleted')] }, name: [{ family: 'Effacé' }], identifier: [{ system: 'urn:del', value: 'd1' }], birthDate: '1950-01-01' });
    const obsOfRemoved = await create({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${removed.id}` }, meta: { tag: [tag('deleted')] } });
    // what references the Patient goes first (docs/decisions/014-integrity.md)
    expect((await http(t.base, `Observation/${obsOfRemoved.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await http(t.base, `Patient/${removed.id}`, { method: 'DELETE' })).status).toBe(200);

    const queries: Pairs[] = [
      [['_tag', tagParam('deleted')]],
      [['family', 'effacé']],
      [['family:exact', 'Effacé']],
      [['identifier', 'urn:del|d1']],
      [['_id', `${kept.id},${removed.id}`]],
      [['birthdate', '1950']],
      [['_lastUpdated', `ge${start}`], ['_tag', tagParam('deleted')]],
      [['_tag', tagParam('deleted')], ['_sort', '-_lastUpdated'], ['_count', '1']],
    ];
    for (const q of queries) {
      const bundle = await search('Patient', q);
      expect(ids(bundle)).toEqual([kept.id]);
    }
    const counted = await search('Patient', [['_tag', tagParam('deleted')], ['_summary', 'count']]);
    expect(counted.total).toBe(1);
    const accurate = await search('Patient', [['_tag', tagParam('deleted')], ['_total', 'accurate'], ['_count', '1']]);
    expect(accurate.total).toBe(1);
    expect(link(accurate, 'next')).toBeUndefined();
    expect(ids(await search('Observation', [['subject', `Patient/${removed.id}`]]))).toEqual([]);
  });

  it('an updated resource is found by its current values only', async () => {
    const created = await create({ resourceType: 'Patient', meta: { tag: [tag('updated')] }, name: [{ family: 'Ancien' }], gender: 'male' });
    const updated = await http(t.base, `Patient/${created.id}`, {
      method: 'PUT',
      json: { resourceType: 'Patient', id: created.id, meta: { tag: [tag('updated')] }, name: [{ family: 'Nouveau' }], gender: 'female' },
    });
    expect(updated.status).toBe(200);
    expect(ids(await search('Patient', [['family', 'ancien']]))).toEqual([]);
    expect(ids(await search('Patient', [['_tag', tagParam('updated')], ['gender', 'male']]))).toEqual([]);
    expect(ids(await search('Patient', [['family', 'nouveau']]))).toEqual([created.id]);
    const found = matches(await search('Patient', [['_tag', tagParam('updated')]]));
    expect(found).toHaveLength(1);
    expect(found[0].meta.versionId).toBe('2');
  });
});
