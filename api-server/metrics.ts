// The API server's metrics, in the shared registry (served by the health server's /metrics).
// Requests by route template (never the object's name: bounded cardinality), method and code.
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../runtime/metrics.js';

export const apiRequests = new Counter({
  name: 'kubevm_api_requests_total',
  help: 'Requests to the subresource API and the admission webhooks, by route template, method and HTTP code.',
  labelNames: ['route', 'method', 'code'] as const,
  registers: [registry],
});

export const apiRequestDuration = new Histogram({
  name: 'kubevm_api_request_duration_seconds',
  help: 'Latency of requests to the subresource API and the admission webhooks, by route template and method.',
  labelNames: ['route', 'method'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

// Active streams, by namespace and VMI as KubeVirt's virt-api reports them. A series is removed
// when it drops to zero, so VMIs that come and go leave no series behind.
const streamGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['namespace', 'vmi'] as const, registers: [registry] });
export const streamGauges = {
  console: streamGauge('kubevirt_console_active_connections', 'Amount of active Console connections, broken down by namespace and vmi name.'),
  vnc: streamGauge('kubevirt_vnc_active_connections', 'Amount of active VNC connections, broken down by namespace and vmi name.'),
  portforward: streamGauge('kubevirt_portforward_active_tunnels', 'Amount of active portforward tunnels, broken down by namespace and vmi name.'),
};

const activeStreams = new Map<string, number>();

/** Counts one stream as active; the returned function counts it gone (once). */
export function trackStream(kind: keyof typeof streamGauges, namespace: string, vmi: string): () => void {
  const gauge = streamGauges[kind];
  const key = `${kind}/${namespace}/${vmi}`;
  activeStreams.set(key, (activeStreams.get(key) ?? 0) + 1);
  gauge.inc({ namespace, vmi });
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const left = (activeStreams.get(key) ?? 1) - 1;
    if (left > 0) {
      activeStreams.set(key, left);
      gauge.dec({ namespace, vmi });
    } else {
      activeStreams.delete(key);
      gauge.remove({ namespace, vmi });
    }
  };
}
