// kubevm node handler (KubeVirt's virt-handler): one per node, as a DaemonSet. Wires the VMI
// controller for this node's VMIs, the launchers' input (their VMI) and connections, the kubelet device plugin, the node
// labels and heartbeat, the health/metrics endpoint, and both ends of a migration (the source's
// part in the VMI controller, the target's its own controller with the migration receiver). The
// logic lives in the modules beside it.
//
// Configuration: nodeHandlerSettings below; each setting is a flag --name and a variable
// KUBEVM_NAME (runtime/config.ts). A bad value stops the process with one line (exit code 2).
import path from 'node:path';
import { z } from 'zod';
import { integerSetting, jsonText, loadConfigOrExit, portSetting } from '../runtime/config.js';
import { KubeEventRecorder } from '../runtime/events.js';
import { KSMConfiguration, VirtualMachineInstanceMigrationNames, VirtualMachineInstanceMigrationSchema, VirtualMachineInstanceNames, VirtualMachineInstanceSchema, schemaValidator } from '../runtime/api/index.js';
import { Controller } from '../runtime/controller.js';
import { HealthServer } from '../runtime/health.js';
import { metricsPortSetting, metricsTlsDirSetting, serveMetrics } from '../runtime/metrics-server.js';
import { Informer } from '../runtime/informer.js';
import { KubeClient, coreResources } from '../runtime/kube.js';
import type { KubeObject, ResourceDescriptor } from '../runtime/kube.js';
import type { V1Pod } from '@kubernetes/client-node';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { TlsDirWatcher, readTlsDir } from '../runtime/tls-files.js';
import type { TlsFiles } from '../runtime/tls-files.js';
import { DevicePluginManager } from './device-plugin/plugin.js';
import { DomainStateCache } from './domain-state.js';
import { untilVmiApiServed } from './until-served.js';
import { launcherDialer, watchLauncherSocketDirectory } from './launcher-client.js';
import { LauncherConnections } from './launcher-connections.js';
import { LauncherInputs, nodeLauncherPodSelectors } from './launcher-input.js';
import { DEFAULT_KSM_DIR } from './ksm.js';
import { NodeHeartbeat, kvmVerdict } from './node-labels.js';
import { NODE_HANDLER_STREAM_PORT, STREAM_TLS_DIR } from '../runtime/contracts/streams.js';
import { MIGRATION_TLS_DIR, NODE_HANDLER_MIGRATION_CLIENT_NAME, NODE_HANDLER_MIGRATION_PORT } from '../runtime/contracts/migration-channel.js';
import { MigrationReceiver } from './migration-channel.js';
import type { MigrationTls } from './migration-channel.js';
import { MigrationSource } from './migration-source.js';
import type { MigrationObject } from './migration-source.js';
import { MigrationTarget } from './migration-target.js';
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

const migrationResource: ResourceDescriptor = {
  group: VirtualMachineInstanceMigrationNames.group,
  version: VirtualMachineInstanceMigrationNames.version,
  resource: VirtualMachineInstanceMigrationNames.plural,
  kind: VirtualMachineInstanceMigrationNames.kind,
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
  podIp: { env: 'POD_IP', schema: z.string().optional(), description: "this pod's IP, from the downward API (status.podIP): a migration target's address; without it this node is no migration target" },
  migrationPort: {
    env: 'KUBEVM_MIGRATION_PORT',
    schema: portSetting.default(NODE_HANDLER_MIGRATION_PORT),
    description: `migration streams from other nodes' handlers, mutual TLS with the streams certificate (default ${NODE_HANDLER_MIGRATION_PORT})`,
  },
  migrationTlsDir: {
    env: 'KUBEVM_MIGRATION_TLS_DIR',
    schema: z.string().default(MIGRATION_TLS_DIR),
    description: `the migration client certificate: tls.crt, tls.key and the CA ca.crt (default ${MIGRATION_TLS_DIR}); without it no migration leaves this node`,
  },
  syncPeriodSeconds: {
    env: 'KUBEVM_SYNC_PERIOD_SECONDS',
    schema: integerSetting(0, 7 * 24 * 3600).default(600),
    description: 'every VMI of the node is reconciled again this often, +0-10 % jitter (default 600; 0: off)',
  },
};

async function main(): Promise<void> {
  const {
    nodeName,
    kubeletRoot,
    devicePluginDir: pluginDir,
    devRoot,
    healthPort: port,
    metricsPort,
    metricsTlsDir,
    syncPeriodSeconds,
    streamPort,
    streamTlsDir,
    ksmConfiguration,
    ksmDir,
    podIp,
    migrationPort,
    migrationTlsDir,
  } = loadConfigOrExit('node-handler', nodeHandlerSettings);
  const log = createRootLogger({ component: 'node-handler' });

  const lifecycle = new ProcessLifecycle({ log });
  lifecycle.installSignalHandlers();
  enableProcessMetrics();
  const ready = readyStatusGauge('virt_handler');

  const client = new KubeClient();
  // Every pod's directory on this node: launcher sockets, the streams' and migrations' pod lookups.
  const podsDir = path.join(kubeletRoot, 'pods');
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
    podsDir,
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

  // The launchers' input: each launcher pod bound to this node gets its VMI from here.
  const launcherInputs = new LauncherInputs({
    nodeName,
    podsDir,
    getVmi: (namespace, name) => vmis.find(name, namespace, lifecycle.signal),
    log,
  });
  const launcherPods = new Informer<V1Pod & KubeObject>({ client, descriptor: coreResources.pods, ...nodeLauncherPodSelectors(nodeName), log });
  launcherPods.addEventHandler({
    onAdd: (pod) => launcherInputs.observe(pod),
    onUpdate: (_old, pod) => launcherInputs.observe(pod),
    onDelete: (pod) => launcherInputs.forget(pod.metadata?.uid ?? ''),
  });
  health.addReadinessCheck('launcher-pod-informer', () => launcherPods.hasSynced() || 'launcher pod informer not synced');
  lifecycle.onShutdown('launcher-inputs', async () => {
    launcherInputs.stop();
    await launcherPods.stop();
  });
  launcherPods.start();

  const selector = await untilVmiApiServed(() => nodeVmiSelector(vmis, nodeName, log), lifecycle.signal, log);
  informer = new Informer<VirtualMachineInstance>({
    client,
    descriptor: vmiResource,
    ...selector,
    validate: schemaValidator(VirtualMachineInstanceSchema, 'VirtualMachineInstance'),
    log,
  });
  // Migrations: this node as a source (the VMI controller's passes) and as a target (its own controller).
  // The source reads its client certificate for each migration (a renewal is taken at the next one).
  const migrationClientTls = (): MigrationTls | undefined => migrationTlsOf(readTlsDir(migrationTlsDir));
  const migrations = new Informer<MigrationObject>({
    client,
    descriptor: migrationResource,
    validate: schemaValidator(VirtualMachineInstanceMigrationSchema, 'VirtualMachineInstanceMigration'),
    log,
  });
  const findMigration = (uid: string) => migrations.list().find((m) => m.metadata?.uid === uid);
  const migrationSource = new MigrationSource({ nodeName, podsDir, tls: migrationClientTls, findMigration, enqueue: (key) => controller.enqueue(key), log });
  const migrationTarget = await startMigrationTarget({ nodeName, podIp, port: migrationPort, podsDir, tls: migrationTlsOf(readTlsDir(streamTlsDir)), migrations, vmis, connections, log }, lifecycle);
  const reconcile = vmiHandlerReconcile({ nodeName, vmis, informer, domains, connections, events, migrationSource, holdsIncoming: (key) => migrationTarget?.target.holds(key) === true });
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
  // A migration's change concerns its VMI: the source aborts a deleted one.
  controller.watch(migrations, (m) => (m.metadata?.namespace ? [`${m.metadata.namespace}/${m.spec.vmiName}`] : []));
  informer.start();
  migrations.start();
  lifecycle.onShutdown('migrations-informer', () => migrations.stop());
  await controller.start(lifecycle.signal);
  if (migrationTarget) {
    migrationTarget.controller.watch(migrations);
    lifecycle.onShutdown('migration-target', () => migrationTarget.controller.stop());
    await migrationTarget.controller.start(lifecycle.signal);
  }
  await startStreamServer({ nodeName, podsDir, vmi: (key) => informer?.get(key), log }, streamTlsDir, streamPort, lifecycle);
  ready.set(1);
  log.info({ node: nodeName, kubeletRoot }, 'node handler running');
}

function migrationTlsOf(files: TlsFiles | undefined): MigrationTls | undefined {
  return files ? { cert: files.cert.toString('utf8'), key: files.key.toString('utf8'), ca: files.ca.toString('utf8') } : undefined;
}

/**
 * This node as a migration target: a MigrationReceiver on the pod IP that only other node
 * handlers may send to, and the controller that prepares incoming launchers. Nothing without the
 * certificate or the pod IP (said once in the log).
 */
async function startMigrationTarget(
  options: Omit<ConstructorParameters<typeof MigrationTarget>[0], 'receiver' | 'podIp'> & { podIp: string | undefined; tls: MigrationTls | undefined },
  lifecycle: ProcessLifecycle,
): Promise<{ target: MigrationTarget; controller: Controller } | undefined> {
  const { tls, podIp, log } = options;
  if (!tls || !podIp) {
    // The streams certificate is read at start: a node handler started before the operator issued it takes migrations after a restart.
    log.warn({ certificate: tls !== undefined, podIp }, 'no streams certificate or pod IP: this node takes no incoming migrations');
    return undefined;
  }
  // Served with the streams server certificate; only the node handlers' migration client certificate may send.
  const receiver = new MigrationReceiver({ tls, log, port: options.port, peerNames: [NODE_HANDLER_MIGRATION_CLIENT_NAME] });
  lifecycle.onShutdown('migration-receiver', () => receiver.close());
  await receiver.listen();
  const target = new MigrationTarget({ ...options, podIp, receiver });
  const controller = new Controller({ name: 'virt-handler-migration', kind: 'VirtualMachineInstanceMigration', workers: 2, log, reconcile: target.reconcile });
  return { target, controller };
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
main().catch((error: unknown) => {
  createRootLogger({ component: 'node-handler' }).fatal({ err: error }, 'node handler failed to start');
  process.exit(1);
});
