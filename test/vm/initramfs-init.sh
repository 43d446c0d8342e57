#!/bin/busybox sh
# PID 1 of the LVM test VM's initramfs (built by prepare-assets.sh; DESIGN.md §3). Mounts the host root
# over 9p read-only under an overlay with a tmpfs upper layer (the guest may write anywhere, the host
# never sees it), the project (read-only) and the run dir (read-write) over 9p at their host paths, binds
# the unpacked kernel modules on /lib/modules, then hands over to busybox init (which reaps orphans as a
# PID 1 must) running test/vm/guest-stage2.sh. Any failure powers the VM off with the reason on the console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "dssnap-vm-init: $*" >/dev/console
  echo b >/proc/sysrq-trigger
  sleep 5
}
arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}" ;; esac
  done
}

for module in $(cat /modules/order); do
  insmod "/modules/$module" || fail "insmod $module failed"
done

project=$(arg dssnap.project)
run=$(arg dssnap.run)
modules=$(arg dssnap.modules)
[ -n "$project" ] && [ -n "$run" ] && [ -n "$modules" ] || fail "dssnap.project, dssnap.run and dssnap.modules must be on the kernel command line"

ninep="trans=virtio,version=9p2000.L,msize=262144"
mkdir -p /lower /upper
mount -t 9p -o "$ninep,ro,cache=loose" hostroot /lower || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=755 tmpfs /upper || fail "cannot mount the overlay's tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
  fail "cannot mount the overlay root"
mkdir -p "/newroot$project" "/newroot$run" /newroot/lib/modules
# cache=loose: Node loads hundreds of modules, and an uncached 9p lookup under TCG costs milliseconds
# each (43 s to import the backup code, against a few seconds cached). Tests never change the project
# while a VM runs.
mount -t 9p -o "$ninep,ro,cache=loose" project "/newroot$project" || fail "cannot mount the project (9p tag project)"
mount -t 9p -o "$ninep,cache=mmap" run "/newroot$run" || fail "cannot mount the run dir (9p tag run)"
mount --bind "/newroot$modules" /newroot/lib/modules || fail "cannot bind $modules on /lib/modules"

cat >/newroot/etc/inittab <<INITTAB
::sysinit:$project/test/vm/guest-stage2.sh $project $run
INITTAB
mount --move /dev /newroot/dev
mount --move /sys /newroot/sys
mount --move /proc /newroot/proc
exec switch_root /newroot /bin/busybox init
