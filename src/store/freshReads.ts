/**
 * One read shared by the callers who ask at about the same time, each still answered by a
 * read that started after they asked: the first caller starts one; callers who ask while
 * it runs wait for the next, which starts when it ends and serves all of them. For a value
 * that must be as fresh as the request (the conformance counter: read-your-writes across
 * workers, docs/decisions/022-workers.md), read once for a burst of requests instead of
 * once each.
 *
 * `read` must run outside every request's scope (`Database.shared`, src/store/database.ts):
 * a client that goes away must not stop a read that other requests wait for. A failed read
 * fails the callers it serves; the next caller starts another.
 */
export function freshReads<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  let next: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p = read();
    running = p;
    const done = () => {
      if (running === p) running = undefined;
    };
    p.then(done, done);
    return p;
  };
  return () => {
    if (next) return next;
    if (!running) return start();
    const after = running.then(
      () => undefined,
      () => undefined,
    );
    const queued: Promise<T> = after.then(() => {
      next = undefined;
      return start();
    });
    next = queued;
    return queued;
  };
}
