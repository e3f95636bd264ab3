import { describe, expect, it } from '@jest/globals';
import type { DeployFacts, VmiLauncherFacts } from './status.js';
import { daemonSetReadiness, deletingStatus, deployingStatus, deploymentReadiness, outdatedWorkloads } from './status.js';

const now = new Date('2026-01-02T03:04:05.678Z');
const facts = (overrides: Partial<DeployFacts> = {}): DeployFacts => ({
  generation: 3,
  operatorVersion: '0.1.0',
  registry: 'kubevm',
  tag: '0.2.0',
  deploymentID: 'abc',
  applyErrors: [],
  workloads: [{ what: 'Deployment kubevirt/kubevm-controller', ready: true }],
  ...overrides,
});
const condition = (status: ReturnType<typeof deployingStatus>, type: string) => status.conditions?.find((c) => c.type === type);

describe('deploymentReadiness', () => {
  it('is ready only when the new spec is observed and every replica is updated and available', () => {
    const base = { metadata: { generation: 2 }, spec: { replicas: 2 } };
    expect(deploymentReadiness('d', undefined)).toEqual({ what: 'd', ready: false, detail: 'not created yet' });
    expect(deploymentReadiness('d', { ...base, status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 } }).ready).toBe(false);
    expect(deploymentReadiness('d', { ...base, status: { observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2 } }).ready).toBe(false);
    expect(deploymentReadiness('d', { ...base, status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 } })).toEqual({
      what: 'd',
      ready: false,
      detail: '2/2 replicas updated, 1/2 available',
    });
    expect(deploymentReadiness('d', { ...base, status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 } }).ready).toBe(true);
  });

  it('judges a DaemonSet by its scheduled, updated and available pods', () => {
    const ds = (available: number) => ({ metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: available } });
    expect(daemonSetReadiness('h', ds(1)).ready).toBe(false);
    expect(daemonSetReadiness('h', ds(2)).ready).toBe(true);
  });
});

describe('deployingStatus', () => {
  it('reports Deploying with an honest reason while a workload is not ready', () => {
    const status = deployingStatus(undefined, facts({ workloads: [{ what: 'Deployment kubevirt/kubevm-controller', ready: false, detail: '0/2 available' }] }), now);
    expect(status.phase).toBe('Deploying');
    expect(status.observedGeneration).toBe(3);
    expect(status.observedKubeVirtVersion).toBeUndefined();
    expect(condition(status, 'Available')).toMatchObject({ status: 'False', reason: 'DeploymentInProgress', message: 'Waiting for Deployment kubevirt/kubevm-controller: 0/2 available' });
    expect(condition(status, 'Progressing')).toMatchObject({ status: 'True', reason: 'DeploymentInProgress' });
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'False' });
    expect(status.conditions?.map((c) => c.type)).toEqual(['Available', 'Progressing', 'Degraded', 'Created']);
  });

  it('reports Deployed with the observed version once everything is ready, and keeps transition times on a repeat', () => {
    const first = deployingStatus(undefined, facts(), now);
    expect(first.phase).toBe('Deployed');
    expect(first).toMatchObject({ observedKubeVirtVersion: '0.2.0', observedKubeVirtRegistry: 'kubevm', targetKubeVirtVersion: '0.2.0', observedDeploymentID: 'abc', operatorVersion: '0.1.0' });
    expect(condition(first, 'Available')).toMatchObject({ status: 'True', reason: 'AllComponentsReady', lastTransitionTime: '2026-01-02T03:04:05Z' });
    const again = deployingStatus(first, facts(), new Date('2026-01-02T04:00:00Z'));
    expect(again).toEqual(first);
  });

  it('reports Degraded with the API server\'s answer when an object cannot be applied', () => {
    const status = deployingStatus(undefined, facts({ applyErrors: ['ClusterRole x: 403 Forbidden: no'] }), now);
    expect(status.phase).toBe('Deploying');
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'True', reason: 'DeploymentFailed', message: '1 object(s) could not be applied: ClusterRole x: 403 Forbidden: no' });
    expect(condition(status, 'Created')).toMatchObject({ status: 'False' });
  });
});

describe('deletingStatus', () => {
  it('says why an uninstall is blocked', () => {
    const status = deletingStatus(undefined, 'Rejecting the uninstall request', [], now);
    expect(status.phase).toBe('Deleting');
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'True', reason: 'DeletionBlocked', message: 'Rejecting the uninstall request' });
  });

  it('names what is left to delete, the first five of them', () => {
    const left = ['DaemonSet kubevirt/kubevm-node-handler', 'Service kubevirt/kubevm-api-server'];
    expect(condition(deletingStatus(undefined, undefined, left, now), 'Progressing')).toMatchObject({
      status: 'True',
      message: 'Deleting 2 object(s) the operator created: DaemonSet kubevirt/kubevm-node-handler, Service kubevirt/kubevm-api-server',
    });
    const many = Array.from({ length: 7 }, (_, i) => `ClusterRole r${i}`);
    expect(condition(deletingStatus(undefined, undefined, many, now), 'Progressing')?.message).toBe('Deleting 7 object(s) the operator created: ClusterRole r0, ClusterRole r1, ClusterRole r2, ClusterRole r3, ClusterRole r4 and 2 more');
  });
});

describe('outdatedWorkloads', () => {
  const current = 'kubevm/launcher:0.2.0';
  const vmi = (phase: string, image: string | undefined, deleting = false): VmiLauncherFacts => ({
    ...(deleting ? { metadata: { deletionTimestamp: '2026-12-01T20:00:00Z' } } : {}),
    status: { phase, ...(image !== undefined ? { launcherContainerImageVersion: image } : {}) },
  });

  it('counts running VMIs whose known launcher image is not the current one, as KubeVirt does', () => {
    expect(
      outdatedWorkloads(
        [
          vmi('Running', 'kubevm/launcher:0.1.0'), // outdated
          vmi('Running', 'registry.example/kubevm/launcher:0.2.0'), // another registry: outdated too
          vmi('Running', current), // current
          vmi('Running', undefined), // not known yet (the controller writes it once the pod runs)
          vmi('Running', ''),
          vmi('Scheduled', 'kubevm/launcher:0.1.0'), // not running
          vmi('Succeeded', 'kubevm/launcher:0.1.0'), // final
          vmi('Running', 'kubevm/launcher:0.1.0', true), // being deleted
        ],
        current,
      ),
    ).toBe(2);
    expect(outdatedWorkloads([], current)).toBe(0);
  });
});
