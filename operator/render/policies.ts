// ValidatingAdmissionPolicies that confine kubevm's own components to what they need, where RBAC
// cannot say it (SECURITY.md, "Every component confined"). The kube-apiserver evaluates them in
// process (CEL), so they hold even while kubevm's api-server is down, and a stolen token of the
// component cannot talk its way past them.
// - The node handler may change only its own Node and the VMIs on its node (or migrating to it):
//   the node comes from its service account token, bound to its pod and so to the pod's node (the
//   token's extra `authentication.kubernetes.io/node-name`, as KubeVirt's virt-handler policy).
// - The controller may create only launcher pods of the expected shape, owned by a VMI: a
//   compromised controller cannot start a privileged pod, a pod with host namespaces or host paths,
//   or a pod with an API token. (It may create no Secret at all: RBAC grants it none.)
import type { InstallTarget, Manifest } from '../install.js';
import { COMPONENTS, LAUNCHER_IMAGE_NAME, imageRef, managedLabels } from '../install.js';
import { LAUNCHER_COMMAND } from './workloads.js';
import { IMAGE_COPIER_BUSYBOX, imageCopierHookCommand } from '../../runtime/contracts/launcher-pod.js';

const ADMISSION_API = 'admissionregistration.k8s.io/v1';
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';
export const NODE_HANDLER_POLICY = 'kubevm-node-handler-node-restriction';
export const CONTROLLER_POLICY = 'kubevm-controller-launcher-pods';

const serviceAccountUser = (component: keyof typeof COMPONENTS, target: InstallTarget): string => `system:serviceaccount:${target.namespace}:${COMPONENTS[component].name}`;

/** A CEL string literal (single-quoted, escaped). */
const cel = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
const celList = (items: readonly string[]): string => `[${items.map(cel).join(', ')}]`;

function policyWithBinding(name: string, component: string, target: InstallTarget, spec: Record<string, unknown>): Manifest[] {
  const labels = managedLabels(component, target);
  return [
    { apiVersion: ADMISSION_API, kind: 'ValidatingAdmissionPolicy', metadata: { name, labels }, spec: { failurePolicy: 'Fail', ...spec } },
    { apiVersion: ADMISSION_API, kind: 'ValidatingAdmissionPolicyBinding', metadata: { name, labels }, spec: { policyName: name, validationActions: ['Deny'] } },
  ];
}

export function renderNodeHandlerPolicy(target: InstallTarget): Manifest[] {
  const node = `variables.nodeName`;
  return policyWithBinding(NODE_HANDLER_POLICY, 'node-handler', target, {
    matchConstraints: {
      resourceRules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['nodes', 'nodes/status'] },
        { apiGroups: ['kubevirt.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['virtualmachineinstances', 'virtualmachineinstances/status'] },
      ],
    },
    matchConditions: [{ name: 'node-handler', expression: `request.userInfo.username == ${cel(serviceAccountUser('nodeHandler', target))}` }],
    variables: [
      {
        name: 'nodeName',
        expression: `${cel(NODE_NAME_EXTRA)} in request.userInfo.extra && size(request.userInfo.extra[${cel(NODE_NAME_EXTRA)}]) == 1 ? request.userInfo.extra[${cel(NODE_NAME_EXTRA)}][0] : ''`,
      },
      // The VMI as it was: its node, and whether one of its active pods is on this node (a
      // migration's target pod: the controller records it; its handler prepares the target and
      // writes the VMI's migrationState before the VMI is on its node).
      { name: 'vmiNode', expression: `oldObject != null && has(oldObject.status) && has(oldObject.status.nodeName) ? oldObject.status.nodeName : ''` },
      {
        name: 'activePodHere',
        expression: `oldObject != null && has(oldObject.status) && has(oldObject.status.activePods) && oldObject.status.activePods.exists(uid, oldObject.status.activePods[uid] == ${node})`,
      },
    ],
    validations: [
      {
        expression: `${node} != ''`,
        message: `the node handler's credentials are not bound to a node (no ${NODE_NAME_EXTRA}): only the token of its own pod may write`,
        reason: 'Forbidden',
      },
      { expression: `request.operation == 'UPDATE'`, messageExpression: `'the node handler only updates; it may not ' + request.operation + ' ' + request.resource.resource`, reason: 'Forbidden' },
      {
        expression: `request.resource.resource != 'nodes' || object.metadata.name == ${node}`,
        messageExpression: `'the node handler of node ' + ${node} + ' may change only its own Node, not ' + object.metadata.name`,
        reason: 'Forbidden',
      },
      {
        expression: `request.resource.resource == 'nodes' || (variables.vmiNode != '' && variables.vmiNode == ${node}) || variables.activePodHere`,
        messageExpression: `'the node handler of node ' + ${node} + ' may change only VMIs on its node; ' + object.metadata.name + ' is on ' + (variables.vmiNode == '' ? 'no node' : 'node ' + variables.vmiNode)`,
        reason: 'Forbidden',
      },
      {
        // Nor may it move one onto or off its node.
        expression: `request.resource.resource == 'nodes' || (has(object.status) && has(object.status.nodeName) ? object.status.nodeName : '') == variables.vmiNode`,
        message: 'the node handler may not change status.nodeName',
        reason: 'Forbidden',
      },
    ],
  });
}

/** The volume types renderLauncherPod uses (controller/vmi/launcher-pod.ts); anything else is refused. */
export const LAUNCHER_VOLUME_TYPES = ['emptyDir', 'secret', 'configMap', 'persistentVolumeClaim', 'image'] as const;

export function renderControllerPolicy(target: InstallTarget): Manifest[] {
  const launcherImage = imageRef(target, LAUNCHER_IMAGE_NAME);
  const launcherCommand = LAUNCHER_COMMAND.split(' ');
  const hookTemplate = imageCopierHookCommand('');
  const allContainers = `(object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : []))`;
  const restricted = [
    `has(c.securityContext)`,
    `has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false`,
    `!has(c.securityContext.privileged) || c.securityContext.privileged == false`,
    `has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot == true`,
    `has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && 'ALL' in c.securityContext.capabilities.drop`,
    `!has(c.securityContext.capabilities.add) || size(c.securityContext.capabilities.add) == 0`,
  ]
    .map((term) => `(${term})`)
    .join(' && ');
  const pod = (expression: string, message: string): Record<string, string> => ({ expression, message: `kubevm's controller may create only launcher pods: ${message}`, reason: 'Forbidden' });
  return policyWithBinding(CONTROLLER_POLICY, 'controller', target, {
    matchConstraints: {
      resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] }],
    },
    matchConditions: [{ name: 'controller', expression: `request.userInfo.username == ${cel(serviceAccountUser('controller', target))}` }],
    validations: [
      { expression: `request.operation == 'CREATE'`, message: "kubevm's controller creates and deletes pods; it never updates them", reason: 'Forbidden' },
      {
        expression: `has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(o, o.apiVersion.startsWith('kubevirt.io/') && o.kind == 'VirtualMachineInstance' && has(o.controller) && o.controller == true)`,
        message: "kubevm's controller creates pods only for a VirtualMachineInstance (its controller owner reference)",
        reason: 'Forbidden',
      },
      pod(`has(object.metadata.labels) && 'kubevirt.io' in object.metadata.labels && object.metadata.labels['kubevirt.io'] == 'virt-launcher'`, 'the label kubevirt.io=virt-launcher'),
      pod(`!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && !(has(object.spec.hostPID) && object.spec.hostPID) && !(has(object.spec.hostIPC) && object.spec.hostIPC)`, 'no host network, PID or IPC namespace'),
      pod(`!has(object.spec.volumes) || object.spec.volumes.all(v, ${LAUNCHER_VOLUME_TYPES.map((t) => `has(v.${t})`).join(' || ')})`, `volumes only of the types ${LAUNCHER_VOLUME_TYPES.join(', ')} (no hostPath, no projected token)`),
      pod(`has(object.spec.automountServiceAccountToken) && object.spec.automountServiceAccountToken == false && (!has(object.spec.serviceAccountName) || object.spec.serviceAccountName == 'default')`, 'the default service account and no API token'),
      pod(`has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot == true`, 'runAsNonRoot'),
      pod(`!has(object.spec.securityContext.sysctls) || object.spec.securityContext.sysctls.all(s, s.name == 'net.ipv4.ip_unprivileged_port_start')`, 'no sysctl but net.ipv4.ip_unprivileged_port_start'),
      pod(`${allContainers}.all(c, ${restricted})`, 'every container restricted (non-root, no privilege escalation, ALL capabilities dropped, none added)'),
      pod(
        `object.spec.containers.exists_one(c, c.name == 'compute') && object.spec.containers[0].name == 'compute' && object.spec.containers[0].image == ${cel(launcherImage)} && has(object.spec.containers[0].command) && object.spec.containers[0].command == ${celList(launcherCommand)}`,
        `the first container, compute, running ${launcherImage} with the command ${JSON.stringify(LAUNCHER_COMMAND)}`,
      ),
      // The image copies beside the launcher (ADR 0006) run the VM's images, as they must, but
      // with the copier's busybox and the copy script's argument layout, not the image's own
      // entrypoint (the script itself is not compared: a long literal would exceed CEL's cost budget).
      pod(
        `object.spec.containers.all(c, c.name == 'compute' || (has(c.command) && size(c.command) >= 7 && c.command[0] == ${cel(IMAGE_COPIER_BUSYBOX)} && c.command[1] == 'sh' && c.command[2] == '-c' && c.command[4] == 'copy-image' && !has(c.args)))`,
        `every other container an image copy: ${IMAGE_COPIER_BUSYBOX} sh -c <the copy script> copy-image ...`,
      ),
      pod(`!has(object.spec.initContainers) || object.spec.initContainers.all(c, c.name == 'copier' && c.image == ${cel(launcherImage)})`, `no init container but the copier, from ${launcherImage}`),
      // The kubelet runs lifecycle hooks itself: an httpGet or tcpSocket hook would make it connect
      // wherever the pod says, and an exec hook would run beside the pinned launcher command. The one
      // hook allowed is compute's, installing the copier (its busybox path is the controller's setting).
      pod(
        `${allContainers}.all(c, !has(c.lifecycle) || (c.name == 'compute' && !has(c.lifecycle.preStop) && has(c.lifecycle.postStart) && has(c.lifecycle.postStart.exec) && !has(c.lifecycle.postStart.httpGet) && !has(c.lifecycle.postStart.tcpSocket) && !has(c.lifecycle.postStart.sleep) && size(c.lifecycle.postStart.exec.command) == ${hookTemplate.length} && c.lifecycle.postStart.exec.command[0] == c.lifecycle.postStart.exec.command[5] && ${hookTemplate
          .flatMap((word, i) => (i === 0 || i === 5 ? [] : [`c.lifecycle.postStart.exec.command[${i}] == ${cel(word)}`]))
          .join(' && ')}))`,
        `no lifecycle hook but compute's postStart that installs the copier: <busybox> sh -c <the prepare script> prepare <busybox> ${hookTemplate.slice(6).join(' ')}`,
      ),

      pod(`!has(object.spec.ephemeralContainers)`, 'no ephemeral containers'),
    ],
  });
}
