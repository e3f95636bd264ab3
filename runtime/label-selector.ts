// Kubernetes label selector semantics (metav1.LabelSelectorAsSelector), for selectors that arrive
// in a spec rather than in a list request: the KubeVirt CR's ksmConfiguration.nodeLabelSelector.
import type { LabelSelector } from './api/index.js';

/**
 * Whether `labels` match `selector`: every matchLabels pair and every matchExpressions requirement
 * holds. An empty selector matches everything; no selector (undefined) matches nothing, as in
 * Kubernetes.
 */
export function matchesLabelSelector(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  return (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const has = Object.hasOwn(labels, key);
    switch (operator) {
      case 'In':
        return has && values.includes(labels[key] ?? '');
      case 'NotIn':
        return !has || !values.includes(labels[key] ?? '');
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
}
