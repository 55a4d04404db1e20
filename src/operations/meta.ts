import { maskingRecord } from '../access/policy/decide';
import { MASQUE_PS } from '../access/policy/recordFacts';
import { BadRequest, Forbidden, Gone, NotFound } from '../errors';
import { decimalTexts } from '../json/decimals';
import { assertId, checkIfMatch, newVersion, nowInstant } from '../interactions/common';
import { assertValid } from '../interactions/conformanceResources';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { withinTransaction } from '../interactions/unitOfWork';
import { writeNewVersion } from '../interactions/update';
import { readBinaryContent } from '../store/binaryContent';
import { readCurrent } from '../store/resources';
import { lockRecordDocuments, metaInUseRows } from '../store/metaQueries';
import type { Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import { addToMeta, deleteFromMeta, MetaCoding, MetaSets, metaSets, sameSets, setsOf } from './metaChanges';
import { parametersBody } from './parameters';

/**
 * $meta, $meta-add and $meta-delete (http://hl7.org/fhir/R4/resource-operation-meta.html),
 * and the patient's one-call masking of their documents ($mask-all, $unmask-all).
 *
 * A change of meta is a new version, made like an update: validated, checked by the policy
 * through session.write (so the labels a caller may set or remove are the policy's
 * decision), in history. R4 says $meta-add and $meta-delete change meta without a new
 * version; here access depends on the labels, so who masked or unmasked what, and when,
 * must stay in the record's history and audit trail, and a version cache must not keep
 * serving the unmasked version. A change that changes nothing makes no version.
 */

type Json = Record<string, any>;

const answer = (meta: Json): FhirResponse => ({ status: 200, resource: { resourceType: 'Parameters', parameter: [{ name: 'return', valueMeta: meta }] } });

/**
 * Runs a write in one database transaction: a lone request reaches operations on the
 * pool, a transaction Bundle entry is already in one (and its writes are part of it).
 */
/** $meta: the meta of one resource, or the profiles, tags and labels in use in the resources of a type (or of the server) the caller may read. */
export async function metaOperation(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  if (req.resourceType && req.id) {
    const current = await readCurrent(session, req.resourceType, assertId(req.id));
    if (!current) throw new NotFound(`${req.resourceType}/${req.id} is not known`);
    if (current.deleted) throw new Gone(`${req.resourceType}/${req.id} was deleted`);
    return answer((JSON.parse(current.body!) as Json).meta ?? {});
  }
  return answer(await metaInUse(session, req.resourceType) as Json);
}

/**
 * The profiles, tags and labels of the current resources (of one type, or all) the caller
 * may read, from the index: the caller's visibility is in the SQL, so a label carried only
 * by resources hidden from them is not revealed.
 */
async function metaInUse(session: Session, type: string | undefined): Promise<MetaSets> {
  const rows = await metaInUseRows(session, type);
  const coding = (r: { system: string | null; value: string | null }): MetaCoding => ({ ...(r.system ? { system: r.system } : {}), code: r.value! });
  const order = (a: MetaCoding, b: MetaCoding) => `${a.system ?? ''}|${a.code}`.localeCompare(`${b.system ?? ''}|${b.code}`);
  const valued = rows.filter((r) => r.value);
  return setsOf({
    profile: valued.filter((r) => r.kind === '_profile').map((r) => r.value!).sort(),
    tag: valued.filter((r) => r.kind === '_tag').map(coding).sort(order),
    security: valued.filter((r) => r.kind === '_security').map(coding).sort(order),
  });
}

/** The `meta` parameter of a Parameters body. */
function metaInput(req: FhirRequest, operation: string): MetaSets {
  const body = req.body as Json | undefined;
  if (body?.resourceType !== 'Parameters') throw new BadRequest(`$${operation} takes a Parameters resource with a "meta" parameter`, 'structure');
  const metas = parametersBody(body).filter(([name]) => name === 'meta');
  if (metas.length !== 1) throw new BadRequest(`$${operation} takes exactly one "meta" parameter (valueMeta)`, 'required');
  return metaSets(metas[0][1]);
}

/**
 * A change of meta of the current version of [type]/[id], as one new version. `before` is
 * the meta as it would be had the change still to be made: what the caller asks is checked
 * even when the resource already has it.
 */
async function changeMeta(ctx: InteractionContext, session: Session, req: FhirRequest, change: (meta: Json) => Json, before: (meta: Json) => Json): Promise<FhirResponse> {
  const type = req.resourceType!;
  const id = assertId(req.id);
  return withinTransaction(ctx, session, async (s) => {
    const current = await readCurrent(s, type, id, { forUpdate: true });
    if (!current) throw new NotFound(`${type}/${id} is not known`);
    if (current.deleted) throw new Gone(`${type}/${id} was deleted`);
    checkIfMatch(req, current.versionId, `${type}/${id}`);
    const resource = JSON.parse(current.body!) as Json;
    const meta: Json = resource.meta ?? {};
    const next = { ...resource, meta: change(meta) };
    if (sameSets(meta, next.meta)) {
      // nothing to change, so no version; still refused to a caller who could not have made it,
      // checked as the change it asks for (the policy decides on who writes what, decision 021 amendment)
      const asked = { ...resource, meta: before(meta) };
      await s.access.checkWrites(s, [newVersion(ctx, next, { id, versionId: current.versionId + 1, lastUpdated: nowInstant(), method: 'PATCH', previousCompartment: current.compartment, previousBody: asked })]);
      return answer(meta);
    }
    assertValid(ctx, next, 'update');
    // a Binary's content is stored per version: the new version keeps it
    const stored = type === 'Binary' ? await readBinaryContent(s, current.compartment, id, current.versionId) : undefined;
    const binary = stored ? { contentType: stored.contentType, copyOf: { compartment: current.compartment, id, versionId: current.versionId } } : undefined;
    const written = await writeNewVersion(ctx, s, type, id, next, current, { method: 'PATCH', decimals: decimalTexts(current.body!), binary, prefer: { return: 'minimal' } });
    return answer((written.resource as Json).meta);
  });
}

/** $meta-add: adds profiles, tags and labels the resource does not have yet. */
export async function metaAdd(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const add = metaInput(req, 'meta-add');
  return changeMeta(ctx, session, req, (meta) => addToMeta(meta, add), (meta) => deleteFromMeta(meta, add));
}

/** $meta-delete: removes the profiles, tags and labels named; naming one that is absent is not an error. */
export async function metaDelete(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const remove = metaInput(req, 'meta-delete');
  return changeMeta(ctx, session, req, (meta) => deleteFromMeta(meta, remove), (meta) => addToMeta(meta, remove));
}

const MASK: MetaCoding = { system: MASQUE_PS.system, code: MASQUE_PS.code, display: 'Masqué aux professionnels de santé' };
const PATIENT_REF = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$|^([A-Za-z0-9\-.]{1,64})$/;

/** The record named by the `patient` parameter (an id, `Patient/[id]`, or a Reference), if any. */
function namedPatient(req: FhirRequest): string | undefined {
  const values: unknown[] = [...req.query.filter(([k]) => k === 'patient').map(([, v]) => v), ...parametersBody(req.body).filter(([k]) => k === 'patient').map(([, v]) => v)];
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new BadRequest('At most one "patient" parameter', 'invalid');
  const value = values[0] as unknown;
  const text = typeof value === 'string' ? value : typeof (value as Json)?.reference === 'string' ? (value as Json).reference : undefined;
  const m = text === undefined ? null : PATIENT_REF.exec(text);
  if (!m) throw new BadRequest('"patient" must name a Patient: an id, Patient/[id] or a Reference', 'invalid');
  return m[1] ?? m[2];
}

/**
 * $mask-all / $unmask-all (DocumentReference type level): the patient, or their legal
 * representative, sets or removes MASQUE_PS on every document of the record they can
 * see, in one transaction. Each new version goes through the policy like a $meta-add.
 */
async function maskAll(ctx: InteractionContext, session: Session, req: FhirRequest, mask: boolean): Promise<FhirResponse> {
  const who = maskingRecord(session.access.actor);
  if (!who.allow) throw new Forbidden(who.reason);
  const named = namedPatient(req);
  // another record is answered as an unknown one, as a read of it would be
  if (named !== undefined && named !== who.patientId) throw new NotFound(`Patient/${named} is not known`);
  return withinTransaction(ctx, session, async (s) => {
    const patient = await readCurrent(s, 'Patient', who.patientId, { withBody: false });
    if (!patient || patient.deleted) throw new Forbidden(`The record of Patient/${who.patientId} is not open: nothing in it can be masked or unmasked`);
    const rows = await lockRecordDocuments(s, who.patientId);
    const lastUpdated = nowInstant();
    const versions: VersionWrite[] = [];
    for (const row of rows) {
      const resource = JSON.parse(row.body) as Json;
      const meta: Json = resource.meta ?? {};
      const changed = mask ? addToMeta(meta, { security: [MASK] }) : deleteFromMeta(meta, { security: [MASK] });
      if (sameSets(meta, changed)) continue;
      const next = { ...resource, meta: changed };
      assertValid(ctx, next, 'update');
      versions.push(newVersion(ctx, next, { id: row.id, versionId: row.versionId + 1, lastUpdated, method: 'PATCH', previousCompartment: who.patientId, previousBody: resource, decimals: decimalTexts(row.body) }));
    }
    if (versions.length) await s.write(versions);
    return {
      status: 200,
      resource: {
        resourceType: 'Parameters',
        parameter: [{ name: 'count', valueInteger: versions.length }, ...versions.map((v) => ({ name: 'document', valueReference: { reference: `DocumentReference/${v.id}` } }))],
      },
    };
  });
}

export const maskAllDocuments = (ctx: InteractionContext, session: Session, req: FhirRequest) => maskAll(ctx, session, req, true);
export const unmaskAllDocuments = (ctx: InteractionContext, session: Session, req: FhirRequest) => maskAll(ctx, session, req, false);
