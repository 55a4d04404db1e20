/**
 * Bounded fuzzing of the parsers that take hostile input (docs/operations/fuzzing.md):
 *
 *   npm run fuzz [-- --runs N] [--seed S] [--target json|patch|query|narrative|xml] [--bound-ms 1000]
 *
 * Each target runs in its own worker thread, so that an input that never returns is
 * caught too: the worker reports each input before trying it, and one still running
 * after ten times the bound is printed as a hang. Prints, per target, the runs, the seed,
 * the time and any failure with its shrunk counterexample; exits 1 on a failure.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { PropertySettings } from '../src/fuzz/bounds';
import { TargetName, TARGETS } from '../src/fuzz/targets';

interface Job {
  target: TargetName;
  runs: number;
  seed: number;
  boundMs: number;
}

type Report =
  | { kind: 'trying'; input: unknown }
  | { kind: 'done'; runs: number; ms: number; failed: false; stats?: string }
  | { kind: 'done'; runs: number; ms: number; failed: true; message: string; counterexample: string; path?: string; stats?: string };

const USAGE = 'usage: npm run fuzz -- [--runs N] [--seed S] [--target json|patch|query|narrative|xml] [--bound-ms MS]';

function parseArgs(argv: string[]): { targets: TargetName[]; runs?: number; seed: number; boundMs: number } {
  const out = { targets: [] as TargetName[], runs: undefined as number | undefined, seed: Math.floor(Math.random() * 2 ** 31), boundMs: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const integer = () => {
      if (value === undefined || !/^-?\d+$/.test(value)) throw new Error(`${flag} takes an integer\n${USAGE}`);
      i++;
      return Number(value);
    };
    if (flag === '--runs') out.runs = integer();
    else if (flag === '--seed') out.seed = integer();
    else if (flag === '--bound-ms') out.boundMs = integer();
    else if (flag === '--target') {
      for (const t of (value ?? '').split(',')) {
        if (!(t in TARGETS)) throw new Error(`--target takes ${Object.keys(TARGETS).join(', ')} (comma-separated), got "${t}"\n${USAGE}`);
        out.targets.push(t as TargetName);
      }
      i++;
    } else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument "${flag}"\n${USAGE}`);
  }
  if (out.targets.length === 0) out.targets = Object.keys(TARGETS) as TargetName[];
  return out;
}

// ---------------------------------------------------------------- worker: one target

function fuzzInWorker(job: Job): void {
  const target = TARGETS[job.target];
  const settings: PropertySettings = { boundMs: job.boundMs };
  target.warm();
  const started = performance.now();
  let slowest = 0;
  const property = fc.property(target.input(), (input) => {
    parentPort!.postMessage({ kind: 'trying', input } satisfies Report);
    const t0 = performance.now();
    try {
      target.check(input, settings);
    } finally {
      slowest = Math.max(slowest, performance.now() - t0);
    }
  });
  const details = fc.check(property, { seed: job.seed, numRuns: job.runs });
  const ms = performance.now() - started;
  const stats = [target.stats?.(), `slowest input: ${slowest.toFixed(1)} ms (property included)`].filter(Boolean).join('\n  ');
  const report: Report = details.failed
    ? {
        kind: 'done',
        runs: details.numRuns,
        ms,
        failed: true,
        message: details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance),
        counterexample: fc.stringify(details.counterexample?.[0]),
        path: details.counterexamplePath ?? undefined,
        stats,
      }
    : { kind: 'done', runs: details.numRuns, ms, failed: false, stats };
  parentPort!.postMessage(report);
}

// ---------------------------------------------------------------- main: one worker per target, a watchdog

function fuzzTarget(job: Job): Promise<boolean> {
  const hangMs = Math.max(10_000, job.boundMs * 10);
  return new Promise((resolve) => {
    // the server's stack: an input that overflows it there overflows it here
    const worker = new Worker(__filename, { workerData: job, resourceLimits: { stackSizeMb: 1 } });
    let current: unknown;
    let since = performance.now();
    let finished = false;
    const print = (lines: string[]) => console.log(lines.map((l) => `  ${l}`).join('\n'));
    const watchdog = setInterval(() => {
      if (performance.now() - since < hangMs) return;
      finished = true;
      clearInterval(watchdog);
      void worker.terminate();
      console.log(`${job.target}: FAILED, hang`);
      print([`seed ${job.seed}`, `an input ran for more than ${hangMs} ms without returning:`, fc.stringify(current)]);
      resolve(false);
    }, 500);
    worker.on('message', (report: Report) => {
      if (report.kind === 'trying') {
        current = report.input;
        since = performance.now();
        return;
      }
      finished = true;
      clearInterval(watchdog);
      const head = `${job.target}: ${report.failed ? 'FAILED' : 'ok'}, ${report.runs} runs, seed ${job.seed}, ${(report.ms / 1000).toFixed(1)} s`;
      console.log(head);
      if (report.stats) print([report.stats]);
      if (report.failed) {
        print([
          report.message,
          `shrunk counterexample: ${report.counterexample}`,
          `again: npm run fuzz -- --target ${job.target} --seed ${job.seed} --runs ${job.runs}${report.path ? ` (fast-check path ${report.path})` : ''}`,
        ]);
      }
      resolve(!report.failed);
    });
    worker.on('error', (e) => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      console.log(`${job.target}: FAILED, the worker died: ${e.message}`);
      print([`seed ${job.seed}`, `last input: ${fc.stringify(current)}`]);
      resolve(false);
    });
  });
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  let ok = true;
  for (const name of args.targets) {
    const runs = args.runs ?? TARGETS[name].defaultRuns;
    console.log(`${name}: ${TARGETS[name].subject}, ${runs} runs, seed ${args.seed}, bound ${args.boundMs} ms per input`);
    ok = (await fuzzTarget({ target: name, runs, seed: args.seed, boundMs: args.boundMs })) && ok;
  }
  process.exit(ok ? 0 : 1);
}

if (isMainThread) void main();
else fuzzInWorker(workerData as Job);
