#!/bin/sh
# SPDX-License-Identifier: MIT
# Run one task in a throw-away micro-VM, end to end (worker/vm/README.md).
#
#   worker/vm/run-task.sh TASK.json [VMDIR]        (VMDIR default: build/vm)
#
# Prints the guest's serial console (QEMU's stdout): the NOTARY_RESULT line
# starts a line of its own; anything else is console noise. Exit status is
# QEMU's (0 when the guest reset itself), 124 when the wall-clock limit hit.
#
# Environment:
#   ACCEL=tcg|kvm    accelerator; default: the verdict cached by kvm-probe.sh
#                    in VMDIR/accel.env (probed on first use after a host boot)
#   TSC_KHZ=n        TCG only: host TSC frequency (default: from accel.env)
#   VM_MEMORY_MB=n   guest RAM (default: min_memory_mb of the manifest, 256
#                    for the Lua-only image, 512 with node)
#   VM_TIMEOUT=s     wall-clock limit (default: the task's timeoutMs + 30 s)
#   VM_APPEND="..."  extra guest kernel parameters (workproof.debug=1, ...)
#   QEMU=path        qemu-system-x86_64
#   VM_PRINT_ARGV=1  print the QEMU command line on stderr before running
#   TMPDIR=dir       where the per-task initrd goes (default /dev/shm, else /tmp)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
die() { printf 'run-task: error: %s\n' "$*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: run-task.sh TASK.json [VMDIR]"
TASK=$1
VMDIR=${2:-$REPO/build/vm}
QEMU=${QEMU:-qemu-system-x86_64}
[ -r "$TASK" ] || die "cannot read $TASK"
[ -s "$VMDIR/initramfs.cpio" ] || die "no image in $VMDIR: run worker/vm/build-initramfs.sh $VMDIR"

# --- accelerator and clock ---------------------------------------------------------
boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
if [ -z "${ACCEL:-}" ]; then
	cached=$(sed -n 's/^BOOT_ID=//p' "$VMDIR/accel.env" 2>/dev/null || true)
	if [ "$cached" != "$boot_id" ]; then
		# KVM usability is a property of this host boot: probe once, cache
		"$HERE/kvm-probe.sh" "$VMDIR" >&2 || true
	fi
	ACCEL=$(sed -n 's/^ACCEL=//p' "$VMDIR/accel.env" 2>/dev/null || true)
	ACCEL=${ACCEL:-tcg}
fi
if [ -z "${TSC_KHZ:-}" ]; then
	TSC_KHZ=$(sed -n 's/^TSC_KHZ=//p' "$VMDIR/accel.env" 2>/dev/null || true)
	[ -n "$TSC_KHZ" ] || TSC_KHZ=$("$HERE/kvm-probe.sh" --tsc-khz "$VMDIR")
fi

APPEND=$(cat "$VMDIR/cmdline")
case $ACCEL in
kvm) CPU=host ;;
tcg)
	# microvm has no HPET, PM timer or port 0x61: the guest cannot calibrate
	# the TSC (which under TCG ticks at the host's rate), so tell it
	CPU=max
	APPEND="$APPEND tsc_early_khz=$TSC_KHZ tsc=reliable"
	;;
*) die "ACCEL must be tcg or kvm" ;;
esac
[ -n "${VM_APPEND:-}" ] && APPEND="$APPEND $VM_APPEND"
MEM=${VM_MEMORY_MB:-$(sed -n 's/^min_memory_mb=//p' "$VMDIR/manifest.txt" 2>/dev/null || true)}
MEM=${MEM:-256}
KERNEL=$VMDIR/vmlinux
[ -s "$KERNEL" ] || KERNEL=$VMDIR/vmlinuz

# --- initrd = base image + a one-file archive holding /task.json ------------------
# the initrd copy (~10 MB a task) goes to tmpfs when we may choose: 3.5 ms
# on /dev/shm against 12-16 ms on a disk-backed /tmp (spec/bench/qemu_bench)
tmp=${TMPDIR:-}
if [ -z "$tmp" ]; then
	tmp=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
fi
work=$(mktemp -d "$tmp/workproof-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$work/t"
cp "$TASK" "$work/t/task.json"
cp "$VMDIR/initramfs.cpio" "$work/initrd"
size=$(wc -c < "$work/initrd")
pad=$(((4 - size % 4) % 4))
[ "$pad" = 0 ] || head -c "$pad" /dev/zero >> "$work/initrd"
(cd "$work/t" && echo task.json | cpio -o -H newc -R 0:0 --quiet) >> "$work/initrd"

if [ -z "${VM_TIMEOUT:-}" ]; then
	ms=$(tr -d '\n' < "$TASK" | sed -n 's/.*"timeoutMs"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
	VM_TIMEOUT=$(((${ms:-30000} + 999) / 1000 + 30))
fi

set -- "$QEMU" \
	-M microvm,x-option-roms=off,isa-serial=on,rtc=on \
	-accel "$ACCEL" -cpu "$CPU" -m "$MEM" -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
	-serial stdio \
	-kernel "$KERNEL" -initrd "$work/initrd" -append "$APPEND"
[ -n "${VM_PRINT_ARGV:-}" ] && printf '%s\n' "$*" >&2
rc=0
# --foreground: QEMU stays in the caller's process group, so whoever kills
# that group (a spawner's deadline) kills the VM too
timeout --foreground -k 2 "$VM_TIMEOUT" "$@" < /dev/null || rc=$?
exit "$rc"
