import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { nirKey } from '../../src/validation/domain';
import { freshNir, withIns } from '../frenchFixtures';
import { http, startTarget, Target } from '../harness';
import { A03, A07, consent, document, G15, ircp, Json, LOINC, PATIENT_DOC, pdsmProvideBundle, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * IHE MHD document submissions (docs/decisions/015-document-submissions.md): ITI-65
 * Provide Document Bundle and ITI-105 Simplified Publish, with real actors' tokens. The
 * directory and the records are set up by the unrestricted test client.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
const sha1 = (bytes: Buffer) => crypto.createHash('sha1').update(bytes).digest('base64');
let serial = 0;
const uniqueId = () => `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.${++serial}`;

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  const practitioner = async (name: string, rpps: string) => {
    const p = await create({ resourceType: 'Practitioner', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: rpps }], name: [{ family: `${name}-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    return p;
  };
  x.gp = await practitioner('Generaliste', '810000000011');
  x.stranger = await practitioner('Etranger', '810000000012');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Depot-${RUN}` }], birthDate: '1970-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }], birthDate: '1980-01-01' });
  // the GP is declared by both patients; the stranger by none
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  await create(consent(x.p2, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
});

interface DocumentSpec {
  bytes: Buffer;
  size?: unknown;
  hash?: unknown;
  masterIdentifier?: string;
}

function docReference(patient: Json, spec: DocumentSpec, binaryUrl?: string): Json {
  return {
    resourceType: 'DocumentReference',
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: spec.masterIdentifier ?? uniqueId() },
    status: 'current',
    type: { coding: [{ system: LOINC, code: REPORT.code }] },
    category: [{ coding: [{ system: A03, code: REPORT.cls }] }],
    subject: { reference: ref(patient) },
    author: [{ reference: ref(x.gp) }],
    content: [
      {
        attachment: {
          contentType: 'text/plain',
          ...(binaryUrl ? { url: binaryUrl } : { data: spec.bytes.toString('base64') }),
          ...(spec.size !== undefined ? { size: spec.size } : {}),
          ...(spec.hash !== undefined ? { hash: spec.hash } : {}),
        },
      },
    ],
  };
}

/** An ITI-65 Bundle: SubmissionSet, then each document followed by its Binary. */
function provideBundle(patient: Json, docs: DocumentSpec[], options: { submissionSet?: boolean; submissionSetId?: string } = {}): Json {
  const n = crypto.randomUUID();
  const docUrl = (i: number) => `urn:uuid:${crypto.randomUUID().slice(0, 24)}${String(i).padStart(12, '0')}`;
  const urls = docs.map((_, i) => ({ doc: docUrl(2 * i), binary: docUrl(2 * i + 1) }));
  const entries: Json[] = [];
  if (options.submissionSet !== false) {
    entries.push({
      fullUrl: `urn:uuid:${n}`,
      resource: {
        resourceType: 'List',
        identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: options.submissionSetId ?? uniqueId() }],
        status: 'current',
        mode: 'working',
        code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] },
        subject: { reference: ref(patient) },
        date: new Date().toISOString(),
        entry: urls.map((u) => ({ item: { reference: u.doc } })),
      },
      request: { method: 'POST', url: 'List' },
    });
  }
  docs.forEach((spec, i) => {
    entries.push({ fullUrl: urls[i].doc, resource: docReference(patient, spec, urls[i].binary), request: { method: 'POST', url: 'DocumentReference' } });
    entries.push({ fullUrl: urls[i].binary, resource: { resourceType: 'Binary', contentType: 'text/plain', data: spec.bytes.toString('base64') }, request: { method: 'POST', url: 'Binary' } });
  });
  return {
    resourceType: 'Bundle',
    meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] },
    type: 'transaction',
    entry: entries,
  };
}

const idOf = (location: string) => /^[A-Za-z]+\/([^/]+)/.exec(location)![1];
const countByIdentifier = async (type: string, value: string) => (await get(`${type}?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${value}`)}&_summary=count`)).body.total;

describe('ITI-65 Provide Document Bundle', () => {
  it('stores the submission: one response entry per request entry in order, size and hash computed, the Binary in the record', async () => {
    const bytes = Buffer.from(`compte rendu ${RUN}`);
    const bundle = provideBundle(x.p1, [{ bytes }]);
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry.map((e: Json) => [e.response.status, e.response.location.split('/')[0]])).toEqual([
      ['201 Created', 'List'],
      ['201 Created', 'DocumentReference'],
      ['201 Created', 'Binary'],
    ]);
    const binaryId = idOf(res.body.entry[2].response.location);
    const doc = (await get(`DocumentReference/${idOf(res.body.entry[1].response.location)}`, tok.gp)).body;
    expect(doc.content[0].attachment).toEqual({ contentType: 'text/plain', url: `Binary/${binaryId}`, size: bytes.length, hash: sha1(bytes) });

    // the content is the document's: read through it by those who read the document, hidden from the others
    const byGp = await get(`Binary/${binaryId}`, tok.gp);
    expect(byGp.status).toBe(200);
    expect(Buffer.from(byGp.body.data, 'base64')).toEqual(bytes);
    expect(byGp.body.securityContext).toEqual({ reference: ref(x.p1) });
    expect((await get(`Binary/${binaryId}`, tok.p1)).status).toBe(200);
    const strangerReadsDocument = (await get(`DocumentReference/${idOf(res.body.entry[1].response.location)}`, tok.stranger)).status;
    expect(strangerReadsDocument).not.toBe(200);
    expect((await get(`Binary/${binaryId}`, tok.stranger)).status).toBe(strangerReadsDocument);
  });

  it('answers the documents it stored without sending their content back, unless asked for the representation', async () => {
    const bytes = Buffer.from(`sans retour ${RUN}`);
    const minimal = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes }]));
    expect(minimal.status).toBe(200);
    const binaryEntry = minimal.body.entry[2];
    expect(binaryEntry.response.status).toBe('201 Created');
    expect(binaryEntry.resource).toEqual(expect.objectContaining({ resourceType: 'Binary', contentType: 'text/plain' }));
    expect(binaryEntry.resource.data).toBeUndefined();
    // the document is stored all the same
    const stored = await get(binaryEntry.response.location.replace(/\/_history\/.*$/, ''), tok.gp);
    expect(Buffer.from(stored.body.data, 'base64').equals(bytes)).toBe(true);

    const asked = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes }]), { prefer: 'return=representation' });
    expect(asked.status).toBe(200);
    expect(Buffer.from(asked.body.entry[2].resource.data, 'base64').equals(bytes)).toBe(true);
  });

  it('accepts the size and hash a submitter gives when they are those of the content', async () => {
    const bytes = Buffer.from(`resultats ${RUN}`);
    const res = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes, size: bytes.length, hash: sha1(bytes) }]));
    expect(res.status).toBe(200);
  });

  it('accepts a hash written with whitespace inside, as base64Binary allows', async () => {
    const bytes = Buffer.from(`resultats espaces ${RUN}`);
    const hash = sha1(bytes);
    const res = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes, hash: `${hash.slice(0, 8)} ${hash.slice(8, 16)}\n${hash.slice(16)}` }]));
    expect(res.status).toBe(200);
  });

  it('refuses a submission whose size or hash is not the content’s: one outcome naming each failing entry, nothing stored', async () => {
    const a = Buffer.from(`premier ${RUN}`);
    const b = Buffer.from(`second ${RUN}`);
    const ids = [uniqueId(), uniqueId()];
    const submissionSetId = uniqueId();
    const bundle = provideBundle(x.p1, [
      { bytes: a, hash: sha1(b), masterIdentifier: ids[0] },
      { bytes: b, size: b.length + 1, masterIdentifier: ids[1] },
    ], { submissionSetId });
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue.map((i: Json) => i.expression)).toEqual([['Bundle.entry[1].resource.content[0].attachment.hash'], ['Bundle.entry[3].resource.content[0].attachment.size']]);
    // with the XDS codes MHD asks for, next to the FHIR code
    expect(res.body.issue.map((i: Json) => [i.code, i.details?.text])).toEqual([['value', 'XDSNonIdenticalHash'], ['value', 'XDSRepositoryMetadataError']]);
    for (const id of ids) expect(await countByIdentifier('DocumentReference', id)).toBe(0);
    expect(await countByIdentifier('List', submissionSetId)).toBe(0);
  });

  it('refuses a submission with several invalid documents in one outcome naming each of them, storing nothing', async () => {
    const ids = [uniqueId(), uniqueId()];
    const bundle = provideBundle(x.p1, [
      { bytes: Buffer.from(`invalide un ${RUN}`), masterIdentifier: ids[0] },
      { bytes: Buffer.from(`invalide deux ${RUN}`), masterIdentifier: ids[1] },
    ]);
    delete bundle.entry[1].resource.status;
    delete bundle.entry[3].resource.status;
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(422);
    const named = (res.body.issue as Json[]).filter((i) => i.severity === 'error').flatMap((i: Json) => i.expression ?? []);
    expect(named).toEqual(expect.arrayContaining([expect.stringMatching(/^Bundle\.entry\[1\]\.resource/), expect.stringMatching(/^Bundle\.entry\[3\]\.resource/)]));
    for (const id of ids) expect(await countByIdentifier('DocumentReference', id)).toBe(0);
  });

  it('refuses a Provide Document Bundle without a SubmissionSet', async () => {
    const masterIdentifier = uniqueId();
    const res = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes: Buffer.from('x'), masterIdentifier }], { submissionSet: false }));
    expect(res.status).toBe(422);
    expect(res.body.issue).toEqual([expect.objectContaining({ code: 'required', expression: ['Bundle.entry'], details: { text: 'XDSRegistryMetadataError' } })]);
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
  });

  it('refuses a repeated submission (same document uniqueId or SubmissionSet identifier) with 409, leaving the first alone', async () => {
    const masterIdentifier = uniqueId();
    const submissionSetId = uniqueId();
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`une fois ${RUN}`), masterIdentifier }], { submissionSetId });
    expect((await send('POST', '', tok.gp, bundle)).status).toBe(200);
    const again = await send('POST', '', tok.gp, bundle);
    expect(again.status).toBe(409);
    expect(again.body.issue.map((i: Json) => [i.code, i.expression[0], i.details?.text])).toEqual([
      ['duplicate', 'Bundle.entry[0].resource.identifier[0]', 'XDSDuplicateUniqueIdInRegistry'],
      ['duplicate', 'Bundle.entry[1].resource.masterIdentifier', 'XDSDuplicateUniqueIdInRegistry'],
    ]);
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(1);
    expect(await countByIdentifier('List', submissionSetId)).toBe(1);
    // the same uniqueId twice in one submission
    const twice = provideBundle(x.p1, [{ bytes: Buffer.from('a'), masterIdentifier: `${masterIdentifier}.9` }, { bytes: Buffer.from('b'), masterIdentifier: `${masterIdentifier}.9` }]);
    const res = await send('POST', '', tok.gp, twice);
    expect(res.status).toBe(422);
    expect(res.body.issue).toEqual([expect.objectContaining({ code: 'duplicate', expression: ['Bundle.entry[3].resource.masterIdentifier'], details: { text: 'XDSRegistryDuplicateUniqueIdInMessage' } })]);
  });

  it("refuses a document of another patient than the SubmissionSet's, and a patient the server does not know, with their XDS codes", async () => {
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`patient ${RUN}`) }, { bytes: Buffer.from(`autre patient ${RUN}`) }]);
    bundle.entry[3].resource.subject = { reference: ref(x.p2) };
    const mismatch = await send('POST', '', tok.gp, bundle);
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.issue.map((i: Json) => [i.code, i.expression[0], i.details?.text])).toEqual([['business-rule', 'Bundle.entry[3].resource.subject', 'XDSPatientIdDoesNotMatch']]);
    expect(await countByIdentifier('DocumentReference', bundle.entry[1].resource.masterIdentifier.value)).toBe(0);
    // a patient named by an identifier nobody holds
    const unknown = provideBundle(x.p1, [{ bytes: Buffer.from(`inconnu ${RUN}`) }]);
    const nobody = { reference: `Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|${freshNir()}` };
    unknown.entry[0].resource.subject = nobody;
    unknown.entry[1].resource.subject = nobody;
    const refused = await send('POST', '', tok.gp, unknown);
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.body.issue.map((i: Json) => i.details?.text)).toEqual(['XDSUnknownPatientId']);
    expect(await countByIdentifier('List', unknown.entry[0].resource.identifier[0].value)).toBe(0);
  });

  it('lets one of two concurrent submissions of the same uniqueId through', async () => {
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`concurrent ${RUN}`) }]);
    const statuses = (await Promise.all([send('POST', '', tok.gp, bundle), send('POST', '', tok.gp, bundle)])).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 409]);
    expect(await countByIdentifier('DocumentReference', bundle.entry[1].resource.masterIdentifier.value)).toBe(1);
  });

  it('finds a uniqueId taken by a document the submitter cannot see, without telling them anything of it', async () => {
    const masterIdentifier = uniqueId();
    const hidden = await create({ ...docReference(x.p1, { bytes: Buffer.from('masque'), masterIdentifier }), meta: { security: [{ system: A07, code: 'MASQUE_PS' }] }, author: [{ display: 'autre' }] });
    const res = await send('POST', '', tok.gp, provideBundle(x.p1, [{ bytes: Buffer.from(`x ${RUN}`), masterIdentifier }]));
    expect(res.status).toBe(409);
    expect(res.body.issue).toEqual([expect.objectContaining({ code: 'duplicate', expression: ['Bundle.entry[1].resource.masterIdentifier'] })]);
    expect(res.text).not.toContain(hidden.id);
  });

  it('refuses a submission into a record the author may not write in, leaving nothing', async () => {
    const masterIdentifier = uniqueId();
    const res = await send('POST', '', tok.stranger, provideBundle(x.p1, [{ bytes: Buffer.from(`intrus ${RUN}`), masterIdentifier }]));
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
  });

  it("checks the author's habilitation for each document's type: one type the profession may not write refuses the submission, leaving nothing", async () => {
    // the nurse writes reports (class 10), not medical syntheses (class 11)
    const nurse = await create({ resourceType: 'Practitioner', name: [{ family: `Infirmier-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(nurse) }, code: [{ coding: [{ system: G15, code: '60' }] }] });
    const nurseToken = await mint(ref(nurse));
    await create(consent(x.p1, ref(nurse), { type: 'permit', actor: [ircp(ref(nurse))] }), nurseToken);
    const [allowed, refused] = [uniqueId(), uniqueId()];
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`soins ${RUN}`), masterIdentifier: allowed }, { bytes: Buffer.from(`synthese ${RUN}`), masterIdentifier: refused }]);
    bundle.entry[3].resource.author = [{ reference: ref(nurse) }];
    bundle.entry[1].resource.author = [{ reference: ref(nurse) }];
    bundle.entry[3].resource.type = { coding: [{ system: LOINC, code: '60591-5' }] };
    bundle.entry[3].resource.category = [{ coding: [{ system: A03, code: '11' }] }];
    const res = await send('POST', '', nurseToken, bundle);
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[3\]: .*60591-5/);
    for (const id of [allowed, refused]) expect(await countByIdentifier('DocumentReference', id)).toBe(0);
    // the same Bundle with a type the nurse writes is stored
    bundle.entry[3].resource.type = { coding: [{ system: LOINC, code: REPORT.code }] };
    bundle.entry[3].resource.category = [{ coding: [{ system: A03, code: REPORT.cls }] }];
    expect((await send('POST', '', nurseToken, bundle)).status).toBe(200);
  });
});

describe('ITI-65 with a Folder (PDSm / MHD Comprehensive Folder)', () => {
  const DESIGNATION = { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType', valueCodeableConcept: { coding: [{ system: LOINC, code: REPORT.code }] } };
  /** The Bundle with a Folder of the given entries (the first document by default), named by the SubmissionSet too. */
  function withFolder(bundle: Json, folder: Json = {}): Json {
    const fullUrl = `urn:uuid:${crypto.randomUUID()}`;
    const resource = {
      resourceType: 'List',
      identifier: [{ system: 'urn:ietf:rfc:3986', value: uniqueId() }],
      status: 'current',
      mode: 'working',
      title: `dossier ${RUN}`,
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'folder' }] },
      subject: bundle.entry[0].resource.subject,
      source: { reference: ref(x.gp) },
      date: new Date().toISOString(),
      extension: [DESIGNATION],
      entry: [{ item: { reference: bundle.entry[1].fullUrl } }],
      ...folder,
    };
    bundle.entry[0].resource.entry.push({ item: { reference: fullUrl } });
    bundle.entry.push({ fullUrl, resource, request: { method: 'POST', url: 'List' } });
    return bundle;
  }

  it('stores a Folder of the submitted document, found by ITI-66 with designationType', async () => {
    const bundle = withFolder(provideBundle(x.p1, [{ bytes: Buffer.from(`dossier ${RUN}`) }]));
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(200);
    const folderId = idOf(res.body.entry[3].response.location);
    const docId = idOf(res.body.entry[1].response.location);
    const found = await get(`List?patient=${x.p1.id}&code=${encodeURIComponent(`${MHD_LIST_TYPES}|folder`)}&designationType=${encodeURIComponent(`${LOINC}|${REPORT.code}`)}`, tok.gp);
    expect(found.status).toBe(200);
    expect(found.body.entry.map((e: Json) => e.resource.id)).toContain(folderId);
    expect(found.body.entry.find((e: Json) => e.resource.id === folderId).resource.entry).toEqual([{ item: { reference: `DocumentReference/${docId}` } }]);
  });

  it('refuses a Folder without designationType, or gathering something else than documents, naming each element and leaving nothing', async () => {
    const masterIdentifier = uniqueId();
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`mauvais dossier ${RUN}`), masterIdentifier }]);
    withFolder(bundle, { extension: [], entry: [{ item: { reference: bundle.entry[2].fullUrl } }] });
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(422);
    expect(res.body.issue.map((i: Json) => i.expression[0]).sort()).toEqual(['Bundle.entry[3].resource.entry[0].item', 'Bundle.entry[3].resource.extension']);
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
  });

  it("refuses a Folder gathering another patient's stored document, or one hidden from the submitter, alike", async () => {
    const other = await send('POST', 'DocumentReference', tok.gp, docReference(x.p2, { bytes: Buffer.from(`autre ${RUN}`) }));
    expect(other.status).toBe(201);
    const masterIdentifier = uniqueId();
    const bundle = withFolder(provideBundle(x.p1, [{ bytes: Buffer.from(`melange ${RUN}`), masterIdentifier }]), {});
    bundle.entry[3].resource.entry.push({ item: { reference: `DocumentReference/${other.body.id}` } });
    // and a document of the record hidden from the submitter (masked, by another author): refused alike
    const hidden = await create({ ...docReference(x.p1, { bytes: Buffer.from(`masque ${RUN}`) }), meta: { security: [{ system: A07, code: 'MASQUE_PS' }] }, author: [{ display: 'autre' }] });
    bundle.entry[3].resource.entry.push({ item: { reference: `DocumentReference/${hidden.id}` } });
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(422);
    expect(res.body.issue.map((i: Json) => i.expression[0])).toEqual(['Bundle.entry[3].resource.entry[1].item', 'Bundle.entry[3].resource.entry[2].item']);
    expect(res.body.issue[0].diagnostics.replace(other.body.id, 'X')).toBe(res.body.issue[1].diagnostics.replace(hidden.id, 'X'));
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
  });

  it("does not let the patient add to a professional's Folder", async () => {
    const res = await send('POST', '', tok.gp, withFolder(provideBundle(x.p1, [{ bytes: Buffer.from(`dossier pro ${RUN}`) }])));
    expect(res.status).toBe(200);
    const folder = (await get(res.body.entry[3].response.location.replace(/\/_history\/.*$/, ''), tok.p1)).body;
    const own = await send('POST', 'DocumentReference', tok.p1, { ...document(x.p1, PATIENT_DOC, ref(x.p1)) });
    expect(own.status).toBe(201);
    const added = await send('PUT', `List/${folder.id}`, tok.p1, { ...folder, entry: [...folder.entry, { item: { reference: `DocumentReference/${own.body.id}` } }] });
    expect(added.status).toBe(403);
  });
});

describe('ITI-105 Simplified Publish', () => {
  it('stores the inline content as a Binary of the record and answers 201 with url, size and hash', async () => {
    const bytes = Buffer.from(`publication simplifiee ${RUN}`);
    const res = await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes }));
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(new RegExp(`/DocumentReference/${res.body.id}/_history/1$`));
    const attachment = res.body.content[0].attachment;
    expect(attachment).toEqual({ contentType: 'text/plain', url: expect.stringMatching(/^Binary\/[0-9a-f-]{36}$/), size: bytes.length, hash: sha1(bytes) });
    const raw = await http(t.base, attachment.url, { headers: { authorization: `Bearer ${tok.gp}`, accept: 'text/plain' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(raw.text).toBe(bytes.toString());
    const strangerReadsDocument = (await get(`DocumentReference/${res.body.id}`, tok.stranger)).status;
    expect(strangerReadsDocument).not.toBe(200);
    expect((await get(attachment.url, tok.stranger)).status).toBe(strangerReadsDocument);
    expect((await get(attachment.url, tok.p1)).status).toBe(200);
  });

  it('refuses a hash that is not the content’s (422, with its expression) and a repeated uniqueId (409), storing nothing', async () => {
    const masterIdentifier = uniqueId();
    const bytes = Buffer.from(`publication ${RUN}`);
    const bad = await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes, hash: sha1(Buffer.from('autre')), masterIdentifier }));
    expect(bad.status).toBe(422);
    // (the validator measures inline content too, and names the attachment)
    expect(bad.body.issue.filter((i: Json) => i.severity === 'error').map((i: Json) => i.expression[0])).toEqual([expect.stringMatching(/^DocumentReference\.content\[0\]\.attachment/)]);
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
    expect((await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes, masterIdentifier }))).status).toBe(201);
    const again = await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes, masterIdentifier }));
    expect(again.status).toBe(409);
    expect(again.body.issue).toEqual([expect.objectContaining({ code: 'duplicate', expression: ['DocumentReference.masterIdentifier'] })]);
    expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(1);
  });

  it('audits the publication: the event names the document and the Binary written with it', async () => {
    const res = await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes: Buffer.from(`audite ${RUN}`) }));
    expect(res.status).toBe(201);
    const events = (await get(`AuditEvent?entity=DocumentReference/${res.body.id}&action=C`, tok.admin)).body.entry ?? [];
    expect(events).toHaveLength(1);
    const named = events[0].resource.entity.map((e: Json) => e.what?.reference);
    expect(named).toEqual(expect.arrayContaining([`DocumentReference/${res.body.id}/_history/1`, `${res.body.content[0].attachment.url}/_history/1`]));
  });

  it('refuses a publication into a record the author may not write in, creating no Binary', async () => {
    const before = (await get('Binary?_summary=count')).body.total;
    const res = await send('POST', 'DocumentReference', tok.stranger, docReference(x.p1, { bytes: Buffer.from(`intrus ${RUN}`) }));
    expect(res.status).toBe(403);
    expect((await get('Binary?_summary=count')).body.total).toBe(before);
  });
});

describe('ITI-105 replacement', () => {
  const publish = (patient: Json, extra: Json = {}) => send('POST', 'DocumentReference', tok.gp, { ...docReference(patient, { bytes: Buffer.from(`version ${RUN} ${++serial}`) }), ...extra });
  const replacing = (target: string) => ({ relatesTo: [{ code: 'replaces', target: { reference: target } }] });

  it('supersedes the replaced document in the same transaction: both kept, linked, readable by id', async () => {
    const first = await publish(x.p1);
    expect(first.status).toBe(201);
    const second = await publish(x.p1, replacing(`DocumentReference/${first.body.id}`));
    expect(second.status).toBe(201);
    const old = (await get(`DocumentReference/${first.body.id}`, tok.gp)).body;
    expect([old.status, old.meta.versionId]).toEqual(['superseded', '2']);
    const replacement = (await get(`DocumentReference/${second.body.id}`, tok.gp)).body;
    expect(replacement.status).toBe('current');
    expect(replacement.relatesTo).toEqual([{ code: 'replaces', target: { reference: `DocumentReference/${first.body.id}` } }]);
    expect((await get(old.content[0].attachment.url, tok.gp)).status).toBe(200);
  });

  it('refuses to replace a document that is not current, unknown, or of another record, storing nothing', async () => {
    const first = await publish(x.p1);
    expect((await publish(x.p1, replacing(`DocumentReference/${first.body.id}`))).status).toBe(201);
    const otherRecord = await publish(x.p2);
    for (const [target, pattern] of [
      [`DocumentReference/${first.body.id}`, /superseded/],
      // a reference to nothing readable is refused by the reference check first (decision 014), alike for unknown and hidden
      [`DocumentReference/unknown-${RUN}`, /does not exist on this server, is deleted, or is not readable|not a document you can read/],
      [`DocumentReference/${otherRecord.body.id}`, /another record/],
    ] as const) {
      const masterIdentifier = uniqueId();
      const res = await publish(x.p1, { ...replacing(target), masterIdentifier: { system: 'urn:ietf:rfc:3986', value: masterIdentifier } });
      expect(res.status).toBe(422);
      expect(res.body.issue.map((i: Json) => i.expression[0])).toEqual(['DocumentReference.relatesTo[0].target']);
      expect(res.body.issue[0].diagnostics).toMatch(pattern);
      expect(await countByIdentifier('DocumentReference', masterIdentifier)).toBe(0);
    }
    expect((await get(`DocumentReference/${otherRecord.body.id}`, tok.gp)).body.status).toBe('current');
  });
});

describe('a submission to a national record (docs/decisions/029-dmp-submissions.md)', () => {
  it('meets the PDSm profiles whether or not it claims them; a Patient without INS is held to what the submission claims', async () => {
    const national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, 'urn:oid:1.2.250.1.213.1.4.8', freshNir()));
    await create(consent(national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    // claiming the international IHE profiles only is no way out
    const bundle = provideBundle(national, [{ bytes: Buffer.from(`sans PDSm ${RUN}`) }]);
    const refused = await send('POST', '', tok.gp, bundle);
    expect(refused.status).toBe(422);
    const issues = refused.body.issue.filter((i: Json) => i.severity === 'error');
    expect(issues.map((i: Json) => i.diagnostics).join('\n')).toMatch(/designationType[\s\S]*sourceId|sourceId[\s\S]*designationType/);
    expect(issues.every((i: Json) => /^Bundle\.entry\[\d+\]\.resource/.test(i.expression[0]) && i.details?.text === 'XDSRegistryMetadataError')).toBe(true);
    // the SubmissionSet's issues and the document's, in one outcome
    expect(issues.some((i: Json) => i.expression[0].startsWith('Bundle.entry[0].resource'))).toBe(true);
    expect(issues.some((i: Json) => i.expression[0].startsWith('Bundle.entry[1].resource'))).toBe(true);
    expect(await countByIdentifier('DocumentReference', bundle.entry[1].resource.masterIdentifier.value)).toBe(0);
    expect(await countByIdentifier('List', bundle.entry[0].resource.identifier[0].value)).toBe(0);
    // the same shape for a Patient of no national record is an MHD submission like any other
    const elsewhere = provideBundle(x.p1, [{ bytes: Buffer.from(`sans PDSm ${RUN}`) }]);
    expect((await send('POST', '', tok.gp, elsewhere)).status).toBe(200);
  });

  it('holds entries sent as conditional PUTs to the same PDSm profiles: a PUT is no way out', async () => {
    const national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, 'urn:oid:1.2.250.1.213.1.4.8', freshNir()));
    await create(consent(national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    const bundle = provideBundle(national, [{ bytes: Buffer.from(`sans PDSm, PUT ${RUN}`) }]);
    // the SubmissionSet and the document each created by a conditional update that matches nothing
    for (const i of [0, 1]) {
      const { resourceType, identifier, masterIdentifier } = bundle.entry[i].resource;
      const id = i === 0 ? identifier[0] : masterIdentifier;
      bundle.entry[i].request = { method: 'PUT', url: `${resourceType}?identifier=${encodeURIComponent(`${id.system}|${id.value}`)}` };
    }
    const refused = await send('POST', '', tok.gp, bundle);
    expect(refused.status).toBe(422);
    const issues = refused.body.issue.filter((i: Json) => i.severity === 'error');
    expect(issues.map((i: Json) => i.diagnostics).join('\n')).toMatch(/designationType[\s\S]*sourceId|sourceId[\s\S]*designationType/);
    expect(issues.some((i: Json) => i.expression[0].startsWith('Bundle.entry[0].resource'))).toBe(true);
    expect(issues.some((i: Json) => i.expression[0].startsWith('Bundle.entry[1].resource'))).toBe(true);
    expect(await countByIdentifier('DocumentReference', bundle.entry[1].resource.masterIdentifier.value)).toBe(0);
    expect(await countByIdentifier('List', bundle.entry[0].resource.identifier[0].value)).toBe(0);
  });

  it('stores a complete submission whose entries are conditional PUTs: the ids the server draws are no client-chosen ids', async () => {
    const national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, 'urn:oid:1.2.250.1.213.1.4.8', freshNir()));
    await create(consent(national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    const bundle = pdsmProvideBundle({ subject: ref(national), uniqueId, text: `PUT ${RUN}` }) as { entry: Json[] };
    for (const i of [0, 1]) {
      const { resourceType, identifier, masterIdentifier } = bundle.entry[i].resource;
      const id = i === 0 ? identifier.find((x: Json) => x.use === 'official') ?? identifier[0] : masterIdentifier;
      bundle.entry[i].request = { method: 'PUT', url: `${resourceType}?identifier=${encodeURIComponent(`${id.system}|${id.value}`)}` };
    }
    const stored = await send('POST', '', tok.gp, bundle);
    expect(stored.status).toBe(200);
    expect(stored.body.entry.map((e: Json) => e.response.status)).toEqual(['201 Created', '201 Created', '201 Created']);
    // the SubmissionSet names the document by the id drawn for it
    const documentId = stored.body.entry[1].response.location.split('/')[1];
    const list = await get(stored.body.entry[0].response.location.split('/_history')[0], tok.gp);
    expect(list.body.entry.map((e: Json) => e.item.reference)).toEqual([`DocumentReference/${documentId}`]);
  });

  it("names each PDSm element a national record's document lacks, on its entry", async () => {
    const national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, 'urn:oid:1.2.250.1.213.1.4.8', freshNir()));
    await create(consent(national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    const bundle = provideBundle(national, [{ bytes: Buffer.from(`document ${RUN}`) }]);
    // the SubmissionSet complete, the document not
    Object.assign(bundle.entry[0].resource, {
      contained: [{ resourceType: 'Practitioner', id: 'auteur', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810000000011' }] }],
      extension: [
        { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType', valueCodeableConcept: { coding: [{ system: LOINC, code: REPORT.code }] } },
        { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId', valueIdentifier: { value: 'urn:oid:1.2.250.1.999.1' } },
      ],
      source: { reference: '#auteur' },
    });
    const refused = await send('POST', '', tok.gp, bundle);
    expect(refused.status).toBe(422);
    const missing = refused.body.issue.filter((i: Json) => i.severity === 'error').map((i: Json) => `${i.expression[0]} ${i.diagnostics}`);
    for (const element of ['securityLabel', 'content.attachment.title', 'content.format', 'context']) {
      expect(missing.some((m: string) => m.startsWith('Bundle.entry[1].resource') && m.includes(`DocumentReference.${element}:`))).toBe(true);
    }
  });
});

describe('ITI-65 replacement', () => {
  it('supersedes the document a provided one replaces when the Bundle does not change it itself', async () => {
    const first = await send('POST', 'DocumentReference', tok.gp, docReference(x.p1, { bytes: Buffer.from(`v1 ${RUN}`) }));
    expect(first.status).toBe(201);
    const bundle = provideBundle(x.p1, [{ bytes: Buffer.from(`v2 ${RUN}`) }]);
    bundle.entry[1].resource.relatesTo = [{ code: 'replaces', target: { reference: `DocumentReference/${first.body.id}` } }];
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: Json) => e.response.status)).toEqual(['201 Created', '201 Created', '201 Created']);
    expect((await get(`DocumentReference/${first.body.id}`, tok.gp)).body.status).toBe('superseded');
    // replacing it again is refused, naming the entry's element
    const again = provideBundle(x.p1, [{ bytes: Buffer.from(`v3 ${RUN}`) }]);
    again.entry[1].resource.relatesTo = [{ code: 'replaces', target: { reference: `DocumentReference/${first.body.id}` } }];
    const refused = await send('POST', '', tok.gp, again);
    expect(refused.status).toBe(422);
    expect(refused.body.issue.map((i: Json) => i.expression[0])).toEqual(['Bundle.entry[1].resource.relatesTo[0].target']);
    expect(await countByIdentifier('DocumentReference', again.entry[1].resource.masterIdentifier.value)).toBe(0);
  });
});

// the official payloads stay outside the project, read in place when this checkout has them
const OFFICIAL_FILE = path.resolve(__dirname, '../../../shared/reference/examples/pdsm4dmp/examples/Bundle-example-td2-iti65-lot-soumission.json');
const OFFICIAL = fs.existsSync(OFFICIAL_FILE) ? OFFICIAL_FILE : undefined;
if (!OFFICIAL) console.warn('the official PDSm ITI-65 example is absent: the submission runs on our own Bundles only');
if (OFFICIAL) it('stores the official PDSm ITI-65 example, its size and hash confirmed', async () => {
  // the example's INS has no valid key: a valid one, unique to this run, takes its place
  const body13 = `2${String(Date.now()).slice(-12)}`;
  const ins = body13 + nirKey(body13);
  const bundle = JSON.parse(fs.readFileSync(OFFICIAL!, 'utf8').replaceAll('123456789012345', ins).replaceAll('1.2.250.1.213.1.4.8.99999.', `1.2.250.1.213.1.4.8.${RUN.length}${Date.now()}.`));
  const patient = await http(t.base, 'Patient', { method: 'POST', json: withIns({ resourceType: 'Patient', name: [{ family: 'Officiel' }] }, 'urn:oid:1.2.250.1.213.1.4.8', ins) });
  expect(patient.status).toBe(201);
  const res = await http(t.base, '', { method: 'POST', json: bundle });
  expect(res.status).toBe(200);
  const doc = await http(t.base, `DocumentReference/${idOf(res.body.entry[1].response.location)}`);
  expect(doc.body.content[0].attachment).toMatchObject({ size: 80, hash: 'A/hMRrv6Y15BjSM8kMLidrz+mHc=', url: `Binary/${idOf(res.body.entry[2].response.location)}` });
  expect(doc.body.subject.reference).toBe(`Patient/${patient.body.id}`);
});
