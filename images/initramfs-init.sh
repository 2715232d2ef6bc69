#!/bin/busybox sh
# Wrenn initramfs: load the virtio modules (order in /modules/load-order, dependencies first),
# mount the ext4 root disk and switch_root into the guest init.
# Kernel cmdline: wrenn.probe=1 -> print WRENN-PROBE-OK and power off (accelerator probe).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "wrenn-initramfs: start"
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    wrenn.probe=1) echo "WRENN-PROBE-OK"; sync; poweroff -f ;;
  esac
done
while read -r mod; do
  [ -n "$mod" ] && insmod "/modules/$mod" 2>/dev/null
done < /modules/load-order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
if [ ! -b /dev/vda ]; then echo "wrenn-initramfs: no /dev/vda"; exec sh; fi
mkdir -p /newroot
if ! mount -t ext4 -o rw,noatime /dev/vda /newroot; then echo "wrenn-initramfs: cannot mount root"; exec sh; fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /usr/local/lib/wrenn/bin/init
