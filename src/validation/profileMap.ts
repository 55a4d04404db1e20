import fs from 'node:fs';
import path from 'node:path';

/**
 * Which of our profiles applies to what (profiles/profile-map.json, docs/decisions/014-integrity.md):
 * the profiles every resource of a type is checked against whether it claims them or not,
 * and the official profiles (FR Core, PDSm, IHE MHD) that one of ours implements.
 */
export interface ProfileMap {
  defaults: DefaultProfile[];
  /** official canonical → our profile's canonical */
  implements: Record<string, string>;
  /** official canonicals we know and do not implement */
  notImplemented: string[];
  /** The profiles an MHD submission to a national record meets, claimed or not (docs/decisions/029-dmp-submissions.md). */
  submissions?: SubmissionProfiles;
}

/** `record`: the profile that makes a Patient a national record (one carrying an INS); then the submission's own profiles. */
export interface SubmissionProfiles {
  record: string;
  submissionSet: string;
  documentReference: string;
  folder: string;
}

export interface DefaultProfile {
  resourceType: string;
  profile: string;
  /** Only resources carrying one of these identifiers (a Patient with an INS). */
  when?: {
    identifierSystems: string[];
    exceptIdentifierTypes?: { system: string; code: string }[];
    exceptIdentifierUses?: string[];
  };
}

export const EMPTY_PROFILE_MAP: ProfileMap = Object.freeze({ defaults: [], implements: {}, notImplemented: [] });

export function loadProfileMap(profilesDir: string): ProfileMap {
  const file = path.join(profilesDir, 'profile-map.json');
  if (!fs.existsSync(file)) return EMPTY_PROFILE_MAP;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ProfileMap>;
  return { defaults: raw.defaults ?? [], implements: raw.implements ?? {}, notImplemented: raw.notImplemented ?? [], ...(raw.submissions ? { submissions: raw.submissions } : {}) };
}

/** The profiles a submission for `patient` meets: those of the map when the Patient is a national record, else none. */
export function submissionProfilesFor(map: ProfileMap, patient: Record<string, unknown>): SubmissionProfiles | undefined {
  const submissions = map.submissions;
  return submissions && defaultProfilesOf(map, patient).includes(submissions.record) ? submissions : undefined;
}

/** The default profiles that apply to `resource`. */
export function defaultProfilesOf(map: ProfileMap, resource: Record<string, unknown>): string[] {
  return map.defaults.filter((d) => d.resourceType === resource.resourceType && (!d.when || carries(resource, d.when))).map((d) => d.profile);
}

function carries(resource: Record<string, unknown>, when: NonNullable<DefaultProfile['when']>): boolean {
  if (!Array.isArray(resource.identifier)) return false;
  return resource.identifier.some((i: any) => {
    if (!i || typeof i !== 'object' || !when.identifierSystems.includes(i.system)) return false;
    if (when.exceptIdentifierUses?.includes(i.use)) return false;
    const codings: any[] = Array.isArray(i.type?.coding) ? i.type.coding : [];
    return !codings.some((c) => when.exceptIdentifierTypes?.some((t) => t.system === c?.system && t.code === c?.code));
  });
}
