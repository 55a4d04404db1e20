import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';

/**
 * Page links (docs/decisions/002-paging.md): the token is opaque (the boundary's sort values,
 * a name or a birth date, cannot be read from a link), bound to its query, refused with 400
 * when altered in any way, and answered 410 once expired.
 */
let t: Target;
let patientId: string;
const TAG = `urn:test:page-tokens|${crypto.randomUUID()}`;
const FAMILY = 'Zyxwvutsrq';
const BIRTH = '1958-03-21';

beforeAll(async () => {
  t = await startTarget();
  const [system, code] = TAG.split('|');
  for (let i = 0; i < 4; i++) {
    const res = await http(t.base, 'Patient', {
      method: 'POST',
      json: { resourceType: 'Patient', meta: { tag: [{ system, code }] }, name: [{ family: `${FAMILY}${'abcd'[i]}`, given: ['Jeanne'] }], birthDate: BIRTH },
    });
    expect(res.status).toBe(201);
    patientId ??= res.body.id;
  }
  for (let i = 0; i < 3; i++) {
    const res = await http(t.base, 'Observation', {
      method: 'POST',
      json: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${patientId}` } },
    });
    expect(res.status).toBe(201);
  }
});
afterAll(() => t.close());

const link = (bundle: any, relation: string): string | undefined => bundle.link?.find((l: any) => l.relation === relation)?.url;
const pathOf = (url: string) => url.slice(t.base.length + 1);

/** The next link of the first page of `path` (which must have one). */
async function nextLink(path: string): Promise<URL> {
  const first = await http(t.base, path);
  expect(first.status).toBe(200);
  const next = link(first.body, 'next');
  expect(next).toBeDefined();
  return new URL(next!);
}

const withToken = (url: URL, token: string) => {
  const copy = new URL(url);
  copy.searchParams.set('_page', token);
  return pathOf(copy.toString());
};

describe('page tokens', () => {
  const sortedByName = `Patient?_tag=${encodeURIComponent(TAG)}&_sort=family,birthdate&_count=1`;

  it('do not show the sort values of the boundary row (a name, a birth date)', async () => {
    const next = await nextLink(sortedByName);
    const token = next.searchParams.get('_page')!;
    const decoded = Buffer.from(token, 'base64url').toString('latin1');
    for (const clear of [FAMILY, FAMILY.toLowerCase(), BIRTH, '1958']) {
      expect(next.toString()).not.toContain(clear);
      expect(decoded).not.toContain(clear);
    }
    const page = await http(t.base, pathOf(next.toString()));
    expect(page.status).toBe(200);
    expect(page.body.entry).toHaveLength(1);
  });

  it('refuse with 400 and an OperationOutcome, never 500, altered, truncated and garbage tokens', async () => {
    const next = await nextLink(sortedByName);
    const token = next.searchParams.get('_page')!;
    const bytes = Buffer.from(token, 'base64url');
    const flip = (at: number) => {
      const b = Buffer.from(bytes);
      b[at] ^= 0x20;
      return b.toString('base64url');
    };
    const bad = [
      flip(0),
      flip(5),
      flip(20),
      flip(bytes.length - 1),
      token.slice(0, -1),
      token.slice(0, 10),
      token + 'A',
      token + token,
      'x',
      'garbage',
      '~~~~',
      '../../etc/passwd',
      '%',
      'é',
      'A'.repeat(6000),
      crypto.randomBytes(64).toString('base64url'),
      // the former clear format: base64url JSON and an HMAC
      `${Buffer.from(JSON.stringify(['n', ['zzz', '1900-01-01', 'x']])).toString('base64url')}.${'A'.repeat(32)}`,
    ];
    for (const value of bad) {
      const res = await http(t.base, withToken(next, value));
      expect([value.slice(0, 30), res.status]).toEqual([value.slice(0, 30), 400]);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });

  it('refuse with 400 a genuine token used with another query', async () => {
    const next = await nextLink(sortedByName);
    const token = next.searchParams.get('_page')!;
    const other = new URL(next);
    other.searchParams.set('_sort', 'birthdate,family');
    const res = await http(t.base, withToken(other, token));
    expect(res.status).toBe(400);
  });

  it('are opaque and checked on history, compartment search and $everything too', async () => {
    for (const path of [`Patient/${patientId}/_history?_count=1`, `Patient/${patientId}/*?_count=1`, `Patient/${patientId}/$everything?_count=1`, 'Observation/_history?_count=1']) {
      await http(t.base, `Patient/${patientId}`, { method: 'PUT', json: { resourceType: 'Patient', id: patientId, name: [{ family: FAMILY }], birthDate: BIRTH } });
      const next = await nextLink(path);
      const token = next.searchParams.get('_page')!;
      expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain(patientId);
      expect((await http(t.base, pathOf(next.toString()))).status).toBe(200);
      for (const value of [token.slice(0, -2), 'garbage', crypto.randomBytes(48).toString('base64url')]) {
        const res = await http(t.base, withToken(next, value));
        expect([path, res.status]).toEqual([path, 400]);
      }
    }
  });
});

describe('page tokens with PAGE_TOKEN_TTL=1', () => {
  let short: Target;
  beforeAll(async () => {
    short = await startTarget({ PAGE_TOKEN_TTL: '1' });
    for (let i = 0; i < 3; i++) await http(short.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: `Expiring${i}` }] } });
  });
  afterAll(() => short.close());

  it('expire: a link followed after its lifetime is answered 410 saying so', async () => {
    const first = await http(short.base, 'Patient?_count=1');
    const next = link(first.body, 'next')!;
    await new Promise((r) => setTimeout(r, 2100));
    const res = await http(short.base, next.slice(short.base.length + 1));
    expect(res.status).toBe(410);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('expired');
    expect(res.body.issue[0].diagnostics).toMatch(/expired/);
    // the search itself still works: a new first page gives fresh links (followed at once; a busy host may take
    // the whole second between the two requests, so a few tries)
    const statuses: number[] = [];
    for (let i = 0; i < 5 && !statuses.includes(200); i++) {
      const again = await http(short.base, 'Patient?_count=1');
      statuses.push((await http(short.base, link(again.body, 'next')!.slice(short.base.length + 1))).status);
    }
    expect(statuses).toContain(200);
  });
});
