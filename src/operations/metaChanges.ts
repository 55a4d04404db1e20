import { BadRequest } from '../errors';

/**
 * The profiles, tags and security labels of a Meta as sets ($meta-add, $meta-delete,
 * http://hl7.org/fhir/R4/resource-operation-meta-add.html): a tag or a label is its system
 * and code (display and version are ignored when matching), a profile its full URL. Pure.
 */

export interface MetaCoding {
  system?: string;
  code: string;
  [key: string]: unknown;
}

/** The part of a Meta these operations read and change. */
export interface MetaSets {
  profile?: string[];
  tag?: MetaCoding[];
  security?: MetaCoding[];
}

type Json = Record<string, unknown>;

const sameCoding = (a: MetaCoding, b: MetaCoding) => a.system === b.system && a.code === b.code;

function codings(meta: Json, name: 'tag' | 'security'): MetaCoding[] | undefined {
  const list = meta[name];
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new BadRequest(`meta.${name} must be an array of Codings`, 'structure');
  return list.map((c, i) => {
    if (!c || typeof c !== 'object' || Array.isArray(c)) throw new BadRequest(`meta.${name}[${i}] must be a Coding`, 'structure');
    const coding = c as Json;
    // without a code a tag or a label has no identity to add or delete
    if (typeof coding.code !== 'string' || coding.code === '') throw new BadRequest(`meta.${name}[${i}] needs a code`, 'required');
    if (coding.system !== undefined && typeof coding.system !== 'string') throw new BadRequest(`meta.${name}[${i}].system must be a uri`, 'structure');
    return coding as MetaCoding;
  });
}

/** The profiles, tags and labels of a Meta sent to $meta-add / $meta-delete, checked; other elements are not used. */
export function metaSets(value: unknown): MetaSets {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new BadRequest('The "meta" parameter must be a Meta (valueMeta)', 'structure');
  const meta = value as Json;
  const out: MetaSets = {};
  if (meta.profile !== undefined) {
    if (!Array.isArray(meta.profile) || meta.profile.some((p) => typeof p !== 'string' || p === '')) throw new BadRequest('meta.profile must be an array of canonical URLs', 'structure');
    out.profile = meta.profile as string[];
  }
  const tag = codings(meta, 'tag');
  if (tag) out.tag = tag;
  const security = codings(meta, 'security');
  if (security) out.security = security;
  return out;
}

/** `meta` with what `add` holds and it does not, appended in the order given. */
export function addToMeta(meta: Json, add: MetaSets): Json {
  const out: Json = { ...meta };
  if (add.profile?.length) {
    const profiles = [...((meta.profile as string[] | undefined) ?? [])];
    for (const p of add.profile) if (!profiles.includes(p)) profiles.push(p);
    out.profile = profiles;
  }
  for (const name of ['tag', 'security'] as const) {
    if (!add[name]?.length) continue;
    const list = [...((meta[name] as MetaCoding[] | undefined) ?? [])];
    for (const c of add[name]!) if (!list.some((x) => sameCoding(x, c))) list.push(c);
    out[name] = list;
  }
  return out;
}

/** `meta` less what `remove` names; a list left empty is removed. Naming what is absent is not an error. */
export function deleteFromMeta(meta: Json, remove: MetaSets): Json {
  const out: Json = { ...meta };
  if (remove.profile?.length && Array.isArray(meta.profile)) {
    out.profile = (meta.profile as string[]).filter((p) => !remove.profile!.includes(p));
  }
  for (const name of ['tag', 'security'] as const) {
    if (!remove[name]?.length || !Array.isArray(meta[name])) continue;
    out[name] = (meta[name] as MetaCoding[]).filter((x) => !remove[name]!.some((c) => sameCoding(x, c)));
  }
  for (const name of ['profile', 'tag', 'security']) if (Array.isArray(out[name]) && (out[name] as unknown[]).length === 0) delete out[name];
  return out;
}

/** Whether two Metas hold the same profiles, tags and labels, in the same order. */
export function sameSets(a: Json, b: Json): boolean {
  return ['profile', 'tag', 'security'].every((name) => JSON.stringify(a[name] ?? []) === JSON.stringify(b[name] ?? []));
}

/** The profiles, tags and labels of a Meta, as answered by $meta (no version or date). */
export function setsOf(meta: Json): MetaSets {
  const out: MetaSets = {};
  if (Array.isArray(meta.profile) && meta.profile.length) out.profile = meta.profile as string[];
  if (Array.isArray(meta.tag) && meta.tag.length) out.tag = meta.tag as MetaCoding[];
  if (Array.isArray(meta.security) && meta.security.length) out.security = meta.security as MetaCoding[];
  return out;
}
