// Generates, from the zod schemas in runtime/api, the files derived from them:
//   crds/<plural>.<group>.yaml, charts/kubevm/crds/<plural>.<group>.yaml, docs/api.md
// With --check, writes nothing and exits 1 listing the files that are stale or missing.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIRS, generatedFiles } from './lib/generated.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function main(): void {
  const check = process.argv.includes('--check');
  const files = generatedFiles();
  const stale: string[] = [];
  for (const [path, content] of files) {
    const absolute = join(root, path);
    const current = existsSync(absolute) ? readFileSync(absolute, 'utf8') : undefined;
    if (current === content) continue;
    if (check) {
      stale.push(current === undefined ? `${path} (missing)` : path);
    } else {
      mkdirSync(dirname(absolute), { recursive: true });
      writeFileSync(absolute, content);
      process.stdout.write(`wrote ${path}\n`);
    }
  }
  // A CRD file whose kind no longer exists is stale too.
  for (const dir of CRD_DIRS) {
    const absoluteDir = join(root, dir);
    if (!existsSync(absoluteDir)) continue;
    for (const entry of readdirSync(absoluteDir)) {
      const path = relative(root, join(absoluteDir, entry));
      if (entry.endsWith('.yaml') && !files.has(path)) stale.push(`${path} (no longer generated; delete it)`);
    }
  }
  if (stale.length > 0) {
    process.stderr.write(`generated files are stale; run \`make generate\`:\n  ${stale.join('\n  ')}\n`);
    process.exit(1);
  }
  if (check) process.stdout.write('generated files are up to date\n');
}

main();
