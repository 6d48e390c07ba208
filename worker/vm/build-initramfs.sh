#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the WorkProof micro-VM image (worker/vm/README.md).
#
#   worker/vm/build-initramfs.sh [OUTDIR]          (default: build/vm)
#
# Writes into OUTDIR:
#   vmlinux          Debian's kernel, uncompressed ELF with a PVH entry point:
#                    what the launcher boots (no in-guest decompression)
#   vmlinuz          the same kernel as Debian ships it (bzImage), fallback
#   initramfs.cpio   base initramfs (newc): /init, busybox, workproof-worker
#                    and every shared object it needs, cjson.so, minimal /etc;
#                    padded to 512 bytes so a task archive can be appended
#   cmdline          the guest kernel command line (one line)
#   manifest.txt     what went in: packages, versions, sha256 of every file
#   tsc-khz          host helper measuring the TSC frequency (kvm-probe.sh)
#
# Environment:
#   WORKER=path      the workproof-worker binary (default: $WORKPROOF_BUILD/
#                    workproof-worker, else <repo>/build/workproof-worker)
#   KERNEL_PKG=name  kernel package (default: what linux-image-amd64's
#                    current candidate depends on)
#   COMPRESS=none|gzip   initramfs compression (default none: fastest to
#                    boot under TCG, see README "Measurements")
#   EXTRA_FILES="a b"    more host files to copy (same path; ELF deps too)
#   WITH_NODE=1      also ship node + the JavaScript runner (default: Lua only)
#
# Idempotent: downloads are cached in OUTDIR/.cache and reused while the
# package version is unchanged; the image is rebuilt reproducibly (fixed
# mtimes and owners) and replaced only when its bytes change. Network use:
# apt only (apt-get download / install; apt-get update only when needed).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$REPO/build/vm}
COMPRESS=${COMPRESS:-none}
CACHE=$OUT/.cache
ARCH=x86_64-linux-gnu
CMDLINE="console=ttyS0 quiet loglevel=0 panic=-1 cryptomgr.notests"

say() { printf 'build-initramfs: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else die "need root (or sudo) to run: $*"
	fi
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	say "apt-get update"
	as_root apt-get update -qq
	apt_updated=1
}

# Install the Debian packages that are missing; apt-get update only if the
# first install attempt fails (stale or absent package lists).
need_pkgs() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing ||
		{ apt_update && as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $missing; }
}

# apt-get download PKG[=VER] into the current directory (runs as the caller:
# no system change), with one apt-get update retry.
apt_download() {
	apt-get download -q "$1" >/dev/null 2>&1 || { apt_update && apt-get download -q "$1" >/dev/null; }
}

candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

need_pkgs qemu-system-x86 cpio xz-utils
mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/.cache

# --- kernel ----------------------------------------------------------------
if [ -n "${KERNEL_PKG:-}" ]; then
	kpkg=$KERNEL_PKG
else
	kcand=$(candidate linux-image-amd64)
	if [ -z "$kcand" ] || [ "$kcand" = "(none)" ]; then
		apt_update
		kcand=$(candidate linux-image-amd64)
	fi
	if [ -z "$kcand" ] || [ "$kcand" = "(none)" ]; then die "no candidate for linux-image-amd64"; fi
	kpkg=$(apt-cache depends "linux-image-amd64=$kcand" |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[ -n "$kpkg" ] || die "cannot resolve the kernel package of linux-image-amd64=$kcand"
fi
kver=$(candidate "$kpkg")
if [ -z "$kver" ] || [ "$kver" = "(none)" ]; then die "no candidate for $kpkg"; fi

# Decompress a bzImage into its vmlinux: find each compressed-stream magic,
# decompress from there, keep the first result that is an ELF file.
extract_vmlinux() {
	for magic in '\xfd7zXZ\x00' '\x28\xb5\x2f\xfd' '\x1f\x8b\x08' '\x02\x21\x4c\x18' '\x89\x4c\x5a'; do
		for off in $(LC_ALL=C grep -obUaP "$magic" "$1" 2>/dev/null | cut -d: -f1 | head -4); do
			case $magic in
			'\xfd7zXZ\x00') dec="xz -dcq" ;;
			'\x28\xb5\x2f\xfd') dec="zstd -dcq" ;;
			'\x1f\x8b\x08') dec="gzip -dcq" ;;
			'\x02\x21\x4c\x18') dec="lz4 -dcq" ;;
			*) dec="lzop -dcq" ;;
			esac
			# the stream is followed by the rest of the image: decompressors
			# complain about trailing data, so judge by the output instead
			tail -c +$((off + 1)) "$1" | $dec > "$2.tmp" 2>/dev/null || true
			if [ "$(head -c 4 "$2.tmp" | od -An -c | tr -d ' \n')" = '177ELF' ]; then
				mv "$2.tmp" "$2"
				return 0
			fi
		done
	done
	rm -f "$2.tmp"
	return 1
}

if [ "$(cat "$CACHE/kernel.stamp" 2>/dev/null)" != "$kpkg $kver" ] ||
	[ ! -s "$OUT/vmlinuz" ] || [ ! -s "$CACHE/config" ]; then
	say "kernel: $kpkg $kver"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt_download "$kpkg=$kver")
	deb=$(ls "$tmp"/*.deb)
	# only boot/ (vmlinuz, config): the modules stay out, nothing is installed
	dpkg-deb --fsys-tarfile "$deb" | (cd "$tmp" && tar -x --wildcards './boot/*')
	cp "$tmp"/boot/vmlinuz-* "$OUT/vmlinuz.new"
	cp "$tmp"/boot/config-* "$CACHE/config"
	mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
	rm -f "$OUT/vmlinux"
	rm -rf "$tmp"
	trap - EXIT
	echo "$kpkg $kver" > "$CACHE/kernel.stamp"
fi
if [ ! -s "$OUT/vmlinux" ]; then
	if grep -q '^CONFIG_PVH=y' "$CACHE/config" && extract_vmlinux "$OUT/vmlinuz" "$OUT/vmlinux"; then
		say "kernel: PVH vmlinux extracted ($(($(wc -c < "$OUT/vmlinux") / 1048576)) MiB)"
	else
		say "kernel: no PVH ELF could be extracted; the launcher will boot vmlinuz"
		rm -f "$OUT/vmlinux"
	fi
fi
kernel_file=vmlinuz
[ -s "$OUT/vmlinux" ] && kernel_file=vmlinux

# --- busybox (static) --------------------------------------------------------
bver=$(candidate busybox-static)
if [ -z "$bver" ] || [ "$bver" = "(none)" ]; then apt_update; bver=$(candidate busybox-static); fi
if [ "$(cat "$CACHE/busybox.stamp" 2>/dev/null)" != "$bver" ] || [ ! -x "$CACHE/busybox" ]; then
	say "busybox-static $bver"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt_download "busybox-static=$bver")
	dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
	for b in "$tmp/x/bin/busybox" "$tmp/x/usr/bin/busybox" ""; do [ -f "$b" ] && break; done
	[ -n "$b" ] || die "no bin/busybox in busybox-static"
	cp "$b" "$CACHE/busybox"
	chmod 755 "$CACHE/busybox"
	rm -rf "$tmp"
	trap - EXIT
	echo "$bver" > "$CACHE/busybox.stamp"
fi
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
[ "$(head -c 4 "$CACHE/busybox" | od -An -c | tr -d ' \n')" = '177ELF' ] || die "bad busybox in $CACHE"
file_is_static "$CACHE/busybox" || die "busybox from busybox-static is not static"

# --- the worker ----------------------------------------------------------------
if [ -z "${WORKER:-}" ]; then
	# a build dir, the default one, or installed: <prefix>/libexec/workproof/vm/..
	for w in "${WORKPROOF_BUILD:-}/workproof-worker" "$REPO/build/workproof-worker" \
		"$HERE/../workproof-worker"; do
		[ -x "$w" ] && { WORKER=$w; break; }
	done
fi
if [ -z "${WORKER:-}" ] || [ ! -x "$WORKER" ]; then
	die "workproof-worker not found: build it (cmake --build ... --target workproof-worker) or set WORKER="
fi
CJSON=${CJSON:-/usr/lib/$ARCH/lua/5.1/cjson.so}
need_pkgs lua-cjson
[ -r "$CJSON" ] || die "lua-cjson's cjson.so not found at $CJSON"

# --- staging tree ------------------------------------------------------------
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
# merged-/usr layout like Debian 12: one copy of each library under usr/
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp" "$ROOT/etc" "$ROOT/root" \
	"$ROOT/usr/lib/$ARCH" "$ROOT/usr/lib64"
ln -s usr/lib "$ROOT/lib"
ln -s usr/lib64 "$ROOT/lib64"
chmod 1777 "$ROOT/tmp"
chmod 700 "$ROOT/root"

# Host path -> image path: /lib/... and /usr/lib/... both land in usr/lib.
img_path() {
	case $1 in
	/usr/*) echo "$1" ;;
	/lib/* | /lib64/* | /lib32/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}

# Copy a host file (dereferenced) to the same path in the image (or to the
# image path $2), then the shared objects it needs, as ldd resolves them
# (the loader included).
copy_with_deps() {
	dst=$ROOT$(img_path "${2:-$1}")
	mkdir -p "$(dirname "$dst")"
	[ -e "$dst" ] || cp -L "$1" "$dst"
	file_is_static "$1" && return 0
	ldd "$1" | grep -q 'not found' && die "$1: unresolved shared objects: $(ldd "$1" | grep 'not found')"
	for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		d=$ROOT$(img_path "$lib")
		[ -e "$d" ] && continue
		mkdir -p "$(dirname "$d")"
		cp -L "$lib" "$d"
	done
}

cp "$CACHE/busybox" "$ROOT/bin/busybox"
for applet in $("$CACHE/busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$ROOT/bin/$applet"
done
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init" "$ROOT/bin/busybox"

copy_with_deps "$WORKER" /bin/workproof-worker
copy_with_deps "$CJSON"
for f in ${EXTRA_FILES:-}; do copy_with_deps "$f"; done
# JavaScript (opt-in): node and the worker's runner, where the worker looks
# for them (/usr/bin/node; <the worker's directory>/runtime = /bin/runtime).
# The runner comes from ../runtime beside this script: worker/runtime in the
# source tree, <prefix>/libexec/workproof/runtime installed.
# node is ~100 MB: the image grows ninefold and the guest needs -m 512.
if [ "${WITH_NODE:-0}" = 1 ]; then
	need_pkgs nodejs
	copy_with_deps "$(readlink -f "$(command -v node)")" /usr/bin/node
	mkdir -p "$ROOT/bin/runtime"
	cp "$HERE"/../runtime/* "$ROOT/bin/runtime/"
fi

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"
printf 'workproof-vm\n' > "$ROOT/etc/hostname"
: > "$ROOT/etc/ld.so.conf"
# a loader cache makes library lookup one mmap instead of a path search
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
"$LDCONFIG" -r "$ROOT" 2>/dev/null || say "warning: ldconfig -r failed; the loader will search its default paths"

# --- archive -------------------------------------------------------------------
find "$ROOT" -exec touch -h -d @0 {} +
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --reproducible --quiet) > "$OUT/initramfs.cpio.new"
case $COMPRESS in
none) ;;
gzip)
	gzip -9 -n -c "$OUT/initramfs.cpio.new" > "$OUT/initramfs.cpio.gz.new"
	mv "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.new"
	# zero padding to 512: an appended archive must start 4-byte aligned
	size=$(wc -c < "$OUT/initramfs.cpio.new")
	pad=$(((512 - size % 512) % 512))
	[ "$pad" = 0 ] || head -c "$pad" /dev/zero >> "$OUT/initramfs.cpio.new"
	;;
*) die "COMPRESS must be none or gzip" ;;
esac
if cmp -s "$OUT/initramfs.cpio.new" "$OUT/initramfs.cpio" 2>/dev/null; then
	rm -f "$OUT/initramfs.cpio.new"
	say "initramfs.cpio unchanged"
else
	mv "$OUT/initramfs.cpio.new" "$OUT/initramfs.cpio"
	say "initramfs.cpio written ($(wc -c < "$OUT/initramfs.cpio") bytes, compression $COMPRESS)"
fi
echo "$CMDLINE" > "$OUT/cmdline.new" && mv "$OUT/cmdline.new" "$OUT/cmdline"

# --- host helper: TSC frequency for TCG guests --------------------------------
if command -v cc >/dev/null 2>&1; then
	if [ ! -x "$OUT/tsc-khz" ] || [ -n "$(find "$HERE/tsc-khz.c" -newer "$OUT/tsc-khz")" ]; then
		cc -O2 -Wall -o "$OUT/tsc-khz" "$HERE/tsc-khz.c" || say "warning: tsc-khz did not build"
	fi
else
	say "warning: no C compiler: kvm-probe.sh will read the TSC frequency from the kernel log"
fi

# --- manifest ------------------------------------------------------------------
{
	echo "# WorkProof micro-VM image, built by worker/vm/build-initramfs.sh"
	echo "kernel_package=$kpkg"
	echo "kernel_version=$kver"
	echo "kernel=$kernel_file"
	echo "vmlinuz_sha256=$(sha "$OUT/vmlinuz")"
	[ -s "$OUT/vmlinux" ] && echo "vmlinux_sha256=$(sha "$OUT/vmlinux")"
	echo "busybox_version=$bver"
	echo "worker=$WORKER"
	echo "worker_sha256=$(sha "$WORKER")"
	echo "initramfs=initramfs.cpio"
	echo "initramfs_compression=$COMPRESS"
	echo "initramfs_bytes=$(wc -c < "$OUT/initramfs.cpio")"
	echo "initramfs_sha256=$(sha "$OUT/initramfs.cpio")"
	echo "cmdline=$CMDLINE"
	# the kernel needs the packed and the unpacked image in RAM at once: an
	# image that does not fit is unpacked only in part (the task is lost)
	if [ "${WITH_NODE:-0}" = 1 ]; then echo "min_memory_mb=512"; else echo "min_memory_mb=256"; fi
	echo "# files: mode bytes sha256 path (symlinks: -> target)"
	(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | while read -r f; do
		if [ -L "$f" ]; then echo "l - - ${f#.} -> $(readlink "$f")"
		elif [ -d "$f" ]; then echo "d - - ${f#.}"
		else echo "$(stat -c '%a %s' "$f") $(sha "$f") ${f#.}"
		fi
	done | grep -v '^l - - /bin/[a-z0-9_.[-]* -> busybox$')
	echo "# plus /bin/<applet> -> busybox for every busybox applet"
} > "$OUT/manifest.txt"
say "done: $OUT ($kernel_file, initramfs.cpio, manifest.txt)"
