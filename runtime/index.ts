// The shared runtime every kubevm component uses. The API schemas live in ./api.
export * from './conditions.js';
export * from './controller.js';
export * from './events.js';
export * from './expectations.js';
export * from './health.js';
export * from './informer.js';
export * from './json.js';
export * from './kube.js';
export * from './leader-election.js';
export * from './logging.js';
export * from './metrics.js';
export * from './process.js';
export * from './quantity.js';
export * from './status.js';
export * from './workqueue.js';
