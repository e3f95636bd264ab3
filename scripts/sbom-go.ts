// `go version -m` output (or `go list -m` lines of the same shape: "dep <path> <version> <sum>",
// each optionally followed by "=> <path> <version> <sum>" for a replacement) as a CycloneDX 1.5
// JSON SBOM on stdout. Usage: node --import tsx scripts/sbom-go.ts <modules.txt> <what it describes>
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const [file, subject] = process.argv.slice(2);
if (!file || !subject) {
  process.stderr.write('usage: sbom-go.ts <modules.txt> <what it describes>\n');
  process.exit(2);
}

interface Module {
  path: string;
  version: string;
  sum?: string;
}

const modules: Module[] = [];
let goVersion: string | undefined;
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const fields = line.trim().split(/\s+/);
  const header = /: (go\d+\.\d+(?:\.\d+)?)$/.exec(line);
  if (header?.[1]) goVersion = header[1];
  if (fields[0] === 'dep' && fields[1] && fields[2]) modules.push({ path: fields[1], version: fields[2], ...(fields[3] ? { sum: fields[3] } : {}) });
  // A replacement: what was compiled is the replacement, not the module it stands in for.
  if (fields[0] === '=>' && fields[1] && fields[2] && modules.length > 0) modules[modules.length - 1] = { path: fields[1], version: fields[2], ...(fields[3] ? { sum: fields[3] } : {}) };
}

const components = modules.map((m) => ({
  type: 'library',
  'bom-ref': `pkg:golang/${m.path}@${m.version}`,
  name: m.path,
  version: m.version,
  purl: `pkg:golang/${m.path}@${m.version}`,
  // Go's h1: sum hashes a listing of the module's files, not an archive: a property, not a CycloneDX hash.
  ...(m.sum ? { properties: [{ name: 'go:sum', value: m.sum }] } : {}),
}));

process.stdout.write(
  `${JSON.stringify(
    {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: `urn:uuid:${randomUUID()}`,
      version: 1,
      metadata: {
        timestamp: new Date().toISOString(),
        component: { type: 'application', 'bom-ref': 'kubevm-local-cluster', name: 'kubevm-local-cluster', description: `Kubernetes and etcd as built for the local cluster (${subject})` },
        ...(goVersion ? { properties: [{ name: 'go:toolchain', value: goVersion }] } : {}),
      },
      components,
    },
    null,
    2,
  )}\n`,
);
