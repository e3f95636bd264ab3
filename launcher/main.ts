// The launcher pod's compute process: reads its config, takes its VMI from the node handler (or a
// file, run as a plain process), serves the command socket,
// runs the domain, and turns SIGTERM into a graceful guest shutdown.
import { readFile } from 'node:fs/promises';
import { createRootLogger } from '../runtime/logging.js';
import { redactText } from '../runtime/redact.js';
import { CommandServer } from './command-server.js';
import { launcherSockets } from '../runtime/contracts/launcher-pod.js';
import { loadConfigOrExit } from '../runtime/config.js';
import { launcherConfig, launcherSettings } from './config.js';
import { Domain } from './domain.js';
import { holdLifeline, waitForImageCopies } from './image-copies.js';
import { SerialLogFollower, guestLogLine } from './serial-log.js';
import { receiveVmi } from './input.js';
import { parseLauncherVmi } from './vmi.js';

async function main(): Promise<void> {
  const config = launcherConfig(loadConfigOrExit('launcher', launcherSettings));
  const rootLog = createRootLogger({ component: 'launcher' });
  const sockets = launcherSockets(config.runDir);
  const source = config.vmiSource;
  const vmi = 'file' in source ? parseLauncherVmi(await readFile(source.file, 'utf8'), source.file) : await receiveVmi(sockets.input, source.uid, rootLog.child({ vmiUid: source.uid }));
  const log = rootLog.child({ namespace: vmi.metadata.namespace ?? 'default', name: vmi.metadata.name });
  let imagesReady: Promise<void> | undefined;
  if (config.imageCopyDir) {
    const imageCopyDir = config.imageCopyDir;
    // Held, never closed: the image copies beside the launcher exit when this process ends. The
    // pod's postStart hook creates it while this process starts; the copies start only after the
    // hook, so once they reported (or one failed, and this process exits) it is there.
    imagesReady = waitForImageCopies(vmi, imageCopyDir, log).finally(() => holdLifeline(imageCopyDir, log));
    // A failed copy ends the launcher at once, so the pod fails with the copy's message: the VMI
    // is never Scheduled (a failed container leaves the pod unready), so no start would come.
    imagesReady.catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      log.error({ err: message }, 'an image copy failed');
      process.stderr.write(`launcher: ${redactText(message)}\n`);
      process.exit(1);
    });
  }
  const domain = new Domain(vmi, config, log, imagesReady);
  // Stay up a little after the domain stopped, so the handler can read the final status.
  const lingerMs = config.lingerSeconds * 1000;
  let exiting = false;
  const exitWhenStopped = () => {
    if (exiting || !config.exitWhenStopped) return;
    exiting = true;
    setTimeout(() => {
      void server.close().then(() => process.exit(domain.status().phase === 'Succeeded' ? 0 : 1));
    }, lingerMs).unref();
  };
  const server = new CommandServer(domain, sockets.command, log, () => undefined);
  // KubeVirt logs the serial console unless the VMI turns it off.
  if (vmi.spec.domain.devices.logSerialConsole !== false) {
    new SerialLogFollower(sockets.serialLog, (line) => process.stdout.write(guestLogLine(line))).start();
  }
  domain.on('event', () => {
    if (domain.stopped) exitWhenStopped();
  });
  await server.listen();

  let terminating = false;
  process.on('SIGTERM', () => {
    if (terminating) return;
    terminating = true;
    const grace = vmi.spec.terminationGracePeriodSeconds ?? 30;
    log.info({ graceSeconds: grace }, 'SIGTERM: shutting the guest down');
    void domain.shutdown(grace).then(({ graceful }) => {
      log.info({ graceful }, 'guest stopped');
      exitWhenStopped();
      if (!domain.stopped) process.exit(0);
    });
  });
  process.on('SIGINT', () => void domain.kill().then(() => process.exit(1)));

  if (config.autostart) await domain.start();
}

main().catch((err: Error) => {
  process.stderr.write(`launcher: ${redactText(err.message)}\n`);
  process.exit(2);
});
