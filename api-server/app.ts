// Wires the api-server's parts into one fastify server: the subresource routes of VMs and VMIs,
// discovery, version and health. main.ts runs it in the pod; tests build the same server.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MUTATING_WEBHOOK_PATH, VALIDATING_WEBHOOK_PATH } from '../runtime/contracts/api-server.js';
import type { WebhookClientAuth } from '../runtime/contracts/api-server.js';
import type { KubeClient } from '../runtime/kube.js';
import { VirtualMachineInstanceMigrationNames, VirtualMachineInstanceNames, VirtualMachineNames } from '../runtime/api/index.js';
import type { Logger } from '../runtime/logging.js';
import type { AdmissionContext } from './admission/admit.js';
import { handleAdmissionReview } from './admission/admit.js';
import { handleMutationReview } from './admission/mutate.js';
import type { Authorizer } from './authorize.js';
import { descriptorOf, instancetypeSources } from './descriptors.js';
import type { InstancetypeSources } from './expand.js';
import { expandRoutes } from './expand.js';
import type { FrontProxyConfig } from './front-proxy.js';
import { authenticateWebhookCaller, peerCertificateOf } from './front-proxy.js';
import type { SubresourceRoute } from './server.js';
import { buildApiServer } from './server.js';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration } from './types.js';
import { apiServerHealth, versionInfo } from './version.js';
import { unauthorized } from './status.js';
import type { VmBackends } from './vm-subresources.js';
import { vmSubresourceRoutes } from './vm-subresources.js';
import { vmiSubresourceRoutes } from './vmi-subresources.js';
import type { NodeStreams } from './node-streams.js';
import { nodeGuestAgent } from './node-streams.js';
import { streamRoutes } from './stream-routes.js';

export function backendsOf(client: KubeClient): VmBackends {
  return {
    vms: client.resource<VirtualMachine>(descriptorOf(VirtualMachineNames)),
    vmis: client.resource<VirtualMachineInstance>(descriptorOf(VirtualMachineInstanceNames)),
    migrations: client.resource<VirtualMachineInstanceMigration>(descriptorOf(VirtualMachineInstanceMigrationNames)),
  };
}

/** Every subresource route kubevm serves (discovery lists exactly these). */
export function subresourceRoutes(backends: VmBackends, instancetypes: InstancetypeSources, streams: NodeStreams): SubresourceRoute[] {
  return [...vmSubresourceRoutes(backends), ...vmiSubresourceRoutes(backends, (node, request) => nodeGuestAgent(streams, node, request)), ...expandRoutes(backends, instancetypes), ...streamRoutes(backends, streams)];
}

export interface ApiServerDeps {
  client: KubeClient;
  authorizer: Authorizer;
  frontProxy: () => FrontProxyConfig;
  log: Logger;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The cluster the validating webhook consults. */
  admission: AdmissionContext;
  /** The node handlers' stream endpoints (console, VNC, port-forward, screenshots). */
  streams: NodeStreams;
  /** required: a webhook call without the kube-apiserver's client certificate is refused (401). */
  webhookClientAuth?: WebhookClientAuth;
}


/**
 * An UPDATE's review carries the object twice (object and oldObject), each up to etcd's 1.5 MiB:
 * with the 1 MiB of the subresource routes, a VM with large inline user data could not be changed
 * at all (the webhook answered 413 and, failing closed, refused the write).
 */
export const ADMISSION_REVIEW_MAX_BYTES = 4 * 1024 * 1024;

/** The webhook's body as JSON, undefined when it is not (the handlers answer that with a refusal). */
function reviewBody(body: unknown): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : '');
  } catch {
    return undefined;
  }
}

export function createApiServer(deps: ApiServerDeps): FastifyInstance {
  return buildApiServer({
    frontProxy: deps.frontProxy,
    authorizer: deps.authorizer,
    routes: subresourceRoutes(backendsOf(deps.client), instancetypeSources(deps.client), deps.streams),
    log: deps.log,
    version: versionInfo(),
    health: apiServerHealth(deps.client),
    ...(deps.tls ? { tls: deps.tls } : {}),
    extend: (app) => {
      // Called by the kube-apiserver: no user to authenticate, but when the cluster presents its
      // client certificate to webhooks, nothing else may post a review of its own making.
      const webhook = {
        bodyLimit: ADMISSION_REVIEW_MAX_BYTES,
        onRequest: async (request: FastifyRequest): Promise<void> => {
          if (deps.webhookClientAuth !== 'required') return;
          const caller = authenticateWebhookCaller(deps.frontProxy(), peerCertificateOf(request.raw.socket));
          if (caller.ok) return;
          deps.log.warn({ path: request.routeOptions.url, remote: request.ip, reason: caller.reason }, 'admission review refused: not from the kube-apiserver');
          throw unauthorized(caller.reason);
        },
      };
      app.post(VALIDATING_WEBHOOK_PATH, webhook, async (request, reply) => {
        const review = await handleAdmissionReview(reviewBody(request.body), deps.admission);
        if (!review.response.allowed) deps.log.info({ uid: review.response.uid, message: review.response.status?.message }, 'admission denied');
        return reply.type('application/json').send(review);
      });
      app.post(MUTATING_WEBHOOK_PATH, webhook, async (request, reply) => reply.type('application/json').send(handleMutationReview(reviewBody(request.body))));
    },
  });
}
