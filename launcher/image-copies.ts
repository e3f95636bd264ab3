// The launcher's side of the image copies that run beside it ('init-copy', the launcher pod
// contract: IMAGE_COPY_LIFELINE, imageCopyStatusName). The copies start with the launcher rather
// than before it, so before QEMU touches a containerDisk or kernelBoot file the launcher waits for
// each copy's status; a failed copy fails the start with the copy's own message (naming the field).
import { constants, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { IMAGE_COPY_LIFELINE, imageCopyStatusName, parseImageCopyStatus } from '../runtime/contracts/launcher-pod.js';
import type { LauncherVmi } from './vmi.js';

/**
 * Opens the lifeline for writing and keeps it open for the life of this process (the descriptor is
 * close-on-exec: QEMU does not inherit it). Opening a FIFO read-write does not wait for a reader.
 * Returns the descriptor, or undefined when the pod has no lifeline (nothing to copy).
 */
export function holdLifeline(imageCopyDir: string, log: Logger): number | undefined {
  const file = path.join(imageCopyDir, IMAGE_COPY_LIFELINE);
  try {
    return openSync(file, constants.O_RDWR | constants.O_NONBLOCK);
  } catch (error) {
    log.warn({ err: error, file }, 'no image copy lifeline: the copies will stay up until the pod is deleted');
    return undefined;
  }
}

/** The status files the VMI's image copies write: one per containerDisk volume, one for kernelBoot. */
export function expectedImageCopies(vmi: LauncherVmi): string[] {
  const names = (vmi.spec.volumes ?? []).flatMap((volume) => (volume.containerDisk ? [imageCopyStatusName({ containerDisk: volume.name })] : []));
  if (vmi.spec.domain.firmware?.kernelBoot?.container?.image) names.push(imageCopyStatusName('kernel-boot'));
  return names;
}

/**
 * Resolves once every expected copy reported ok; throws the copy's message when one failed, or
 * after timeoutMs (a copy of a large image takes as long as its disk needs).
 */
export async function waitForImageCopies(vmi: LauncherVmi, imageCopyDir: string, log: Logger, timeoutMs = 15 * 60_000): Promise<void> {
  const pending = new Set(expectedImageCopies(vmi));
  const started = Date.now();
  for (;;) {
    for (const name of [...pending]) {
      let text: string;
      try {
        text = readFileSync(path.join(imageCopyDir, name), 'utf8');
      } catch {
        continue;
      }
      const status = parseImageCopyStatus(text);
      if (!status) continue;
      if (!status.ok) throw new Error(status.message);
      pending.delete(name);
    }
    if (pending.size === 0) {
      log.info({ waitedMs: Date.now() - started }, 'image copies done');
      return;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`the copies of ${[...pending].join(', ')} did not finish within ${timeoutMs / 60_000} minutes`);
    // A copy is a few container starts away at most: poll briefly rather than watch (inotify on
    // an emptyDir subPath mount is fine, but polling a handful of files is simpler and as fast).
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
