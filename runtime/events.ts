// Kubernetes Events (core/v1) for the transitions a user wants to see in `kubectl describe vm`:
// a VMI or pod created or deleted, a VM started or stopped, and every failure with its reason.
// Best effort: an event that cannot be written is logged, never fails a reconcile. Identical
// events for the same object within a short window are dropped, so a key retried with backoff
// does not flood the namespace.
import { redactText } from './redact.js';
import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject, ResourceClient } from './kube.js';
import { coreResources, isNamespaceTerminating } from './kube.js';
import type { Logger } from './logging.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  record(object: KubeObject, type: EventType, reason: string, message: string): void;
}

interface CoreEvent extends KubeObject {
  involvedObject: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  reason: string;
  message: string;
  type: EventType;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

// Long enough to absorb a key retried with backoff, short enough that a VM restarted a minute
// later gets its events again.
const DEDUPE_WINDOW_MS = 60 * 1000;

export class KubeEventRecorder implements EventRecorder {
  private readonly events: ResourceClient<CoreEvent>;
  private readonly recent = new Map<string, number>();

  constructor(
    client: KubeClient,
    private readonly component: string,
    private readonly instance: string,
    private readonly log: Logger,
  ) {
    this.events = client.resource<CoreEvent>(coreResources.events);
  }

  record(object: KubeObject, type: EventType, reason: string, rawMessage: string): void {
    const metadata = object.metadata ?? {};
    // Events are readable by anyone who may read the namespace's events: never a secret in one.
    const message = redactText(rawMessage);
    const dedupeKey = `${metadata.uid}\u0000${reason}\u0000${message}`;
    const now = Date.now();
    const last = this.recent.get(dedupeKey);
    if (last !== undefined && now - last < DEDUPE_WINDOW_MS) return;
    this.recent.set(dedupeKey, now);
    if (this.recent.size > 10_000) {
      for (const [key, at] of this.recent) if (now - at >= DEDUPE_WINDOW_MS) this.recent.delete(key);
    }
    const timestamp = `${new Date(now).toISOString().slice(0, 19)}Z`;
    const event: CoreEvent = {
      metadata: { name: `${metadata.name ?? 'object'}.${randomBytes(8).toString('hex')}`.slice(0, 253), namespace: metadata.namespace ?? 'default' },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resourceVersion: metadata.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.component },
      reportingComponent: `kubevm.io/${this.component}`,
      reportingInstance: this.instance,
      firstTimestamp: timestamp,
      lastTimestamp: timestamp,
      count: 1,
    };
    this.events.create(event).catch((err: unknown) => {
      // An object in a namespace being deleted: no event can be stored there any more.
      if (isNamespaceTerminating(err)) this.log.debug({ reason }, 'event not recorded: the namespace is being deleted');
      else this.log.warn({ err, reason }, 'could not record event');
    });
  }
}

/** Records nothing: for tests of code that records events. */
export const discardEvents: EventRecorder = { record: () => undefined };
