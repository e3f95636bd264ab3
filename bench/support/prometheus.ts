// Prometheus' text format, as the benches read it: each sample line's series (name and labels, as
// written) to its value; comments and blank lines skipped.

/** Each series of one scrape, by its name and labels as written, to its value. */
export type Samples = Map<string, number>;

export function parseSamples(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of every series whose key starts with `prefix` and passes `filter`. */
export const sum = (samples: Samples, prefix: string, filter: (key: string) => boolean = () => true): number =>
  [...samples].filter(([key]) => key.startsWith(prefix) && filter(key)).reduce((a, [, v]) => a + v, 0);

/** A series' labels by name (prom-client writes them in either order: {le="..",name=".."}). */
export const labelsOf = (key: string): Record<string, string> => Object.fromEntries([...key.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
