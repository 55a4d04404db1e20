import crypto from 'node:crypto';
import fs from 'node:fs';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { http, startTarget, Target } from '../harness';
import { as, consent, document as documentOf, G15, ircp, Json, ref, REPORT, PSYCH, LOINC, A03, PATIENT_DOC, requests } from '../accessFixtures';

/**
 * The secure messaging (docs/decisions/016-messaging.md), over HTTP with the tokens of
 * each actor: who opens, answers and closes a conversation, who sees it on every read
 * path, attachments, filing into the record, the read receipt, the patient's copy.
 * Set-up of the directory by the unrestricted test client; everything asserted as actors.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget({ MESSAGE_ATTACHMENT_MAX_BYTES: '2k' });
});
afterAll(() => t.close());

const { create, get, send, mint } = requests(() => t);
const RUN = crypto.randomBytes(3).toString('hex');
const DEVICE_TYPE = 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type';
const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  const practitioner = (family: string) => create({ resourceType: 'Practitioner', name: [{ family: `${family}-${RUN}` }] });
  const role = (p: Json, profession: string, org?: Json) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...(org ? { organization: { reference: ref(org) } } : {}) });
  x.doc = await practitioner('Medecin');
  x.docRole = await role(x.doc, '10');
  x.other = await practitioner('Autre');
  await role(x.other, '10');
  x.nurse = await practitioner('Infirmiere');
  await role(x.nurse, '60');
  x.colleague = await practitioner('Collegue');
  await role(x.colleague, '10', x.org);
  x.noRole = await practitioner('SansRole');
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPE, code: 'integration-engine' }] } });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  // the adult patient's guardian (a representation that began after the patient's majority, decision 017)
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.p1) }, period: { start: '2020-01-01' } });

  tok.doc = await mint(ref(x.doc));
  tok.other = await mint(ref(x.other));
  tok.nurse = await mint(ref(x.nurse));
  tok.colleague = await mint(ref(x.colleague));
  tok.noRole = await mint(ref(x.noRole));
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  // every professional has the patient's declared consent: what hides a conversation from them is not taking part in it
  for (const who of ['doc', 'other', 'nurse', 'colleague', 'noRole']) await create(consent(x.p1, ref(x[who]), { type: 'permit', actor: [ircp(ref(x[who]))] }), tok[who]);
  await create(consent(x.p2, ref(x.doc), { type: 'permit', actor: [ircp(ref(x.doc))] }), tok.doc);
});

const post = (path: string, token: string, json: unknown) => send('POST', path, token, json);
const entries = (res: { body: Json }): Json[] => (res.body.entry ?? []).map((e: Json) => e.resource);
const ids = (res: { body: Json }) => entries(res).map((r) => `${r.resourceType}/${r.id}`);
const outcomeOf = (res: { status: number; body: Json }) => {
  expect(res.body.resourceType).toBe('OperationOutcome');
  return res.body.issue.map((i: Json) => i.diagnostics).join(' ');
};

/** A message of p (default p1): an opening (no thread) or a reply in `thread`. */
function message(from: string, to: string[], thread?: Json, extra: Json = {}, patient: Json = x.p1): Json {
  return {
    resourceType: 'Communication',
    status: thread ? 'completed' : 'in-progress',
    subject: { reference: ref(patient) },
    sender: { reference: from },
    recipient: to.map((reference) => ({ reference })),
    sent: new Date().toISOString(),
    ...(thread ? { partOf: [{ reference: ref(thread) }], inResponseTo: [{ reference: ref(thread) }] } : {}),
    payload: [{ contentString: `message ${RUN}` }],
    ...extra,
  };
}

const binary = (patient: Json, bytes: number, token: string) =>
  create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(patient) }, data: Buffer.alloc(bytes, 'a').toString('base64') }, token);

describe('who opens and answers a conversation', () => {
  beforeAll(async () => {
    x.thread = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
  });

  it('a practitioner in a role opens one with the patient; a notice of kind new-message goes to the patient', async () => {
    expect(x.thread.status).toBe('in-progress');
    const notices = entries(await get(`Communication?recipient=${ref(x.p1)}&category=notification&_count=200`, tok.p1));
    const notice = notices.find((n) => (n.about ?? []).some((a: Json) => a.reference === ref(x.thread)));
    expect(notice).toBeDefined();
    expect(notice!.category[1].coding[0].code).toBe('new-message');
    expect(notice!.payload[0].contentString).toContain('Medecin');
  });

  it('the patient, their representative, a practitioner without a role and an administrator open none (403 + OperationOutcome)', async () => {
    for (const [token, sender] of [
      [tok.p1, ref(x.p1)],
      [tok.parent, ref(x.parent)],
      [tok.noRole, ref(x.noRole)],
      [tok.admin, ref(x.doc)],
    ]) {
      const res = await post('Communication', token, message(sender, [token === tok.noRole ? ref(x.p1) : ref(x.doc)]));
      expect(res.status).toBe(403);
      outcomeOf(res);
    }
  });

  it('a message is sent in the caller’s own name: another sender is 403', async () => {
    const res = await post('Communication', tok.other, message(ref(x.doc), [ref(x.p1)]));
    expect(res.status).toBe(403);
    expect(outcomeOf(res)).toMatch(/sender/);
  });

  it('the patient answers inside the conversation to its participants; to anyone else, or outside one, 403', async () => {
    const reply = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], x.thread));
    expect(reply.status).toBe(201);
    x.reply = reply.body;
    // to a professional who is not in the conversation
    const stranger = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.other)], x.thread));
    expect(stranger.status).toBe(403);
    expect(outcomeOf(stranger)).toMatch(/other participants/);
    // a thread that does not exist, and a reply that is not an opening
    for (const partOf of [{ resourceType: 'Communication', id: 'no-such-thread' }, x.reply]) {
      const res = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], partOf, { inResponseTo: undefined }));
      expect(res.status).toBe(403);
      outcomeOf(res);
    }
    // the representative answers for the patient
    expect((await post('Communication', tok.parent, message(ref(x.parent), [ref(x.doc)], x.thread))).status).toBe(201);
  });

  it('a professional outside the conversation does not post in it (403)', async () => {
    const res = await post('Communication', tok.other, message(ref(x.other), [ref(x.p1)], x.thread));
    expect(res.status).toBe(403);
  });

  it('the patient of another record answers nothing in it (403), and the thread is not theirs to see', async () => {
    const res = await post('Communication', tok.p2, message(ref(x.p2), [ref(x.doc)], x.thread, {}, x.p2));
    expect(res.status).toBe(403);
    expect((await get(`Communication/${x.thread.id}`, tok.p2)).status).toBe(404);
  });

  it('a message is sent once: update and delete are refused to every actor (403)', async () => {
    const changed = { ...x.thread, payload: [{ contentString: 'changed' }] };
    for (const token of [tok.doc, tok.p1]) {
      expect((await send('PUT', `Communication/${x.thread.id}`, token, changed)).status).toBe(403);
      expect((await send('DELETE', `Communication/${x.reply.id}`, token)).status).toBe(403);
    }
  });
});

describe('each side sees only its conversations, on every read path', () => {
  beforeAll(async () => {
    x.t2 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    x.att = await binary(x.p1, 100, tok.p1);
    x.t2reply = await create(message(ref(x.p1), [ref(x.doc)], x.t2, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(x.att), title: 'analyse.txt' } }] }), tok.p1);
  });

  const hidden = () => [ref(x.t2), ref(x.t2reply), ref(x.att)];
  const paths = () => [
    ['read by id', `Communication/${x.t2.id}`],
    ['search by patient', `Communication?patient=${x.p1.id}&_count=500`],
    ['search by _id', `Communication?_id=${x.t2.id},${x.t2reply.id}`],
    ['search by thread', `Communication?thread=${x.t2.id}`],
    ['_revinclude from the patient', `Patient?_id=${x.p1.id}&_revinclude=Communication:subject`],
    ['_include of partOf from a visible message', `Communication?_id=${x.t2reply.id}&_include=Communication:part-of`],
    ['_has', `Patient?_has:Communication:subject:_id=${x.t2.id}`],
    ['compartment search', `Patient/${x.p1.id}/Communication?_count=500`],
    ['type history', `Communication/_history?_count=500`],
    ['instance history', `Communication/${x.t2.id}/_history`],
    ['$everything', `Patient/${x.p1.id}/$everything?_count=1000`],
    ['Binary read', `Binary/${x.att.id}`],
    ['Binary search', `Binary?_id=${x.att.id}`],
  ];

  it('a participant sees them', async () => {
    expect((await get(`Communication/${x.t2.id}`, tok.doc)).status).toBe(200);
    expect((await get(`Binary/${x.att.id}`, tok.doc)).status).toBe(200);
    expect(ids(await get(`Communication?thread=${x.t2.id}`, tok.doc)).sort()).toEqual([ref(x.t2), ref(x.t2reply)].sort());
  });

  it('a professional with access to the record but outside the conversation finds it nowhere', async () => {
    for (const [name, path] of paths()) {
      const res = await get(path, tok.other);
      if (res.status === 404 && /^(Communication|Binary)\/[^?]+$/.test(path)) continue;
      expect([name, res.status]).toEqual([name, 200]);
      const found = ids(res);
      for (const h of hidden()) expect([name, found.includes(h)]).toEqual([name, false]);
    }
    // and counts do not count them
    const mine = await get(`Communication?patient=${x.p1.id}&_summary=count`, tok.doc);
    const theirs = await get(`Communication?patient=${x.p1.id}&_summary=count`, tok.other);
    expect(theirs.body.total).toBeLessThan(mine.body.total);
    expect((await get(`Communication?_id=${x.t2.id}&_summary=count`, tok.other)).body.total).toBe(0);
  });

  it('a batch entry reads no hidden message, and a transaction entry posts none outside the rules (the whole transaction refused)', async () => {
    const batch = await post('', tok.other, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Communication/${x.t2.id}` } }, { request: { method: 'GET', url: `Communication?thread=${x.t2.id}` } }] });
    expect(batch.status).toBe(200);
    expect(batch.body.entry[0].response.status).toMatch(/^404/);
    expect(batch.body.entry[1].resource.entry ?? []).toEqual([]);
    const before = (await get(`Communication?patient=${x.p1.id}&_summary=count`, tok.p1)).body.total;
    const transaction = await post('', tok.p1, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0b1e4f8a-3c2d-4e5f-8a9b-0c1d2e3f4a5b', resource: message(ref(x.p1), [ref(x.doc)], x.t2), request: { method: 'POST', url: 'Communication' } },
        { resource: message(ref(x.p1), [ref(x.other)], x.t2), request: { method: 'POST', url: 'Communication' } },
      ],
    });
    expect(transaction.status).toBe(403);
    expect((await get(`Communication?patient=${x.p1.id}&_summary=count`, tok.p1)).body.total).toBe(before);
  });

  it('a system of another organisation, and the administrator, read no message', async () => {
    expect((await get(`Communication/${x.t2.id}`, tok.engine)).status).toBe(404);
    expect(ids(await get(`Communication?_count=500`, tok.engine))).not.toContain(ref(x.t2));
    expect((await get(`Communication?_count=5`, tok.admin)).status).toBe(403);
  });
});

describe('the read receipt', () => {
  it('the recipient’s first read sets received (a new version); the sender’s read and later reads do not', async () => {
    const m = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    expect((await get(`Communication/${m.id}`, tok.doc)).body.received).toBeUndefined();
    const head = await http(t.base, `Communication/${m.id}`, { method: 'HEAD', headers: as(tok.p1) });
    expect(head.status).toBe(200);
    expect((await get(`Communication/${m.id}`, tok.doc)).body.meta.versionId).toBe('1');
    const first = await get(`Communication/${m.id}`, tok.p1);
    expect(first.status).toBe(200);
    expect(first.body.received).toBeDefined();
    expect(first.body.meta.versionId).toBe('2');
    const again = await get(`Communication/${m.id}`, tok.p1);
    expect(again.body.meta.versionId).toBe('2');
    expect(again.body.received).toBe(first.body.received);
    // the sender sees it read
    expect((await get(`Communication/${m.id}`, tok.doc)).body.received).toBe(first.body.received);
    expect((await get(`Communication?received=ge2000-01-01&_id=${m.id}`, tok.doc)).body.entry).toHaveLength(1);
  });
});

describe('closing a conversation', () => {
  beforeAll(async () => {
    x.t3 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
  });

  it('the patient does not close it (403); a professional outside it does not see it (404)', async () => {
    const res = await post(`Communication/${x.t3.id}/$close`, tok.p1, undefined);
    expect(res.status).toBe(403);
    outcomeOf(res);
    expect((await post(`Communication/${x.t3.id}/$close`, tok.other, undefined)).status).toBe(404);
  });

  it('the professional closes it: the opening becomes completed, and nobody posts in it any more (409 + OperationOutcome)', async () => {
    const closed = await post(`Communication/${x.t3.id}/$close`, tok.doc, undefined);
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe('completed');
    for (const [token, from, to] of [
      [tok.p1, ref(x.p1), ref(x.doc)],
      [tok.doc, ref(x.doc), ref(x.p1)],
    ]) {
      const res = await post('Communication', token, message(from, [to], x.t3));
      expect(res.status).toBe(409);
      expect(outcomeOf(res)).toMatch(/closed/);
    }
    expect((await post(`Communication/${x.t3.id}/$close`, tok.doc, undefined)).status).toBe(409);
    // open conversations are found by status
    const open = ids(await get(`Communication?patient=${x.p1.id}&status=in-progress&_count=500`, tok.doc));
    expect(open).not.toContain(ref(x.t3));
    expect(open).toContain(ref(x.thread));
  });

  it("the organisation closes a conversation its system opened; the organisation's practitioners take part in it", async () => {
    const opened = await post('Communication', tok.engine, message(ref(x.engine), [ref(x.p1)]));
    expect(opened.status).toBe(201);
    // the system reads its conversation, and nothing else of the record
    expect((await get(`Communication/${opened.body.id}`, tok.engine)).status).toBe(200);
    expect(ids(await get(`Communication?patient=${x.p1.id}&_count=500`, tok.engine))).toEqual([ref(opened.body)]);
    // a practitioner of the organisation sees it and closes it
    expect((await get(`Communication/${opened.body.id}`, tok.colleague)).status).toBe(200);
    expect((await post(`Communication/${opened.body.id}/$close`, tok.colleague, undefined)).status).toBe(200);
  });
});

describe('attachments', () => {
  it('an attachment is not rewritten nor deleted, by its sender or a participant (403)', async () => {
    for (const token of [tok.doc, tok.p1]) {
      expect((await send('PUT', `Binary/${x.att.id}`, token, { resourceType: 'Binary', id: x.att.id, contentType: 'text/plain', securityContext: { reference: ref(x.p1) }, data: 'Yg==' })).status).toBe(403);
      expect((await send('DELETE', `Binary/${x.att.id}`, token)).status).toBe(403);
    }
    expect(Buffer.from((await get(`Binary/${x.att.id}`, tok.doc)).body.data, 'base64').toString()).toBe('a'.repeat(100));
  });

  it('an attachment is a Binary of the record within the size limit, content of nothing else; inline data is refused', async () => {
    const t4 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    const big = await binary(x.p1, 4096, tok.p1);
    const withAttachment = (b: Json) => message(ref(x.p1), [ref(x.doc)], t4, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] });
    const tooBig = await post('Communication', tok.p1, withAttachment(big));
    expect(tooBig.status).toBe(422);
    expect(outcomeOf(tooBig)).toMatch(/limit/);
    const inline = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], t4, { payload: [{ contentAttachment: { contentType: 'text/plain', data: 'dGVzdA==' } }] }));
    expect(inline.status).toBe(422);
    // another record's Binary
    const elsewhere = await binary(x.p2, 10, tok.p2);
    expect((await post('Communication', tok.p1, withAttachment(elsewhere))).status).toBe(422);
    // the attachment of another conversation
    expect((await post('Communication', tok.p1, withAttachment(x.att))).status).toBe(422);
  });
  it("a document's content is no attachment, however its document names it: relative, absolute, version-specific (decision 016, amendment)", async () => {
    const t5 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    const withAttachment = (b: Json) => message(ref(x.p1), [ref(x.doc)], t5, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] });
    const forms = [(b: Json) => ref(b), (b: Json) => `${t.base}/${ref(b)}`, (b: Json) => `${ref(b)}/_history/1`, (b: Json) => `${t.base}/${ref(b)}/_history/1`];
    for (const form of forms) {
      const content = await binary(x.p1, 10, tok.p1);
      const doc = await create({ ...documentOf(x.p1, PATIENT_DOC, ref(x.p1)), content: [{ attachment: { contentType: 'text/plain', url: form(content) } }] }, tok.p1);
      const res = await post('Communication', tok.p1, withAttachment(content));
      expect([form(content), res.status]).toEqual([form(content), 422]);
      // the document's readers still read it
      expect((await get(`Binary/${content.id}`, tok.p1)).status).toBe(200);
      expect((await get(ref(doc), tok.p1)).status).toBe(200);
    }
  });
});

describe('filing an attachment into the record', () => {
  const fileParams = (type: { system?: string; code: string; cls: string }) => ({
    resourceType: 'Parameters',
    parameter: [
      { name: 'attachment', valueInteger: 0 },
      { name: 'type', valueCoding: { system: type.system ?? LOINC, code: type.code } },
      { name: 'category', valueCoding: { system: A03, code: type.cls } },
    ],
  });

  it('the professional files it: a DocumentReference they author, with its own copy of the bytes, and the patient is notified', async () => {
    const filed = await post(`Communication/${x.t2reply.id}/$file-to-record`, tok.doc, fileParams(REPORT));
    expect(filed.status).toBe(201);
    expect(filed.body.resourceType).toBe('DocumentReference');
    expect(filed.body.author).toEqual([{ reference: ref(x.doc) }]);
    const url = filed.body.content[0].attachment.url;
    expect(url).not.toBe(ref(x.att));
    const copy = await get(url, tok.doc);
    expect(copy.status).toBe(200);
    expect(Buffer.from(copy.body.data, 'base64').toString()).toBe('a'.repeat(100));
    // now a document: the other professional reads it under the document rules (the matrix lets a physician read a report)
    expect((await get(`DocumentReference/${filed.body.id}`, tok.other)).status).toBe(200);
    expect((await get(url, tok.other)).status).toBe(200);
    // while the message's own Binary stays the conversation's
    expect((await get(`Binary/${x.att.id}`, tok.other)).status).toBe(404);
    const notices = entries(await get(`Communication?recipient=${ref(x.p1)}&category=notification&_count=500`, tok.p1));
    expect(notices.some((n) => (n.about ?? []).some((a: Json) => a.reference === ref(filed.body)))).toBe(true);
  });

  it('the habilitation matrix applies: a nurse in the conversation may not file a psychiatric summary (403)', async () => {
    const t5 = await create(message(ref(x.nurse), [ref(x.p1)]), tok.nurse);
    const b = await binary(x.p1, 10, tok.p1);
    const reply = await create(message(ref(x.p1), [ref(x.nurse)], t5, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] }), tok.p1);
    const binaries = async () => (await get(`Binary?_summary=count`, tok.p1)).body.total;
    const before = await binaries();
    const res = await post(`Communication/${reply.id}/$file-to-record`, tok.nurse, fileParams(PSYCH));
    expect(res.status).toBe(403);
    outcomeOf(res);
    // nothing half-written: the copy of the bytes went with the refused document
    expect(await binaries()).toBe(before);
    expect((await post(`Communication/${reply.id}/$file-to-record`, tok.nurse, fileParams(REPORT))).status).toBe(201);
  });

  it('the patient saves a received attachment to their own documents', async () => {
    const b = await binary(x.p1, 20, tok.doc);
    const m = await create(message(ref(x.doc), [ref(x.p1)], x.thread, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] }), tok.doc);
    // saved as one of the patient-authored types (class 90)
    const saved = await post(`Communication/${m.id}/$file-to-record`, tok.p1, fileParams(PATIENT_DOC));
    expect(saved.status).toBe(201);
    expect(saved.body.author).toEqual([{ reference: ref(x.p1) }]);
    // theirs: they may delete it
    expect((await send('DELETE', `DocumentReference/${saved.body.id}`, tok.p1)).status).toBe(200);
  });

  it('a caller outside the conversation files nothing (404)', async () => {
    expect((await post(`Communication/${x.t2reply.id}/$file-to-record`, tok.other, fileParams(REPORT))).status).toBe(404);
  });
});

describe("the patient's copy", () => {
  it('the patient deletes their copy: gone from every path of theirs, the professional keeps the conversation, and the patient answers no more in it', async () => {
    const t6 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    const b = await binary(x.p1, 10, tok.p1);
    const reply = await create(message(ref(x.p1), [ref(x.doc)], t6, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] }), tok.p1);
    expect((await post(`Communication/${t6.id}/$delete-copy`, tok.doc, undefined)).status).toBe(403);
    const deleted = await post(`Communication/${reply.id}/$delete-copy`, tok.p1, undefined);
    expect(deleted.status).toBe(200);
    for (const token of [tok.p1, tok.parent]) {
      expect((await get(`Communication/${t6.id}`, token)).status).toBe(404);
      expect((await get(`Binary/${b.id}`, token)).status).toBe(404);
      const everything = ids(await get(`Patient/${x.p1.id}/$everything?_count=1000`, token));
      const search = ids(await get(`Communication?patient=${x.p1.id}&_count=500`, token));
      const history = ids(await get(`Communication/_history?_count=500`, token));
      const threads = ids(await get(`Communication?thread=${t6.id}`, token));
      expect(everything).toContain(ref(x.p1));
      for (const found of [everything, search, history, threads]) for (const r of [ref(t6), ref(reply), ref(b)]) expect(found).not.toContain(r);
    }
    expect((await get(`Communication/${reply.id}`, tok.doc)).status).toBe(200);
    expect((await get(`Binary/${b.id}`, tok.doc)).status).toBe(200);
    expect((await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], t6))).status).toBe(403);
  });
});

describe("the patient's own messages", () => {
  const oneMessage = { resourceType: 'Parameters', parameter: [{ name: 'scope', valueCode: 'message' }] };
  it('the patient deletes a message they sent from their side; the conversation and the professional’s copy stay', async () => {
    const t8 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    const b = await binary(x.p1, 10, tok.p1);
    const mine = await create(message(ref(x.p1), [ref(x.doc)], t8, { payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(b) } }] }), tok.p1);
    // not the professional's message, and not a scope the operation knows
    expect((await post(`Communication/${t8.id}/$delete-copy`, tok.p1, oneMessage)).status).toBe(403);
    expect((await post(`Communication/${mine.id}/$delete-copy`, tok.p1, { resourceType: 'Parameters', parameter: [{ name: 'scope', valueCode: 'everything' }] })).status).toBe(400);
    expect((await post(`Communication/${mine.id}/$delete-copy`, tok.p1, oneMessage)).status).toBe(200);
    for (const token of [tok.p1, tok.parent]) {
      expect((await get(`Communication/${mine.id}`, token)).status).toBe(404);
      expect((await get(`Binary/${b.id}`, token)).status).toBe(404);
      expect(ids(await get(`Communication?thread=${t8.id}`, token))).toEqual([ref(t8)]);
      expect(ids(await get(`Patient/${x.p1.id}/$everything?_count=1000`, token))).not.toContain(ref(mine));
    }
    expect(ids(await get(`Communication?thread=${t8.id}`, tok.doc)).sort()).toEqual([ref(t8), ref(mine)].sort());
    expect((await get(`Binary/${b.id}`, tok.doc)).status).toBe(200);
    // the conversation goes on
    expect((await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], t8))).status).toBe(201);
  });

  it('reads the scope from the URL too, and refuses a parameter it does not define (never falls back to the whole conversation)', async () => {
    const t9 = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    const mine = await create(message(ref(x.p1), [ref(x.doc)], t9), tok.p1);
    const unknown = await post(`Communication/${mine.id}/$delete-copy?scop=message`, tok.p1, undefined);
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].diagnostics).toMatch(/no parameter "scop"/);
    expect((await post(`Communication/${t9.id}/$close?reason=done`, tok.doc, undefined)).status).toBe(400);
    expect((await post(`Communication/${mine.id}/$delete-copy?scope=message`, tok.p1, undefined)).status).toBe(200);
    expect((await get(`Communication/${mine.id}`, tok.p1)).status).toBe(404);
    // only that message: the conversation stays on the patient's side
    expect((await get(`Communication/${t9.id}`, tok.p1)).status).toBe(200);
  });
});

describe('search', () => {
  it('by patient, sender, recipient, sent, part-of, status and thread', async () => {
    const t7 = await create(message(ref(x.doc), [ref(x.p1)], undefined, { sent: '2026-01-02T10:00:00Z' }), tok.doc);
    const r7 = await create(message(ref(x.p1), [ref(x.doc)], t7, { sent: '2026-01-03T10:00:00Z' }), tok.p1);
    const q = async (query: string) => ids(await get(`Communication?${query}&_count=500`, tok.doc));
    expect(await q(`patient=${x.p1.id}`)).toEqual(expect.arrayContaining([ref(t7), ref(r7)]));
    expect(await q(`sender=${ref(x.p1)}`)).toContain(ref(r7));
    expect(await q(`sender=${ref(x.p1)}`)).not.toContain(ref(t7));
    expect(await q(`recipient=${ref(x.doc)}&_id=${r7.id}`)).toEqual([ref(r7)]);
    expect(await q(`sent=2026-01-02&patient=${x.p1.id}`)).toEqual([ref(t7)]);
    expect(await q(`part-of=${ref(t7)}`)).toEqual([ref(r7)]);
    expect(await q(`thread=${t7.id}`)).toEqual(expect.arrayContaining([ref(t7), ref(r7)]));
    expect(await q(`thread=${ref(t7)}`)).toHaveLength(2);
    expect(await q(`status=completed&thread=${t7.id}`)).toEqual([ref(r7)]);
  });
});

describe("the professionals' notifications", () => {
  /** Each professional's endpoint: what their Subscription was sent. */
  const received: Record<string, string[]> = { doc: [], other: [] };
  const receiver = nodeHttp.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received[(req.url ?? '').slice(1)]?.push(body);
      res.writeHead(200).end();
    });
  });
  beforeAll(() => new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r)));
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  });

  it("a professional's Subscription is sent the messages to them; a colleague's on the record is not sent a conversation they are not in", async () => {
    const endpoint = (who: string) => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/${who}`;
    const subscribe = (who: string, criteria: string) =>
      create({ resourceType: 'Subscription', status: 'requested', reason: 'messages', criteria, channel: { type: 'rest-hook', endpoint: endpoint(who), payload: 'application/fhir+json' } }, tok[who]);
    const subs = [[await subscribe('doc', `Communication?recipient=${ref(x.doc)}`), 'doc'], [await subscribe('other', `Communication?patient=${x.p1.id}`), 'other']] as const;
    for (const [sub, who] of subs) {
      for (const end = Date.now() + 10000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
        if ((await get(`Subscription/${sub.id}`, tok[who])).body.status === 'active') break;
      }
    }
    const answer = await create(message(ref(x.p1), [ref(x.doc)], x.thread, { payload: [{ contentString: `notify ${RUN}` }] }), tok.p1);
    for (const end = Date.now() + 10000; Date.now() < end && !received.doc.some((b) => b.includes(answer.id)); ) await new Promise((r) => setTimeout(r, 50));
    // a visible change of the same record reaches the colleague after it: the dispatcher has passed the message by then
    const own = await create(message(ref(x.other), [ref(x.p1)]), tok.other);
    for (const end = Date.now() + 10000; Date.now() < end && !received.other.some((b) => b.includes(own.id)); ) await new Promise((r) => setTimeout(r, 50));
    expect(received.doc.some((b) => b.includes(answer.id))).toBe(true);
    expect(received.other.some((b) => b.includes(own.id))).toBe(true);
    expect(received.other.filter((b) => b.includes(answer.id))).toEqual([]);
  });
});

describe('the audit trail', () => {
  it('posting, reading, closing and refusals are audited in the record, as every access is', async () => {
    const m = await create(message(ref(x.doc), [ref(x.p1)]), tok.doc);
    await get(`Communication/${m.id}`, tok.p1);
    await post(`Communication/${m.id}/$close`, tok.doc, undefined);
    const refused = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)], m));
    expect(refused.status).toBe(409);
    const outsider = await post('Communication', tok.p1, message(ref(x.p1), [ref(x.doc)]));
    expect(outsider.status).toBe(403);
    const trail = entries(await get(`AuditEvent?patient=${ref(x.p1)}&_count=1000`, tok.p1));
    const naming = (version: string) => trail.filter((e) => (e.entity ?? []).some((en: Json) => en.what?.reference === `Communication/${m.id}/_history/${version}`));
    expect(naming('1').some((e) => e.agent.some((a: Json) => a.who?.reference === ref(x.doc)))).toBe(true);
    // the read receipt is written with the patient's read, the closing with the professional's operation
    expect(naming('2').some((e) => e.agent.some((a: Json) => a.who?.reference === ref(x.p1)))).toBe(true);
    expect(naming('3').some((e) => e.agent.some((a: Json) => a.who?.reference === ref(x.doc)))).toBe(true);
    const refusals = trail.filter((e) => e.outcome === '4' && e.agent.some((a: Json) => a.who?.reference === ref(x.p1)));
    expect(refusals.some((e) => /start a conversation/.test(e.outcomeDesc ?? ''))).toBe(true);
  });
});

describe('the CapabilityStatement', () => {
  it('lists the operations with their OperationDefinitions (valid R4) and the thread parameter', async () => {
    const cs = await http(t.base, 'metadata');
    const communication = cs.body.rest[0].resource.find((r: Json) => r.type === 'Communication');
    const operations = communication.operation.map((o: Json) => `${o.name} ${o.definition}`);
    for (const name of ['close', 'delete-copy', 'file-to-record']) {
      expect(operations).toContain(`${name} https://fhir.dmp.esante.example/OperationDefinition/Communication-${name}`);
      const definition = JSON.parse(fs.readFileSync(path.join(__dirname, '../../profiles/OperationDefinition', `Communication-${name}.json`), 'utf8'));
      expect(definition.code).toBe(name);
      const verdict = await http(t.base, 'OperationDefinition/$validate', { method: 'POST', json: definition });
      expect(verdict.body.issue.filter((i: Json) => i.severity === 'error')).toEqual([]);
    }
    expect(communication.searchParam.find((p: Json) => p.name === 'thread')).toMatchObject({ type: 'reference', definition: 'https://fhir.dmp.esante.example/SearchParameter/Communication-thread' });
  });
});
