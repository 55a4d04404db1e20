import type { Config } from './config/config';
import { ConfigError } from './config/config';
import { DataDirLocked } from './store/dataDirLock';

/**
 * The one line an operator reads when the server cannot start: what could not be used, and
 * the setting that chooses it. A stack trace says where in the code, which is not what they
 * can change.
 */
export function startupFailureMessage(e: unknown, config: Config | undefined): string {
  if (e instanceof ConfigError) return `Configuration error: ${e.message}`;
  if (e instanceof DataDirLocked) return `Cannot start: ${e.message}`;
  const err = (e ?? {}) as NodeJS.ErrnoException & { address?: string; port?: number; syscall?: string };
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (err.syscall === 'listen' && config) {
    const where = `${config.host}:${config.port}`;
    if (code === 'EADDRINUSE') return `Cannot start: ${where} is already in use by another process (choose another PORT, or stop that process)`;
    if (code === 'EACCES') return `Cannot start: no permission to listen on ${where} (ports below 1024 need privileges: choose another PORT)`;
    if (code === 'EADDRNOTAVAIL') return `Cannot start: HOST ${config.host} is not an address of this machine`;
    return `Cannot start: cannot listen on ${where} (${code ?? err.message})`;
  }
  if (config?.databaseUrl && (databaseConnectionCode(code) || err.message?.includes('connect'))) {
    return `Cannot start: cannot connect to the database at DATABASE_URL ${redactedUrl(config.databaseUrl)} (${databaseReason(err)})`;
  }
  if (config?.databaseUrl && code && /^[0-9A-Z]{5}$/.test(code)) {
    // a PostgreSQL error (SQLSTATE): refused login, missing database, missing privilege
    return `Cannot start: the database at DATABASE_URL ${redactedUrl(config.databaseUrl)} refused: ${oneLine(err.message)} (SQLSTATE ${code})`;
  }
  if (code && typeof err.path === 'string') {
    return `Cannot start: cannot use ${err.path} (${FILE_ERRORS[code] ?? code}): check DATA_DIR${config ? ` (${config.dataDir})` : ''} and its permissions`;
  }
  return `Cannot start: ${oneLine(err.message ?? String(e))}`;
}

const FILE_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a file is in the way of a directory',
  EEXIST: 'a file is in the way of a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'no such file or directory',
};

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH']);

function databaseConnectionCode(code: string | undefined): boolean {
  return code !== undefined && CONNECTION_CODES.has(code);
}

function databaseReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused: is PostgreSQL running there?';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ETIMEDOUT':
      return 'timed out';
    default:
      return oneLine(err.code ?? err.message);
  }
}

/** The URL without its password. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
