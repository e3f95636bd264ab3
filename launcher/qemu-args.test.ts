import { DomainSpecError, cpuTopology, guestMemoryBytes, passtCommands, qemuArgs } from './qemu-args.js';
import type { PreparedDisk, QemuContext } from './qemu-args.js';
import type { LauncherVmi } from './vmi.js';

const sockets = {
  qmp: '/run/qmp.sock',
  serial: '/run/serial.sock',
  serialLog: '/run/serial.log',
  vnc: '/run/vnc.sock',
  guestAgent: '/run/qga.sock',
  passt: (n: string) => `/run/passt-${n}.sock`,
};

const fileDisk = (p: string, extra: Partial<PreparedDisk> = {}): PreparedDisk => ({ path: p, format: 'qcow2', blockDevice: false, readOnly: false, directIO: true, ...extra });

function ctx(over: Partial<QemuContext> = {}): QemuContext {
  return { accel: 'kvm', sockets, disks: new Map([['root', fileDisk('/eph/root/overlay.qcow2')]]), sandbox: true, ...over };
}

function vmi(domain: Partial<LauncherVmi['spec']['domain']> = {}, spec: Partial<LauncherVmi['spec']> = {}): LauncherVmi {
  return {
    metadata: { name: 'vm1', namespace: 'ns1' },
    spec: {
      domain: { memory: { guest: '256Mi' }, ...domain, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }], ...domain.devices } },
      volumes: [{ name: 'root', containerDisk: { image: 'img' } }],
      ...spec,
    },
  };
}

/** The value following the n-th occurrence of `flag`. */
function opt(args: string[], flag: string, n = 0): string | undefined {
  const idx = args.flatMap((a, i) => (a === flag ? [i] : []))[n];
  return idx === undefined ? undefined : args[idx + 1];
}
const all = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1] as string] : []));
/** The JSON-syntax values of `flag` (-blockdev, -device, -netdev), parsed. */
const json = (args: string[], flag: string) => all(args, flag).filter((v) => v.startsWith('{')).map((v) => JSON.parse(v) as Record<string, unknown>);

describe('qemuArgs', () => {
  it('has the fixed hygiene options and the QMP monitor', () => {
    const a = qemuArgs(vmi(), ctx());
    expect(a).toEqual(expect.arrayContaining(['-no-user-config', '-nodefaults']));
    expect(opt(a, '-name')).toBe('guest=ns1_vm1,debug-threads=on');
    expect(opt(a, '-mon')).toBe('chardev=qmp,mode=control');
    expect(all(a, '-chardev')).toContain('socket,id=qmp,path=/run/qmp.sock,server=on,wait=off');
    expect(opt(a, '-sandbox')).toBe('on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    expect(qemuArgs(vmi(), ctx({ sandbox: false }))).not.toContain('-sandbox');
  });

  it('defaults to q35 and carries the accelerator', () => {
    expect(opt(qemuArgs(vmi(), ctx()), '-machine')).toBe('q35,usb=off,vmport=off,dump-guest-core=off');
    expect(opt(qemuArgs(vmi(), ctx()), '-accel')).toBe('kvm');
    const tcg = qemuArgs(vmi({ machine: { type: 'pc-q35-7.2' } }), ctx({ accel: 'tcg' }));
    expect(opt(tcg, '-machine')).toMatch(/^pc-q35-7\.2,usb=off/);
    expect(opt(tcg, '-accel')).toBe('tcg,tb-size=64');
    expect(() => qemuArgs(vmi({ machine: { type: 'pc-i440fx-2.0' } }), ctx())).toThrow('spec.domain.machine.type: "pc-i440fx-2.0" is not supported');
  });

  it('maps the CPU model for KVM and uses max under TCG', () => {
    expect(opt(qemuArgs(vmi(), ctx()), '-cpu')).toBe('host,migratable=on');
    expect(opt(qemuArgs(vmi({ cpu: { model: 'host-passthrough' } }), ctx()), '-cpu')).toBe('host,migratable=off');
    expect(opt(qemuArgs(vmi({ cpu: { model: 'host-passthrough' } }), ctx({ accel: 'tcg' })), '-cpu')).toBe('max');
    expect(opt(qemuArgs(vmi({ cpu: { model: 'Skylake-Client', features: [{ name: 'pcid' }, { name: 'vmx', policy: 'disable' }] } }), ctx()), '-cpu')).toBe(
      'Skylake-Client,pcid=on,vmx=off',
    );
    expect(() => qemuArgs(vmi({ cpu: { model: 'x,y' } }), ctx())).toThrow('spec.domain.cpu.model');
    expect(() => qemuArgs(vmi({ cpu: { features: [{ name: 'pcid', policy: 'maybe' }] } }), ctx())).toThrow('spec.domain.cpu.features[0].policy: "maybe" is not supported');
  });

  it('builds the CPU topology as KubeVirt defaults it', () => {
    expect(opt(qemuArgs(vmi({ cpu: { sockets: 2, cores: 2, threads: 2 } }), ctx()), '-smp')).toBe('8,sockets=2,cores=2,threads=2');
    expect(cpuTopology(vmi({ cpu: { cores: 4 } }))).toEqual({ sockets: 1, cores: 4, threads: 1, vcpus: 4 });
    expect(cpuTopology(vmi({ resources: { requests: { cpu: '1500m' } } }))).toEqual({ sockets: 2, cores: 1, threads: 1, vcpus: 2 });
    expect(cpuTopology(vmi())).toEqual({ sockets: 1, cores: 1, threads: 1, vcpus: 1 });
  });

  it('takes memory from memory.guest, else the request, and backs it with huge pages when asked', () => {
    expect(opt(qemuArgs(vmi(), ctx()), '-m')).toBe('256M');
    expect(guestMemoryBytes(vmi({ memory: {}, resources: { requests: { memory: '1Gi' } } }))).toBe(2 ** 30);
    expect(() => guestMemoryBytes(vmi({ memory: {} }))).toThrow('spec.domain.memory.guest: guest memory is unset');
    const hp = qemuArgs(vmi({ memory: { guest: '1Gi', hugepages: { pageSize: '2Mi' } } }), ctx());
    expect(opt(hp, '-object')).toBe('memory-backend-file,id=guest-memory,size=1024M,mem-path=/dev/hugepages,prealloc=on,share=off');
    expect(opt(hp, '-machine')).toContain('memory-backend=guest-memory');
    expect(() => qemuArgs(vmi({ memory: { guest: '1Gi', hugepages: { pageSize: '4Ki' } } }), ctx())).toThrow('spec.domain.memory.hugepages.pageSize');
  });

  it('writes firmware uuid, SMBIOS serial and direct kernel boot', () => {
    const a = qemuArgs(
      vmi({
        firmware: {
          uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223',
          serial: 'abc,def',
          kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'k', kernelPath: '/vmlinuz' } },
        },
      }),
      ctx({ kernelBoot: { kernelPath: '/kb/vmlinuz', initrdPath: '/kb/initrd' } }),
    );
    expect(opt(a, '-uuid')).toBe('5d307ca9-b3ef-428c-8861-06e72d69f223');
    expect(opt(a, '-smbios')).toBe('type=1,manufacturer=KubeVirt,product=None,family=KubeVirt,serial=abc,,def,uuid=5d307ca9-b3ef-428c-8861-06e72d69f223');
    expect([opt(a, '-kernel'), opt(a, '-initrd'), opt(a, '-append')]).toEqual(['/kb/vmlinuz', '/kb/initrd', 'console=ttyS0']);
    expect(() => qemuArgs(vmi({ firmware: { uuid: 'nope' } }), ctx())).toThrow('spec.domain.firmware.uuid');
    expect(() => qemuArgs(vmi({ firmware: { bootloader: { efi: {} } } }), ctx())).toThrow('spec.domain.firmware.bootloader.efi: UEFI firmware (OVMF) is not available');
  });

  it('attaches disks with bus, cache, boot order, serial and error policy', () => {
    const disks = new Map([
      ['root', fileDisk('/eph/root/overlay.qcow2')],
      ['data', fileDisk('/pvc/data/disk.img', { format: 'raw', directIO: false })],
      ['blk', fileDisk('/dev/blk', { format: 'raw', blockDevice: true })],
      ['iso', fileDisk('/eph/iso/noCloud.iso', { format: 'raw', readOnly: true, directIO: false })],
    ]);
    const a = qemuArgs(
      vmi(
        {
          devices: {
            disks: [
              { name: 'root', disk: { bus: 'virtio' }, bootOrder: 1, serial: 'ROOT1', errorPolicy: 'report' },
              { name: 'data', disk: { bus: 'scsi' }, cache: 'writeback', errorPolicy: 'enospace' },
              { name: 'blk', disk: { bus: 'sata' } },
              { name: 'iso', cdrom: { bus: 'sata' } },
            ],
          },
        },
        { volumes: ['root', 'data', 'blk', 'iso'].map((name) => ({ name, emptyDisk: { capacity: '1Gi' } })) },
      ),
      ctx({ disks }),
    );
    const blockdevs = all(a, '-blockdev').map((j) => JSON.parse(j) as Record<string, unknown>);
    expect(blockdevs[0]).toMatchObject({ 'node-name': 'disk0-file', driver: 'file', filename: '/eph/root/overlay.qcow2', 'read-only': false, cache: { direct: true } });
    expect(blockdevs[1]).toMatchObject({ 'node-name': 'disk0-format', driver: 'qcow2', file: 'disk0-file', backing: null });
    expect(blockdevs[2]).toMatchObject({ driver: 'file', cache: { direct: false } });
    expect(blockdevs[4]).toMatchObject({ driver: 'host_device', filename: '/dev/blk', 'read-only': false });
    expect(blockdevs[7]).toMatchObject({ driver: 'raw', 'read-only': true });
    // raw takes no backing option (it has none); every other format node says none.
    expect(blockdevs.filter((b) => b['driver'] === 'raw' || b['driver'] === 'qcow2').every((b) => b['driver'] === 'raw' ? !('backing' in b) : b['backing'] === null)).toBe(true);
    const devices = json(a, '-device');
    expect(all(a, '-device')).toContain('virtio-scsi-pci,id=scsi0');
    expect(devices).toContainEqual({ driver: 'virtio-blk-pci', drive: 'disk0-format', id: 'ua-root', 'write-cache': 'on', bootindex: 1, serial: 'ROOT1', werror: 'report', rerror: 'report' });
    expect(devices).toContainEqual({ driver: 'scsi-hd', bus: 'scsi0.0', drive: 'disk1-format', id: 'ua-data', 'write-cache': 'on', werror: 'enospc', rerror: 'report' });
    expect(devices).toContainEqual({ driver: 'ide-hd', bus: 'ide.0', drive: 'disk2-format', id: 'ua-blk', 'write-cache': 'on', werror: 'stop', rerror: 'stop' });
    expect(devices).toContainEqual({ driver: 'ide-cd', bus: 'ide.1', drive: 'disk3-format', id: 'ua-iso', 'write-cache': 'off', werror: 'stop', rerror: 'stop' });
    expect(opt(a, '-boot')).toBe('strict=on');
  });

  it('passes a KubeVirt serial of up to 256 characters whole (QEMU shortens it for the bus) and refuses others', () => {
    const long = 'S'.repeat(197) + '_.+-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS';
    expect(long).toHaveLength(256);
    const withSerial = (serial: string) =>
      qemuArgs(
        vmi({ devices: { disks: [{ name: 'root', disk: { bus: 'virtio' }, serial }] } }, { volumes: [{ name: 'root', emptyDisk: { capacity: '1Gi' } }] }),
        ctx({ disks: new Map([['root', fileDisk('/eph/root/overlay.qcow2')]]) }),
      );
    expect(json(withSerial(long), '-device')).toContainEqual(expect.objectContaining({ id: 'ua-root', serial: long }));
    expect(() => withSerial(`${long}X`)).toThrow('spec.domain.devices.disks[0].serial');
    expect(() => withSerial('A,romfile=/etc/passwd')).toThrow('spec.domain.devices.disks[0].serial');
    expect(() => withSerial('')).toThrow('spec.domain.devices.disks[0].serial');
  });

  it('rejects disks it cannot honour, naming the field', () => {
    const bad = (disk: object, volumes?: LauncherVmi['spec']['volumes']) =>
      () => qemuArgs(vmi({ devices: { disks: [{ name: 'root', ...disk }] } }, volumes ? { volumes } : {}), ctx());
    expect(bad({ disk: { bus: 'ide' } })).toThrow('spec.domain.devices.disks[0].disk.bus: "ide" is not supported; use one of virtio, sata, scsi, usb');
    expect(bad({ cdrom: { bus: 'virtio' } })).toThrow('spec.domain.devices.disks[0].cdrom.bus: a cdrom cannot use the virtio bus');
    expect(bad({ disk: {}, cache: 'unsafe' })).toThrow('spec.domain.devices.disks[0].cache: "unsafe" is not supported');
    expect(bad({ disk: {}, errorPolicy: 'panic' })).toThrow('spec.domain.devices.disks[0].errorPolicy');
    expect(bad({ lun: {} })).toThrow('spec.domain.devices.disks[0].lun');
    expect(bad({ disk: { bus: 'sata', readonly: true } })).toThrow('spec.domain.devices.disks[0].disk.readonly: a read-only disk cannot use the sata bus');
    expect(bad({ disk: {} }, [{ name: 'other', emptyDisk: { capacity: '1Gi' } }])).toThrow('spec.domain.devices.disks[0].name: no volume named "root" in spec.volumes');
    expect(() => qemuArgs(vmi({ devices: { disks: [{ name: 'root', cache: 'none' }] } }), ctx({ disks: new Map([['root', fileDisk('/x', { directIO: false })]]) }))).toThrow(
      'cache "none" needs O_DIRECT',
    );
  });

  it('adds the default masquerade interface on user networking with declared ports forwarded', () => {
    const a = qemuArgs(vmi(), ctx());
    expect(json(a, '-netdev')).toEqual([{ type: 'user', id: 'net0', net: '10.0.2.0/24', host: '10.0.2.1', dhcpstart: '10.0.2.2', ipv6: false }]);
    expect(json(a, '-device')).toContainEqual({ driver: 'virtio-net-pci', netdev: 'net0', id: 'ua-default', romfile: '' });
    const b = qemuArgs(
      vmi(
        { devices: { interfaces: [{ name: 'pod', masquerade: {}, model: 'e1000', macAddress: 'DE:AD:00:00:BE:AF', ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }] } },
        { networks: [{ name: 'pod', pod: {} }] },
      ),
      ctx(),
    );
    expect(json(b, '-netdev')[0]).toMatchObject({ type: 'user', id: 'net0', hostfwd: [{ str: 'tcp::80-:80' }, { str: 'udp::53-:53' }] });
    expect(json(b, '-device')).toContainEqual({ driver: 'e1000', netdev: 'net0', id: 'ua-pod', mac: 'de:ad:00:00:be:af', romfile: '' });
    expect(opt(qemuArgs(vmi({ devices: { autoattachPodInterface: false } }), ctx()), '-netdev')).toBeUndefined();
  });

  it('connects passt interfaces to the passt socket and refuses bridge without NET_ADMIN', () => {
    const a = qemuArgs(vmi({ devices: { interfaces: [{ name: 'default', passt: {} }] } }, { networks: [{ name: 'default', pod: {} }] }), ctx());
    expect(json(a, '-netdev')).toEqual([{ type: 'stream', id: 'net0', server: false, addr: { type: 'unix', path: '/run/passt-default.sock' } }]);
    expect(() => qemuArgs(vmi({ devices: { interfaces: [{ name: 'default', bridge: {} }] } }, { networks: [{ name: 'default', pod: {} }] }), ctx())).toThrow(
      'spec.domain.devices.interfaces[0].bridge: the bridge binding needs a tap device set up by the privileged node handler',
    );
    expect(() => qemuArgs(vmi({ devices: { interfaces: [{ name: 'x', masquerade: {} }] } }, { networks: [{ name: 'default', pod: {} }] }), ctx())).toThrow(
      'spec.domain.devices.interfaces[0].name: no network named "x"',
    );
    expect(() => qemuArgs(vmi({ devices: { interfaces: [{ name: 'default', masquerade: {}, model: 'virtio-fast' }] } }), ctx())).toThrow('interfaces[0].model');
  });

  it("checks an absent interface's ports too, and starts passt for present passt interfaces only", () => {
    const networks = [{ name: 'default', pod: {} }, { name: 'gone', pod: {} }];
    const hostile = (port: unknown) => vmi({ devices: { interfaces: [{ name: 'default', passt: {} }, { name: 'gone', passt: {}, state: 'absent', ports: [{ port: port as number }] }] } }, { networks });
    for (const port of ['--help', '1-65535', 0, 80.5]) {
      expect(() => qemuArgs(hostile(port), ctx())).toThrow(`spec.domain.devices.interfaces[1].ports[0].port: ${JSON.stringify(port)} is not a port number`);
      expect(() => passtCommands(hostile(port), sockets)).not.toThrow();
    }
    expect(passtCommands(hostile(80), sockets)).toEqual([
      { iface: 'default', socket: '/run/passt-default.sock', args: ['--foreground', '--one-off', '--socket', '/run/passt-default.sock', '-t', 'all', '-u', 'all'] },
    ]);
    const declared = vmi({ devices: { interfaces: [{ name: 'default', passt: {}, ports: [{ port: 80 }, { port: 8080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] }, { name: 'gone', passt: {}, ports: [{ port: 22 }] }] } }, { networks });
    expect(passtCommands(declared, sockets).map((c) => c.args.slice(-4))).toEqual([['-t', '80,8080', '-u', '53'], ['-t', '22', '-u', 'none']]);
    const present = vmi({ devices: { interfaces: [{ name: 'default', passt: {}, ports: [{ port: '--help' as unknown as number }] }] } }, { networks });
    expect(() => passtCommands(present, sockets)).toThrow('spec.domain.devices.interfaces[0].ports[0].port: "--help" is not a port number');
    expect(passtCommands(vmi({ devices: { interfaces: [{ name: 'default', masquerade: {} }] } }), sockets)).toEqual([]);
  });

  it('adds serial console with a log, VNC, balloon, rng, watchdog and the guest agent channel', () => {
    const a = qemuArgs(vmi({ devices: { rng: {}, watchdog: { name: 'w', i6300esb: { action: 'poweroff' } } } }), ctx());
    const chardevs = all(a, '-chardev');
    expect(chardevs).toContain('socket,id=serial0,path=/run/serial.sock,server=on,wait=off,logfile=/run/serial.log,logappend=on');
    expect(chardevs).toContain('socket,id=qga0,path=/run/qga.sock,server=on,wait=off');
    expect(opt(a, '-vnc')).toBe('vnc=unix:/run/vnc.sock');
    const devices = all(a, '-device');
    expect(devices).toEqual(expect.arrayContaining(['isa-serial,chardev=serial0,id=serial-port0', 'VGA,id=video0,vgamem_mb=16', 'virtio-balloon-pci,id=balloon0', 'virtio-rng-pci,rng=rng0,id=rng-dev0', 'i6300esb,id=watchdog0', 'virtserialport,bus=virtio-serial0.0,chardev=qga0,name=org.qemu.guest_agent.0']));
    expect(opt(a, '-action')).toBe('watchdog=poweroff');
    const none = qemuArgs(vmi({ devices: { autoattachGraphicsDevice: false, autoattachSerialConsole: false, autoattachMemBalloon: false } }), ctx());
    expect(none).not.toContain('-vnc');
    expect(all(none, '-device').some((d) => d.startsWith('isa-serial') || d.startsWith('virtio-balloon'))).toBe(false);
    expect(() => qemuArgs(vmi({ devices: { watchdog: { name: 'w', i6300esb: { action: 'explode' } } } }), ctx())).toThrow('spec.domain.devices.watchdog.i6300esb.action');
  });

  it('starts paused for startStrategy Paused', () => {
    expect(qemuArgs(vmi({}, { startStrategy: 'Paused' }), ctx())).toContain('-S');
    expect(qemuArgs(vmi(), ctx())).not.toContain('-S');
    expect(() => qemuArgs(vmi({}, { startStrategy: 'Later' }), ctx())).toThrow('spec.startStrategy: "Later" is not supported');
  });

  it('throws DomainSpecError carrying the field', () => {
    try {
      qemuArgs(vmi({ devices: { disks: [{ name: 'root', disk: { bus: 'floppy' } }] } }), ctx());
      throw new Error('no error');
    } catch (err) {
      expect(err).toBeInstanceOf(DomainSpecError);
      expect((err as DomainSpecError).field).toBe('spec.domain.devices.disks[0].disk.bus');
    }
  });
});
