#!/usr/bin/env bash
# Prepare what the LVM test VM boots (DESIGN.md §3) into a cache dir, once; later calls reuse it.
#   - the Debian kernel package that linux-image-amd64 depends on: `apt-get download`, unpacked with
#     `dpkg-deb -x` (never installed on the host), modules indexed with `depmod -b`;
#   - a busybox initramfs holding only the modules that mount the root (virtio, 9p, overlay, the
#     virtio console and disks), in the order `modprobe --show-depends` gives, and test/vm/initramfs-init.sh.
# Needs root, apt, dpkg, kmod, busybox-static. Prints the path of the assets file (assets.json).
# Usage: test/vm/prepare-assets.sh [CACHE_DIR]   (default: $DSSNAP_VM_CACHE or /var/cache/dssnap-vm)
set -euo pipefail

cache=${1:-${DSSNAP_VM_CACHE:-/var/cache/dssnap-vm}}
here=$(cd "$(dirname "$0")" && pwd)
init_script="$here/initramfs-init.sh"
root_modules=(virtio_pci virtio_blk virtio_console 9pnet_virtio 9p overlay)

fail() { echo "prepare-assets: $*" >&2; exit 1; }
for tool in apt-get apt-cache dpkg-deb depmod modprobe; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing (packages: apt, dpkg, kmod)"
done
[ -x /bin/busybox ] || fail "/bin/busybox is missing: apt-get install busybox-static"
file_type=$(od -An -c -N4 /bin/busybox | tr -d ' ')
[ "$file_type" = '177ELF' ] || fail "/bin/busybox is not an ELF binary"

package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$package" ] || fail "cannot tell which kernel package linux-image-amd64 depends on (run apt-get update first)"
version=$(apt-cache show "$package" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
[ -n "$version" ] || fail "apt-cache knows no version of $package"
kernel_stamp="$package $version"
initrd_stamp="$(cat "$init_script" /bin/busybox | sha256sum | cut -c1-16) ${root_modules[*]}"

dir="$cache/$package"
if [ -f "$dir/ready" ] && [ "$(cat "$dir/ready")" = "$kernel_stamp $initrd_stamp" ]; then
  echo "$dir/assets.json"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.prepare-XXXXXX")
trap 'rm -rf "$work"' EXIT
# The unpacked kernel is reused when only the initramfs changed (no download then).
if [ -f "$dir/kernel-ready" ] && [ "$(cat "$dir/kernel-ready")" = "$kernel_stamp" ]; then
  root="$dir/root"
else
  (
    cd "$work"
    # The _apt sandbox user may not be able to write here (nor to /tmp on some hosts): download as root.
    apt-get download -q -o APT::Sandbox::User=root "$package" >/dev/null
  )
  root="$work/root"
  mkdir -p "$root"
  dpkg-deb -x "$work"/*.deb "$root"
fi
kernel_version=$(ls "$root/lib/modules")
[ -n "$kernel_version" ] && [ -f "$root/boot/vmlinuz-$kernel_version" ] || fail "unexpected layout in $package"
[ "$root" = "$dir/root" ] || depmod -b "$root" "$kernel_version"

# The initramfs: busybox, the root-mounting modules in dependency order, the init script.
initrd="$work/initrd"
mkdir -p "$initrd/bin" "$initrd/modules" "$initrd/proc" "$initrd/sys" "$initrd/dev" "$initrd/newroot"
cp /bin/busybox "$initrd/bin/busybox"
cp "$init_script" "$initrd/init"
chmod 755 "$initrd/init"
: >"$initrd/modules/order"
for module in "${root_modules[@]}"; do
  modprobe -d "$root" -S "$kernel_version" --show-depends "$module" | while read -r verb path _; do
    [ "$verb" = insmod ] || continue
    name=$(basename "$path")
    if ! grep -qx "$name" "$initrd/modules/order"; then
      cp "$path" "$initrd/modules/$name"
      echo "$name" >>"$initrd/modules/order"
    fi
  done
done
(cd "$initrd" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initramfs.gz")

rm -f "$dir/ready"
if [ "$root" != "$dir/root" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$root" "$dir/root"
  echo "$kernel_stamp" >"$dir/kernel-ready"
fi
mv "$work/initramfs.gz" "$dir/initramfs.gz"
cat >"$dir/assets.json" <<JSON
{
  "package": "$package",
  "packageVersion": "$version",
  "kernelVersion": "$kernel_version",
  "kernel": "$dir/root/boot/vmlinuz-$kernel_version",
  "initramfs": "$dir/initramfs.gz",
  "modulesDir": "$dir/root/lib/modules"
}
JSON
echo "$kernel_stamp $initrd_stamp" >"$dir/ready"
echo "$dir/assets.json"
