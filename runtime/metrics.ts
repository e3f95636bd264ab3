// One prom-client registry per process. Metric names follow KubeVirt's where the meaning is the
// same (pkg/monitoring/metrics/common/{workqueue,client} and virt-controller/virt-operator), with
// the same label names, so existing KubeVirt dashboards and alerts keep working.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';

export const registry = new Registry();

let defaultMetricsEnabled = false;

/** Process metrics (CPU, memory, event loop lag, GC). Idempotent. */
export function enableProcessMetrics(): void {
  if (defaultMetricsEnabled) return;
  defaultMetricsEnabled = true;
  collectDefaultMetrics({ register: registry });
}

// Work queue metrics: label `name` is the queue's name, as in client-go's MetricsProvider.
// Buckets: KubeVirt's (client-go's ExponentialBuckets(10e-9, 10, 10)), decades from 10 ns to 10 s,
// and beyond them 30 s to 5 min: a queue that holds a backlog of thousands of new VMs keeps items
// longer than 10 s, which the decades alone would only show as "> 10 s". histogram_quantile works
// the same on both.
const workqueueBuckets = [...exponentialBuckets(10e-9, 10, 10), 30, 60, 120, 300];

export const workqueueDepth = new Gauge({
  name: 'kubevirt_workqueue_depth',
  help: 'Current depth of workqueue',
  labelNames: ['name'] as const,
  registers: [registry],
});

export const workqueueAdds = new Counter({
  name: 'kubevirt_workqueue_adds_total',
  help: 'Total number of adds handled by workqueue',
  labelNames: ['name'] as const,
  registers: [registry],
});

export const workqueueQueueDuration = new Histogram({
  name: 'kubevirt_workqueue_queue_duration_seconds',
  help: 'How long an item stays in workqueue before being requested.',
  labelNames: ['name'] as const,
  buckets: workqueueBuckets,
  registers: [registry],
});

export const workqueueWorkDuration = new Histogram({
  name: 'kubevirt_workqueue_work_duration_seconds',
  help: 'How long in seconds processing an item from workqueue takes.',
  labelNames: ['name'] as const,
  buckets: workqueueBuckets,
  registers: [registry],
});

export const workqueueRetries = new Counter({
  name: 'kubevirt_workqueue_retries_total',
  help: 'Total number of retries handled by workqueue',
  labelNames: ['name'] as const,
  registers: [registry],
});

/** What a queue reports at scrape time about the items it is processing. */
export interface InFlightWorkSource {
  readonly name: string;
  /** Start times (ms since epoch) of the items currently being processed. */
  processingStartTimes(): Iterable<number>;
}

const inFlightSources = new Set<InFlightWorkSource>();

/** Queues register here so the two "in progress" gauges are computed when scraped. */
export function registerInFlightWorkSource(source: InFlightWorkSource): () => void {
  inFlightSources.add(source);
  return () => {
    inFlightSources.delete(source);
    workqueueUnfinishedWork.remove(source.name);
    workqueueLongestRunning.remove(source.name);
  };
}

export const workqueueUnfinishedWork = new Gauge({
  name: 'kubevirt_workqueue_unfinished_work_seconds',
  help:
    "How many seconds of work have been in progress and haven't been observed by work_duration. " +
    'Large values indicate stuck threads. One can deduce the number of stuck threads by observing ' +
    'the rate at which this increases.',
  labelNames: ['name'] as const,
  registers: [registry],
  collect() {
    const now = Date.now();
    for (const source of inFlightSources) {
      let total = 0;
      for (const start of source.processingStartTimes()) total += now - start;
      this.set({ name: source.name }, total / 1000);
    }
  },
});

export const workqueueLongestRunning = new Gauge({
  name: 'kubevirt_workqueue_longest_running_processor_seconds',
  help: 'How many seconds has the longest running processor for workqueue been running.',
  labelNames: ['name'] as const,
  registers: [registry],
  collect() {
    const now = Date.now();
    for (const source of inFlightSources) {
      let oldest = now;
      for (const start of source.processingStartTimes()) oldest = Math.min(oldest, start);
      this.set({ name: source.name }, (now - oldest) / 1000);
    }
  },
});

// REST client metrics, labels as KubeVirt's round-tripper wrapper and latency adapter.
export const restClientRequests = new Counter({
  name: 'kubevirt_rest_client_requests_total',
  help: 'Number of HTTP requests, partitioned by status code, method, and host.',
  labelNames: ['code', 'method', 'host', 'resource', 'verb'] as const,
  registers: [registry],
});

export const restClientRequestLatency = new Histogram({
  name: 'kubevirt_rest_client_request_latency_seconds',
  help: 'Request latency in seconds. Broken down by verb and URL.',
  labelNames: ['verb', 'url'] as const,
  // As Kubernetes apiserver_request_duration_seconds.
  buckets: [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60],
  registers: [registry],
});

// Reconcile outcomes and status writes have no KubeVirt counterpart; kubevm_ prefix.
export const reconcileTotal = new Counter({
  name: 'kubevm_controller_reconcile_total',
  help: 'Reconciles by controller and outcome (success, requeue_after, error, terminal_error, invalid: the object failed validation and was not reconciled, namespace_terminating: a create refused because the namespace is being deleted, not retried).',
  labelNames: ['controller', 'result'] as const,
  registers: [registry],
});

export const statusUpdates = new Counter({
  name: 'kubevm_status_updates_total',
  help:
    'Status subresource updates considered, by resource and outcome: written, unchanged (skipped ' +
    'because the computed status equals the stored one), conflict, error.',
  labelNames: ['resource', 'outcome'] as const,
  registers: [registry],
});

/**
 * KubeVirt's per-component status gauges: `kubevirt_<component>_leading_status` ("indication for
 * an operating <component>") and `kubevirt_<component>_ready_status` ("ready to take the lead").
 * Components use KubeVirt's names: virt_controller, virt_operator, virt_handler, virt_api.
 */
export type KubevirtComponentName = 'virt_controller' | 'virt_operator' | 'virt_handler' | 'virt_api';

function singletonGauge(name: string, help: string): Gauge {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Gauge) return existing;
  return new Gauge({ name, help, registers: [registry] });
}

export function leadingStatusGauge(component: KubevirtComponentName): Gauge {
  return singletonGauge(
    `kubevirt_${component}_leading_status`,
    `Indication for an operating ${component.replace('_', '-')}.`,
  );
}

export function readyStatusGauge(component: KubevirtComponentName): Gauge {
  return singletonGauge(
    `kubevirt_${component}_ready_status`,
    `Indication for a ${component.replace('_', '-')} that is ready to take the lead.`,
  );
}
