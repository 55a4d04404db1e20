import type { Operation } from 'fast-json-patch';
import { applyJsonPatch, JsonPatchFailure, moveIntoItself } from './jsonPatch';

const resource = () => ({ resourceType: 'DocumentReference', id: 'd', status: 'current', content: [{ attachment: { url: 'a' } }], note: null });

describe('applyJsonPatch', () => {
  it.each<[string, Operation[], string]>([
    ['a failing test', [{ op: 'test', path: '/status', value: 'superseded' }], 'JSON Patch operation 0 (test at "/status") cannot apply: the value at the path is not the value tested'],
    ['a replace of nothing', [{ op: 'replace', path: '/description', value: 'x' }], 'JSON Patch operation 0 (replace at "/description") cannot apply: there is no element at the path'],
    ['a remove of nothing, after an operation that applies', [{ op: 'test', path: '/id', value: 'd' }, { op: 'remove', path: '/nothing' }], 'JSON Patch operation 1 (remove at "/nothing") cannot apply: there is no element at the path'],
    ['an add under a missing element', [{ op: 'add', path: '/a/b', value: 1 }], 'JSON Patch operation 0 (add at "/a/b") cannot apply: the element that would hold the value does not exist'],
    ['an add under a string', [{ op: 'add', path: '/status/x', value: 1 }], 'JSON Patch operation 0 (add at "/status/x") cannot apply: the element that would hold the value does not exist'],
    ['an add under null', [{ op: 'add', path: '/note/x', value: 1 }], 'JSON Patch operation 0 (add at "/note/x") cannot apply: the element that would hold the value does not exist'],
    ['a copy from nothing', [{ op: 'copy', from: '/nothing', path: '/x' }], 'JSON Patch operation 0 (copy from "/nothing" to "/x") cannot apply: there is no element at "from"'],
    ['a move to where nothing holds it', [{ op: 'move', from: '/status', path: '/description/x' }], 'JSON Patch operation 0 (move from "/status" to "/description/x") cannot apply: the element that would hold the value does not exist'],
    ['an index past the end', [{ op: 'add', path: '/content/5', value: {} }], 'JSON Patch operation 0 (add at "/content/5") cannot apply: the array index is past the end of the array'],
    ['an index that is not a number', [{ op: 'add', path: '/content/x', value: {} }], 'JSON Patch operation 0 (add at "/content/x") cannot apply: an array index is an unsigned decimal integer, or "-" to append'],
    // the library lets a JavaScript error through here; the answer is still the server's
    ['a move into its own child, unchecked', [{ op: 'move', from: '/content', path: '/content/0' }], 'JSON Patch operation 0 (move from "/content" to "/content/0") cannot apply: once "from" is removed, the element that would hold the value does not exist'],
  ])('%s', (_what, operations, message) => {
    const before = resource();
    expect(() => applyJsonPatch(before, operations)).toThrow(new JsonPatchFailure(message));
    expect(before).toEqual(resource());
  });

  it('applies operations in order, on a copy', () => {
    const before = resource();
    const after = applyJsonPatch(before, [{ op: 'add', path: '/description', value: 'x' }, { op: 'move', from: '/description', path: '/content/0/attachment/title' }, { op: 'test', path: '/content/0/attachment/title', value: 'x' }]);
    expect(after).toEqual({ ...resource(), content: [{ attachment: { url: 'a', title: 'x' } }] });
    expect(before).toEqual(resource());
  });
});

describe('moveIntoItself', () => {
  it.each<[Operation, string | undefined]>([
    [{ op: 'move', from: '/content', path: '/content/0' }, '"/content" cannot be moved into one of its own children ("/content/0")'],
    [{ op: 'move', from: '/a/b', path: '/a/b/c/d' }, '"/a/b" cannot be moved into one of its own children ("/a/b/c/d")'],
    [{ op: 'move', from: '/content', path: '/contents' }, undefined],
    [{ op: 'move', from: '/content', path: '/content' }, undefined],
    [{ op: 'copy', from: '/content', path: '/content/0' }, undefined],
  ])('%j', (operation, expected) => {
    expect(moveIntoItself(operation)).toBe(expected);
  });
});
