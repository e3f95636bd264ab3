// The start-up bench's count of API requests by client (bench/support/api-requests.ts): what it
// reads from each client's metrics, what it leaves out, and what it leaves to "unclaimed".
import { describe, expect, it } from '@jest/globals';
import { EVERY_CLIENT, UNCLAIMED, countsOf, requestsBetween } from '../../bench/support/api-requests.js';
import type { RequestSample } from '../../bench/support/api-requests.js';
import { parseSamples } from '../../bench/support/prometheus.js';

const apiserver = (creates: number, patches: number, lists: number, reviews: number) =>
  parseSamples(
    [
      '# HELP apiserver_request_total [STABLE] Counter of apiserver requests',
      `apiserver_request_total{code="201",component="apiserver",dry_run="",group="kubevirt.io",resource="virtualmachineinstances",scope="resource",subresource="",verb="POST",version="v1"} ${creates}`,
      `apiserver_request_total{code="200",component="apiserver",dry_run="",group="kubevirt.io",resource="virtualmachineinstances",scope="resource",subresource="status",verb="PATCH",version="v1"} ${patches}`,
      `apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} ${lists}`,
      `apiserver_request_total{code="201",component="apiserver",dry_run="",group="authentication.k8s.io",resource="tokenreviews",scope="cluster",subresource="",verb="POST",version="v1"} ${reviews}`,
      '',
    ].join('\n'),
  );
// prom-client's label order, as kubevm's components write it.
const kubevm = (creates: number, patches: number, reviews: number) =>
  parseSamples(
    [
      `kubevirt_rest_client_requests_total{code="201",method="POST",host="10.96.0.1:443",resource="virtualmachineinstances",verb="create"} ${creates}`,
      `kubevirt_rest_client_requests_total{code="200",method="PATCH",host="10.96.0.1:443",resource="virtualmachineinstances",verb="patch"} ${patches}`,
      `kubevirt_rest_client_requests_total{code="201",method="POST",host="10.96.0.1:443",resource="tokenreviews",verb="create"} ${reviews}`,
    ].join('\n'),
  );
const kubelet = (patches: number) => parseSamples(`rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} ${patches}\n`);

const sample = (entries: Array<[string, Map<string, number>]>): RequestSample => new Map(entries);

describe('API requests by client', () => {
  it('reads each metric by verb and resource, the subresource kept apart, scrape authorization left out', () => {
    expect(Object.fromEntries(countsOf(apiserver(2, 3, 4, 9), 'apiserver_request_total', 'verb', 'resource'))).toEqual({
      'POST virtualmachineinstances': 2,
      'PATCH virtualmachineinstances/status': 3,
      'LIST pods': 4,
    });
    expect(Object.fromEntries(countsOf(kubevm(1, 2, 7), 'kubevirt_rest_client_requests_total', 'method', 'resource'))).toEqual({ 'POST virtualmachineinstances': 1, 'PATCH virtualmachineinstances': 2 });
    expect(Object.fromEntries(countsOf(kubelet(5), 'rest_client_requests_total', 'method', undefined))).toEqual({ PATCH: 5 });
  });

  it('gives each client its requests per VM between two samples, and the API server\'s rest as unclaimed', () => {
    const before = sample([
      [EVERY_CLIENT, countsOf(apiserver(0, 0, 10, 0), 'apiserver_request_total', 'verb', 'resource')],
      ['kubevm controller', countsOf(kubevm(0, 0, 0), 'kubevirt_rest_client_requests_total', 'method', 'resource')],
      ['kubelet', countsOf(kubelet(3), 'rest_client_requests_total', 'method', undefined)],
    ]);
    const after = sample([
      [EVERY_CLIENT, countsOf(apiserver(10, 30, 30, 40), 'apiserver_request_total', 'verb', 'resource')],
      ['kubevm controller', countsOf(kubevm(10, 20, 40), 'kubevirt_rest_client_requests_total', 'method', 'resource')],
      ['kubelet', countsOf(kubelet(13), 'rest_client_requests_total', 'method', undefined)],
      // Read only after the span began: no count of its own to subtract from, so it is left out.
      ['kube-scheduler', countsOf(kubelet(99), 'rest_client_requests_total', 'method', undefined)],
    ]);
    const rows = requestsBetween(before, after, 10);
    expect(rows).toEqual([
      { component: EVERY_CLIENT, perVm: 6, writesPerVm: 4, writesByKind: { 'PATCH virtualmachineinstances/status': 3, 'POST virtualmachineinstances': 1 } },
      { component: 'kubevm controller', perVm: 3, writesPerVm: 3, writesByKind: { 'PATCH virtualmachineinstances': 2, 'POST virtualmachineinstances': 1 } },
      // 60 requests in all, 30 by the controller, 10 by the kubelet; 40 writes, 30 + 10 of them claimed.
      { component: UNCLAIMED, perVm: 2, writesPerVm: 0, writesByKind: {} },
      { component: 'kubelet', perVm: 1, writesPerVm: 1, writesByKind: { PATCH: 1 } },
    ]);
  });
});
