import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { A03, A07, consent, document, G15, ircp, Json, LOINC, PATIENT_DOC, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * A document's life after submission (PDSm flux 03/04, DMP TD3.3a-d;
 * docs/decisions/021-document-metadata-life.md): the metadata PATCH and what it may change,
 * visibility labels and archiving by conditional PATCH on the business identifier, deletion
 * by the author only and what a reader gets after it, the insurer's deposits. Real tokens,
 * real HTTP.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const IS_ARCHIVED = 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived';
const UID = 'urn:ietf:rfc:3986';
let serial = 0;
const uniqueId = () => `urn:oid:1.2.250.1.998.${parseInt(RUN, 16)}.${++serial}`;
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };

const x: Json = {};
const tok: Record<string, string> = {};

/** A document of p1 with its business identifier (masterIdentifier). */
async function stored(author: string, type = REPORT, labels: string[] = []): Promise<Json> {
  return create({ ...document(x.p1, type, author, labels), masterIdentifier: { system: UID, value: uniqueId() } });
}
const byIdentifier = (doc: Json) => `DocumentReference?identifier=${encodeURIComponent(`${UID}|${doc.masterIdentifier.value}`)}`;
const patch = (path: string, token: string, operations: unknown) => send('PATCH', path, token, operations, JSON_PATCH);
const codesOf = (doc: Json) => (doc.meta?.security ?? []).map((c: Json) => c.code);
const idsOf = (res: { body: Json }) => (res.body.entry ?? []).filter((e: Json) => e.search?.mode !== 'outcome').map((e: Json) => e.resource.id);

beforeAll(async () => {
  const practitioner = (name: string, rpps?: string) =>
    create({ resourceType: 'Practitioner', ...(rpps ? { identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: rpps }] } : {}), name: [{ family: `${name}-${RUN}` }] });
  const role = (p: Json, profession: string, specialty?: string) =>
    create({
      resourceType: 'PractitionerRole',
      active: true,
      practitioner: { reference: ref(p) },
      code: [{ coding: [{ system: G15, code: profession }] }],
      ...(specialty ? { specialty: [{ coding: [{ system: R38, code: specialty }] }] } : {}),
    });
  x.gp = await practitioner('Auteur');
  await role(x.gp, '10', 'SM54');
  x.colleague = await practitioner('Collegue', '810000000119');
  await role(x.colleague, '10', 'SM54');
  x.nurse = await practitioner('Infirmier');
  await role(x.nurse, '60');
  // a practitioner in two activities: the documents name one of their roles as author
  x.surgeon = await practitioner('Chirurgien');
  x.surgeonClinic = await role(x.surgeon, '10', 'SM54');
  x.surgeonHospital = await role(x.surgeon, '10', 'SM54');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Vie-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }], birthDate: '1972-01-01' });
  x.insurer = await create({ resourceType: 'Device', status: 'active', type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'health-insurer' }] } });

  tok.gp = await mint(ref(x.gp));
  tok.colleague = await mint(ref(x.colleague));
  tok.nurse = await mint(ref(x.nurse));
  tok.surgeonAtHospital = await mint(ref(x.surgeon), 'user/*.cruds', { practitioner_role: x.surgeonHospital.id });
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.insurer = await mint(ref(x.insurer), 'system/*.cruds');
  for (const who of ['gp', 'colleague', 'nurse']) await create(consent(x.p1, ref(x[who]), { type: 'permit', actor: [ircp(ref(x[who]))] }), tok[who]);
  await create(consent(x.p1, ref(x.surgeon), { type: 'permit', actor: [ircp(ref(x.surgeon))] }), tok.surgeonAtHospital);
});

describe('the metadata PATCH (PDSm: status, securityLabel, visibility labels, isArchived; anything else 405)', () => {
  it('refuses a JSON Patch of any other element with 405 and an OperationOutcome, changing nothing', async () => {
    const doc = await stored(ref(x.gp));
    const res = await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'replace', path: '/description', value: 'autre' }]);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('PATCH');
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain('DocumentReference.description');
    const after = await get(`DocumentReference/${doc.id}`, tok.gp);
    expect([after.body.meta.versionId, after.body.description]).toEqual(['1', 'doc']);
  });

  it('refuses the same through a FHIRPath Patch, a move and a conditional PATCH', async () => {
    const doc = await stored(ref(x.gp));
    const fhirpath = {
      resourceType: 'Parameters',
      parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'DocumentReference.description' }, { name: 'value', valueString: 'autre' }] }],
    };
    expect((await send('PATCH', `DocumentReference/${doc.id}`, tok.gp, fhirpath)).status).toBe(405);
    // a move reaches the subject from an element the patch may touch
    expect((await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'move', from: '/description', path: '/securityLabel' }])).status).toBe(405);
    expect((await patch(byIdentifier(doc), tok.gp, [{ op: 'remove', path: '/category' }])).status).toBe(405);
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).body.meta.versionId).toBe('1');
  });

  it('answers 404, not 405, for a document hidden from the caller', async () => {
    const psych = await stored(ref(x.gp), PSYCH);
    const res = await patch(`DocumentReference/${psych.id}`, tok.nurse, [{ op: 'replace', path: '/description', value: 'autre' }]);
    expect(res.status).toBe(404);
    const conditional = await patch(byIdentifier(psych), tok.nurse, [{ op: 'replace', path: '/status', value: 'superseded' }]);
    expect(conditional.status).toBe(404);
    expect((await get(`DocumentReference/${psych.id}`, tok.gp)).body.status).toBe('current');
  });

  it('changes the status; refuses entered-in-error (deletion is DELETE) and a visibility code in securityLabel (422)', async () => {
    const doc = await stored(ref(x.gp));
    const wrong = await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'replace', path: '/status', value: 'entered-in-error' }]);
    expect(wrong.status).toBe(422);
    expect(wrong.body.issue[0].expression).toEqual(['DocumentReference.status']);
    const label = await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'add', path: '/securityLabel', value: [{ coding: [{ system: A07, code: 'INVISIBLE_PATIENT' }] }] }]);
    expect(label.status).toBe(422);
    expect(label.body.issue[0].diagnostics).toContain('meta.security');
    const superseded = await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'replace', path: '/status', value: 'superseded' }]);
    expect(superseded.status).toBe(200);
    expect([superseded.body.status, superseded.body.meta.versionId]).toEqual(['superseded', '2']);
  });
});

describe('a PUT of a stored document changes what its PATCH may (docs/decisions/029-dmp-submissions.md)', () => {
  it('refuses any other element with 405, changing nothing; lets the status and the isArchived extension change; refuses entered-in-error (422)', async () => {
    const doc = await stored(ref(x.gp));
    const { meta: _meta, ...body } = doc;
    for (const changed of [{ ...body, description: 'autre' }, { ...body, content: [{ attachment: { contentType: 'text/plain', url: 'Binary/autre' } }] }]) {
      const res = await send('PUT', `DocumentReference/${doc.id}`, tok.gp, changed);
      expect(res.status).toBe(405);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    // moved to a record the author may not write in: the write rules refuse it first (decision 031, amendment)
    expect((await send('PUT', `DocumentReference/${doc.id}`, tok.gp, { ...body, subject: { reference: ref(x.p2) } })).status).toBe(403);
    // the unrestricted test client alike: it is a rule of the document, not of the caller
    for (const changed of [{ ...body, description: 'autre' }, { ...body, subject: { reference: ref(x.p2) } }]) {
      expect((await send('PUT', `DocumentReference/${doc.id}`, t.token!, changed)).status).toBe(405);
    }
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).body.meta.versionId).toBe('1');
    const archived = await send('PUT', `DocumentReference/${doc.id}`, tok.gp, { ...body, extension: [{ url: IS_ARCHIVED, valueBoolean: true }] });
    expect(archived.status).toBe(200);
    const { meta: _meta2, ...now } = archived.body;
    expect((await send('PUT', `DocumentReference/${doc.id}`, tok.gp, { ...now, status: 'superseded' })).status).toBe(200);
    expect((await send('PUT', `DocumentReference/${doc.id}`, tok.gp, { ...now, status: 'entered-in-error' })).status).toBe(422);
  });

  it('takes the id of a conditional update from its match: a body without id changes only what it changes', async () => {
    const doc = await stored(ref(x.gp));
    const { meta: _meta, id: _id, ...body } = doc;
    const criteria = `DocumentReference?_id=${doc.id}`;
    const same = await send('PUT', criteria, tok.gp, { ...body, status: 'superseded' });
    expect(same.status).toBe(200);
    expect(same.body.id).toBe(doc.id);
    // a change the PDSm rules refuse is still refused
    expect((await send('PUT', criteria, tok.gp, { ...body, description: 'autre' })).status).toBe(405);
  });

  it('leaves a PUT that creates free: a new id, and a deleted document written again', async () => {
    const id = crypto.randomUUID();
    const created = await send('PUT', `DocumentReference/${id}`, t.token!, { ...document(x.p1, REPORT, ref(x.gp)), id, content: [{ attachment: { contentType: 'text/plain', url: 'https://documents.example/a' } }] });
    expect(created.status).toBe(201);
    expect((await send('DELETE', `DocumentReference/${id}`, t.token!)).status).toBe(200);
    const again = await send('PUT', `DocumentReference/${id}`, t.token!, { ...document(x.p1, REPORT, ref(x.gp)), id, description: 'de nouveau', content: [{ attachment: { contentType: 'text/plain', url: 'https://documents.example/b' } }] });
    expect(again.status).toBe(201);
  });
});

describe('visibility labels by conditional PATCH on the business identifier', () => {
  it('lets the author make a document invisible to the patient, who then neither reads nor patches it', async () => {
    const doc = await stored(ref(x.gp));
    const res = await patch(byIdentifier(doc), tok.gp, [{ op: 'add', path: '/meta/security', value: [{ system: A07, code: 'INVISIBLE_PATIENT' }] }]);
    expect(res.status).toBe(200);
    expect(codesOf(res.body)).toEqual(['INVISIBLE_PATIENT']);
    expect((await get(`DocumentReference/${doc.id}`, tok.p1)).status).toBe(404);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&_count=200`, tok.p1))).not.toContain(doc.id);
    // the patient's own conditional PATCH finds nothing: a hidden document is not a match
    const own = await patch(byIdentifier(doc), tok.p1, [{ op: 'add', path: '/meta/security/-', value: { system: A07, code: 'MASQUE_PS' } }]);
    expect(own.status).toBe(404);
    // and a colleague may not lift the author's label
    const colleague = await patch(byIdentifier(doc), tok.colleague, [{ op: 'remove', path: '/meta/security' }]);
    expect(colleague.status).toBe(403);
    const lifted = await patch(byIdentifier(doc), tok.gp, [{ op: 'remove', path: '/meta/security' }]);
    expect(lifted.status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}`, tok.p1)).status).toBe(200);
  });

  it("lets the patient mask a professional's document from other professionals, and unmask it", async () => {
    const doc = await stored(ref(x.gp));
    const masked = await patch(byIdentifier(doc), tok.p1, [{ op: 'add', path: '/meta/security', value: [{ system: A07, code: 'MASQUE_PS' }] }]);
    expect(masked.status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}`, tok.colleague)).status).toBe(404);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&_count=200`, tok.colleague))).not.toContain(doc.id);
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    // a professional may not lift the patient's mask, nor can the colleague find the document to try
    expect((await patch(byIdentifier(doc), tok.colleague, [{ op: 'remove', path: '/meta/security' }])).status).toBe(404);
    expect((await patch(byIdentifier(doc), tok.gp, [{ op: 'remove', path: '/meta/security' }])).status).toBe(403);
    // another patient does not find it
    expect((await patch(byIdentifier(doc), tok.p2, [{ op: 'remove', path: '/meta/security' }])).status).toBe(404);
    const unmasked = await patch(byIdentifier(doc), tok.p1, [{ op: 'remove', path: '/meta/security' }]);
    expect(unmasked.status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}`, tok.colleague)).status).toBe(200);
  });
});

describe('archive and unarchive (the isArchived extension, by PATCH)', () => {
  it('archives by conditional PATCH: left out of default searches, listed with isArchived=true, readable by id; then unarchived', async () => {
    const doc = await stored(ref(x.gp));
    const archived = await patch(byIdentifier(doc), tok.gp, [{ op: 'add', path: '/extension', value: [{ url: IS_ARCHIVED, valueBoolean: true }] }]);
    expect(archived.status).toBe(200);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&_count=200`, tok.gp))).not.toContain(doc.id);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&isArchived=true&_count=200`, tok.gp))).toContain(doc.id);
    expect((await get(`DocumentReference/${doc.id}`, tok.colleague)).status).toBe(200);
    const unarchived = await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'replace', path: '/extension/0/valueBoolean', value: false }]);
    expect(unarchived.status).toBe(200);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&_count=200`, tok.gp))).toContain(doc.id);
  });

  it("refuses an isArchived without a boolean (422), a patient archiving a professional's document (403), and finds no hidden document to archive", async () => {
    const doc = await stored(ref(x.gp));
    expect((await patch(`DocumentReference/${doc.id}`, tok.gp, [{ op: 'add', path: '/extension', value: [{ url: IS_ARCHIVED, valueString: 'oui' }] }])).status).toBe(422);
    expect((await patch(byIdentifier(doc), tok.p1, [{ op: 'add', path: '/extension', value: [{ url: IS_ARCHIVED, valueBoolean: true }] }])).status).toBe(403);
    const psych = await stored(ref(x.gp), PSYCH);
    expect((await patch(byIdentifier(psych), tok.nurse, [{ op: 'add', path: '/extension', value: [{ url: IS_ARCHIVED, valueBoolean: true }] }])).status).toBe(404);
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&isArchived=true&_count=200`, tok.nurse))).not.toContain(psych.id);
  });
});

describe('deletion: by the author only; afterwards 410 to whoever could read it, 404 to the others', () => {
  it('refuses a non-author (403) and lets the author delete; the readers then get 410, the others 404', async () => {
    const doc = await stored(ref(x.gp));
    const refused = await send('DELETE', `DocumentReference/${doc.id}`, tok.colleague);
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].diagnostics).toContain('author');
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.p1)).status).toBe(403);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    for (const who of ['gp', 'colleague', 'nurse', 'p1']) expect([who, (await get(`DocumentReference/${doc.id}`, tok[who])).status]).toEqual([who, 410]);
    expect((await get(`DocumentReference/${doc.id}`, tok.p2)).status).toBe(404);
    // no status was set: the last version is as the author left it
    expect((await get(`DocumentReference/${doc.id}/_history/1`, tok.gp)).body.status).toBe('current');
    expect(idsOf(await get(`DocumentReference?patient=${x.p1.id}&_count=200`, tok.gp))).not.toContain(doc.id);
  });

  it('keeps a deleted document 404 for a profession that could not read its type, and for the masked ones', async () => {
    const psych = await stored(ref(x.gp), PSYCH);
    expect((await send('DELETE', byIdentifier(psych), tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference/${psych.id}`, tok.nurse)).status).toBe(404);
    expect((await get(`DocumentReference/${psych.id}/_history`, tok.nurse)).status).toBe(404);
    expect((await get(`DocumentReference/${psych.id}`, tok.colleague)).status).toBe(410);

    const masked = await stored(ref(x.gp), REPORT, ['MASQUE_PS']);
    expect((await send('DELETE', `DocumentReference/${masked.id}`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference/${masked.id}`, tok.colleague)).status).toBe(404);
    expect((await get(`DocumentReference/${masked.id}`, tok.gp)).status).toBe(410);
    expect((await get(`DocumentReference/${masked.id}`, tok.p1)).status).toBe(410);
  });

  it("lets a practitioner delete a document authored by one of their PractitionerRoles, even acting in another; nobody else", async () => {
    const doc = await stored(ref(x.surgeonClinic));
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.colleague)).status).toBe(403);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.surgeonAtHospital)).status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}`, tok.surgeonAtHospital)).status).toBe(410);
  });

  it('lets the author named by a contained Practitioner (PDSm contains its authors) delete, by national identifier', async () => {
    const contained = {
      ...document(x.p1, REPORT, '#auteur'),
      masterIdentifier: { system: UID, value: uniqueId() },
      contained: [{ resourceType: 'Practitioner', id: 'auteur', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: x.colleague.identifier[0].value }] }],
    };
    const doc = await create(contained);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.gp)).status).toBe(403);
    expect((await send('DELETE', `DocumentReference/${doc.id}`, tok.colleague)).status).toBe(200);
  });

  it('lets the patient deposit patient-authored documents only, in their own name', async () => {
    const own = document(x.p1, PATIENT_DOC, ref(x.p1));
    expect((await send('POST', 'DocumentReference', tok.p1, own)).status).toBe(201);
    const professional = await send('POST', 'DocumentReference', tok.p1, document(x.p1, REPORT, ref(x.p1)));
    expect(professional.status).toBe(403);
    expect(professional.body.issue[0].diagnostics).toContain('patient-authored');
    const forged = await send('POST', 'DocumentReference', tok.p1, { ...own, author: [{ reference: ref(x.gp) }] });
    expect(forged.status).toBe(403);
    expect(forged.body.issue[0].diagnostics).toContain('author');
  });

  it("lets the patient delete what they deposited, not a professional's document", async () => {
    const own = await create(document(x.p1, PATIENT_DOC, ref(x.p1)), tok.p1);
    expect((await send('DELETE', `DocumentReference/${own.id}`, tok.gp)).status).toBe(403);
    expect((await send('DELETE', `DocumentReference/${own.id}`, tok.p1)).status).toBe(200);
    expect((await get(`DocumentReference/${own.id}`, tok.p1)).status).toBe(410);
  });
});

describe("the insurer's deposits (a Device of the insurer type)", () => {
  const deposit = (type: { system: string; code: string }, cls: string) => ({
    resourceType: 'DocumentReference',
    status: 'current',
    masterIdentifier: { system: UID, value: uniqueId() },
    type: { coding: [type] },
    category: [{ coding: [{ system: A03, code: cls }] }],
    subject: { reference: ref(x.p1) },
    author: [{ reference: ref(x.insurer) }],
    content: [{ attachment: { contentType: 'application/pdf', data: Buffer.from(`%PDF-1.4 ${RUN}`).toString('base64') } }],
  });

  it('deposits the reimbursement history and vaccination certificates (ITI-105), and nothing else', async () => {
    const remb = await send('POST', 'DocumentReference', tok.insurer, deposit({ system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'REMB' }, '60'));
    expect(remb.status).toBe(201);
    const vaccination = await send('POST', 'DocumentReference', tok.insurer, deposit({ system: LOINC, code: '11369-6' }, '45'));
    expect(vaccination.status).toBe(201);
    expect(vaccination.body.content[0].attachment.url).toMatch(/^Binary\//);
    const report = await send('POST', 'DocumentReference', tok.insurer, deposit({ system: LOINC, code: REPORT.code }, REPORT.cls));
    expect(report.status).toBe(403);
    const other = await send('POST', 'DocumentReference', tok.insurer, deposit({ system: LOINC, code: '80565-5' }, '45'));
    expect(other.status).toBe(403);
    // the patient reads the deposits; the insurer reads no clinical content, its own deposits included
    expect((await get(`DocumentReference/${vaccination.body.id}`, tok.p1)).status).toBe(200);
    expect((await get(`DocumentReference/${vaccination.body.id}`, tok.insurer)).status).toBe(404);
    expect((await get(`DocumentReference?patient=${x.p1.id}`, tok.insurer)).status).toBe(403);
  });
});

describe("the patient's own folders: Lists visible only on the patient's side", () => {
  const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
  const list = (code: string, items: string[]) => ({
    resourceType: 'List',
    status: 'current',
    mode: 'working',
    title: `mon dossier ${RUN}`,
    code: { coding: [{ system: MHD_LIST_TYPES, code }] },
    subject: { reference: ref(x.p1) },
    source: { reference: ref(x.p1) },
    date: new Date().toISOString(),
    entry: items.map((item) => ({ item: { reference: item } })),
  });

  it('hides a folder the patient keeps from professionals on every read path; the patient reads it', async () => {
    const doc = await stored(ref(x.gp));
    const folder = await create(list('folder', [`DocumentReference/${doc.id}`]), tok.p1);
    expect((await get(`List/${folder.id}`, tok.p1)).status).toBe(200);
    expect(idsOf(await get(`List?patient=${x.p1.id}&_count=200`, tok.p1))).toContain(folder.id);
    expect(idsOf(await get(`DocumentReference?_list=${folder.id}`, tok.p1))).toEqual([doc.id]);

    expect((await get(`List/${folder.id}`, tok.gp)).status).toBe(404);
    expect((await get(`List/${folder.id}/_history`, tok.gp)).status).toBe(404);
    expect((await get(`List/${folder.id}/_history/1`, tok.gp)).status).toBe(404);
    const search = await get(`List?patient=${x.p1.id}&_count=200`, tok.gp);
    expect(search.status).toBe(200);
    expect(idsOf(search)).not.toContain(folder.id);
    expect((await get(`List?_id=${folder.id}&_summary=count`, tok.gp)).body.total).toBe(0);
    expect(idsOf(await get(`DocumentReference?_list=${folder.id}`, tok.gp))).toEqual([]);
    const revinclude = await get(`DocumentReference?_id=${doc.id}&_revinclude=List:item`, tok.gp);
    expect(revinclude.status).toBe(200);
    expect((revinclude.body.entry ?? []).map((e: Json) => e.resource.id)).toEqual([doc.id]);
    expect((await get(`DocumentReference?_id=${doc.id}&_revinclude=List:item`, tok.p1)).body.entry.map((e: Json) => e.resource.id)).toContain(folder.id);
    const everything = await get(`Patient/${x.p1.id}/$everything?_count=500`, tok.gp);
    expect(everything.status).toBe(200);
    const everythingIds = (everything.body.entry ?? []).map((e: Json) => e.resource.id);
    expect(everythingIds).toContain(doc.id);
    expect(everythingIds).not.toContain(folder.id);
    const history = await get(`List/_history?_count=200`, tok.gp);
    expect((history.body.entry ?? []).map((e: Json) => e.resource?.id)).not.toContain(folder.id);
    // nor can a professional write in it: it is not there for them
    expect((await send('PUT', `List/${folder.id}`, tok.gp, { ...folder, title: 'pris' })).status).toBe(403);
    expect((await send('DELETE', `List/${folder.id}`, tok.gp)).status).not.toBe(200);
    expect((await get(`List/${folder.id}`, tok.p1)).body.title).toBe(folder.title);

    // deleted, it stays the patient's: 410 to them, 404 to the professional
    expect((await send('DELETE', `List/${folder.id}`, tok.p1)).status).toBe(200);
    expect((await get(`List/${folder.id}`, tok.p1)).status).toBe(410);
    expect((await get(`List/${folder.id}`, tok.gp)).status).toBe(404);
  });

  it('leaves a SubmissionSet the patient deposited, and a professional\'s folder, visible to the care team', async () => {
    const doc = await create(document(x.p1, PATIENT_DOC, ref(x.p1)), tok.p1);
    const deposit = await create(list('submissionset', [`DocumentReference/${doc.id}`]), tok.p1);
    expect((await get(`List/${deposit.id}`, tok.gp)).status).toBe(200);
    const professional = await create({ ...list('folder', [`DocumentReference/${doc.id}`]), source: { reference: ref(x.gp) } }, tok.gp);
    expect((await get(`List/${professional.id}`, tok.colleague)).status).toBe(200);
  });
});

describe('relations stay in their record (docs/decisions/029-dmp-submissions.md)', () => {
  let elsewhere: Json;
  let here: Json;
  beforeAll(async () => {
    // the GP reads both records: another record's document is one they could name
    await create(consent(x.p2, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    elsewhere = await create({ ...document(x.p2, REPORT, ref(x.gp)), masterIdentifier: { system: UID, value: uniqueId() } });
    here = await stored(ref(x.gp));
    expect((await get(`DocumentReference/${elsewhere.id}`, tok.gp)).status).toBe(200);
  });
  const relating = (code: string, target: string) => ({ ...document(x.p1, REPORT, ref(x.gp)), masterIdentifier: { system: UID, value: uniqueId() }, relatesTo: [{ code, target: { reference: target } }] });

  it("refuses a document relating (appends, transforms, signs) to another record's document (422), as to an unknown one", async () => {
    for (const code of ['appends', 'transforms', 'signs']) {
      const across = await send('POST', 'DocumentReference', tok.gp, relating(code, `DocumentReference/${elsewhere.id}`));
      expect([code, across.status, across.body.issue?.[0]?.expression]).toEqual([code, 422, ['DocumentReference.relatesTo[0].target']]);
      const unknown = await send('POST', 'DocumentReference', tok.gp, relating(code, `DocumentReference/${crypto.randomUUID()}`));
      expect([code, unknown.status]).toEqual([code, 422]);
      expect((await send('POST', 'DocumentReference', tok.gp, relating(code, `DocumentReference/${here.id}`))).status).toBe(201);
    }
  });

  it("refuses a List, a SubmissionSet or a Folder gathering another record's document (422)", async () => {
    const list = (code: string | undefined, item: string) => ({
      resourceType: 'List',
      status: 'current',
      mode: 'working',
      ...(code ? { code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code }] } } : {}),
      subject: { reference: ref(x.p1) },
      entry: [{ item: { reference: item } }],
    });
    for (const code of [undefined, 'submissionset']) {
      const across = await send('POST', 'List', tok.gp, list(code, `DocumentReference/${elsewhere.id}`));
      expect([code, across.status, across.body.issue?.[0]?.expression]).toEqual([code, 422, ['List.entry[0].item']]);
      const within = await send('POST', 'List', tok.gp, list(code, `DocumentReference/${here.id}`));
      expect(within.status).toBe(201);
      // nor by an update adding it
      const { meta: _meta, ...body } = within.body;
      const added = await send('PUT', `List/${within.body.id}`, tok.gp, { ...body, entry: [...body.entry, { item: { reference: `DocumentReference/${elsewhere.id}` } }] });
      expect([code, added.status, added.body.issue?.[0]?.expression]).toEqual([code, 422, ['List.entry[1].item']]);
    }
    // in a submission: the SubmissionSet naming a stored document of another record
    const doc = `urn:uuid:${crypto.randomUUID()}`;
    const binary = `urn:uuid:${crypto.randomUUID()}`;
    const submission = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: { ...list('submissionset', doc), identifier: [{ system: UID, value: uniqueId() }], entry: [{ item: { reference: doc } }, { item: { reference: `DocumentReference/${elsewhere.id}` } }] }, request: { method: 'POST', url: 'List' } },
        { fullUrl: doc, resource: { ...document(x.p1, REPORT, ref(x.gp)), masterIdentifier: { system: UID, value: uniqueId() }, content: [{ attachment: { contentType: 'text/plain', url: binary } }] }, request: { method: 'POST', url: 'DocumentReference' } },
        { fullUrl: binary, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(`lot ${RUN}`).toString('base64') }, request: { method: 'POST', url: 'Binary' } },
      ],
    };
    const refused = await send('POST', '', tok.gp, submission);
    expect(refused.status).toBe(422);
    expect(refused.body.issue[0]).toMatchObject({ expression: ['Bundle.entry[0].resource.entry[1].item'], details: { text: 'XDSRegistryMetadataError' } });
  });

  /** A Binary of p1's record sent as the attachment of the GP's message to p1. */
  async function messageAttachment(text: string): Promise<Json> {
    const attachment = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(x.p1) }, data: Buffer.from(`${text} ${RUN}`).toString('base64') }, tok.gp);
    const opening = await send('POST', 'Communication', tok.gp, {
      resourceType: 'Communication',
      status: 'in-progress',
      subject: { reference: ref(x.p1) },
      sender: { reference: ref(x.gp) },
      recipient: [{ reference: ref(x.p1) }],
      sent: new Date().toISOString(),
      payload: [{ contentAttachment: { contentType: 'text/plain', url: ref(attachment) } }],
    });
    expect(opening.status).toBe(201);
    return attachment;
  }

  it("refuses a document whose content is a message's attachment: it enters the record by $file-to-record", async () => {
    const attachment = await messageAttachment('piece jointe');
    const res = await send('POST', 'DocumentReference', tok.gp, { ...document(x.p1, REPORT, ref(x.gp)), content: [{ attachment: { contentType: 'text/plain', url: ref(attachment) } }] });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['DocumentReference.content[0].attachment.url']);
  });

  it("refuses it in a transaction too, after entries whose writes are still queued: nothing of the Bundle is written", async () => {
    const attachment = await messageAttachment('piece jointe lot');
    const before = { ...document(x.p1, REPORT, ref(x.gp)), masterIdentifier: { system: UID, value: uniqueId() }, description: `queued ${RUN}` };
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: before, request: { method: 'POST', url: 'DocumentReference' } },
        { resource: { ...document(x.p1, REPORT, ref(x.gp)), content: [{ attachment: { contentType: 'text/plain', url: ref(attachment) } }] }, request: { method: 'POST', url: 'DocumentReference' } },
      ],
    };
    const res = await send('POST', '', tok.gp, bundle);
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body.issue)).toContain('is the attachment of a message');
    const written = await send('GET', `DocumentReference?identifier=${encodeURIComponent(`${UID}|${before.masterIdentifier.value}`)}`, tok.gp);
    expect(written.status).toBe(200);
    expect(written.body.entry ?? []).toEqual([]);
  });
});
