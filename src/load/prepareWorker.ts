/**
 * A thread of the bulk loader's preparing pool (src/load/preparePool.ts): validates and
 * indexes the resources it is sent, as the loader's own thread would (prepareResource),
 * with a validator of its own that knows the same conformance resources.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../config/config';
import { loadStoredConformance } from '../interactions/conformanceResources';
import type { InteractionContext } from '../interactions/types';
import { createLogger } from '../log';
import { defaultRegistryInstance } from '../registry/registry';
import type { ConformanceResource } from '../store/conformanceRows';
import { createServerValidator } from '../validation/forServer';
import { prepareResource, reasonOf } from './ndjsonLoad';
import type { PrepareJob, PrepareResult } from './preparePool';

function start(port: NonNullable<typeof parentPort>, conformance: ConformanceResource[]): void {
  const validator = createServerValidator();
  const log = createLogger('silent');
  // no database here: preparing reads none (the checks that do run on the loader's thread, in the batch's transaction)
  const ctx = {
    config: loadConfig({ ...process.env, LOG_LEVEL: 'silent' }),
    registry: defaultRegistryInstance(),
    log,
    pageTokenSecret: '',
    validator,
    expandValueSet: (url: string) => validator.valueSetCodes(url),
  } as unknown as InteractionContext;
  loadStoredConformance(ctx, validator, conformance);
  port.on('message', (job: PrepareJob) => {
    const results: PrepareResult[] = job.items.map((item) => {
      try {
        return { line: item.line, version: prepareResource(ctx, item.body, job.lastUpdated, item.decimals) };
      } catch (e) {
        return { line: item.line, reason: reasonOf(e) };
      }
    });
    port.postMessage({ job: job.job, results });
  });
  port.postMessage({ ready: true });
}

if (parentPort) start(parentPort, (workerData as { conformance: ConformanceResource[] }).conformance);
