#!/bin/sh
# Wrenn guest system setup (run once by init): filesystems, hostname, network.
# Kernel cmdline: wrenn.hostname=NAME wrenn.ip=ADDR/PREFIX wrenn.gw=ADDR
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
ln -sf /proc/self/fd /dev/fd
mkdir -p /run/wrenn /run/lock
hostname_arg=wrenn
ip_arg=
gw_arg=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    wrenn.hostname=*) hostname_arg="${arg#wrenn.hostname=}" ;;
    wrenn.ip=*) ip_arg="${arg#wrenn.ip=}" ;;
    wrenn.gw=*) gw_arg="${arg#wrenn.gw=}" ;;
  esac
done
hostname "$hostname_arg"
echo "$hostname_arg" > /etc/hostname
ip link set lo up
if [ -n "$ip_arg" ]; then
  ip link set eth0 up
  ip addr add "$ip_arg" dev eth0
  [ -n "$gw_arg" ] && ip route add default via "$gw_arg"
fi
echo "WRENN-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
