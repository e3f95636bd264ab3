// The test guest images every e2e suite boots (test/guests/container-disk-images.sh builds and
// imports them with the project's version as tag; `make images` runs it).
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** /boot/vmlinuz and /boot/initramfs.cpio.gz, for spec.domain.firmware.kernelBoot.container. */
export const kernelImage = process.env['KUBEVM_E2E_KERNEL_IMAGE'] ?? `kubevm/test-guest-kernel:${version}`;
/** /disk/disk.qcow2, a containerDisk. */
export const diskImage = process.env['KUBEVM_E2E_DISK_IMAGE'] ?? `kubevm/test-guest-containerdisk:${version}`;
