#!/bin/sh
# PID 1 of the test VM (busybox sh, packed into the initramfs as /init).
# Builds a root out of the host's / (read-only 9p, made writable in guest
# memory by an overlay), runs the host-prepared command in it as root with
# stdout and stderr on two virtio ports, writes its exit status to the
# control share and powers off. Anything printed here goes to the serial
# console, which run-in-vm.sh keeps as the boot log.
#
# Busybox runs its own applets before PATH, so modprobe and ip are called
# by path: /sbin/modprobe is kmod's, /usr/sbin/ip the host's iproute2.

/bin/mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys

# isa-debug-exit at port 0xf4 stops qemu at once; the status itself travels
# in the control share, so any value will do.
power_off() {
  sync
  printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  poweroff -f
}

die() {
  echo "vm-init: $*"
  power_off
}

ninep_opts=trans=virtio,version=9p2000.L,msize=512000
/sbin/modprobe -a virtio_pci 9pnet_virtio 9p virtio_console overlay ||
  die "cannot load the boot modules"

mkdir -p /mnt/host /mnt/ctl /mnt/ovl /newroot
# The host root does not change under a test, so the guest may cache it.
mount -t 9p -o "$ninep_opts,ro,cache=loose" hostroot /mnt/host || die "cannot mount the host root"
mount -t 9p -o "$ninep_opts" ctl /mnt/ctl || die "cannot mount the control share"
mount -t tmpfs -o mode=755 ovl /mnt/ovl
mkdir /mnt/ovl/upper /mnt/ovl/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/ovl/upper,workdir=/mnt/ovl/work \
  root /newroot || die "cannot build the overlay root"

r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
# A fresh /run: the host's may hold stale netns files and pid files.
mount -t tmpfs -o mode=755 run $r/run
# What a Debian 12 host has mounted, so project tests find their usual paths.
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup
mount -t bpf bpf $r/sys/fs/bpf
mount -t debugfs debugfs $r/sys/kernel/debug 2>/dev/null
# The guest's modules, so modprobe inside the chroot works too (the host
# itself has no /lib/modules).
mkdir -p $r/lib/modules
mount --bind /lib/modules $r/lib/modules
mkdir -p $r/run/sg-vm
mount --bind /mnt/ctl $r/run/sg-vm
if [ -f /mnt/ctl/rw-path ]; then
  rw=$(cat /mnt/ctl/rw-path)
  mkdir -p "$r$rw"
  mount -t 9p -o "$ninep_opts" rw "$r$rw" || die "cannot mount the writable share at $rw"
fi

hostname sg-vm
/usr/sbin/ip link set lo up

# The host announces the ports asynchronously after virtio_console loads.
port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && echo "/dev/${p##*/}" && return 0
  done
  return 1
}
i=0
until out=$(port sg.stdout) && err=$(port sg.stderr); do
  i=$((i + 1))
  [ $i -gt 100 ] && die "the output ports did not appear"
  usleep 50000
done

chroot $r /bin/bash /run/sg-vm/cmd </dev/null >"$out" 2>"$err"
echo $? > /mnt/ctl/status
power_off
