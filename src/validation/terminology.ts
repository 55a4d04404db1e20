/**
 * Local terminology: CodeSystem concept indexes and ValueSet expansion from
 * compose include/exclude, over the CodeSystems we have (R4 core ones from
 * valuesets.json / v3-codesystems.json / v2-tables.json and our own).
 *
 * Membership answers are three-valued: true, false, or undefined when it cannot
 * be decided locally (SNOMED CT, LOINC, UCUM, BCP-47... are not shipped, a
 * filter we do not support, an unknown imported ValueSet): undefined never
 * produces an error.
 */

import fs from 'node:fs';
import path from 'node:path';
import { matchesWhole, patternProblem } from './userRegex';

/**
 * Codes known beyond the code system versions bundled with R4 (profiles/terminology/additions.json),
 * each with the reason it is there: the access contract's treating-physician role, for one.
 */
const TERMINOLOGY_ADDITIONS: Map<string, Map<string, ConceptInfo>> = (() => {
  // src/validation (ts-jest) and dist/src/validation (compiled) both reach the repository's profiles/
  const file = ['../..', '../../..'].map((up) => path.resolve(__dirname, up, 'profiles', 'terminology', 'additions.json')).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`profiles/terminology/additions.json not found from ${__dirname}`);
  const out = new Map<string, Map<string, ConceptInfo>>();
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as { codeSystems: Record<string, { code: string; display?: string }[]> };
  for (const [system, concepts] of Object.entries(data.codeSystems)) {
    out.set(system, new Map(concepts.map((c) => [c.code, { code: c.code, display: c.display, designations: [], parents: [], children: [], properties: {}, abstract: false, inactive: false }])));
  }
  return out;
})();

export interface ConceptInfo {
  code: string;
  display?: string;
  designations: string[];
  parents: string[];
  children: string[];
  properties: Record<string, any[]>;
  abstract: boolean;
  inactive: boolean;
}

export interface CodeSystemIndex {
  url: string;
  version?: string;
  name: string;
  complete: boolean;
  caseSensitive: boolean;
  concepts: Map<string, ConceptInfo>;
  /** lower-case code → code, for case-insensitive systems */
  lower?: Map<string, string>;
}

interface Expansion {
  /** system → (code → display) */
  codes: Map<string, Map<string, string | undefined>>;
  /** systems for which membership cannot be decided */
  partial: Set<string>;
  /** some part could not be decided at all (unknown imported value set...) */
  unknown: boolean;
}

export interface TerminologySource {
  valueSet(url: string): any | undefined;
  codeSystem(url: string): any | undefined;
}

/** Code systems we know we do not have: never flag their codes. */
const EXTERNAL_SYSTEMS = new Set([
  'http://snomed.info/sct',
  'http://loinc.org',
  'http://unitsofmeasure.org',
  'urn:ietf:bcp:47',
  'urn:ietf:bcp:13',
  'urn:iso:std:iso:3166',
  'urn:iso:std:iso:4217',
  'http://www.nlm.nih.gov/research/umls/rxnorm',
  'http://hl7.org/fhir/sid/icd-10',
  'http://hl7.org/fhir/sid/icd-10-cm',
  'http://hl7.org/fhir/sid/icd-9-cm',
  'http://hl7.org/fhir/sid/cvx',
  'http://hl7.org/fhir/sid/ndc',
  'http://www.ama-assn.org/go/cpt',
  'http://nucc.org/provider-taxonomy',
  'urn:oid:1.2.36.1.2001.1005.17',
]);

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

export class Terminology {
  private csCache = new Map<string, CodeSystemIndex | null>();
  private expCache = new Map<string, Expansion | null>();
  private expanding = new Set<string>();

  constructor(private source: TerminologySource) {}

  clear(): void {
    this.csCache.clear();
    this.expCache.clear();
  }

  codeSystem(url: string): CodeSystemIndex | undefined {
    url = stripVersion(url);
    const hit = this.csCache.get(url);
    if (hit !== undefined) return hit ?? undefined;
    const cs = this.source.codeSystem(url);
    const idx = cs ? indexCodeSystem(cs) : null;
    this.csCache.set(url, idx);
    return idx ?? undefined;
  }

  /** Is the system one we know we cannot check? */
  isExternal(system: string): boolean {
    return EXTERNAL_SYSTEMS.has(system) || system.startsWith('urn:oid:') || system.startsWith('urn:uuid:');
  }

  /** Look a code up in its CodeSystem: true / false / undefined (cannot say). */
  lookup(system: string, code: string): { found: boolean; concept?: ConceptInfo; cs: CodeSystemIndex } | undefined {
    const cs = this.codeSystem(system);
    if (!cs) return undefined;
    const c = findConcept(cs, code) ?? TERMINOLOGY_ADDITIONS.get(system)?.get(code);
    if (c) return { found: true, concept: c, cs };
    if (!cs.complete) return undefined;
    return { found: false, cs };
  }

  private expansion(vsUrl: string): Expansion | undefined {
    vsUrl = stripVersion(vsUrl);
    const hit = this.expCache.get(vsUrl);
    if (hit !== undefined) return hit ?? undefined;
    if (this.expanding.has(vsUrl)) return { codes: new Map(), partial: new Set(), unknown: true };
    const vs = this.source.valueSet(vsUrl);
    if (!vs) {
      this.expCache.set(vsUrl, null);
      return undefined;
    }
    this.expanding.add(vsUrl);
    let exp: Expansion;
    try {
      exp = this.expandResource(vs);
    } finally {
      this.expanding.delete(vsUrl);
    }
    this.expCache.set(vsUrl, exp);
    return exp;
  }

  private expandResource(vs: any): Expansion {
    const exp: Expansion = { codes: new Map(), partial: new Set(), unknown: false };
    if (vs.compose) {
      for (const inc of vs.compose.include ?? []) {
        const part = this.includePart(inc);
        mergeInto(exp, part);
      }
      for (const exc of vs.compose.exclude ?? []) {
        const part = this.includePart(exc);
        for (const [sys, codes] of part.codes) {
          const mine = exp.codes.get(sys);
          if (mine) for (const c of codes.keys()) mine.delete(c);
        }
        for (const sys of part.partial) if (exp.codes.has(sys)) exp.partial.add(sys);
        if (part.unknown) exp.unknown = true;
      }
    } else if (vs.expansion?.contains) {
      const walk = (list: any[]) => {
        for (const c of list) {
          if (c.system && c.code) addCode(exp, c.system, c.code, c.display);
          if (c.contains) walk(c.contains);
        }
      };
      walk(vs.expansion.contains);
    } else {
      exp.unknown = true;
    }
    return exp;
  }

  private includePart(inc: any): Expansion {
    let sysPart: Expansion | undefined;
    if (inc.system) {
      const system: string = inc.system;
      sysPart = { codes: new Map(), partial: new Set(), unknown: false };
      const cs = this.codeSystem(system);
      if (inc.concept) {
        for (const c of inc.concept) {
          const known = cs ? findConcept(cs, c.code) : undefined;
          addCode(sysPart, system, c.code, c.display ?? known?.display);
        }
      } else if (!cs || !cs.complete) {
        sysPart.partial.add(system);
      } else if (inc.filter?.length) {
        const codes = this.applyFilters(cs, inc.filter);
        if (!codes) sysPart.partial.add(system);
        else for (const c of codes) addCode(sysPart, system, c, cs.concepts.get(c)?.display);
      } else {
        for (const c of cs.concepts.values()) addCode(sysPart, system, c.code, c.display);
      }
    }
    if (inc.valueSet?.length) {
      let acc: Expansion | undefined = sysPart;
      for (const url of inc.valueSet as string[]) {
        const e = this.expansion(url) ?? { codes: new Map(), partial: new Set(), unknown: true };
        acc = acc ? intersect(acc, e) : cloneExp(e);
      }
      return acc!;
    }
    return sysPart ?? { codes: new Map(), partial: new Set(), unknown: true };
  }

  private applyFilters(cs: CodeSystemIndex, filters: any[]): Set<string> | undefined {
    let result: Set<string> | undefined;
    for (const f of filters) {
      const s = this.applyFilter(cs, f);
      if (!s) return undefined;
      result = result ? new Set([...result].filter((c) => s.has(c))) : s;
    }
    return result;
  }

  private applyFilter(cs: CodeSystemIndex, f: any): Set<string> | undefined {
    const { property, op, value } = f;
    const all = [...cs.concepts.keys()];
    if (property === 'concept' || property === 'code') {
      if (op === 'is-a' || op === 'descendent-of') {
        const out = descendants(cs, value);
        if (op === 'is-a' && cs.concepts.has(value)) out.add(value);
        return out;
      }
      if (op === 'is-not-a') {
        const ex = descendants(cs, value);
        ex.add(value);
        return new Set(all.filter((c) => !ex.has(c)));
      }
      if (op === '=') return new Set(cs.concepts.has(value) ? [value] : []);
      if (op === 'in') return new Set(String(value).split(',').map((s) => s.trim()).filter((c) => cs.concepts.has(c)));
      if (op === 'not-in') {
        const ex = new Set(String(value).split(',').map((s) => s.trim()));
        return new Set(all.filter((c) => !ex.has(c)));
      }
      if (op === 'regex') {
        // a ValueSet may be uploaded by anyone who can write: its pattern runs on RE2, in linear
        // time; one RE2 cannot run is refused at upload (valueSetPatternIssues) and undecidable here
        if (typeof value !== 'string' || patternProblem(value)) return undefined;
        return new Set(all.filter((c) => matchesWhole(value, c)));
      }
      if (op === 'generalizes') {
        const out = new Set<string>([value]);
        const stack = [value];
        while (stack.length) {
          const c = cs.concepts.get(stack.pop()!);
          for (const p of c?.parents ?? []) if (!out.has(p)) (out.add(p), stack.push(p));
        }
        return out;
      }
      return undefined;
    }
    if (op === '=' || op === 'exists' || op === 'in') {
      const out = new Set<string>();
      for (const c of cs.concepts.values()) {
        const vals = c.properties[property];
        if (op === 'exists') {
          if ((vals !== undefined) === (String(value) === 'true')) out.add(c.code);
        } else if (vals) {
          const wanted = op === 'in' ? String(value).split(',') : [String(value)];
          if (vals.some((v) => wanted.includes(String(v)))) out.add(c.code);
        } else if (property === 'notSelectable' && String(value) === 'false' && !c.abstract) {
          out.add(c.code);
        }
      }
      return out;
    }
    return undefined;
  }

  /** Membership of a code in a ValueSet: true / false / undefined (cannot decide). */
  inValueSet(vsUrl: string, system: string | undefined, code: string): boolean | undefined {
    const exp = this.expansion(vsUrl);
    if (!exp) return undefined;
    if (system !== undefined) {
      const codes = exp.codes.get(system);
      if (codes) {
        if (codes.has(code)) return true;
        const cs = this.codeSystem(system);
        if (cs && !cs.caseSensitive && cs.lower) {
          const real = cs.lower.get(code.toLowerCase());
          if (real && codes.has(real)) return true;
        }
      }
      if (exp.partial.has(system) || exp.unknown) return undefined;
      return false;
    }
    for (const codes of exp.codes.values()) if (codes.has(code)) return true;
    if (exp.partial.size || exp.unknown) return undefined;
    return false;
  }

  /** A full expansion, when the value set can be expanded completely here. */
  expand(vsUrl: string): { system: string; code: string; display?: string }[] | undefined {
    const exp = this.expansion(vsUrl);
    if (!exp || exp.unknown || exp.partial.size) return undefined;
    const out: { system: string; code: string; display?: string }[] = [];
    for (const [system, codes] of exp.codes) {
      for (const [code, display] of codes) {
        const cs = this.codeSystem(system);
        const c = cs?.concepts.get(code);
        if (c?.abstract) continue;
        out.push(display !== undefined ? { system, code, display } : { system, code });
      }
    }
    return out;
  }

  /** Does the ValueSet exist (locally)? */
  hasValueSet(url: string): boolean {
    return !!this.source.valueSet(stripVersion(url));
  }
}

function findConcept(cs: CodeSystemIndex, code: string): ConceptInfo | undefined {
  const c = cs.concepts.get(code);
  if (c || cs.caseSensitive || !cs.lower) return c;
  const real = cs.lower.get(code.toLowerCase());
  return real ? cs.concepts.get(real) : undefined;
}

function descendants(cs: CodeSystemIndex, code: string): Set<string> {
  const out = new Set<string>();
  const stack = [code];
  while (stack.length) {
    const c = cs.concepts.get(stack.pop()!);
    for (const ch of c?.children ?? []) {
      if (!out.has(ch)) {
        out.add(ch);
        stack.push(ch);
      }
    }
  }
  return out;
}

function addCode(exp: Expansion, system: string, code: string, display?: string): void {
  let m = exp.codes.get(system);
  if (!m) exp.codes.set(system, (m = new Map()));
  if (!m.has(code)) m.set(code, display);
}

function mergeInto(exp: Expansion, part: Expansion): void {
  for (const [sys, codes] of part.codes) for (const [c, d] of codes) addCode(exp, sys, c, d);
  for (const s of part.partial) exp.partial.add(s);
  if (part.unknown) exp.unknown = true;
}

function cloneExp(e: Expansion): Expansion {
  const out: Expansion = { codes: new Map(), partial: new Set(e.partial), unknown: e.unknown };
  mergeInto(out, e);
  return out;
}

function intersect(a: Expansion, b: Expansion): Expansion {
  const out: Expansion = { codes: new Map(), partial: new Set(), unknown: a.unknown || b.unknown };
  for (const [sys, codes] of a.codes) {
    const other = b.codes.get(sys);
    for (const [c, d] of codes) {
      if (other?.has(c)) addCode(out, sys, c, d);
      else if (b.partial.has(sys) || b.unknown) out.partial.add(sys);
    }
  }
  for (const s of a.partial) if (b.codes.has(s) || b.partial.has(s) || b.unknown) out.partial.add(s);
  return out;
}

export function indexCodeSystem(cs: any): CodeSystemIndex {
  const concepts = new Map<string, ConceptInfo>();
  const parentProps = new Set(['parent', 'subsumedBy']);
  const walk = (list: any[], parent?: string) => {
    for (const c of list ?? []) {
      if (typeof c?.code !== 'string') continue;
      let info = concepts.get(c.code);
      if (!info) {
        info = {
          code: c.code,
          display: c.display,
          designations: (c.designation ?? []).map((d: any) => d.value).filter((v: any) => typeof v === 'string'),
          parents: [],
          children: [],
          properties: {},
          abstract: false,
          inactive: false,
        };
        concepts.set(c.code, info);
      }
      if (parent) {
        info.parents.push(parent);
      }
      for (const p of c.property ?? []) {
        const v = p.valueCode ?? p.valueString ?? p.valueBoolean ?? p.valueInteger ?? p.valueCoding?.code ?? p.valueDateTime ?? p.valueDecimal;
        (info.properties[p.code] ??= []).push(v);
        if (parentProps.has(p.code) && typeof v === 'string') info.parents.push(v);
        if (p.code === 'notSelectable' && v === true) info.abstract = true;
        if ((p.code === 'status' && (v === 'retired' || v === 'inactive')) || (p.code === 'inactive' && v === true)) {
          info.inactive = true;
        }
      }
      if (c.concept) walk(c.concept, c.code);
    }
  };
  walk(cs.concept ?? []);
  // children from parents
  for (const info of concepts.values()) {
    for (const p of info.parents) concepts.get(p)?.children.push(info.code);
    for (const ch of info.properties['child'] ?? []) {
      if (typeof ch === 'string' && concepts.has(ch)) {
        info.children.push(ch);
        concepts.get(ch)!.parents.push(info.code);
      }
    }
  }
  const caseSensitive = cs.caseSensitive !== false;
  const idx: CodeSystemIndex = {
    url: cs.url,
    version: cs.version,
    name: cs.title ?? cs.name ?? cs.url,
    complete: cs.content === 'complete' || cs.content === undefined,
    caseSensitive,
    concepts,
  };
  if (!caseSensitive) {
    idx.lower = new Map();
    for (const c of concepts.keys()) idx.lower.set(c.toLowerCase(), c);
  }
  return idx;
}
