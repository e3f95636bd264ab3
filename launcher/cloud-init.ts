// cloudInitNoCloud → a real NoCloud seed: an ISO 9660 volume labelled "cidata" holding meta-data,
// user-data and (when given) network-config, as cloud-init's NoCloud data source reads it.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { registerSecretValue } from '../runtime/redact.js';
import type { LauncherVmi, LauncherVolume } from './vmi.js';

const run = promisify(execFile);

export interface CloudInitFiles {
  metaData: string;
  userData: string;
  networkConfig?: string;
}

/** Where Secrets referenced by a cloudInitNoCloud volume are mounted (ADR 0007). */
export interface CloudInitSecretDirs {
  /** `<secretDir>/<volume>/` holds the user-data Secret (key userdata or userData). */
  userData: (volume: string) => string;
  /** `<secretDir>/<volume>-ndata/` holds the network-config Secret (key networkdata or networkData). */
  networkData: (volume: string) => string;
}

function decodeBase64(value: string, field: string): string {
  const clean = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new Error(`${field}: not valid base64`);
  return Buffer.from(clean, 'base64').toString('utf8');
}

async function readSecretKey(dir: string, keys: readonly string[], field: string): Promise<string> {
  for (const key of keys) {
    try {
      return await readFile(path.join(dir, key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new Error(`${field}: the Secret mounted at ${dir} has none of the keys ${keys.join(', ')}`);
}

const YAML_WORDS = new Set(['y', 'n', 'yes', 'no', 'true', 'false', 'on', 'off', 'null']);

/**
 * A YAML scalar that stays one string: a plain name as is, anything else double-quoted (a JSON
 * string is a YAML one), so a newline or "key:" in it cannot add a meta-data key of its own.
 */
export function yamlString(value: string): string {
  return /^[A-Za-z][A-Za-z0-9.-]*$/.test(value) && !YAML_WORDS.has(value.toLowerCase()) ? value : JSON.stringify(value);
}

/** The NoCloud meta-data document: instance-id and local-hostname, as KubeVirt writes them. */
export function noCloudMetaData(vmi: LauncherVmi): string {
  const instanceId = `${vmi.metadata.name}.${vmi.metadata.namespace ?? 'default'}`;
  const hostname = vmi.spec.hostname ?? vmi.metadata.name;
  return `instance-id: ${yamlString(instanceId)}\nlocal-hostname: ${yamlString(hostname)}\n`;
}

/** Resolves a cloudInitNoCloud volume's files: inline text, base64, or a mounted Secret. */
export async function cloudInitFiles(vmi: LauncherVmi, volume: LauncherVolume, volumeIndex: number, secrets: CloudInitSecretDirs): Promise<CloudInitFiles> {
  const src = volume.cloudInitNoCloud;
  const field = `spec.volumes[${volumeIndex}].cloudInitNoCloud`;
  if (!src) throw new Error(`${field}: missing`);
  const userSources = [src.userData, src.userDataBase64, src.secretRef].filter((v) => v !== undefined).length;
  if (userSources > 1) throw new Error(`${field}: only one of userData, userDataBase64, secretRef may be set`);
  const netSources = [src.networkData, src.networkDataBase64, src.networkDataSecretRef].filter((v) => v !== undefined).length;
  if (netSources > 1) throw new Error(`${field}: only one of networkData, networkDataBase64, networkDataSecretRef may be set`);
  let userData = '';
  if (src.userData !== undefined) userData = src.userData;
  else if (src.userDataBase64 !== undefined) userData = decodeBase64(src.userDataBase64, `${field}.userDataBase64`);
  else if (src.secretRef !== undefined) userData = await readSecretKey(secrets.userData(volume.name), ['userdata', 'userData'], `${field}.secretRef`);
  let networkConfig: string | undefined;
  if (src.networkData !== undefined) networkConfig = src.networkData;
  else if (src.networkDataBase64 !== undefined) networkConfig = decodeBase64(src.networkDataBase64, `${field}.networkDataBase64`);
  else if (src.networkDataSecretRef !== undefined) {
    networkConfig = await readSecretKey(secrets.networkData(volume.name), ['networkdata', 'networkData'], `${field}.networkDataSecretRef`);
  }
  // Whatever this process logs (its own lines, the guest's console) never carries them.
  registerSecretValue(userData);
  registerSecretValue(networkConfig);
  const files: CloudInitFiles = { metaData: noCloudMetaData(vmi), userData };
  if (networkConfig !== undefined) files.networkConfig = networkConfig;
  return files;
}

/** Writes the NoCloud ISO to `isoPath` with xorriso (Rock Ridge + Joliet, volume id "cidata"). */
export async function buildCloudInitIso(files: CloudInitFiles, isoPath: string, xorriso = 'xorriso'): Promise<void> {
  const dir = await mkdtemp(path.join(path.dirname(isoPath), '.cidata-'));
  try {
    const names = ['meta-data', 'user-data'];
    await writeFile(path.join(dir, 'meta-data'), files.metaData, { mode: 0o600 });
    await writeFile(path.join(dir, 'user-data'), files.userData, { mode: 0o600 });
    if (files.networkConfig !== undefined) {
      await writeFile(path.join(dir, 'network-config'), files.networkConfig, { mode: 0o600 });
      names.push('network-config');
    }
    await rm(isoPath, { force: true });
    try {
      await run(xorriso, ['-as', 'mkisofs', '-quiet', '-output', isoPath, '-volid', 'cidata', '-joliet', '-rock', ...names.map((n) => path.join(dir, n))], { timeout: 30_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`building the cloud-init ISO with ${xorriso} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
