import http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { operationOutcome } from '../errors';
import { EVERY_ANSWER } from './responseHeaders';

/**
 * What the server answers to bytes that are not an HTTP request it can parse (a bad
 * header character, a header block over Node's limit, a body longer than its
 * Content-Length, whose rest reads as a malformed next request): an OperationOutcome, like
 * every other refusal, instead of Node's bare status line. The connection is closed after
 * it: the parser cannot tell where the next request would start.
 */

export interface ClientErrorAnswer {
  status: number;
  reason: string;
  code: 'structure' | 'too-costly' | 'timeout';
  diagnostics: string;
}

/** The answer to one of llhttp's or Node's parse errors, by its `code`. Pure. */
export function clientErrorAnswer(code: string | undefined, maxHeaderSize: number): ClientErrorAnswer {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, reason: 'Request Header Fields Too Large', code: 'too-costly', diagnostics: `The request's headers are larger than ${maxHeaderSize} bytes` };
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, reason: 'Request Timeout', code: 'timeout', diagnostics: 'The request was not received in time' };
  }
  return { status: 400, reason: 'Bad Request', code: 'structure', diagnostics: `The request is not valid HTTP/1.1 and cannot be read${code ? ` (${code})` : ''}` };
}

/** The bytes of `answer`, headers and OperationOutcome, ending the connection. */
export function clientErrorResponse(answer: ClientErrorAnswer): string {
  const body = JSON.stringify(operationOutcome([{ severity: 'error', code: answer.code, diagnostics: answer.diagnostics }]));
  return [
    `HTTP/1.1 ${answer.status} ${answer.reason}`,
    'Content-Type: application/fhir+json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...EVERY_ANSWER.map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** Answers `server`'s unparseable requests with an OperationOutcome (replaces Node's default answer). */
export function answerUnparseableRequests(server: http.Server | https.Server): void {
  // the server's own limit if it was given one, else Node's (--max-http-header-size)
  const maxHeaderSize = (server as { maxHeaderSize?: number }).maxHeaderSize ?? http.maxHeaderSize;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // a connection the client dropped, or one whose answer has begun, gets nothing more
    const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
      socket.destroy();
      return;
    }
    socket.end(clientErrorResponse(clientErrorAnswer(err.code, maxHeaderSize)));
  });
}
