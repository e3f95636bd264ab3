// Everything one KubeVirt CR stands for, rendered from its spec: a pure function, so what the
// operator applies, what deploy/ and the chart carry, and what the unit tests read are one thing.
import type { KubeVirtSpec } from '../../runtime/api/index.js';
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS } from '../install.js';
import type { ApiServerTls } from './api-server.js';
import { renderApiServer } from './api-server.js';
import { renderManagedCrds } from './crds.js';
import { renderControllerPolicy, renderNodeHandlerPolicy } from './policies.js';
import { renderControllerRbac, renderMetricsReaderRole, renderNodeHandlerRbac } from './rbac.js';
import { renderUserRoles } from './user-roles.js';
import { renderMutatingWebhooks, renderValidatingWebhooks } from './webhooks.js';
import { renderControllerDeployment, renderLauncherPriorityClass, renderNodeHandlerDaemonSet, renderPodDisruptionBudget } from './workloads.js';

/** The operator's certificates: their Secrets and what the api-server's objects need of them. */
export interface PkiMaterial {
  secrets: Manifest[];
  tls: ApiServerTls;
}

/**
 * The objects of an installation in apply order: CRDs first (the components' informers need them),
 * then identities and rights, then the workloads that use them. Without `pki` (deploy/, the
 * operator's own RBAC) the certificate Secrets are left out and the APIServices carry no caBundle.
 * The admission webhook fails closed, so it is registered (`registerWebhooks`) only once the
 * api-server answers; it needs the CA bundle too.
 */
export function renderInstallation(spec: KubeVirtSpec, target: InstallTarget, pki?: PkiMaterial, registerWebhooks = false): Manifest[] {
  const controllerReplicas = spec.infra?.replicas ?? 2;
  return [
    ...renderManagedCrds(target),
    renderLauncherPriorityClass(target),
    ...renderUserRoles(target),
    renderMetricsReaderRole(target),
    ...renderControllerRbac(target),
    ...renderNodeHandlerRbac(target),
    // Before the workloads they confine.
    ...renderControllerPolicy(target),
    ...renderNodeHandlerPolicy(target),
    // Before the workloads that mount them, so the pods start with their certificates.
    ...(pki?.secrets ?? []),
    renderControllerDeployment(spec, target),
    // A budget of one available replica would block every drain of a single-replica controller.
    ...(controllerReplicas >= 2 ? [renderPodDisruptionBudget('controller', COMPONENTS.controller.name, target)] : []),
    renderNodeHandlerDaemonSet(spec, target),
    ...renderApiServer(spec, target, pki?.tls),
    ...(pki && registerWebhooks ? [renderValidatingWebhooks(target, pki.tls.caBundle), renderMutatingWebhooks(target, pki.tls.caBundle)] : []),
  ];
}
