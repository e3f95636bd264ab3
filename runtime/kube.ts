// The one way components talk to the API server.
// - loadKubeConfig(): KUBECONFIG (or ~/.kube/config) when set, in-cluster otherwise.
// - KubeClient: client-node's HTTP stack (its auth: tokens, client certs, exec plugins) behind a
//   metering layer that records kubevirt_rest_client_* by verb/resource/code, with keep-alive
//   connections (client-node builds a fresh TLS agent per request otherwise).
// - ResourceClient<T>: get/list/create/replace/patch/patchStatus/replaceStatus/delete for any
//   group/version/resource, core or custom. Objects stay the JSON the server sent (no Date
//   conversion), so what we read compares equal to what we compute.
import * as http from 'node:http';
import * as https from 'node:https';
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RequestContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import type { Configuration, PromiseHttpLibrary, ResponseContext } from '@kubernetes/client-node';
import type { ObjectMeta, OwnerReference } from './api/meta.js';
import { restClientRequestLatency, restClientRequests } from './metrics.js';

export { KubeConfig } from '@kubernetes/client-node';

// Object metadata has one definition: the zod schema in ./api (types by z.infer).
export type { ObjectMeta, OwnerReference };

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
}

export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: ListMeta;
  items: T[];
}

/** Which resource a client or informer is for. `group` is '' for the core group. */
export interface ResourceDescriptor {
  group: string;
  version: string;
  /** Plural, lower case: "virtualmachineinstances", "pods". */
  resource: string;
  kind: string;
  namespaced: boolean;
}

export function apiVersionOf(descriptor: ResourceDescriptor): string {
  return descriptor.group === '' ? descriptor.version : `${descriptor.group}/${descriptor.version}`;
}

/** The collection path: /api/v1/namespaces/ns/pods, /apis/kubevirt.io/v1/virtualmachines, ... */
export function resourcePath(descriptor: ResourceDescriptor, namespace?: string, name?: string, subresource?: string): string {
  const prefix = descriptor.group === '' ? `/api/${descriptor.version}` : `/apis/${descriptor.group}/${descriptor.version}`;
  let path = prefix;
  if (descriptor.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${descriptor.resource}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) path += `/${subresource}`;
  return path;
}

/** The queue key of an object: "namespace/name", or "name" when cluster-scoped. */
export function objectKey(obj: KubeObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash === -1 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** KUBECONFIG (or ~/.kube/config) when present, the pod's service account otherwise. */
export function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  // loadFromDefault falls back to in-cluster when no file is found.
  kubeConfig.loadFromDefault();
  if (!kubeConfig.getCurrentCluster()) {
    throw new Error('no Kubernetes cluster configured: set KUBECONFIG or run in a pod with a service account');
  }
  return kubeConfig;
}

/** A failed API request, carrying the Status the server returned. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly code: number,
    /** metav1.Status reason: NotFound, AlreadyExists, Conflict, Expired, Gone, Invalid, ... */
    readonly reason: string,
    message: string,
    readonly verb: string,
    readonly path: string,
    readonly status?: unknown,
  ) {
    super(`${verb} ${path}: ${code} ${reason}: ${message}`);
  }
}

function hasCode(err: unknown, code: number): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const record = err as { code?: unknown; statusCode?: unknown };
  return record.code === code || record.statusCode === code;
}

export const isNotFound = (err: unknown): boolean => hasCode(err, 404);
export const isConflict = (err: unknown): boolean => hasCode(err, 409) && !isAlreadyExists(err);
export const isAlreadyExists = (err: unknown): boolean => err instanceof ApiError && err.code === 409 && err.reason === 'AlreadyExists';
/**
 * 403 with the NamespaceTerminating cause: the namespace is being deleted and takes no new object.
 * Nothing created there can succeed again; the deletion of its objects is what comes next.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  if (!(err instanceof ApiError) || err.code !== 403) return false;
  const causes = (err.status as { details?: { causes?: unknown } } | undefined)?.details?.causes;
  // A StatusCause's type is serialized as "reason".
  return Array.isArray(causes) && causes.some((cause) => (cause as { reason?: unknown } | null)?.reason === 'NamespaceTerminating');
}
/** 410: the resourceVersion is too old (compacted); list again. */
export const isGone = (err: unknown): boolean => hasCode(err, 410);
/** 429 or 503: the API server is busy or a resource's storage is not ready yet (a CRD just created); try again. */
export const isTemporarilyUnavailable = (err: unknown): boolean => hasCode(err, 429) || hasCode(err, 503);

// ---- REST metrics ---------------------------------------------------------------------------

interface ParsedRequestPath {
  resource: string;
  verb: string;
  /** The path with namespace and name replaced by {namespace} and {name}, as client-go's URL template. */
  template: string;
}

/** Resource and Kubernetes verb of a request, as KubeVirt's round-tripper wrapper labels them. */
export function describeRequest(method: string, url: URL): ParsedRequestPath {
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  let rest: string[] = [];
  let prefix: string[] = [];
  if (segments[0] === 'api' && segments.length >= 2) {
    prefix = segments.slice(0, 2);
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3) {
    prefix = segments.slice(0, 3);
    rest = segments.slice(3);
  }
  let resource = 'none';
  let hasName = false;
  const templated = [...prefix];
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    resource = rest[2] ?? 'none';
    templated.push('namespaces', '{namespace}', resource);
    if (rest.length >= 4) {
      hasName = true;
      templated.push('{name}', ...rest.slice(4));
    }
  } else if (rest.length >= 1) {
    resource = rest[0] ?? 'none';
    templated.push(resource);
    if (rest.length >= 2) {
      hasName = true;
      templated.push('{name}', ...rest.slice(2));
    }
  }
  const upper = method.toUpperCase();
  let verb: string;
  if (resource === 'none') verb = 'none';
  else if (upper === 'GET') verb = url.searchParams.get('watch') === 'true' ? 'WATCH' : hasName ? 'GET' : 'LIST';
  else if (upper === 'PUT') verb = 'UPDATE';
  else if (upper === 'POST') verb = 'CREATE';
  else verb = upper;
  const template = `${url.protocol}//${url.host}/${templated.length > 0 ? templated.join('/') : segments.join('/')}`;
  return { resource, verb, template };
}

/** Record one API request. `code` is the HTTP status, or "<error>" when no response came back. */
export function recordRestRequest(method: string, url: string, code: number | '<error>', seconds: number): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return;
  }
  const { resource, verb, template } = describeRequest(method, parsed);
  restClientRequests.inc({ code: String(code), method: method.toUpperCase(), host: parsed.host, resource, verb });
  restClientRequestLatency.observe({ verb, url: template }, seconds);
}

// ---- HTTP ------------------------------------------------------------------------------------

/**
 * client-node's fetch library with metrics and connection reuse. client-node attaches a fresh
 * agent to every request; we swap it for a keep-alive agent with the same TLS settings.
 */
class MeteredHttpLibrary implements PromiseHttpLibrary {
  private readonly inner = new IsomorphicFetchHttpLibrary();
  private readonly agents = new Map<string, http.Agent>();

  async send(request: RequestContext): Promise<ResponseContext> {
    this.reuseConnection(request);
    const started = performance.now();
    const method = request.getHttpMethod().toString();
    try {
      const response = await this.inner.send(request).toPromise();
      recordRestRequest(method, request.getUrl(), response.httpStatusCode, (performance.now() - started) / 1000);
      return response;
    } catch (err) {
      recordRestRequest(method, request.getUrl(), '<error>', (performance.now() - started) / 1000);
      throw err;
    }
  }

  private reuseConnection(request: RequestContext): void {
    const fresh = request.getAgent();
    // Proxy agents (a proxy-url in the kubeconfig) are left alone.
    if (!fresh || (fresh.constructor !== https.Agent && fresh.constructor !== http.Agent)) return;
    const options = (fresh as http.Agent & { options?: https.AgentOptions }).options ?? {};
    const cacheKey = [
      fresh instanceof https.Agent ? 'https' : 'http',
      pemText(options.ca),
      pemText(options.cert),
      pemText(options.key),
      pemText(options.pfx),
      String(options.rejectUnauthorized ?? ''),
      String(options.servername ?? ''),
    ].join('\u0000');
    let agent = this.agents.get(cacheKey);
    if (!agent) {
      agent =
        fresh instanceof https.Agent
          ? new https.Agent({ ...options, keepAlive: true })
          : new http.Agent({ keepAlive: true });
      this.agents.set(cacheKey, agent);
    }
    request.setAgent(agent);
  }

  destroy(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

/** TLS material (a PEM string, a Buffer, or a list of them; key objects for keys) as one cache-key string. */
function pemText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(pemText).join('\u0001');
  return JSON.stringify(value);
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly http = new MeteredHttpLibrary();
  private readonly server: string;

  constructor(kubeConfig: KubeConfig = loadKubeConfig()) {
    this.kubeConfig = kubeConfig;
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('KubeConfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** A client-node configuration that sends through the metered transport. */
  apiConfiguration(): Configuration {
    return createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      authMethods: { default: this.kubeConfig },
      httpApi: wrapHttpLibrary(this.http),
    });
  }

  /** A generated client-node API (CoreV1Api, ...) that records REST metrics like the rest. */
  makeApiClient<Api>(apiClass: new (configuration: Configuration) => Api): Api {
    return new apiClass(this.apiConfiguration());
  }

  /** A typed client for one resource. */
  resource<T extends KubeObject>(descriptor: ResourceDescriptor): ResourceClient<T> {
    return new ResourceClient<T>(this, descriptor);
  }

  /** One JSON request to the API server; throws ApiError on a non-2xx answer. */
  async request(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<unknown> {
    const url = new URL(this.server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const context = new RequestContext(url.toString(), method);
    context.setHeaderParam('Accept', 'application/json');
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      context.setBody(JSON.stringify(options.body));
    }
    if (options.signal) context.setSignal(options.signal);
    await this.kubeConfig.applySecurityAuthentication(context);
    const response = await this.http.send(context);
    const text = await response.body.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (response.httpStatusCode >= 200 && response.httpStatusCode < 300) return parsed;
    const status = typeof parsed === 'object' && parsed !== null ? (parsed as { reason?: unknown; message?: unknown }) : {};
    throw new ApiError(
      response.httpStatusCode,
      typeof status.reason === 'string' ? status.reason : String(response.httpStatusCode),
      typeof status.message === 'string' ? status.message : text.slice(0, 500),
      method,
      path,
      parsed,
    );
  }

  /** Close kept-alive connections. */
  close(): void {
    this.http.destroy();
  }
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  continue?: string;
  signal?: AbortSignal;
}

export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface PatchOptions extends WriteOptions {
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  /** Delete only this incarnation of the object (guards against deleting a re-created one). */
  preconditionUid?: string;
  preconditionResourceVersion?: string;
  signal?: AbortSignal;
}

/** Typed CRUD for one resource. Every call is metered by the owning KubeClient. */
export class ResourceClient<T extends KubeObject> {
  constructor(
    readonly client: KubeClient,
    readonly descriptor: ResourceDescriptor,
  ) {}

  /** The path of the collection (watch and list use it). */
  collectionPath(namespace?: string): string {
    return resourcePath(this.descriptor, namespace);
  }

  async get(name: string, namespace?: string, signal?: AbortSignal): Promise<T> {
    return (await this.client.request(HttpMethod.GET, resourcePath(this.descriptor, namespace, name), { ...(signal ? { signal } : {}) })) as T;
  }

  /** get, with NotFound as `undefined`. */
  async find(name: string, namespace?: string, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get(name, namespace, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(options: ListOptions = {}): Promise<ObjectList<T>> {
    const list = (await this.client.request(HttpMethod.GET, this.collectionPath(options.namespace), {
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        resourceVersion: options.resourceVersion,
        limit: options.limit,
        continue: options.continue,
      },
      ...(options.signal ? { signal: options.signal } : {}),
    })) as ObjectList<T> | undefined;
    return { ...list, items: list?.items ?? [] };
  }

  async create(obj: T, options: WriteOptions = {}): Promise<T> {
    return (await this.client.request(HttpMethod.POST, this.collectionPath(obj.metadata?.namespace), {
      body: this.withTypeMeta(obj),
      query: writeQuery(options),
      ...(options.signal ? { signal: options.signal } : {}),
    })) as T;
  }

  /** PUT the whole object; its metadata.resourceVersion makes it a compare-and-swap (409 on conflict). */
  async replace(obj: T, options: WriteOptions = {}): Promise<T> {
    return (await this.client.request(HttpMethod.PUT, this.objectPath(obj), {
      body: this.withTypeMeta(obj),
      query: writeQuery(options),
      ...(options.signal ? { signal: options.signal } : {}),
    })) as T;
  }

  /** PUT the status subresource; the server ignores everything but status (and checks resourceVersion). */
  async replaceStatus(obj: T, options: WriteOptions = {}): Promise<T> {
    return (await this.client.request(HttpMethod.PUT, this.objectPath(obj, 'status'), {
      body: this.withTypeMeta(obj),
      query: writeQuery(options),
      ...(options.signal ? { signal: options.signal } : {}),
    })) as T;
  }

  async patch(name: string, namespace: string | undefined, patch: unknown, type: PatchType = 'merge', options: PatchOptions = {}): Promise<T> {
    return this.sendPatch(resourcePath(this.descriptor, namespace, name), patch, type, options);
  }

  async patchStatus(name: string, namespace: string | undefined, patch: unknown, type: PatchType = 'merge', options: PatchOptions = {}): Promise<T> {
    return this.sendPatch(resourcePath(this.descriptor, namespace, name, 'status'), patch, type, options);
  }

  async delete(name: string, namespace?: string, options: DeleteOptions = {}): Promise<void> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.propagationPolicy) body['propagationPolicy'] = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body['gracePeriodSeconds'] = options.gracePeriodSeconds;
    if (options.preconditionUid || options.preconditionResourceVersion) {
      body['preconditions'] = {
        ...(options.preconditionUid ? { uid: options.preconditionUid } : {}),
        ...(options.preconditionResourceVersion ? { resourceVersion: options.preconditionResourceVersion } : {}),
      };
    }
    await this.client.request(HttpMethod.DELETE, resourcePath(this.descriptor, namespace, name), {
      body,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private async sendPatch(path: string, patch: unknown, type: PatchType, options: PatchOptions): Promise<T> {
    const query = writeQuery(options);
    if (type === 'apply') {
      if (!options.fieldManager) throw new Error('server-side apply needs a fieldManager');
      if (options.force) query['force'] = true;
    }
    return (await this.client.request(HttpMethod.PATCH, path, {
      body: patch,
      contentType: patchContentTypes[type],
      query,
      ...(options.signal ? { signal: options.signal } : {}),
    })) as T;
  }

  private objectPath(obj: T, subresource?: string): string {
    const name = obj.metadata?.name;
    if (!name) throw new Error(`${this.descriptor.kind} without metadata.name`);
    return resourcePath(this.descriptor, obj.metadata?.namespace, name, subresource);
  }

  private withTypeMeta(obj: T): T {
    return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(this.descriptor), kind: obj.kind ?? this.descriptor.kind };
  }
}

function writeQuery(options: WriteOptions): Record<string, string | number | boolean | undefined> {
  return {
    fieldManager: options.fieldManager,
    dryRun: options.dryRun ? 'All' : undefined,
  };
}

/** Descriptors of the built-in resources the runtime itself uses. */
export const coreResources = {
  configMaps: { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true },
  pods: { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true },
  events: { group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  nodes: { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false },
  leases: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true },
  controllerRevisions: { group: 'apps', version: 'v1', resource: 'controllerrevisions', kind: 'ControllerRevision', namespaced: true },
  namespaces: { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false },
  persistentVolumeClaims: { group: '', version: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true },
} as const satisfies Record<string, ResourceDescriptor>;
