#!/usr/bin/env bash
# Builds the workspace image: the guest kernel, an initramfs (exai-agent as /init, Debian's
# busybox-static with its applets, the kernel modules of modules.txt) and manifest.json
# (format docs/formats/guest-image.md: each file's name, size and SHA-256).
# Reproducible: sorted entries, fixed timestamps, gzip without a name or time.
set -euo pipefail

agent= kernel= modules= busybox= outdir=
while (($#)); do
	case $1 in
	--agent) agent=$2 ;;
	--kernel) kernel=$2 ;;
	--modules) modules=$2 ;;
	--busybox) busybox=$2 ;;
	--outdir) outdir=$2 ;;
	*) echo "mkinitramfs: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
for v in agent kernel modules busybox outdir; do
	[ -n "${!v}" ] || { echo "mkinitramfs: --$v is required" >&2; exit 2; }
done
[ -r "$kernel" ] || { echo "mkinitramfs: cannot read the kernel $kernel (Debian installs it 0600: build as root or pass -Dguest_kernel=)" >&2; exit 1; }
kver=$(basename "$kernel")
kver=${kver#vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || { echo "mkinitramfs: no modules for $kver in $moddir" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,run,etc,root}
install -m 0755 "$agent" "$stage/init"
install -m 0755 "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || [ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
: >"$stage/lib/modules/exai.order"
while read -r m; do
	case $m in '' | '#'*) continue ;; esac
	[ -f "$moddir/$m" ] || { echo "mkinitramfs: module $m missing from $moddir" >&2; exit 1; }
	install -m 0644 "$moddir/$m" "$stage/lib/modules/$(basename "$m")"
	basename "$m" >>"$stage/lib/modules/exai.order"
done <"$modules"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
echo exai >"$stage/etc/hostname"

find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0 --reproducible) |
	gzip -n -6 >"$outdir/initramfs.cpio.gz.tmp"
mv "$outdir/initramfs.cpio.gz.tmp" "$outdir/initramfs.cpio.gz"
install -m 0644 "$kernel" "$outdir/vmlinuz"
# Firecracker boots an uncompressed ELF vmlinux on x86. The Debian cloud kernel's payload is
# LZ4 (legacy frame, magic 02 21 4c 18): cut it out of the bzImage and decompress it.
files=(vmlinuz initramfs.cpio.gz)
rm -f "$outdir/vmlinux"
if command -v lz4 >/dev/null; then
	off=$(LC_ALL=C grep -obUaP '\x02\x21\x4c\x18' "$kernel" | head -n 1 | cut -d: -f1 || true)
	if [ -n "$off" ]; then
		tail -c +$((off + 1)) "$kernel" | lz4 -dc 2>/dev/null >"$outdir/vmlinux.tmp" || true
		if [ "$(head -c 4 "$outdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			chmod 0644 "$outdir/vmlinux.tmp"
			mv "$outdir/vmlinux.tmp" "$outdir/vmlinux"
			files+=(vmlinux)
		fi
		rm -f "$outdir/vmlinux.tmp"
	fi
fi

{
	printf '{"version":1,"kernel_release":"%s","files":[' "$kver"
	sep=
	for f in "${files[@]}"; do
		printf '%s{"name":"%s","size":%d,"sha256":"%s"}' "$sep" "$f" "$(stat -c %s "$outdir/$f")" \
			"$(sha256sum "$outdir/$f" | cut -d' ' -f1)"
		sep=,
	done
	printf ']}\n'
} >"$outdir/manifest.json"
