/**
 * What the record's lifecycle costs (docs/decisions/017-record-lifecycle.md):
 * - `$close?mode=delete` of records of growing size (documents, each with its Binary),
 * - `$close?mode=archive`, and `npm run purge`'s deletion per archived record,
 * - an administrator's Patient search with closed records hidden (a `record_closure`
 *   probe per row) against the legal-hold administrator's (no probe).
 *
 *   npm run bench:lifecycle [-- --documents 200 --records 20 --searches 200]
 *   DATABASE_URL=postgres://… npm run bench:lifecycle
 *
 * Starts the server in-process on a fresh database (in-memory PGlite, or a schema of its
 * own in DATABASE_URL's PostgreSQL, dropped at the end). No assertions: it prints figures.
 */
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { http, startTarget } from '../conformance/harness';
import { purgeArchives } from '../src/dmp/recordLifecycle';

interface Options {
  documents: number;
  records: number;
  searches: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { documents: 200, records: 20, searches: 200 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in o) || !Number.isInteger(value) || value < 1) throw new Error(`usage: bench-lifecycle [--documents 200] [--records 20] [--searches 200]; got "${argv[i]}"`);
    o[key] = value;
    i++;
  }
  return o;
}

const ms = (t0: number) => performance.now() - t0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t = await startTarget();
  try {
    const post = async (path: string, body: unknown, token?: string) => {
      const res = await http(t.base, path, { method: 'POST', json: body, headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${res.text.slice(0, 300)}`);
      return res.body;
    };
    const admin = await t.issuer!.mint({ sub: 'admin-1', scope: 'admin' });
    const legalHold = await t.issuer!.mint({ sub: 'admin-2', scope: 'admin legal-hold' });
    /** A record with `n` documents, each with its Binary, written by transactions of 100 entries. */
    const record = async (n: number) => {
      const patient = await post('Patient', { resourceType: 'Patient', name: [{ family: `Bench-${crypto.randomBytes(3).toString('hex')}` }] });
      for (let done = 0; done < n; done += 50) {
        const entry: unknown[] = [];
        for (let i = done; i < Math.min(n, done + 50); i++) {
          const b = `urn:uuid:${crypto.randomUUID()}`;
          entry.push({ fullUrl: b, resource: { resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: `Patient/${patient.id}` }, data: Buffer.from(`document ${i} `.repeat(50)).toString('base64') }, request: { method: 'POST', url: 'Binary' } });
          entry.push({
            fullUrl: `urn:uuid:${crypto.randomUUID()}`,
            resource: { resourceType: 'DocumentReference', status: 'current', type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] }, category: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument', code: '10' }] }], subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain', url: b } }] },
            request: { method: 'POST', url: 'DocumentReference' },
          });
        }
        await post('', { resourceType: 'Bundle', type: 'transaction', entry });
      }
      return patient;
    };
    console.log(`bench-lifecycle on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (in memory)'}; options ${JSON.stringify(o)}`);

    console.log('\n$close?mode=delete (one transaction, every table of the catalogue):');
    // the first deletion also prepares statements and warms the catalogue: not a figure
    await post(`Patient/${(await record(1)).id}/$close?mode=delete`, { resourceType: 'Parameters' }, admin);
    for (const n of [10, o.documents]) {
      const p = await record(n);
      const t0 = performance.now();
      await post(`Patient/${p.id}/$close?mode=delete`, { resourceType: 'Parameters' }, admin);
      console.log(`  record of ${n} documents (+${n} Binaries): ${ms(t0).toFixed(0)} ms`);
    }

    console.log(`\n$close?mode=archive, then purge, over ${o.records} records of 10 documents:`);
    const archives = [];
    for (let i = 0; i < o.records; i++) archives.push(await record(10));
    const closing: number[] = [];
    for (const p of archives) {
      const t0 = performance.now();
      await post(`Patient/${p.id}/$close?mode=archive`, { resourceType: 'Parameters' }, admin);
      closing.push(ms(t0));
    }
    console.log(`  $close?mode=archive: median ${median(closing).toFixed(1)} ms`);
    const t0 = performance.now();
    const purged = await purgeArchives(t.running!.ctx, { batch: 10, now: new Date(Date.now() + 3651 * 86_400_000), print: () => undefined });
    console.log(`  purge: ${purged} records in ${ms(t0).toFixed(0)} ms (${(ms(t0) / Math.max(purged, 1)).toFixed(1)} ms per record)`);

    console.log(`\nAdministrator's search Patient?_count=50, ${o.searches} times, over 100 open records and ${o.records} closed ones:`);
    for (let i = 0; i < 100; i++) await post('Patient', { resourceType: 'Patient', name: [{ family: `Open-${i}` }] });
    for (let i = 0; i < o.records; i++) {
      const p = await record(1);
      await post(`Patient/${p.id}/$close?mode=archive`, { resourceType: 'Parameters' }, admin);
    }
    const modes = [
      ['administrator (closed records hidden: one probe per row)', admin],
      ['legal-hold administrator (no probe)', legalHold],
    ] as const;
    const times: number[][] = [[], []];
    // rounds alternate A B B A, so that drift of a shared machine falls on both; the first round of each warms up
    for (const [round, order] of [[0, [0, 1]], [1, [1, 0]], [2, [0, 1]], [3, [1, 0]]] as const) {
      for (const m of order) {
        for (let i = 0; i < o.searches / 2; i++) {
          const s = performance.now();
          const res = await http(t.base, 'Patient?_count=50', { headers: { authorization: `Bearer ${modes[m][1]}` } });
          if (res.status !== 200) throw new Error(`search answered ${res.status}`);
          if (round > 0) times[m].push(ms(s));
        }
      }
    }
    for (const m of [0, 1]) console.log(`  ${modes[m][0]}: median ${median(times[m]).toFixed(2)} ms`);
  } finally {
    await t.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
