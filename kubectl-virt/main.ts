#!/usr/bin/env node
// kubectl-virt: kubevm's kubectl plugin (`kubectl virt ...`). Thin: builds the command line and
// turns any failure into kubectl's one-line "error: ..." and exit status 1.
import { CommanderError } from 'commander';
import { describeFailure, ExitStatus, UserError } from './errors.js';
import { buildProgram } from './program.js';

async function main(): Promise<number> {
  const program = buildProgram({ stdout: process.stdout, stderr: process.stderr });
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (err) {
    // commander has printed its own line (usage errors, --help, --version).
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ExitStatus) return err.exitCode;
    process.stderr.write(`error: ${describeFailure(err)}\n`);
    return err instanceof UserError ? err.exitCode : 1;
  }
}

void main().then((code) => {
  process.exitCode = code;
  // A command is over when main returns; a socket or stdin still held (a websocket waiting for
  // its close handshake) must not keep the process, and so the user's terminal, waiting.
  setTimeout(() => process.exit(code), 500).unref();
});
