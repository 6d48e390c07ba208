#!/bin/sh
# SPDX-License-Identifier: MIT
# Decide how this host runs micro-VMs, once per host boot (worker/vm/README.md).
#
#   worker/vm/kvm-probe.sh [VMDIR]             probe, write VMDIR/accel.env
#   worker/vm/kvm-probe.sh --tsc-khz [VMDIR]   only print the TSC kHz
#
# Detect, don't assume: /dev/kvm may open while guests hang at boot (nested
# virtualisation), so the probe boots the real image under TCG (the baseline:
# if that fails the image is broken, exit 1) and then under KVM with a short
# limit (KVM_PROBE_TIMEOUT, default 10 s). KVM is chosen only if its guest
# delivered a NOTARY_RESULT line, and sooner than TCG's.
#
# accel.env (KEY=value lines, no quoting needed by readers):
#   BOOT_ID   /proc/sys/kernel/random/boot_id the verdict belongs to
#   ACCEL     tcg | kvm
#   TSC_KHZ   host TSC frequency for TCG guests (tsc_early_khz=)
#   TCG_MS / KVM_MS   boot-to-result time of the probe task ("-" = none)
#   KVM_NOTE  why KVM is (not) used
#   PROBED_AT date
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
say() { printf 'kvm-probe: %s\n' "$*" >&2; }

only_tsc=
if [ "${1:-}" = --tsc-khz ]; then only_tsc=1; shift; fi
VMDIR=${1:-$REPO/build/vm}

# Host TSC frequency in kHz: env override, the measuring helper, the kernel
# log, /proc/cpuinfo (last resort: "cpu MHz" is the current clock on hosts
# with frequency scaling, so it is only trusted with tsc_known_freq).
tsc_khz() {
	if [ -n "${TSC_KHZ:-}" ]; then echo "$TSC_KHZ"; return; fi
	if [ -x "$VMDIR/tsc-khz" ] && k=$("$VMDIR/tsc-khz" 2>/dev/null) && [ -n "$k" ]; then
		echo "$k"; return
	fi
	k=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -1)
	[ -n "$k" ] || k=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -1)
	if [ -z "$k" ] && grep -q -m1 '^flags.*tsc_known_freq' /proc/cpuinfo; then
		k=$(sed -n 's/^cpu MHz[[:space:]]*:[[:space:]]*\([0-9.]*\).*/\1/p' /proc/cpuinfo | head -1)
	fi
	[ -n "$k" ] || { say "cannot determine the TSC frequency: set TSC_KHZ"; return 1; }
	awk -v m="$k" 'BEGIN { printf "%d\n", m * 1000 + 0.5 }'
}

if [ -n "$only_tsc" ]; then tsc_khz; exit; fi

[ -s "$VMDIR/initramfs.cpio" ] || { say "no image in $VMDIR (worker/vm/build-initramfs.sh)"; exit 1; }
TSC=$(tsc_khz)
work=$(mktemp -d "${TMPDIR:-/tmp}/workproof-probe.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%s\n' '{"jobId":"kvm-probe","language":"lua","code":"print(1)","input":"","timeoutMs":2000,"memoryBytes":67108864,"outputLimitBytes":4096}' > "$work/task.json"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# boot ACCEL LIMIT -> prints elapsed ms when a NOTARY_RESULT line came back
boot() {
	t0=$(now_ms)
	ACCEL=$1 TSC_KHZ=$TSC VM_TIMEOUT=$2 "$HERE/run-task.sh" "$work/task.json" "$VMDIR" > "$work/out.$1" 2>&1 || true
	t1=$(now_ms)
	grep -q '^NOTARY_RESULT: ' "$work/out.$1" && echo $((t1 - t0))
}

tcg_ms=$(boot tcg "${TCG_PROBE_TIMEOUT:-60}" || true)
kvm_ms=
accel=tcg
if [ -z "$tcg_ms" ]; then
	note="TCG guest gave no NOTARY_RESULT: the image is broken ($(tail -3 "$work/out.tcg" | tr '\n' ' '))"
	say "$note"
elif [ ! -e /dev/kvm ]; then
	note="no /dev/kvm"
elif ! { : < /dev/kvm; } 2>/dev/null || [ ! -w /dev/kvm ]; then
	note="/dev/kvm not accessible to uid $(id -u)"
else
	kvm_ms=$(boot kvm "${KVM_PROBE_TIMEOUT:-10}" || true)
	if [ -z "$kvm_ms" ]; then
		why=$(grep -m1 -E 'KVM internal error|emulation failure|kvm' "$work/out.kvm" | tr -d '\r' || true)
		note="/dev/kvm opens but the guest gave no NOTARY_RESULT within ${KVM_PROBE_TIMEOUT:-10} s${why:+ ($why)}"
	elif [ "$kvm_ms" -lt "$tcg_ms" ]; then
		accel=kvm
		note="KVM guest answered in $kvm_ms ms (TCG $tcg_ms ms)"
	else
		note="KVM works but is slower than TCG here ($kvm_ms ms vs $tcg_ms ms)"
	fi
fi
{
	echo "BOOT_ID=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)"
	echo "ACCEL=$accel"
	echo "TSC_KHZ=$TSC"
	echo "TCG_MS=${tcg_ms:--}"
	echo "KVM_MS=${kvm_ms:--}"
	echo "KVM_NOTE=$note"
	echo "PROBED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$VMDIR/accel.env.new"
mv "$VMDIR/accel.env.new" "$VMDIR/accel.env"
say "ACCEL=$accel: $note"
[ -n "$tcg_ms" ]
