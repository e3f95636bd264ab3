// A kubelet device plugin (API v1beta1) per host device, and the manager that keeps them
// registered: level-triggered on "the device exists" and "the kubelet we registered with is the
// one running", so a kubelet restart (which wipes the device-plugins directory and recreates
// kubelet.sock) or a device appearing later both converge on the next pass.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Counter } from 'prom-client';
import type { Logger } from '../../runtime/logging.js';
import { silentLogger } from '../../runtime/logging.js';
import { registry } from '../../runtime/metrics.js';
import { devicePluginDescriptor } from './deviceplugin-v1beta1.js';
import {
  UnknownDeviceUnitError,
  allocateDevice,
  defaultDeviceUnits,
  deviceUnits,
  isDevicePresent,
  kubevirtHostDevices,
  preferredAllocation,
} from './devices.js';
import type { AllocateRequest, DeviceHealth, HostDevice, PluginDevice, PreferredAllocationRequest } from './devices.js';

export const deviceApiVersion = 'v1beta1';

/** Allocate calls answered, per resource and outcome: how many containers got a device. */
export const deviceAllocations = new Counter({
  name: 'kubevm_device_plugin_allocations_total',
  help: 'Allocate calls the kubelet made to the node handler\'s device plugins, by resource and outcome.',
  labelNames: ['resource', 'outcome'] as const,
  registers: [registry],
});
/** A generated client class whose instances carry the service's methods, typed (grpc-js types them loosely). */
type ServiceClass<C extends grpc.Client> = (new (address: string, credentials: grpc.ChannelCredentials) => C) & grpc.ServiceClientConstructor;
interface DevicePluginApi {
  Registration: ServiceClass<RegistrationClient>;
  DevicePlugin: grpc.ServiceClientConstructor;
}

/** Field names as in the .proto (keepCase); unset fields present with their defaults. */
export const devicePluginLoadOptions = { keepCase: true, longs: String, enums: String, defaults: true };

let api: DevicePluginApi | undefined;
/** The v1beta1 services, loaded once. Field names as in the .proto (keepCase). */
export function devicePluginApi(): DevicePluginApi {
  if (!api) {
    const definition = protoLoader.fromJSON(devicePluginDescriptor, devicePluginLoadOptions);
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { v1beta1: DevicePluginApi };
    api = loaded.v1beta1;
  }
  return api;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: { pre_start_required: boolean; get_preferred_allocation_available: boolean };
}

type Unary<Req, Res> = (request: Req, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: Res) => void) => void;
interface RegistrationClient extends grpc.Client {
  Register: Unary<RegisterRequest, object>;
}

/** Calls the kubelet's Registration.Register for one plugin. */
export async function registerWithKubelet(kubeletSocket: string, request: RegisterRequest, timeoutMs = 5000): Promise<void> {
  const client = new (devicePluginApi().Registration)(`unix://${kubeletSocket}`, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      client.Register(request, { deadline: Date.now() + timeoutMs }, (error) => (error ? reject(error) : resolve()));
    });
  } finally {
    client.close();
  }
}

/** Identifies one kubelet process's registration socket; a restarted kubelet makes a new file. */
async function socketIdentity(file: string): Promise<string | undefined> {
  try {
    const info = await stat(file);
    return info.isSocket() ? `${info.dev}:${info.ino}:${info.ctimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

type ListAndWatchStream = grpc.ServerWritableStream<object, { devices: PluginDevice[] }>;

/** The gRPC DevicePlugin service for one host device, on its own socket. */
export class DevicePlugin {
  private server: grpc.Server | undefined;
  private readonly streams = new Set<ListAndWatchStream>();
  private currentHealth: DeviceHealth = 'Healthy';

  constructor(
    readonly device: HostDevice,
    private readonly pluginDir: string,
    private readonly logger: Logger,
    private readonly units = defaultDeviceUnits,
  ) {}

  get socketPath(): string {
    return path.join(this.pluginDir, this.device.endpoint);
  }

  get health(): DeviceHealth {
    return this.currentHealth;
  }

  get serving(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    await this.stop();
    // A socket file left by a previous process would make bind fail with EADDRINUSE.
    await unlink(this.socketPath).catch(() => undefined);
    const server = new grpc.Server();
    server.addService(devicePluginApi().DevicePlugin.service, {
      GetDevicePluginOptions: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
        callback(null, { pre_start_required: false, get_preferred_allocation_available: true });
      },
      ListAndWatch: (call: ListAndWatchStream) => {
        this.streams.add(call);
        const forget = (): void => {
          this.streams.delete(call);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.on('error', forget);
        call.write({ devices: this.devices() });
      },
      GetPreferredAllocation: (call: grpc.ServerUnaryCall<PreferredAllocationRequest, object>, callback: grpc.sendUnaryData<object>) => {
        callback(null, preferredAllocation(call.request));
      },
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, object>, callback: grpc.sendUnaryData<object>) => {
        try {
          const response = allocateDevice(this.device, call.request, this.units);
          this.logger.debug({ resource: this.device.resourceName, containers: call.request.container_requests.length }, 'allocated');
          deviceAllocations.inc({ resource: this.device.resourceName, outcome: 'allocated' });
          callback(null, response);
        } catch (error) {
          const code = error instanceof UnknownDeviceUnitError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
          deviceAllocations.inc({ resource: this.device.resourceName, outcome: 'refused' });
          callback({ code, details: (error as Error).message }, null);
        }
      },
      PreStartContainer: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
        callback(null, {});
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve()));
    });
    this.server = server;
  }

  /** Tells the kubelet about this plugin; the kubelet then dials the socket and calls ListAndWatch. */
  async register(kubeletSocket: string): Promise<void> {
    await registerWithKubelet(kubeletSocket, {
      version: deviceApiVersion,
      endpoint: this.device.endpoint,
      resource_name: this.device.resourceName,
      options: { pre_start_required: false, get_preferred_allocation_available: true },
    });
  }

  /** Streams the new list to every ListAndWatch caller when the health flips. */
  setHealth(health: DeviceHealth): void {
    if (health === this.currentHealth) return;
    this.currentHealth = health;
    this.logger.info({ resource: this.device.resourceName, health }, 'device health changed');
    const devices = this.devices();
    for (const stream of this.streams) stream.write({ devices });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    server.forceShutdown();
    await unlink(this.socketPath).catch(() => undefined);
  }

  private devices(): PluginDevice[] {
    return deviceUnits(this.device, this.currentHealth, this.units);
  }
}

export interface DevicePluginManagerOptions {
  /** The kubelet's device-plugins directory, holding kubelet.sock (default /var/lib/kubelet/device-plugins). */
  pluginDir?: string;
  /** Where /dev is found: "/" on the host or in a pod mounting the host's /dev at /dev. */
  devRoot?: string;
  devices?: readonly HostDevice[];
  units?: number;
  /** How often to re-check devices and the kubelet even without file-system events. */
  resyncMs?: number;
  logger?: Logger;
}

export interface RegisteredResource {
  resourceName: string;
  health: DeviceHealth;
  registered: boolean;
}

/** Keeps one registered plugin per present device, re-registering after kubelet restarts. */
export class DevicePluginManager {
  readonly pluginDir: string;
  private readonly devRoot: string;
  private readonly devices: readonly HostDevice[];
  private readonly units: number;
  private readonly resyncMs: number;
  private readonly logger: Logger;
  private readonly plugins = new Map<string, DevicePlugin>();
  /** The kubelet.sock identity each plugin registered with; absent when not (yet) registered. */
  private readonly registeredWith = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(options: DevicePluginManagerOptions = {}) {
    this.pluginDir = options.pluginDir ?? '/var/lib/kubelet/device-plugins';
    this.devRoot = options.devRoot ?? '/';
    this.devices = options.devices ?? kubevirtHostDevices;
    this.units = options.units ?? defaultDeviceUnits;
    this.resyncMs = options.resyncMs ?? 5000;
    this.logger = (options.logger ?? silentLogger).child({ module: 'device-plugin' });
    // grpc-js prints its own errors to stderr; ours carry them already, in structured form.
    const grpcLog = this.logger.child({ library: 'grpc-js' });
    grpc.setLogger({ error: (...args: unknown[]) => grpcLog.debug(args.map(String).join(' ')) });
  }

  get kubeletSocket(): string {
    return path.join(this.pluginDir, 'kubelet.sock');
  }

  /** Converges now, then on every change in the plugin directory and every resync period. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.resyncMs);
    this.timer.unref();
    try {
      // Kubelet restarts show up here first (kubelet.sock recreated, our sockets removed);
      // the interval covers the events a watch can miss.
      this.watcher = watch(this.pluginDir, () => void this.sync());
      this.watcher.on('error', () => undefined);
    } catch (error) {
      this.logger.warn({ err: error, dir: this.pluginDir }, 'cannot watch the device-plugins directory; relying on resync');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
    await this.running;
    for (const plugin of this.plugins.values()) await plugin.stop();
    this.plugins.clear();
    this.registeredWith.clear();
  }

  /** What is advertised right now, for health checks and tests. */
  status(): RegisteredResource[] {
    return [...this.plugins.values()].map((plugin) => ({
      resourceName: plugin.device.resourceName,
      health: plugin.health,
      registered: this.registeredWith.has(plugin.device.resourceName),
    }));
  }

  /** One pass at a time; a request during a pass runs one more pass after it. */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          if (this.stopped) return;
          await this.syncOnce();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const kubelet = await socketIdentity(this.kubeletSocket);
    for (const device of this.devices) {
      const log = this.logger.child({ resource: device.resourceName });
      const present = await isDevicePresent(device, this.devRoot);
      let plugin = this.plugins.get(device.resourceName);
      if (!present) {
        // KubeVirt keeps the resource but reports its units unhealthy, so pods already bound
        // keep their allocation and the scheduler stops placing new ones.
        plugin?.setHealth('Unhealthy');
        continue;
      }
      try {
        if (!plugin) {
          plugin = new DevicePlugin(device, this.pluginDir, log, this.units);
          this.plugins.set(device.resourceName, plugin);
        }
        plugin.setHealth('Healthy');
        const socketGone = plugin.serving && (await socketIdentity(plugin.socketPath)) === undefined;
        if (!plugin.serving || socketGone) {
          this.registeredWith.delete(device.resourceName);
          await plugin.start();
          log.info({ socket: plugin.socketPath }, 'device plugin serving');
        }
        if (kubelet === undefined) continue;
        if (this.registeredWith.get(device.resourceName) !== kubelet) {
          await plugin.register(this.kubeletSocket);
          this.registeredWith.set(device.resourceName, kubelet);
          log.info('registered with the kubelet');
        }
      } catch (error) {
        this.registeredWith.delete(device.resourceName);
        log.warn({ err: error }, 'device plugin not registered; retrying at the next resync');
      }
    }
  }
}
