// Name rules shared by the API schemas and the launcher. Plain constants (no zod) so the launcher,
// which loads no schema at run time, checks the same rule on its own.

/**
 * A DNS-1123 label: lowercase letters, digits and "-", at most 63, starting and ending with a
 * letter or digit. Kubernetes requires it of container and volume names, KubeVirt of disk names.
 */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
export const DNS_LABEL_MESSAGE = 'must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit';

/** A DNS-1123 subdomain: dot-separated DNS labels (at most 253 characters in all). */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

const dnsLabel = new RegExp(DNS_LABEL_PATTERN);

export function isDnsLabel(value: unknown): value is string {
  return typeof value === 'string' && dnsLabel.test(value);
}
