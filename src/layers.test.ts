import fs from 'node:fs';
import path from 'node:path';

/**
 * The edge is the only place that knows HTTP (ARCHITECTURE.md): nothing below it imports
 * src/http/. The server's entry (src/server.ts) builds the app and is the one exception.
 */
const SRC = path.join(__dirname);
const ALLOWED = new Set(['server.ts']);

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

it('no module outside src/http/ imports from it, but the server entry', () => {
  const offenders: string[] = [];
  for (const file of sources(SRC)) {
    const rel = path.relative(SRC, file);
    if (rel.startsWith(`http${path.sep}`) || ALLOWED.has(rel)) continue;
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/from '(\.[^']*)'/g)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]));
      if (target === 'http' || target.startsWith(`http${path.sep}`)) offenders.push(`${rel} imports ${m[1]}`);
    }
  }
  expect(offenders).toEqual([]);
});

it('finds an import of the edge when there is one (the scan works)', () => {
  const target = path.relative(SRC, path.resolve(path.join(SRC, 'interactions'), '../http/app'));
  expect(target).toBe(path.join('http', 'app'));
});
