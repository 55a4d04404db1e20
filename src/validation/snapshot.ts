/**
 * Snapshot generation for differential-only StructureDefinitions: the base
 * definition's snapshot with the differential applied (constraints on existing
 * paths, datatype children expanded on demand, slices, type-slices, choice
 * renames such as `valueQuantity`, type-profile narrowing). Good enough for
 * validation; not a full implementation of the FHIR snapshot algorithm (no
 * mapping/comment merging rules, no checks that the constraint is legal).
 */

export interface SnapshotResult {
  elements: any[];
  issues: string[];
}

const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

const CORE = 'http://hl7.org/fhir/StructureDefinition/';

function cap(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** split an element id into segments ('.' separated, slice names kept with their element name) */
function segments(id: string): string[] {
  return id.split('.');
}

export function generateSnapshot(sd: any, resolve: (url: string) => any | undefined): SnapshotResult {
  const issues: string[] = [];
  const base = sd.baseDefinition ? resolve(sd.baseDefinition) : undefined;
  if (!base?.snapshot?.element?.length) {
    return { elements: [], issues: [`Profile ${sd.url}: base definition ${sd.baseDefinition} could not be resolved`] };
  }
  const els: any[] = clone(base.snapshot.element);
  // a derived type whose base has a different root name (rare: constraint on a
  // profile whose type is the same) - normalise the root path/id to sd.type
  const rootName: string = els[0].path;
  if (sd.type && rootName !== sd.type && sd.derivation === 'constraint') {
    for (const e of els) {
      e.path = sd.type + e.path.slice(rootName.length);
      if (e.id) e.id = sd.type + e.id.slice(rootName.length);
    }
  }
  for (const e of els) if (!e.id) e.id = e.sliceName ? `${e.path}:${e.sliceName}` : e.path;

  const indexOf = (id: string) => els.findIndex((e) => e.id === id);
  const hasChildren = (i: number) => i + 1 < els.length && els[i + 1].id.startsWith(els[i].id + '.');
  const subtreeEnd = (i: number) => {
    const id = els[i].id;
    let j = i + 1;
    while (j < els.length && (els[j].id.startsWith(id + '.') || els[j].id.startsWith(id + ':'))) j++;
    return j;
  };

  /** insert the children of element i (from its type, or its contentReference) right after it */
  const expandChildren = (i: number, typeCode?: string): boolean => {
    const p = els[i];
    if (p.contentReference) {
      const refId = p.contentReference.slice(p.contentReference.indexOf('#') + 1);
      const ri = els.findIndex((e) => e.id === refId || (e.path === refId && !e.sliceName));
      if (ri < 0) return false;
      const refEl = els[ri];
      const kids: any[] = [];
      for (let j = ri + 1; j < els.length && els[j].id.startsWith(refEl.id + '.'); j++) {
        if (els[j].id.slice(refEl.id.length).includes(':')) continue;
        const k = clone(els[j]);
        k.id = p.id + k.id.slice(refEl.id.length);
        k.path = p.path + k.path.slice(refEl.path.length);
        kids.push(k);
      }
      delete p.contentReference;
      p.type = clone(refEl.type);
      els.splice(i + 1, 0, ...kids);
      return true;
    }
    const types: any[] = p.type ?? [];
    let t = typeCode ? types.find((x) => x.code === typeCode) : types.length === 1 ? types[0] : undefined;
    if (!t && typeCode) t = { code: typeCode };
    if (!t) return false;
    const profile = t.profile?.[0];
    const typeSd = (profile && resolve(profile)) || resolve(CORE + t.code);
    const tEls: any[] | undefined = typeSd?.snapshot?.element;
    if (!tEls?.length) return false;
    const rootId: string = tEls[0].id ?? tEls[0].path;
    const rootPath: string = tEls[0].path;
    const kids = tEls.slice(1).map((e: any) => {
      const k = clone(e);
      const kid: string = k.id ?? (k.sliceName ? `${k.path}:${k.sliceName}` : k.path);
      k.id = p.id + kid.slice(rootId.length);
      k.path = p.path + k.path.slice(rootPath.length);
      return k;
    });
    els.splice(i + 1, 0, ...kids);
    return true;
  };

  /** find (creating as needed) the element with this id; returns its index and an optional narrowed type */
  const ensure = (id: string): { i: number; narrow?: string } => {
    const found = indexOf(id);
    if (found >= 0) return { i: found };
    const segs = segments(id);
    if (segs.length < 2) return { i: -1 };
    const last = segs[segs.length - 1];
    const parentId = segs.slice(0, -1).join('.');
    const colon = last.indexOf(':');
    if (colon >= 0) {
      const name = last.slice(0, colon);
      const sliceSpec = last.slice(colon + 1);
      const slash = sliceSpec.lastIndexOf('/');
      const par = ensure(parentId);
      if (par.i < 0) return { i: -1 };
      const ownerId = els[par.i].id + '.' + name + (slash >= 0 ? ':' + sliceSpec.slice(0, slash) : '');
      const sliceName = sliceSpec;
      const owner = ensure(ownerId);
      if (owner.i < 0) return { i: -1 };
      const o = els[owner.i];
      const s = clone(o);
      delete s.slicing;
      s.id = o.id + ':' + sliceName.slice(slash + 1);
      if (slash >= 0) s.id = o.id + '/' + sliceName.slice(slash + 1);
      s.sliceName = sliceName;
      s.min = 0;
      // type slice on a choice: value[x]:valueQuantity
      if (o.path.endsWith('[x]')) {
        const prefix = o.path.slice(o.path.lastIndexOf('.') + 1, -3);
        const tn = sliceName.startsWith(prefix) ? sliceName.slice(prefix.length) : '';
        const t = (o.type ?? []).find((x: any) => cap(x.code) === tn);
        if (t) s.type = [clone(t)];
        if (!o.slicing) o.slicing = { discriminator: [{ type: 'type', path: '$this' }], rules: 'open', ordered: false };
      }
      // the slice's children (if the owner has explicit ones) are copied too
      const end = subtreeEnd(owner.i);
      const kids: any[] = [];
      for (let j = owner.i + 1; j < end; j++) {
        const rel = els[j].id.slice(o.id.length);
        if (!rel.startsWith('.') || rel.includes(':')) continue;
        const k = clone(els[j]);
        k.id = s.id + rel;
        kids.push(k);
      }
      els.splice(end, 0, s, ...kids);
      return { i: end };
    }
    const parent = ensure(parentId);
    if (parent.i < 0) return { i: -1 };
    const pi = parent.i;
    if (!hasChildren(pi)) {
      if (!expandChildren(pi, parent.narrow)) return { i: -1 };
    }
    const pid = els[pi].id;
    const again = indexOf(pid + '.' + last);
    if (again >= 0) return { i: again };
    // choice rename: valueQuantity → value[x] narrowed to Quantity
    for (let j = pi + 1; j < els.length && els[j].id.startsWith(pid + '.'); j++) {
      const rel = els[j].id.slice(pid.length + 1);
      if (rel.includes('.') || rel.includes(':') || !rel.endsWith('[x]')) continue;
      const prefix = rel.slice(0, -3);
      if (last.startsWith(prefix) && last.length > prefix.length) {
        const tn = last.slice(prefix.length);
        const t = (els[j].type ?? []).find((x: any) => cap(x.code) === tn);
        if (t) return { i: j, narrow: t.code };
      }
    }
    return { i: -1 };
  };

  const mergeInto = (e: any, d: any, narrow?: string) => {
    for (const [k, v] of Object.entries(d)) {
      if (k === 'id' || k === 'path') continue;
      if (k === 'constraint') {
        const keys = new Set((e.constraint ?? []).map((c: any) => c.key));
        e.constraint = [...(e.constraint ?? []), ...(v as any[]).filter((c) => !keys.has(c.key))];
        continue;
      }
      if (k === 'slicing') {
        e.slicing = { ...(e.slicing ?? {}), ...(v as any) };
        continue;
      }
      if (k === 'binding') {
        e.binding = { ...(e.binding ?? {}), ...(v as any) };
        continue;
      }
      if (k === 'type') {
        // keep the base's extension on types (fhir-type) only if codes match
        e.type = clone(v);
        continue;
      }
      if (k.startsWith('fixed') || k.startsWith('pattern')) {
        for (const ek of Object.keys(e)) if (ek.startsWith('fixed') || ek.startsWith('pattern')) delete e[ek];
      }
      e[k] = clone(v);
    }
    if (narrow && !d.type && e.type?.length > 1) {
      e.type = e.type.filter((t: any) => t.code === narrow);
    }
  };

  const activeSlice = new Map<string, string>();
  const rootId = els[0].id;
  for (const d0 of sd.differential?.element ?? []) {
    const d = d0;
    let id: string | undefined = d.id;
    if (!id) {
      const path: string = d.path;
      if (d.sliceName) {
        // slice of the element at `path`, inside the active slice context of an ancestor
        let prefixed = path;
        for (const [p, sid] of activeSlice) if (path.startsWith(p + '.')) prefixed = sid + path.slice(p.length);
        id = `${prefixed}:${d.sliceName}`;
        activeSlice.set(path, id);
      } else {
        let best = '';
        for (const p of activeSlice.keys()) if (path.startsWith(p + '.') && p.length > best.length) best = p;
        id = best ? activeSlice.get(best)! + path.slice(best.length) : path;
        if (activeSlice.has(path)) activeSlice.delete(path);
      }
    }
    // the differential may name the root by the type (or the base's root name)
    if (id === rootId || id === sd.type || !id.includes('.')) {
      mergeInto(els[0], d);
      continue;
    }
    if (!id.startsWith(rootId + '.')) {
      const dot = id.indexOf('.');
      id = rootId + id.slice(dot);
    }
    const r = ensure(id);
    if (r.i < 0) {
      issues.push(`Profile ${sd.url}: differential element ${id} could not be placed in the snapshot`);
      continue;
    }
    mergeInto(els[r.i], d, r.narrow);
  }
  return { elements: els, issues };
}
