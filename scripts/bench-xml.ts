/**
 * Cost of FHIR XML next to FHIR JSON, warm, on one core (this process):
 *   npm run bench:xml [-- --rounds 50]
 * Workload: a searchset Bundle of 100 stored resources (our DocumentReference, Patient and
 * Communication fixtures and the R4 example Observation, with narratives and decimals),
 * held as stored JSON text as a search page holds them. Measures what an answer costs
 * (the page's JSON text; the same page in XML, written from that text) and what reading a
 * body costs (the JSON reader; the XML reader). Then a large body: a transaction Bundle with a
 * 20 MB document (base64 in one attribute), in both formats, at 10 rounds at most.
 * Prints a table and a JSON line; no assertion.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RawJson, stringifyJson } from '../src/json/rawJson';
import { readJson } from '../src/json/jsonReader';
import { jsonTextToXml } from '../src/xml/convert';
import { readXml } from '../src/xml/readXml';

let rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 50;
const root = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, '../fixtures')) ? '..' : '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const LIMITS = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };

const samples = [
  'fixtures/profiles/valid/document-reference.json',
  'fixtures/profiles/valid/patient-ins.json',
  'fixtures/profiles/valid/communication.json',
  'src/validation/testdata/examples/observation-example.json',
  'src/validation/testdata/examples/patient-example.json',
].map((file) => JSON.parse(read(file)));

// stored resources carry meta; a decimal with a trailing zero is kept as its text
const stored = Array.from({ length: 100 }, (_, i) => {
  const r = { ...samples[i % samples.length], id: `r${i}`, meta: { versionId: '1', lastUpdated: '2026-01-02T03:04:05.678Z' } };
  return JSON.stringify(r).replace(/"value":(\d+)\.(\d+)(?=[,}])/g, '"value":$1.$20');
});

const page = () =>
  stringifyJson({
    resourceType: 'Bundle',
    type: 'searchset',
    total: 100,
    link: [{ relation: 'self', url: 'https://fhir.example/fhir/DocumentReference?_count=100' }],
    entry: stored.map((text, i) => ({ fullUrl: `https://fhir.example/fhir/X/r${i}`, resource: new RawJson(text), search: { mode: 'match' } })),
  });

function time(fn: () => unknown): number {
  fn();
  const runs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)];
}

const jsonText = page();
const xmlText = jsonTextToXml(jsonText);
const results = {
  resources: 100,
  jsonBytes: Buffer.byteLength(jsonText),
  xmlBytes: Buffer.byteLength(xmlText),
  writeJsonMs: time(page),
  writeXmlMs: time(() => jsonTextToXml(page())),
  readJsonMs: time(() => readJson(jsonText, LIMITS)),
  readXmlMs: time(() => readXml(xmlText, LIMITS)),
  ...large(),
};

/** A 20 MB document in a transaction Bundle, as a document source posts it. */
function large() {
  const data = Buffer.alloc(15_000_000, 7).toString('base64');
  const json = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Binary', contentType: 'application/pdf', data }, request: { method: 'POST', url: 'Binary' } }] });
  const xml = jsonTextToXml(json);
  const r = rounds;
  rounds = Math.min(rounds, 10);
  const out = { largeBytes: data.length, readLargeJsonMs: time(() => readJson(json, LIMITS)), readLargeXmlMs: time(() => readXml(xml, LIMITS)) };
  rounds = r;
  return out;
}

console.log(`searchset Bundle of ${results.resources} resources: JSON ${(results.jsonBytes / 1024).toFixed(0)} KiB, XML ${(results.xmlBytes / 1024).toFixed(0)} KiB (median of ${rounds})`);
console.log(`  answer  JSON ${results.writeJsonMs.toFixed(2)} ms   XML ${results.writeXmlMs.toFixed(2)} ms (JSON text, then XML from it)`);
console.log(`  read    JSON ${results.readJsonMs.toFixed(2)} ms   XML ${results.readXmlMs.toFixed(2)} ms`);
console.log(`a ${(results.largeBytes / 1e6).toFixed(0)} MB document in a transaction Bundle, read: JSON ${results.readLargeJsonMs.toFixed(0)} ms   XML ${results.readLargeXmlMs.toFixed(0)} ms`);
console.log(JSON.stringify(results));
