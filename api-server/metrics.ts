// The API server's metrics, in the shared registry (served by the health server's /metrics).
// Requests by route template (never the object's name: bounded cardinality), method and code.
import { Counter, Histogram } from 'prom-client';
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
