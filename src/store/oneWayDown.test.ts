import fs from 'node:fs';
import path from 'node:path';

/**
 * One way down (docs/decisions/008-access-model.md): every statement that reads or writes
 * resource rows is written in src/store/, where each read takes the caller's visibility
 * from its Session. This scan fails when code elsewhere sends SQL of its own or names a
 * table of resource rows in SQL text.
 */
const SRC = path.resolve(__dirname, '..');
const STORE = path.join(SRC, 'store');

/** Files outside src/store/ that may send a statement, and why: none of them touches resource rows. */
const ALLOWED_STATEMENTS: Record<string, string> = {
  'http/app.ts': 'the readiness probe: SELECT 1',
};

/** A statement sent outside the store: through a Session, a knex handle or a raw SQL call. */
const SENDS_SQL = /\bsession\.query\s*[<(]|\.raw\s*\(|\bknex\s*\(\s*['"`]|\.knex\s*\(/;
/** SQL text naming a table that holds resource rows, their history, their index or their content. */
const RESOURCE_TABLE = /\b(FROM|JOIN|INTO|UPDATE|EXISTS\s*\(\s*SELECT\s+1\s+FROM)\s+(resource|resource_history|idx_[a-z_]+|binary_content|binary_chunk|conformance_version)\b/i;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return full === STORE ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** The offending lines of a source text: statements sent, and SQL naming resource tables. */
export function offences(text: string, allowStatements: boolean): string[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter(({ line }) => (!allowStatements && SENDS_SQL.test(line)) || RESOURCE_TABLE.test(line))
    .map(({ line, n }) => `${n}: ${line}`);
}

describe('one way down', () => {
  it('the scan recognises a statement sent outside the store and SQL on resource tables', () => {
    expect(offences(`const rows = await session.query('SELECT 1');`, false)).toHaveLength(1);
    expect(offences(`await session.query<Row>(sql, bindings);`, false)).toHaveLength(1);
    expect(offences(`await ctx.db.knex.raw('SELECT 1');`, false)).toHaveLength(1);
    expect(offences("const sql = `SELECT r.id FROM resource r WHERE r.id = ?`;", true)).toHaveLength(1);
    expect(offences("`EXISTS (SELECT 1 FROM idx_reference pc WHERE pc.target_id = ?)`", true)).toHaveLength(1);
    expect(offences('for (const resource of files) write(resource);', false)).toHaveLength(0);
  });

  it('no file outside src/store/ sends SQL on resource rows', () => {
    const found: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      for (const o of offences(fs.readFileSync(file, 'utf8'), rel in ALLOWED_STATEMENTS)) found.push(`src/${rel}:${o}`);
    }
    expect(found).toEqual([]);
  });

  it('the allowed files still exist (a stale entry would hide a new file of the same name)', () => {
    for (const rel of Object.keys(ALLOWED_STATEMENTS)) expect(fs.existsSync(path.join(SRC, rel))).toBe(true);
  });
});
