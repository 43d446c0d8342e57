#!/bin/sh
# Runs inside the LVM test VM once the root is mounted (busybox init's sysinit; initramfs-init.sh).
# Sets up what LVM needs without udev (DESIGN.md §3), then runs the guest agent on the virtio-serial
# port named dssnap.agent until the host closes the channel, then powers the VM off at once.
# Arguments: PROJECT_DIR RUN_DIR. The agent's stderr goes to RUN_DIR/agent.log (read by the host).
project=$1
run=$2
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8

power_off() {
  sync
  echo b >/proc/sysrq-trigger
}

mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/lvm /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname dssnap-vm
ln -sf /proc/self/mounts /etc/mtab

# No udev in the guest: LVM creates its device nodes itself and lists devices by scanning /dev. Every LVM
# command costs a lot under TCG: scan only the scratch disks, and keep no metadata backups or archives.
mkdir -p /etc/lvm
cat >/etc/lvm/lvmlocal.conf <<'LVM'
activation {
  udev_sync = 0
  udev_rules = 0
  monitoring = 0
}
devices {
  obtain_device_list_from_udev = 0
  global_filter = [ "a|^/dev/vd[a-z]+$|", "r|.*|" ]
}
backup {
  backup = 0
  archive = 0
}
LVM

port=
for entry in /sys/class/virtio-ports/*; do
  [ "$(cat "$entry/name" 2>/dev/null)" = dssnap.agent ] && port=/dev/${entry##*/}
done
if [ -z "$port" ]; then
  echo "dssnap-vm: no virtio-serial port named dssnap.agent" >/dev/console
  power_off
fi
echo "dssnap-vm: ready $(cut -d' ' -f1 /proc/uptime)" >/dev/console
node "$project/dist/test/vm/guest-agent.js" "$port" 2>"$run/agent.log"
echo "$?" >"$run/agent.exit"
power_off
