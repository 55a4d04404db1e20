import fs from 'node:fs';
import path from 'node:path';
import type { Coding } from '../access/actor';
import { findProfilesDir } from '../registry/registry';
import { ACT_REASON, actionOf, AuditAgent } from './auditEvent';

/**
 * The patient's notifications (docs/decisions/009-audit.md): a Communication for each new
 * document of their record and for each access by a professional, or a daily digest of
 * them, as the patient chose. Pure builders, table-tested; the audit writer writes them.
 */

export const COMMUNICATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/communication-category';
/** Our codes: the kinds of notice, the preference resource and its values (profiles/CodeSystem/dmp-notification.json). */
export const DMP_NOTIFICATION = 'https://fhir.dmp.esante.example/CodeSystem/dmp-notification';
/** The extension of the preference Basic carrying `each-access` or `daily-digest`. */
export const NOTIFICATION_PREFERENCE_EXTENSION = 'https://fhir.dmp.esante.example/StructureDefinition/notification-preference';
/** This server, the sender of every notification: a Device of the directory, created at start-up. */
export const SERVER_DEVICE_ID = 'dmp-fhir-server';
export const SERVER_DEVICE = `Device/${SERVER_DEVICE_ID}`;
/** Identifies the digest of one patient for one day (what makes the digest idempotent). */
export const DIGEST_IDENTIFIER = 'https://fhir.dmp.esante.example/notification-digest';
export const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';

export type NotificationPreference = 'each-access' | 'daily-digest';
export type NoticeKind = 'new-document' | 'new-message' | 'access';

/** The server's own Device, the sender of the notifications. */
export function serverDevice(): Record<string, unknown> {
  return {
    resourceType: 'Device',
    id: SERVER_DEVICE_ID,
    status: 'active',
    deviceName: [{ name: 'Serveur FHIR du DMP', type: 'user-friendly-name' }],
    type: { coding: [{ system: DMP_NOTIFICATION, code: 'server', display: 'Serveur du dossier médical partagé' }] },
  };
}

/** Who acts for the patient themselves: their own accesses are never notified. */
function isPatientSide(agent: AuditAgent): boolean {
  return /^(Patient|RelatedPerson)\//.test(agent.reference ?? '');
}
export function isProfessional(agent: AuditAgent): boolean {
  return /^(Practitioner|Device)\//.test(agent.reference ?? '');
}

/**
 * What one audited interaction on one record tells the patient: a new document (created by
 * anyone but the patient's side), else a new message to them (docs/decisions/016-messaging.md),
 * else an access by a professional, else nothing.
 */
export function noticeKind(agent: AuditAgent, newDocuments: number, newMessages = 0): NoticeKind | undefined {
  if (isPatientSide(agent)) return undefined;
  if (newDocuments > 0) return 'new-document';
  if (newMessages > 0) return 'new-message';
  return isProfessional(agent) ? 'access' : undefined;
}

/** With a daily digest, only emergency accesses and messages (they wait for an answer, decision 016) are still told at once (decision 009). */
export function notifiesAtOnce(preference: NotificationPreference, agent: AuditAgent, kind?: NoticeKind): boolean {
  return preference === 'each-access' || agent.breakGlass !== undefined || kind === 'new-message';
}

/** The preference a Basic of ours states; anything else (none, unknown value) is the default. */
export function preferenceOf(basic: Record<string, any> | undefined): NotificationPreference {
  const ext = (basic?.extension ?? []).find((e: Record<string, unknown>) => e.url === NOTIFICATION_PREFERENCE_EXTENSION);
  return ext?.valueCode === 'daily-digest' ? 'daily-digest' : 'each-access';
}

let professionNames: Map<string, string> | undefined;
/** The display of a TRE_G15 profession (profiles/CodeSystem), its code when unknown. */
export function professionName(coding: Coding): string {
  if (!professionNames) {
    professionNames = new Map();
    try {
      const cs = JSON.parse(fs.readFileSync(path.join(findProfilesDir(), 'CodeSystem', 'tre-g15-profession-sante.json'), 'utf8'));
      for (const c of cs.concept ?? []) professionNames.set(c.code, c.display);
    } catch {
      // without the code system the code is shown: a notice must not fail the access
    }
  }
  return (coding.system === G15 ? professionNames.get(coding.code) : undefined) ?? coding.code;
}

/** "Paul Martin (Médecin)", "Un professionnel de santé" when nothing names them. */
export function actorLabel(agent: AuditAgent): string {
  const name = agent.display ?? (agent.reference?.startsWith('Device/') ? 'Un système' : agent.reference ? 'Un professionnel de santé' : "L'administration du service");
  const professions = [...new Set(agent.professions.map(professionName))];
  return professions.length ? `${name} (${professions.join(', ')})` : name;
}

const VERBS: Record<string, string> = { C: 'a ajouté des données à votre dossier', R: 'a consulté votre dossier', E: 'a consulté votre dossier', U: 'a modifié des données de votre dossier', D: 'a supprimé des données de votre dossier' };

/** The one readable sentence of a notice (French, the record's language). */
export function noticeText(agent: AuditAgent, kind: NoticeKind, interaction: string, newDocuments: number): string {
  const who = actorLabel(agent);
  const what =
    kind === 'new-document'
      ? `${newDocuments > 1 ? `${newDocuments} nouveaux documents ont été ajoutés` : 'Un nouveau document a été ajouté'} à votre dossier par ${who}.`
      : kind === 'new-message'
        ? `${who} a écrit dans une conversation de votre messagerie.`
        : `${who} ${VERBS[actionOf(interaction)]}.`;
  if (agent.breakGlass === undefined) return what;
  return `Accès en urgence (bris de glace) : ${what} Motif invoqué : ${agent.breakGlass || 'non précisé'}.`;
}

export interface Notice {
  patient: string;
  agent: AuditAgent;
  kind: NoticeKind;
  interaction: string;
  /** The AuditEvent of the access and, for a new document, the documents. */
  about: string[];
  newDocuments: number;
  sent: string;
}

const notification = { coding: [{ system: COMMUNICATION_CATEGORY, code: 'notification', display: 'Notification' }] };

/** One notice: a completed Communication from this server to the patient, about the access's AuditEvent. */
export function notificationOf(n: Notice): Record<string, unknown> {
  const emergency = n.agent.breakGlass !== undefined;
  return {
    resourceType: 'Communication',
    language: 'fr-FR',
    status: 'completed',
    category: [notification, { coding: [{ system: DMP_NOTIFICATION, code: emergency ? 'emergency-access' : n.kind }] }],
    priority: emergency ? 'urgent' : 'routine',
    subject: { reference: `Patient/${n.patient}` },
    about: n.about.map((reference) => ({ reference })),
    sent: n.sent,
    recipient: [{ reference: `Patient/${n.patient}` }],
    sender: { reference: SERVER_DEVICE },
    ...(emergency ? { reasonCode: [{ coding: [{ system: ACT_REASON, code: 'ETREAT', display: 'Emergency Treatment' }], ...(n.agent.breakGlass ? { text: n.agent.breakGlass } : {}) }] } : {}),
    payload: [{ contentString: noticeText(n.agent, n.kind, n.interaction, n.newDocuments) }],
  };
}

/** One professional's accesses of a day, as the digest counts them. */
export interface DigestLine {
  agent: AuditAgent;
  accesses: number;
  emergency: boolean;
}

/** The AuditEvent's user agent as the notices name it (its display, its professions, break-glass). */
export function agentOfEvent(event: Record<string, any>): AuditAgent | undefined {
  const user = (event.agent ?? []).find((a: Record<string, any>) => a.requestor);
  if (!user) return undefined;
  const professions: Coding[] = (user.role ?? []).map((r: Record<string, any>) => r.coding?.[0]).filter(Boolean);
  return { reference: user.who?.reference, display: user.who?.display, professions, ...(user.purposeOfUse ? { breakGlass: user.purposeOfUse[0]?.text ?? '' } : {}) };
}

/** The day's events of professionals, one line per professional, in the order they first came. */
export function digestLines(events: Record<string, any>[]): DigestLine[] {
  const lines = new Map<string, DigestLine>();
  for (const event of events) {
    if (event.outcome !== '0') continue;
    const agent = agentOfEvent(event);
    if (!agent || !isProfessional(agent)) continue;
    const line = lines.get(agent.reference!) ?? { agent, accesses: 0, emergency: false };
    line.accesses++;
    line.emergency ||= agent.breakGlass !== undefined;
    lines.set(agent.reference!, line);
  }
  return [...lines.values()];
}

/** The digest of one patient's day (`YYYY-MM-DD`): one Communication, identified by patient and day. */
export function digestOf(patient: string, day: string, lines: DigestLine[], events: string[], sent: string): Record<string, unknown> {
  const text = `Le ${day.split('-').reverse().join('/')}, ${lines.length} professionnel${lines.length > 1 ? 's ont' : ' a'} accédé à votre dossier : ${lines
    .map((l) => `${actorLabel(l.agent)} (${l.accesses} accès${l.emergency ? ', dont en urgence' : ''})`)
    .join(' ; ')}.`;
  return {
    resourceType: 'Communication',
    identifier: [{ system: DIGEST_IDENTIFIER, value: `${patient}/${day}` }],
    language: 'fr-FR',
    status: 'completed',
    category: [notification, { coding: [{ system: DMP_NOTIFICATION, code: 'daily-digest' }] }],
    priority: lines.some((l) => l.emergency) ? 'urgent' : 'routine',
    subject: { reference: `Patient/${patient}` },
    about: events.map((id) => ({ reference: `AuditEvent/${id}` })),
    sent,
    recipient: [{ reference: `Patient/${patient}` }],
    sender: { reference: SERVER_DEVICE },
    payload: [{ contentString: text }],
  };
}
