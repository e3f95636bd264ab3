#!/bin/busybox sh
# /init of the launcher suite's busybox guest. Everything it does is reported on the serial
# console (ttyS0) as lines starting with KUBEVM- so tests can follow the guest.
# Kernel command line switches:
#   kubevm.acpi=ignore   do not power off on the ACPI power button (forced-stop test); otherwise
#                        the button runs the guest's shutdown path: KUBEVM-POWEROFF, sync, poweroff
#   kubevm.agent=fake    a guest agent stand-in; its guest-shutdown prints KUBEVM-AGENT-SHUTDOWN
#   kubevm.agent=qemu-ga Debian's real qemu-guest-agent, with a utmp login record for user kubevm
#   kubevm.agent.stall   the fake agent answers its first guest-sync-delimited 3 s late, after the
#                        launcher's poll has given up: the answer lands in the next connection
#   kubevm.disk=keep     leave the kubevm-disk filesystem mounted on /mnt/disk (something to freeze)
#   kubevm.counter=0     do not print the one-second counter
#   kubevm.diskcount=vdb,vdc  with each counter tick, per disk: read the first 4 KiB block from the
#                        disk itself (the guest's cache dropped), then write the tick's number there
#                        (fsync): KUBEVM-DISKCOUNT vdb prev=<what was read> now=<n>. The disk's
#                        content must follow its writes across a migration: prev is always now-1
#                        (or none on a blank disk at boot). The disks' first blocks are overwritten.
#   kubevm.dirty=MIB     keep rewriting MIB MiB of memory with non-zero bytes (a busy guest, for
#                        the migration bench: zero pages would cost a migration nothing)
#   kubevm.shell         a shell on the serial console (console tests type commands into it)
#   kubevm.ssh=KEY       dropbear on port 22; root logs in with the public key KEY (base64), no password; sftp (scp) too
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
export PATH=/bin:/sbin
cmdline="$(cat /proc/cmdline)"
has() { case " $cmdline " in *" $1 "*) return 0 ;; esac; return 1; }

for m in virtio_pci virtio_blk virtio_scsi sd_mod sr_mod virtio_net virtio_console virtio-rng isofs button evdev; do
  modprobe "$m" 2>/dev/null
done
echo "KUBEVM-GUEST-BOOTED kernel=$(cat /proc/sys/kernel/osrelease) uptime=$(cut -d' ' -f1 /proc/uptime)"

# ACPI power button: the button module registers an input device named "Power Button"; one event
# from it means the host asked for an orderly shutdown (QMP system_powerdown).
if has kubevm.acpi=ignore; then
  echo "KUBEVM-ACPI ignoring power button"
else
  for ev in /sys/class/input/event*; do
    [ -e "$ev/device/name" ] || continue
    if grep -q "Power Button" "$ev/device/name"; then
      dev="/dev/input/$(basename "$ev")"
      (
        dd if="$dev" bs=24 count=1 of=/dev/null 2>/dev/null
        echo "KUBEVM-POWEROFF acpi power button"
        sync
        poweroff -f
      ) &
      echo "KUBEVM-ACPI watching $dev"
      break
    fi
  done
fi

# Wait briefly for the block devices the virtio modules just probed.
i=0
while [ $i -lt 20 ] && ! ls /dev/vd? /dev/sd? /dev/sr? >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done

# kubevm.rootfs=cloudinit: Debian's real cloud-init, from the disk labelled kubevm-root
# (build-cloudinit.sh), run stage by stage chrooted into that disk, as systemd would run it.
if has kubevm.rootfs=cloudinit; then
  rootdev="$(findfs LABEL=kubevm-root 2>/dev/null)"
  if [ -n "$rootdev" ] && mkdir -p /newroot && mount -t ext4 "$rootdev" /newroot; then
    mount -t proc proc /newroot/proc
    mount -t sysfs sys /newroot/sys
    mount -t devtmpfs dev /newroot/dev
    mount -t tmpfs run /newroot/run
    echo "KUBEVM-CLOUDINIT-REAL starting cloud-init from $rootdev"
    for stage in "init --local" "init" "modules --mode=config" "modules --mode=final"; do
      # shellcheck disable=SC2086
      PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot /newroot /usr/bin/cloud-init $stage >/dev/console 2>&1
      echo "KUBEVM-CLOUDINIT-REAL stage '$stage' exit=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
    done
    if has kubevm.cloudinit.debug; then
      grep -iE 'mount|warn|error|schema' /newroot/var/log/cloud-init.log | head -40 >/dev/console
      PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot /newroot cloud-init schema --system >/dev/console 2>&1
    fi
    echo "KUBEVM-CLOUDINIT-REAL hostname=$(chroot /newroot hostname) result=$(cat /newroot/run/cloud-init/result.json 2>/dev/null | tr -d '\n ')"
    sync
  else
    echo "KUBEVM-CLOUDINIT-REAL no kubevm-root disk"
  fi
fi

# A small NoCloud reader (not Debian's cloud-init): find the volume labelled cidata, read
# meta-data, set the hostname, run a "#!" user-data script, report network-config's presence.
cidev=""
has kubevm.rootfs=cloudinit || cidev="$(findfs LABEL=cidata 2>/dev/null || findfs LABEL=CIDATA 2>/dev/null)"
if [ -n "$cidev" ]; then
  mkdir -p /cidata
  if mount -t iso9660 -o ro "$cidev" /cidata 2>/dev/null || mount -o ro "$cidev" /cidata; then
    iid="$(sed -n 's/^instance-id: *//p' /cidata/meta-data | tr -d '"'\''\r')"
    hn="$(sed -n 's/^local-hostname: *//p' /cidata/meta-data | tr -d '"'\''\r')"
    [ -n "$hn" ] && hostname "$hn"
    echo "KUBEVM-CLOUDINIT device=$cidev instance-id=$iid hostname=$(hostname)"
    [ -f /cidata/network-config ] && echo "KUBEVM-CLOUDINIT network-config $(head -c 200 /cidata/network-config | tr '\n' ' ')"
    if [ -f /cidata/user-data ]; then
      case "$(head -c 2 /cidata/user-data)" in
        '#!')
          cp /cidata/user-data /tmp/user-data && chmod +x /tmp/user-data
          /tmp/user-data
          echo "KUBEVM-CLOUDINIT user-data exit=$?"
          ;;
        *) echo "KUBEVM-CLOUDINIT user-data format not supported by this test guest" ;;
      esac
    fi
  else
    echo "KUBEVM-CLOUDINIT cannot mount $cidev"
  fi
fi

# The disk guest: a filesystem labelled kubevm-disk carries the program the guest runs.
diskdev="$(findfs LABEL=kubevm-disk 2>/dev/null)"
if [ -n "$diskdev" ]; then
  mkdir -p /mnt/disk
  if mount -t ext4 "$diskdev" /mnt/disk; then
    sh /mnt/disk/guest.sh /mnt/disk
    if has kubevm.disk=keep; then
      echo "KUBEVM-DISK mounted on /mnt/disk"
    else
      umount /mnt/disk
      sync
    fi
  else
    echo "KUBEVM-DISK cannot mount $diskdev"
  fi
fi

# Networking (kubevm.net=dhcp): DHCP on eth0 from QEMU's slirp or passt, then (kubevm.http=PORT)
# a web server whose page names the guest, for port-forwarding tests.
if has kubevm.net=dhcp; then
  ip link set lo up
  ip link set eth0 up
  if udhcpc -i eth0 -s /bin/udhcpc-script -q -n -t 10 -T 1 >/dev/null 2>&1; then
    echo "KUBEVM-NET eth0 $(ip -4 -o addr show eth0 | awk '{print $4}') via $(ip route | awk '/default/{print $3}')"
  else
    echo "KUBEVM-NET dhcp failed"
  fi
fi
port="$(sed -n 's/.*kubevm\.http=\([0-9]*\).*/\1/p' /proc/cmdline)"
if [ -n "$port" ]; then
  mkdir -p /www
  echo "kubevm-guest-http $(hostname)" >/www/index.html
  httpd -p "$port" -h /www && echo "KUBEVM-HTTP listening on $port"
fi

# The guest agent's virtio-serial port (org.qemu.guest_agent.0), as /dev/vportNpM; empty without one.
agent_port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && echo "/dev/$(basename "$p")"
  done
}

# kubevm.agent=fake: a tiny stand-in for qemu-guest-agent on the org.qemu.guest_agent.0
# virtio-serial port, answering the five queries the launcher polls with canned data plus this
# guest's real host name, kernel and eth0 address, guest-shutdown as the real agent does it, and
# guest-get-users / guest-get-fsinfo with hostile answers.
# It exercises the launcher's agent client over the real channel; it is not qemu-guest-agent.
if has kubevm.agent=fake; then
  agentdev="$(agent_port)"
  if [ -n "$agentdev" ]; then
    hostname kubevm-agent-guest
    (
      has kubevm.agent.debug && KUBEVM_AGENT_DEBUG=1
      stall=; has kubevm.agent.stall && stall=3
      # A virtio port reads EOF while no host client is connected: reopen and poll until one is.
      while :; do
      exec 3<>"$agentdev"
      while IFS= read -r line <&3; do
        [ -n "$KUBEVM_AGENT_DEBUG" ] && echo "KUBEVM-AGENT got: $line" >/dev/console
        cmd="$(echo "$line" | sed -n 's/.*"execute": *"\([^"]*\)".*/\1/p')"
        id="$(echo "$line" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')"
        argid="$(echo "$line" | sed -n 's/.*"arguments": *{ *"id": *\([0-9]*\).*/\1/p')"
        case "$cmd" in
          guest-sync-delimited)
            # A late answer blocks in write() until the next host client connects, as qemu-ga's does.
            [ -n "$stall" ] && { echo "KUBEVM-AGENT stalling ${stall}s" >/dev/console; sleep "$stall"; stall=; }
            printf '\377{"return": %s, "id": "%s"}\n' "$argid" "$id" >&3 ;;
          guest-info) printf '{"return": {"version": "kubevm-test-agent-1", "supported_commands": []}, "id": "%s"}\n' "$id" >&3 ;;
          guest-get-osinfo) printf '{"return": {"id": "busybox", "name": "kubevm test guest", "pretty-name": "kubevm busybox test guest", "kernel-release": "%s", "machine": "%s"}, "id": "%s"}\n' "$(uname -r)" "$(uname -m)" "$id" >&3 ;;
          guest-get-host-name) printf '{"return": {"host-name": "%s"}, "id": "%s"}\n' "$(hostname)" "$id" >&3 ;;
          guest-shutdown)
            # The guest's shutdown path, as qemu-guest-agent's `shutdown -r|-h|-P +0`: a marker on the
            # way down, file systems synced, then the action. No answer, as the real agent.
            mode="$(echo "$line" | sed -n 's/.*"mode": *"\([^"]*\)".*/\1/p')"
            echo "KUBEVM-AGENT-SHUTDOWN mode=${mode:-powerdown}" >/dev/console
            sync
            case "$mode" in
              reboot) reboot -f ;;
              halt) halt -f ;;
              *) poweroff -f ;;
            esac ;;
          guest-network-get-interfaces)
            mac="$(cat /sys/class/net/eth0/address 2>/dev/null)"
            addr="$(ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')"
            printf '{"return": [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]}, {"name": "eth0", "hardware-address": "%s", "ip-addresses": [{"ip-address": "%s", "ip-address-type": "ipv4", "prefix": %s}]}], "id": "%s"}\n' \
              "$mac" "${addr%/*}" "${addr#*/}" "$id" >&3 ;;
          # Hostile answers, as a compromised guest may give: a user that is a number, and a mount
          # point longer than PATH_MAX. The launcher must refuse them and carry on.
          guest-get-users) printf '{"return": [{"user": 42, "login-time": "never"}], "id": "%s"}\n' "$id" >&3 ;;
          guest-get-fsinfo) printf '{"return": [{"name": "vda", "mountpoint": "%s", "type": "ext4", "disk": []}], "id": "%s"}\n' "$(head -c 5000 /dev/zero | tr '\0' /)" "$id" >&3 ;;
          *) printf '{"error": {"class": "CommandNotFound", "desc": "%s"}, "id": "%s"}\n' "$cmd" "$id" >&3 ;;
        esac
      done
      exec 3>&-
      sleep 0.3
      done
    ) &
    echo "KUBEVM-AGENT fake agent on $agentdev"
  fi
fi

# kubevm.agent=qemu-ga: Debian's qemu-guest-agent on the org.qemu.guest_agent.0 port. Its
# guest-get-users reads utmp: one USER_PROCESS record (glibc x86_64 struct utmp, 384 bytes) for
# user kubevm on ttyS0, logged in at boot, gives it something to report.
if has kubevm.agent=qemu-ga; then
  agentdev="$(agent_port)"
  if [ -n "$agentdev" ]; then
    hostname kubevm-agent-guest
    mkdir -p /var/run /run/qga
    octal() { printf '\\%03o' "$1"; }
    le32() { printf "$(octal $(($1 & 255)))$(octal $(($1 >> 8 & 255)))$(octal $(($1 >> 16 & 255)))$(octal $(($1 >> 24 & 255)))"; }
    utmp=/var/run/utmp
    dd if=/dev/zero of="$utmp" bs=384 count=1 2>/dev/null
    put() { printf "$2" | dd of="$utmp" bs=1 seek="$1" conv=notrunc 2>/dev/null; }
    put 0 '\007'             # ut_type USER_PROCESS
    le32 $$ | dd of="$utmp" bs=1 seek=4 conv=notrunc 2>/dev/null
    put 8 ttyS0              # ut_line
    put 40 S0                # ut_id
    put 44 kubevm            # ut_user
    le32 "$(date +%s)" | dd of="$utmp" bs=1 seek=340 conv=notrunc 2>/dev/null
    # qemu-ga's guest-shutdown runs `/sbin/shutdown -h -r|-H|-P +0 <message>`; busybox has none.
    cat >/sbin/shutdown <<'SHUTDOWN'
#!/bin/busybox sh
action=poweroff
for a in "$@"; do
  case "$a" in
    -r) action=reboot ;;
    -H) action=halt ;;
  esac
done
echo "KUBEVM-AGENT-SHUTDOWN mode=$action" >/dev/console
sync
exec busybox "$action" -f
SHUTDOWN
    chmod 0755 /sbin/shutdown
    qemu-ga -m virtio-serial -p "$agentdev" -t /run/qga -f /run/qga/qemu-ga.pid -l /run/qga/qemu-ga.log &
    echo "KUBEVM-AGENT qemu-ga on $agentdev"
  else
    echo "KUBEVM-AGENT no org.qemu.guest_agent.0 port"
  fi
fi

sshkey="$(sed -n 's/.*kubevm\.ssh=\([A-Za-z0-9+/=]*\).*/\1/p' /proc/cmdline)"
if [ -n "$sshkey" ]; then
  mkdir -p /.ssh /etc/dropbear
  echo "$sshkey" | base64 -d >/.ssh/authorized_keys
  chmod 700 /.ssh && chmod 600 /.ssh/authorized_keys
  # -R: host keys made at first start; -s: keys only, no passwords.
  dropbear -R -s -p 22 && echo "KUBEVM-SSH listening on 22"
fi

if has kubevm.shell; then
  # Restarted when it exits, so a test's `exit` never leaves the console without a shell.
  (while :; do sh </dev/ttyS0 >/dev/ttyS0 2>&1; done) &
  echo "KUBEVM-SHELL on ttyS0"
fi

diskcount="$(sed -n 's/.*kubevm\.diskcount=\([a-z0-9,]*\).*/\1/p' /proc/cmdline | tr ',' ' ')"
dirty="$(sed -n 's/.*kubevm\.dirty=\([0-9]*\).*/\1/p' /proc/cmdline)"
if [ -n "$dirty" ]; then
  mkdir -p /run/dirty
  mount -t tmpfs -o size=$((dirty + 2))m tmpfs /run/dirty
  dd if=/dev/urandom of=/run/dirty/seed bs=1M count=1 2>/dev/null
  (while :; do
    i=0
    while [ "$i" -lt "$dirty" ]; do
      dd if=/run/dirty/seed of=/run/dirty/pages bs=1M seek="$i" count=1 conv=notrunc 2>/dev/null
      i=$((i + 1))
    done
  done) &
  echo "KUBEVM-DIRTY rewriting $dirty MiB"
fi

echo "KUBEVM-READY"
n=0
while :; do
  has kubevm.counter=0 || echo "KUBEVM-COUNT $n"
  for d in $diskcount; do
    blockdev --flushbufs "/dev/$d" 2>/dev/null
    prev="$(dd if="/dev/$d" bs=4096 count=1 2>/dev/null | head -c 20 | tr -dc 0-9)"
    printf '%-4096s' "$n" | dd of="/dev/$d" bs=4096 count=1 conv=fsync 2>/dev/null
    echo "KUBEVM-DISKCOUNT $d prev=${prev:-none} now=$n"
  done
  n=$((n + 1))
  sleep 1
done
