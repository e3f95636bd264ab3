// Bundles the plugin into ONE file, dist/plugin/kubectl-virt (CommonJS, node shebang), with its version
// and the browser bundle of vnc --web (noVNC) compiled in. Run by kubectl-virt/build.sh.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** kubectl-virt/web/vnc-client.js and noVNC as one browser module (noVNC uses top-level await). */
export async function bundleWebClient() {
  const result = await build({
    entryPoints: [join(here, 'web/vnc-client.js')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    // noVNC is MPL-2.0: its notices stay with the code.
    legalComments: 'inline',
    logLevel: 'warning',
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outfile = process.argv[2] ?? 'dist/plugin/kubectl-virt';
  const { version } = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
  await build({
    entryPoints: [join(here, 'main.ts')],
    bundle: true,
    platform: 'node',
    // CommonJS: node runs an extensionless file outside any package as CommonJS. The version is
    // compiled in, so api-server/version.ts's package.json lookup (the one import.meta use) and
    // web.ts's on-the-fly bundling never run in the bundle.
    format: 'cjs',
    target: 'node20',
    outfile,
    // Smaller is faster to start: node compiles the whole file before the first line runs.
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    logOverride: { 'empty-import-meta': 'silent' },
    define: { KUBECTL_VIRT_VERSION: JSON.stringify(version), KUBECTL_VIRT_WEB_CLIENT: JSON.stringify(await bundleWebClient()) },
  });
}
