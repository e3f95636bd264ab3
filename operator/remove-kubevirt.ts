// `node dist/operator/remove-kubevirt.js`: deletes the KubeVirt CRs of the operator's namespace
// and waits until the operator has released them, i.e. removed everything it created. The Helm
// chart runs it as a pre-delete hook: Helm deletes the operator and the CR together and waits for
// no finalizer, so without it `helm uninstall` would leave the installation behind. Exits 1 with
// the CR's own reason (e.g. BlockUninstallIfWorkloadsExist while VMs exist) when it times out.
import { integerSetting, loadConfigOrExit } from '../runtime/config.js';
import { KubeClient, isNotFound } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeVirtCR } from './reconciler.js';
import { kubevirtResource } from './reconciler.js';
import { operatorSettings } from './config.js';

const settings = {
  podNamespace: operatorSettings.podNamespace,
  timeoutSeconds: { env: 'KUBEVM_REMOVE_TIMEOUT_SECONDS', schema: integerSetting(1, 86_400).default(600), description: 'how long to wait for the removal (default 600)' },
};

async function main(): Promise<void> {
  const config = loadConfigOrExit('remove-kubevirt', settings);
  const log = createRootLogger({ component: 'remove-kubevirt' });
  const client = new KubeClient();
  const kubevirts = client.resource<KubeVirtCR>(kubevirtResource);
  const deadline = Date.now() + config.timeoutSeconds * 1000;
  for (const kv of (await kubevirts.list({ namespace: config.podNamespace })).items) {
    log.info({ name: kv.metadata?.name }, 'deleting the KubeVirt CR');
    await kubevirts.delete(kv.metadata?.name ?? '', config.podNamespace).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
  for (;;) {
    const left = (await kubevirts.list({ namespace: config.podNamespace })).items;
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      const why = left.map((kv) => kv.status?.conditions?.find((c) => c.type === 'Degraded' && c.status === 'True')?.message ?? `phase ${kv.status?.phase ?? 'unknown'}`);
      log.error({ reasons: why }, 'the KubeVirt CR was not removed in time');
      process.stderr.write(`remove-kubevirt: the KubeVirt CR is still there after ${config.timeoutSeconds}s: ${why.join('; ')}\n`);
      process.exit(1);
    }
    await sleep(2_000);
  }
  log.info('the KubeVirt CR and everything the operator created are gone');
  client.close();
}

main().catch((err: unknown) => {
  createRootLogger({ component: 'remove-kubevirt' }).fatal({ err }, 'remove-kubevirt failed');
  process.exit(1);
});
