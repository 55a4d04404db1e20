/** The name/value pairs of a Parameters body (its value[x] or resource), for operations invoked by POST. */
export function parametersBody(body: unknown): [string, unknown][] {
  const parameters = body as { resourceType?: string; parameter?: Record<string, unknown>[] } | undefined;
  if (parameters?.resourceType !== 'Parameters' || !Array.isArray(parameters.parameter)) return [];
  const pairs: [string, unknown][] = [];
  for (const p of parameters.parameter) {
    const entry = Object.entries(p).find(([k]) => k.startsWith('value') || k === 'resource');
    if (typeof p.name === 'string' && entry) pairs.push([p.name, entry[1]]);
  }
  return pairs;
}

/** An operation's inputs in order: the URL's parameters (less the `_` ones: `_format`, `_pretty` …), then the Parameters body's. */
export function operationInputs(req: { query: [string, string][]; body?: unknown }): [string, unknown][] {
  return [...req.query.filter(([name]) => !name.startsWith('_')), ...parametersBody(req.body)];
}
