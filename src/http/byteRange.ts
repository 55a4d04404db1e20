/**
 * Range requests on raw Binary content (RFC 9110 §14): a document reader (ITI-68) resumes
 * a large download or fetches the page it shows. One `bytes` range is served as 206; a
 * request for several ranges is answered with the whole content (200), which the RFC
 * allows (a server MAY ignore Range) and which spares clients a multipart/byteranges body
 * most of them never parse. A Range this server cannot read (another unit, bad syntax) is
 * ignored as the RFC says; a single range past the end is 416.
 */
export type RangeAnswer = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

export function byteRange(header: string | undefined, length: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'full' };
  const specs = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'full' };
  const spec = SPEC.exec(specs[0]);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' };
  if (spec[1] === '') {
    // suffix range: the last N bytes
    const suffix = Number(spec[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    // a non-zero suffix is satisfiable even on empty content (RFC 9110 §14.1.1), whose range no Content-Range can name
    if (length === 0) return { kind: 'full' };
    return { kind: 'partial', start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? undefined : Number(spec[2]);
  if (last !== undefined && last < start) return { kind: 'full' };
  if (start >= length) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(last ?? length - 1, length - 1) };
}

/**
 * If-Range (RFC 9110 §13.1.5): the range holds only while the content is the one the client
 * has. This server's entity tags are weak (one per version, whatever the representation), and
 * If-Range compares strongly, so only the Last-Modified date can keep a range; anything else
 * means the whole content.
 */
export function rangeStillValid(ifRange: string | undefined, lastModified: Date | undefined): boolean {
  if (ifRange === undefined) return true;
  if (!lastModified || ifRange.trim().startsWith('"') || ifRange.trim().startsWith('W/')) return false;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && date === Math.floor(lastModified.getTime() / 1000) * 1000;
}
