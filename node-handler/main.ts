// kubevm node handler (KubeVirt's virt-handler): one per node, as a DaemonSet. Wires the VMI
// controller for this node's VMIs, the launcher connections, the kubelet device plugin, the node
// labels and heartbeat, and the health/metrics endpoint. The logic lives in the modules beside it.
//
// Configuration: nodeHandlerSettings below; each setting is a flag --name and a variable
// KUBEVM_NAME (runtime/config.ts). A bad value stops the process with one line (exit code 2).
import path from 'node:path';
import { z } from 'zod';
import { integerSetting, jsonText, loadConfigOrExit, portSetting } from '../runtime/config.js';
import { KubeEventRecorder } from '../runtime/events.js';
import { KSMConfiguration, VirtualMachineInstanceNames, VirtualMachineInstanceSchema, schemaValidator } from '../runtime/api/index.js';
import { Controller } from '../runtime/controller.js';
import { HealthServer } from '../runtime/health.js';
import { metricsPortSetting, metricsTlsDirSetting, serveMetrics } from '../runtime/metrics-server.js';
import { Informer } from '../runtime/informer.js';
import { KubeClient, isNotFound } from '../runtime/kube.js';
import type { ResourceDescriptor } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import type { Logger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { TlsDirWatcher } from '../runtime/tls-files.js';
import type { TlsFiles } from '../runtime/tls-files.js';
import { DevicePluginManager } from './device-plugin/plugin.js';
import { DomainStateCache } from './domain-state.js';
import { launcherDialer, watchLauncherSocketDirectory } from './launcher-client.js';
import { LauncherConnections } from './launcher-connections.js';
import { DEFAULT_KSM_DIR } from './ksm.js';
import { NodeHeartbeat, kvmVerdict } from './node-labels.js';
import { NODE_HANDLER_STREAM_PORT, STREAM_TLS_DIR } from '../runtime/contracts/streams.js';
import { StreamServer } from './stream-server.js';
import { nodeVmiSelector, vmiHandlerReconcile } from './vmi-handler.js';
import type { VirtualMachineInstance } from './vmi-handler.js';

const vmiResource: ResourceDescriptor = {
  group: VirtualMachineInstanceNames.group,
  version: VirtualMachineInstanceNames.version,
  resource: VirtualMachineInstanceNames.plural,
  kind: VirtualMachineInstanceNames.kind,
  namespaced: true,
};

const nodeHandlerSettings = {
  nodeName: { env: 'NODE_NAME', schema: z.string(), description: "this node's name, from the downward API (spec.nodeName)" },
  kubeletRoot: {
    env: 'KUBEVM_KUBELET_ROOT',
    schema: z.string().default('/var/lib/kubelet'),
    description: "where the kubelet's root directory (with pods/) is mounted (default /var/lib/kubelet)",
  },
  devicePluginDir: {
    env: 'KUBEVM_DEVICE_PLUGIN_DIR',
    schema: z.string().default('/var/lib/kubelet/device-plugins'),
    description: "the kubelet's device plugin directory, fixed whatever its --root-dir (default /var/lib/kubelet/device-plugins)",
  },
  devRoot: { env: 'KUBEVM_DEV_ROOT', schema: z.string().default('/'), description: "where the host's /dev is mounted (default /)" },
  healthPort: { env: 'KUBEVM_HEALTH_PORT', schema: portSetting.default(8080), description: '/healthz, /readyz over HTTP (default 8080)' },
  metricsPort: metricsPortSetting(),
  metricsTlsDir: metricsTlsDirSetting(),
  streamPort: {
    env: 'KUBEVM_STREAM_PORT',
    schema: portSetting.default(NODE_HANDLER_STREAM_PORT),
    description: `console, VNC and port-forward streams for the api-server, mutual TLS (default ${NODE_HANDLER_STREAM_PORT})`,
  },
  streamTlsDir: {
    env: 'KUBEVM_STREAM_TLS_DIR',
    schema: z.string().default(STREAM_TLS_DIR),
    description: `the streams certificate: tls.crt, tls.key and the CA ca.crt (default ${STREAM_TLS_DIR}); without it no streams are served`,
  },
  ksmConfiguration: {
    env: 'KUBEVM_KSM_CONFIGURATION',
    schema: jsonText(KSMConfiguration, 'accepted: the KubeVirt CR\'s ksmConfiguration as JSON, e.g. {"nodeLabelSelector":{}}').optional(),
    description: "the KubeVirt CR's spec.configuration.ksmConfiguration as JSON (the operator sets it); unset: KSM is turned on nowhere",
  },
  ksmDir: {
    env: 'KUBEVM_KSM_DIR',
    schema: z.string().default(DEFAULT_KSM_DIR),
    description: `where the host's KSM switches are (default ${DEFAULT_KSM_DIR}, the container's read-only sysfs; the operator mounts them writable when KSM is configured)`,
  },
  syncPeriodSeconds: {
    env: 'KUBEVM_SYNC_PERIOD_SECONDS',
    schema: integerSetting(0, 7 * 24 * 3600).default(600),
    description: 'every VMI of the node is reconciled again this often, +0-10 % jitter (default 600; 0: off)',
  },
};

async function main(): Promise<void> {
  const { nodeName, kubeletRoot, devicePluginDir: pluginDir, devRoot, healthPort: port, metricsPort, metricsTlsDir, syncPeriodSeconds, streamPort, streamTlsDir, ksmConfiguration, ksmDir } = loadConfigOrExit(
    'node-handler',
    nodeHandlerSettings,
  );
  const log = createRootLogger({ component: 'node-handler' });

  const lifecycle = new ProcessLifecycle({ log });
  lifecycle.installSignalHandlers();
  enableProcessMetrics();
  const ready = readyStatusGauge('virt_handler');

  const client = new KubeClient();
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  const domains = new DomainStateCache();
  const devicePlugins = new DevicePluginManager({ pluginDir, devRoot, logger: log });
  // The launchers' KVM probes are the node's evidence that KVM runs guests (kubevm.io/kvm-verified).
  const kvmVerified = (): boolean | undefined => kvmVerdict(domains.keys().map((key) => domains.get(key)?.kvmProbe));
  const heartbeat = new NodeHeartbeat(client, nodeName, { devRoot, log, kvmVerified, ksmDir, ...(ksmConfiguration ? { ksmConfiguration } : {}) });
  const health = new HealthServer({ port, log });
  let informer: Informer<VirtualMachineInstance> | undefined;
  health.addReadinessCheck('vmi-informer', () => informer?.hasSynced() === true || 'VMI informer not synced');
  health.addReadinessCheck('device-plugins', () => {
    const missing = devicePlugins.status().filter((resource) => !resource.registered);
    return missing.length === 0 || `not registered with the kubelet: ${missing.map((resource) => resource.resourceName).join(', ')}`;
  });
  // The controller's recorder until it moves to the shared runtime: same Event shape, deduplicated.
  const events = new KubeEventRecorder(client, 'virt-handler', nodeName, log);
  const controller = new Controller({
    name: 'virt-handler-vmi',
    kind: 'VirtualMachineInstance',
    // As KubeVirt's virt-handler (10): VMIs starting together each get a worker, so a Running write
    // never waits behind other VMIs' API calls (a key is still handled by one worker at a time).
    workers: 10,
    syncPeriodMs: syncPeriodSeconds * 1000,
    log,
    events,
    reconcile: (key, ctx) => reconcile(key, ctx),
  });
  const connections = new LauncherConnections({
    dial: launcherDialer(),
    watch: watchLauncherSocketDirectory,
    domains,
    podsDir: path.join(kubeletRoot, 'pods'),
    onConnectionChange: (key) => controller.enqueue(key),
    log,
  });

  // Shutdown runs in reverse: stop reconciling, then let go of launchers (the VMs keep running;
  // the next handler re-attaches), then the device plugins, heartbeat and the endpoint.
  lifecycle.onShutdown('health', () => health.close());
  lifecycle.onShutdown('heartbeat', () => heartbeat.stop());
  lifecycle.onShutdown('device-plugins', () => devicePlugins.stop());
  lifecycle.onShutdown('launcher-connections', () => connections.closeAll());
  lifecycle.onShutdown('informer', () => informer?.stop());
  lifecycle.onShutdown('controller', () => controller.stop());
  lifecycle.onShutdown('not-ready', () => {
    health.markShuttingDown();
    ready.set(0);
  });

  // Node-level duties first: they need no CRD, and pods asking for /dev/kvm must not wait on one.
  await health.listen();
  const metrics = await serveMetrics(client, metricsPort, 'kubevm-node-handler', log, metricsTlsDir);
  lifecycle.onShutdown('metrics', () => metrics.close());
  await devicePlugins.start();
  await heartbeat.start();

  const selector = await untilVmiApiServed(() => nodeVmiSelector(vmis, nodeName, log), lifecycle.signal, log);
  informer = new Informer<VirtualMachineInstance>({
    client,
    descriptor: vmiResource,
    ...selector,
    validate: schemaValidator(VirtualMachineInstanceSchema, 'VirtualMachineInstance'),
    log,
  });
  const reconcile = vmiHandlerReconcile({ nodeName, vmis, informer, domains, connections, events });
  // Launcher events feed the second cache; each change is one more level-triggered pass.
  let lastKvmVerdict = kvmVerified();
  domains.onChange((key) => {
    controller.enqueue(key);
    // New evidence reaches the node label now, not at the next heartbeat.
    const verdict = kvmVerified();
    if (verdict !== undefined && verdict !== lastKvmVerdict) void heartbeat.beat();
    lastKvmVerdict = verdict;
  });
  controller.watch(informer);
  informer.start();
  await controller.start(lifecycle.signal);
  await startStreamServer({ nodeName, podsDir: path.join(kubeletRoot, 'pods'), vmi: (key) => informer?.get(key), log }, streamTlsDir, streamPort, lifecycle);
  ready.set(1);
  log.info({ node: nodeName, kubeletRoot }, 'node handler running');
}

/**
 * Serves streams to the api-server once the streams certificate the operator issues is mounted
 * (ADR 0014): at start, or when the optional Secret volume fills in later; a renewed certificate
 * or CA bundle is taken for new handshakes without a restart.
 */
async function startStreamServer(
  options: Omit<ConstructorParameters<typeof StreamServer>[0], 'tls'>,
  tlsDir: string,
  port: number,
  lifecycle: ProcessLifecycle,
): Promise<void> {
  let server: StreamServer | undefined;
  const serve = async (tls: TlsFiles): Promise<void> => {
    server = new StreamServer({ ...options, tls });
    const address = await server.listen(port);
    options.log.info({ port: address.port }, 'serving streams to the api-server (mutual TLS)');
  };
  const watcher = new TlsDirWatcher(
    tlsDir,
    (tls) => {
      if (server) server.setTls(tls);
      else serve(tls).catch((err: unknown) => options.log.error({ err, port }, 'could not serve streams'));
    },
    options.log.child({ server: 'streams' }),
  );
  lifecycle.onShutdown('stream-server', async () => {
    watcher.stop();
    await server?.close();
  });
  const mounted = watcher.start();
  if (mounted) await serve(mounted);
  else options.log.warn({ dir: tlsDir }, 'no streams certificate yet: console, VNC and port-forward are not served on this node until the operator issues it');
}

/** Retries while the VMI API is not served yet (CRDs not installed): a DaemonSet may start first. */
async function untilVmiApiServed<T>(attempt: () => Promise<T>, signal: AbortSignal, log: Logger): Promise<T> {
  for (let delayMs = 1000; ; delayMs = Math.min(delayMs * 2, 30_000)) {
    try {
      return await attempt();
    } catch (error) {
      if (!isNotFound(error) || signal.aborted) throw error;
      log.warn({ retryInMs: delayMs }, 'the VirtualMachineInstance API is not served yet (CRDs not installed?); waiting');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

main().catch((error: unknown) => {
  createRootLogger({ component: 'node-handler' }).fatal({ err: error }, 'node handler failed to start');
  process.exit(1);
});
