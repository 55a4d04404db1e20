import type { Knex } from 'knex';
import { http, startTarget, Target } from '../../../conformance/harness';
import { DOCUMENT_CODES } from '../../../conformance/frenchFixtures';
import * as documentRelationship from './017_document_relationship';

/**
 * DocumentReference `relationship` ([relatesto]$[relation]) matches a document that relates
 * to another; migration 017 writes again the rows a document indexed with R4's crossed
 * components, after which it matches too.
 */
let t: Target;
let knex: Knex;
beforeAll(async () => {
  t = await startTarget();
  knex = t.running!.ctx.db.knex;
});
afterAll(() => t.close());

const post = async (resource: Record<string, unknown>) => {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`${String(resource.resourceType)}: ${res.status} ${res.text}`);
  return res.body;
};
const ids = async (query: string) => ((await http(t.base, `DocumentReference?${query}`)).body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id).sort();

describe('DocumentReference relationship', () => {
  it('matches [relatesto]$[relation]; after the migration, so do the rows written with the crossed components', async () => {
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Relation' }] });
    const document = (extra: Record<string, unknown>) => ({
      resourceType: 'DocumentReference',
      status: 'current',
      subject: { reference: `Patient/${patient.id}` },
      ...DOCUMENT_CODES,
      content: [{ attachment: { contentType: 'text/plain', url: 'https://elsewhere.example/document' } }],
      ...extra,
    });
    const old = await post(document({}));
    const other = await post(document({}));
    const replacing = await post(document({ relatesTo: [{ code: 'appends', target: { reference: `DocumentReference/${other.id}` } }, { code: 'replaces', target: { reference: `DocumentReference/${old.id}` } }] }));
    const query = `relationship=${encodeURIComponent(`DocumentReference/${old.id}$replaces`)}`;
    expect(await ids(query)).toEqual([replacing.id]);
    // each pair within its own relatesTo: the target of one with the code of the other is no match
    expect(await ids(`relationship=${encodeURIComponent(`DocumentReference/${old.id}$appends`)}`)).toEqual([]);
    expect(await ids(`relationship=${encodeURIComponent(`DocumentReference/${other.id}$appends`)}`)).toEqual([replacing.id]);

    // no row that matches, as R4's crossed components left it (a code where a reference goes, a reference where a token goes)
    await knex.raw(`DELETE FROM idx_reference WHERE resource_type = 'DocumentReference' AND resource_id = ? AND param LIKE 'relationship$%'`, [replacing.id]);
    await knex.raw(`DELETE FROM idx_token WHERE resource_type = 'DocumentReference' AND resource_id = ? AND param LIKE 'relationship$%'`, [replacing.id]);
    expect(await ids(query)).toEqual([]);
    await documentRelationship.up(knex);
    expect(await ids(query)).toEqual([replacing.id]);
    // run again, it leaves the same rows
    await documentRelationship.up(knex);
    expect(await ids(query)).toEqual([replacing.id]);
  });
});
