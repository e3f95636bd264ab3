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

/**
 * A disk serial, as KubeVirt allows it. QEMU shortens what the bus cannot carry (20 bytes on
 * virtio-blk and SATA); no character of it can start another option.
 */
export const DISK_SERIAL_PATTERN = '^[A-Za-z0-9_.+-]{1,256}$';
export const DISK_SERIAL_MESSAGE = 'must be 1 to 256 characters of A-Z a-z 0-9 _ . + -';

const dnsLabel = new RegExp(DNS_LABEL_PATTERN);
const diskSerial = new RegExp(DISK_SERIAL_PATTERN);

export function isDiskSerial(value: unknown): value is string {
  return typeof value === 'string' && diskSerial.test(value);
}

export function isDnsLabel(value: unknown): value is string {
  return typeof value === 'string' && dnsLabel.test(value);
}
