// The launcher image's entry point (`node dist/launcher/main.js`, bundled by bundle.sh): runs the
// bundled launcher, launcher.cjs beside it, compiled from V8's code cache of it. The cache is made
// when the image is built, by the same node binary, from a launcher run up to where it waits for
// its VMI; with it a launcher start takes about a third less CPU (bench/vm-startup.md). A cache
// V8 rejects (another node, other flags) only costs that time: the bundle is compiled as usual.
//   main.js                        run the launcher
//   main.js --write-code-cache     run it, and on SIGUSR2 write the cache and exit (bundle.sh)
//   main.js --check-code-cache     exit 0 if V8 accepts the cache, 1 if not (bundle.sh)
import { readFileSync, writeFileSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

const bundle = path.join(path.dirname(path.resolve(process.argv[1] ?? '')), 'launcher.cjs');
const cacheFile = `${bundle}.codecache`;
const modes = ['--write-code-cache', '--check-code-cache'];
const mode = modes.find((flag) => flag === process.argv[2]);
// The launcher reads the rest of the command line as its own flags.
if (mode) process.argv.splice(2, 1);

function readCache(): Buffer | undefined {
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

const cachedData = mode === '--write-code-cache' ? undefined : readCache();
const script = new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, ...(cachedData ? { cachedData } : {}) });

if (mode === '--check-code-cache') {
  const accepted = cachedData !== undefined && !script.cachedDataRejected;
  process.stdout.write(`${cacheFile}: ${accepted ? 'accepted' : cachedData ? 'rejected by V8' : 'missing'}\n`);
  process.exit(accepted ? 0 : 1);
}
if (mode === '--write-code-cache') {
  // What ran by then (loading, configuration, the input socket) is compiled, and goes into the cache.
  process.on('SIGUSR2', () => {
    writeFileSync(cacheFile, script.createCachedData());
    process.exit(0);
  });
}

type CommonJsWrapper = (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
const launcher = new Module(bundle);
launcher.filename = bundle;
(script.runInThisContext() as CommonJsWrapper).call(launcher.exports, launcher.exports, createRequire(bundle), launcher, bundle, path.dirname(bundle));
