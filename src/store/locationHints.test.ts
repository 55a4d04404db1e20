import crypto from 'node:crypto';
import { fullCollection } from '../idleCollection';
import { forgetCompartment, hintCount, hintedCompartment, MAX_HINTS, rememberCompartment } from './locationHints';

describe('location hints', () => {
  it('remember the last compartment named, forget on demand', () => {
    rememberCompartment('Observation', 'o1', 'p1');
    rememberCompartment('Observation', 'o1', 'p2');
    expect(hintedCompartment('Observation', 'o1')).toBe('p2');
    expect(hintedCompartment('Condition', 'o1')).toBeUndefined();
    forgetCompartment('Observation', 'o1');
    expect(hintedCompartment('Observation', 'o1')).toBeUndefined();
  });

  it('hold at most MAX_HINTS, the oldest going first', () => {
    for (let i = 0; i < MAX_HINTS + 10; i++) rememberCompartment('Observation', `n${i}`, 'p');
    expect(hintCount()).toBe(MAX_HINTS);
    expect(hintedCompartment('Observation', 'n0')).toBeUndefined();
    expect(hintedCompartment('Observation', 'n9')).toBeUndefined();
    expect(hintedCompartment('Observation', 'n10')).toBe('p');
    expect(hintedCompartment('Observation', `n${MAX_HINTS + 9}`)).toBe('p');
  });

  it('keep a hint of server-drawn ids in a few hundred bytes (flat strings, not the pieces they were made of)', () => {
    // the flag set back at once: later test files in this worker see no gc()
    const gc = fullCollection();
    const heap = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    for (let i = 0; i < MAX_HINTS; i++) rememberCompartment('Observation', `warm${i}`, 'p');
    const before = heap();
    const ids = Array.from({ length: MAX_HINTS }, () => [crypto.randomUUID(), crypto.randomUUID()]);
    for (const [id, patient] of ids) rememberCompartment('DocumentReference', id, patient);
    ids.length = 0;
    // the warm-up hints they pushed out are freed: the growth is the new hints less those
    expect((heap() - before) / MAX_HINTS).toBeLessThan(400);
  });
});
