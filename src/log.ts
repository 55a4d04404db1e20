import pino, { Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'dmp-fhir-server' }, timestamp: pino.stdTimeFunctions.isoTime });
}
