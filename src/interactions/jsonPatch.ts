import { applyOperation, deepClone, JsonPatchError, Operation } from 'fast-json-patch';

/**
 * Applying a JSON Patch (RFC 6902) with the server's own wording for what cannot apply:
 * which operation, at which path, and why. The library's messages, and the JavaScript
 * errors it lets through (a move into the element it has just removed), are never shown.
 */

/** A JSON Patch that does not apply to the resource: its message is the answer's diagnostics. */
export class JsonPatchFailure extends Error {}

const WHY: Record<string, string> = {
  TEST_OPERATION_FAILED: 'the value at the path is not the value tested',
  OPERATION_PATH_UNRESOLVABLE: 'there is no element at the path',
  OPERATION_FROM_UNRESOLVABLE: 'there is no element at "from"',
  OPERATION_PATH_CANNOT_ADD: 'the element that would hold the value does not exist',
  OPERATION_PATH_ILLEGAL_ARRAY_INDEX: 'an array index is an unsigned decimal integer, or "-" to append',
  OPERATION_VALUE_OUT_OF_BOUNDS: 'the array index is past the end of the array',
};

/** Where an operation applies, as its failure names it. */
function where(operation: Operation): string {
  const from = (operation as { from?: unknown }).from;
  return typeof from === 'string' ? `from "${from}" to "${operation.path}"` : `at "${operation.path}"`;
}

/** The operations whose path is where a value goes (it need not exist, the element holding it must). */
const PUTS_VALUE = new Set(['add', 'move', 'copy']);

/** Why an operation did not apply, in the server's words, whatever the library threw. */
function why(error: unknown, operation: Operation): string {
  const name = error instanceof JsonPatchError ? error.name : undefined;
  if (name === 'OPERATION_PATH_UNRESOLVABLE' && PUTS_VALUE.has(operation.op)) return WHY.OPERATION_PATH_CANNOT_ADD;
  const known = name ? WHY[name] : undefined;
  if (known) return known;
  // anything else is the library failing to reach the path: the element that would hold it is missing
  return operation.op === 'move' ? 'once "from" is removed, the element that would hold the value does not exist' : WHY.OPERATION_PATH_CANNOT_ADD;
}

/** A move of an element into one of its own children (RFC 6902 §4.4 forbids it), as the reason it is refused. */
export function moveIntoItself(operation: Operation): string | undefined {
  if (operation.op !== 'move' || !operation.path.startsWith(`${operation.from}/`)) return undefined;
  return `"${operation.from}" cannot be moved into one of its own children ("${operation.path}")`;
}

/**
 * The resource patched (a copy: `resource` is left as it was), or a JsonPatchFailure naming
 * the first operation that does not apply. The operations were validated (and prototype
 * steps refused) by the caller.
 */
export function applyJsonPatch(resource: Record<string, unknown>, operations: Operation[]): Record<string, unknown> {
  let document = deepClone(resource) as Record<string, unknown>;
  operations.forEach((operation, index) => {
    try {
      // validated against the document as patched so far; prototype modifications banned
      document = applyOperation(document, operation, true, true, true, index).newDocument;
    } catch (e) {
      throw new JsonPatchFailure(`JSON Patch operation ${index} (${operation.op} ${where(operation)}) cannot apply: ${why(e, operation)}`);
    }
  });
  return document;
}
