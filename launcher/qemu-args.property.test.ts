// Property: no string from a manifest (or from the launcher's own paths) ever gives QEMU an option
// it was not given. Arbitrary strings — names, serials, paths, the kernel command line, the VMI's
// name — go through the API schema and qemuArgs; every argument produced is parsed back as QEMU
// parses it (JSON for -blockdev/-device/-netdev, else its key=value syntax with ",," for a comma),
// and its keys must be exactly those of the same VMI rendered with plain strings, its values
// exactly the strings given. qemuArgs may refuse a string (naming the field); it may never pass
// one through that changes the shape of the command line.
import fc from 'fast-check';
import { validateManifest } from '../runtime/api/index.js';
import { isDnsLabel } from '../runtime/api/names.js';
import { DomainSpecError, qemuArgs } from './qemu-args.js';
import type { QemuContext } from './qemu-args.js';
import type { LauncherVmi } from './vmi.js';

const NO_VALUE = new Set(['-no-user-config', '-nodefaults', '-S']);
/** Options whose value QEMU takes whole (not option syntax). */
const VERBATIM = new Set(['-kernel', '-initrd', '-append', '-uuid']);

type Parsed =
  | { flag: string }
  | { flag: string; verbatim: string }
  | { flag: string; json: unknown }
  | { flag: string; opts: [string, string][] };

/** QEMU's QemuOpts syntax (util/qemu-option.c): an implied first value, key=value, ",," is ",". */
export function parseQemuOpts(text: string): [string, string][] {
  const out: [string, string][] = [];
  const readValue = (at: number): [string, number] => {
    let value = '';
    while (at < text.length) {
      if (text[at] === ',') {
        if (text[at + 1] !== ',') break;
        value += ',';
        at += 2;
      } else {
        value += text[at++];
      }
    }
    return [value, at];
  };
  let at = 0;
  let first = true;
  while (at < text.length) {
    const rest = text.slice(at);
    const stop = rest.search(/[=,]/);
    const len = stop === -1 ? rest.length : stop;
    let key: string;
    let value: string;
    if (rest[len] === '=') {
      key = rest.slice(0, len);
      [value, at] = readValue(at + len + 1);
    } else if (first) {
      key = '@implied';
      [value, at] = readValue(at);
    } else {
      key = rest.slice(0, len);
      value = 'on';
      at += len;
    }
    out.push([key, value]);
    first = false;
    if (text[at] === ',') at++;
  }
  return out;
}

function parseArgv(argv: string[]): Parsed[] {
  const out: Parsed[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (!/^-[a-z]/.test(flag)) throw new Error(`argument ${i} ${JSON.stringify(flag)} is not an option`);
    if (NO_VALUE.has(flag)) {
      out.push({ flag });
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} has no value`);
    if (VERBATIM.has(flag)) out.push({ flag, verbatim: value });
    // QEMU takes a value that starts with "{" as JSON.
    else if (value.startsWith('{')) out.push({ flag, json: JSON.parse(value) });
    else out.push({ flag, opts: parseQemuOpts(value) });
  }
  return out;
}

/** The keys of every argument, values erased: what must not change with the strings. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]).sort(([a], [b]) => String(a).localeCompare(String(b))));
  }
  return typeof value;
}

function argvShape(parsed: Parsed[]): unknown {
  return parsed.map((p) => {
    if ('opts' in p) return { flag: p.flag, keys: p.opts.map(([k]) => k) };
    if ('json' in p) return { flag: p.flag, json: shape(p.json) };
    return { flag: p.flag, verbatim: 'verbatim' in p };
  });
}

interface Strings {
  namespace: string;
  name: string;
  disk0: string;
  disk1: string;
  iface: string;
  passt: boolean;
  serial: string;
  firmwareSerial: string;
  kernelArgs: string;
  /** Paths the launcher itself chooses: prepared disks, base image, kernel, sockets. */
  paths: { overlay: string; base: string; pvc: string; kernel: string; initrd: string; qmp: string; serial: string; serialLog: string; vnc: string; qga: string; passtDir: string };
}

const PLAIN: Strings = {
  namespace: 'ns',
  name: 'vm',
  disk0: 'd0',
  disk1: 'd1',
  iface: 'n0',
  passt: false,
  serial: 'S1',
  firmwareSerial: 'F1',
  kernelArgs: 'console=ttyS0',
  paths: { overlay: '/e/o', base: '/c/b', pvc: '/p/d', kernel: '/k/v', initrd: '/k/i', qmp: '/r/q', serial: '/r/s', serialLog: '/r/l', vnc: '/r/v', qga: '/r/g', passtDir: '/r' },
};

function render(s: Strings): { vmi: LauncherVmi; ctx: QemuContext } {
  const vmi: LauncherVmi = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      domain: {
        memory: { guest: '128Mi' },
        firmware: { serial: s.firmwareSerial, kernelBoot: { kernelArgs: s.kernelArgs, container: { image: 'k', kernelPath: '/vmlinuz', initrdPath: '/initrd' } } },
        devices: {
          disks: [
            { name: s.disk0, disk: { bus: 'virtio' }, serial: s.serial, bootOrder: 1 },
            { name: s.disk1, disk: { bus: 'scsi' } },
          ],
          interfaces: [s.passt ? { name: s.iface, passt: {} } : { name: s.iface, masquerade: {}, ports: [{ port: 80 }] }],
        },
      },
      networks: [{ name: s.iface, pod: {} }],
      volumes: [
        { name: s.disk0, containerDisk: { image: 'img' } },
        { name: s.disk1, persistentVolumeClaim: { claimName: 'claim' } },
      ],
    },
  };
  const p = s.paths;
  const ctx: QemuContext = {
    accel: 'tcg',
    sandbox: true,
    sockets: { qmp: p.qmp, serial: p.serial, serialLog: p.serialLog, vnc: p.vnc, guestAgent: p.qga, passt: (n) => `${p.passtDir}/passt-${n}.sock` },
    kernelBoot: { kernelPath: p.kernel, initrdPath: p.initrd },
    disks: new Map([
      [s.disk0, { path: p.overlay, format: 'qcow2', blockDevice: false, readOnly: false, directIO: true, backing: { path: p.base, format: 'qcow2', blockDevice: false } }],
      [s.disk1, { path: p.pvc, format: 'raw', blockDevice: false, readOnly: false, directIO: true }],
    ]),
  };
  return { vmi, ctx };
}

/** Strings built from the pieces that break option syntaxes, mixed with plain ones. */
const hostilePiece = fc.constantFrom(',', ',,', '=', 'romfile=/etc/passwd', 'id=x', '{', '}', '"', "'", '\\', ' ', '\n', '\t', ':', '/', '..', '\0', 'a', 'Z', '0', '-', '_', '.', 'é', '\u2028', 'json:', 'file=');
const hostile = fc.array(hostilePiece, { maxLength: 10 }).map((parts) => parts.join(''));
const anyString = fc.oneof(hostile, fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }));
const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const name = fc.oneof({ weight: 6, arbitrary: dnsLabel }, { weight: 1, arbitrary: anyString });
const serial = fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.+-]{1,256}$/) }, { weight: 1, arbitrary: anyString });
// The launcher's paths come from its environment and the file system, which cannot hold NUL.
const absolutePath = anyString.map((t) => `/${t.replaceAll('\0', '')}`);
// Kernel and initrd paths with a comma or a space are refused (multiboot): mostly plain ones.
const kernelPath = fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^\/[a-z0-9/._-]{0,20}$/) }, { weight: 1, arbitrary: absolutePath });

const strings: fc.Arbitrary<Strings> = fc.record({
  namespace: anyString,
  name: anyString,
  disk0: name,
  disk1: name,
  iface: name,
  passt: fc.boolean(),
  serial,
  firmwareSerial: anyString,
  kernelArgs: anyString.filter((t) => t.length > 0),
  paths: fc.record({
    overlay: absolutePath,
    base: absolutePath,
    pvc: absolutePath,
    kernel: kernelPath,
    initrd: kernelPath,
    qmp: absolutePath,
    serial: absolutePath,
    serialLog: absolutePath,
    vnc: absolutePath,
    qga: absolutePath,
    passtDir: absolutePath,
  }),
});

function renderArgs(s: Strings): string[] | DomainSpecError {
  const { vmi, ctx } = render(s);
  try {
    return qemuArgs(vmi, ctx);
  } catch (err) {
    if (err instanceof DomainSpecError) return err;
    throw err;
  }
}

const optsOf = (parsed: Parsed[], flag: string) => parsed.flatMap((p) => (p.flag === flag && 'opts' in p ? [new Map(p.opts)] : []));
const jsonOf = (parsed: Parsed[], flag: string) => parsed.flatMap((p) => (p.flag === flag && 'json' in p ? [p.json as Record<string, unknown>] : []));

describe('qemuArgs never lets a string add an option (property)', () => {
  const plain = parseArgv(renderArgs(PLAIN) as string[]);

  it('renders the plain VMI (the reference shape)', () => {
    expect(plain.length).toBeGreaterThan(20);
  });

  it('keeps the shape of every argument and every string whole, or refuses the string', () => {
    let accepted = 0;
    fc.assert(
      fc.property(strings, fc.boolean(), (s, passt) => {
        fc.pre(s.disk0 !== s.disk1);
        const hostileStrings = { ...s, passt };
        const out = renderArgs(hostileStrings);
        if (out instanceof DomainSpecError) {
          expect(out.field).toMatch(/^(spec|metadata)\./);
          return;
        }
        accepted++;
        expect(out.every((a) => !a.includes('\0'))).toBe(true);
        const parsed = parseArgv(out);
        const reference = parseArgv(renderArgs({ ...PLAIN, passt }) as string[]);
        expect(argvShape(parsed)).toEqual(argvShape(reference));
        // And each string arrives whole, where it was meant to go.
        const p = s.paths;
        expect(optsOf(parsed, '-name')[0]?.get('guest')).toBe(`${s.namespace}_${s.name}`);
        expect(optsOf(parsed, '-smbios')[0]?.get('serial')).toBe(s.firmwareSerial);
        expect(parsed.find((a) => a.flag === '-append')).toEqual({ flag: '-append', verbatim: s.kernelArgs });
        expect(parsed.find((a) => a.flag === '-kernel')).toEqual({ flag: '-kernel', verbatim: p.kernel });
        expect(parsed.find((a) => a.flag === '-initrd')).toEqual({ flag: '-initrd', verbatim: p.initrd });
        expect(optsOf(parsed, '-chardev').map((o) => o.get('path'))).toEqual([p.qmp, p.serial, p.qga]);
        expect(optsOf(parsed, '-chardev')[1]?.get('logfile')).toBe(p.serialLog);
        expect(optsOf(parsed, '-vnc')[0]?.get('vnc')).toBe(`unix:${p.vnc}`);
        const files = jsonOf(parsed, '-blockdev').flatMap((b) => (typeof b['filename'] === 'string' ? [b['filename']] : []));
        expect(files).toEqual([p.base, p.overlay, p.pvc]);
        const devices = jsonOf(parsed, '-device');
        expect(devices.map((d) => d['id']).filter((id) => typeof id === 'string' && id.startsWith('ua-'))).toEqual([`ua-${s.disk0}`, `ua-${s.disk1}`, `ua-${s.iface}`]);
        expect(devices.find((d) => d['id'] === `ua-${s.disk0}`)?.['serial']).toBe(s.serial);
        if (passt) expect(jsonOf(parsed, '-netdev')[0]).toMatchObject({ addr: { path: `${p.passtDir}/passt-${s.iface}.sock` } });
      }),
      { numRuns: 3000 },
    );
    // The property is about accepted strings: enough of them must get through to mean something.
    expect(accepted).toBeGreaterThan(300);
  });

  it('refuses, naming the field, every name that is not a DNS label, exactly as the API schema does', () => {
    fc.assert(
      fc.property(name, (candidate) => {
        const s = { ...PLAIN, disk0: candidate };
        fc.pre(candidate !== PLAIN.disk1);
        const { vmi } = render(s);
        const schema = validateManifest(vmi);
        const launcher = renderArgs(s);
        const schemaAcceptsName = schema.ok || !schema.errors.some((e) => /disks\[0\]\.name|volumes\[0\]\.name/.test(e));
        expect(schemaAcceptsName).toBe(isDnsLabel(candidate));
        if (isDnsLabel(candidate)) {
          expect(launcher).not.toBeInstanceOf(DomainSpecError);
        } else {
          expect(launcher).toBeInstanceOf(DomainSpecError);
          expect((launcher as DomainSpecError).field).toBe('spec.domain.devices.disks[0].name');
          expect(schema.ok ? [] : schema.errors).toContain(`spec.domain.devices.disks[0].name: must be a DNS label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit`);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('parses QEMU option syntax as QEMU does (the parser the property relies on)', () => {
    expect(parseQemuOpts('socket,id=a,path=/x,,y,server=on')).toEqual([['@implied', 'socket'], ['id', 'a'], ['path', '/x,y'], ['server', 'on']]);
    expect(parseQemuOpts('guest=a,romfile=/etc/passwd')).toEqual([['guest', 'a'], ['romfile', '/etc/passwd']]);
    expect(parseQemuOpts('type=1,serial=a=b')).toEqual([['type', '1'], ['serial', 'a=b']]);
    expect(parseQemuOpts('host,migratable=on,vmx')).toEqual([['@implied', 'host'], ['migratable', 'on'], ['vmx', 'on']]);
  });
});
