#!/usr/bin/env bash
# Installs everything libexai needs to build, test and run its walk-through on Debian 12.
# Idempotent; needs root. Used by scripts/walkthrough.sh and scripts/test.sh.
set -euo pipefail

packages=(
	# build
	build-essential clang llvm lld libclang-rt-14-dev meson ninja-build pkg-config g++
	# required libraries (DESIGN.md)
	libssl-dev libsodium-dev libjansson-dev
	# optional parts: PostgreSQL and NATS sinks, eBPF policy, scrubber
	libpq-dev libnats-dev libbpf-dev bpftool libhyperscan-dev libpcre2-dev
	# PKCS#11 header for the keys module's HSM provider (modules are dlopen()ed)
	libp11-kit-dev
	# test peers and tools
	python3 cppcheck groff-base iproute2 softhsm2 opensc minisign age postgresql nats-server systemd
	golang-go golang-golang-x-mod-dev iperf3 nftables
	# vm: the VMM, the guest kernel and the guest image's parts; python3-yaml reads the
	# Firecracker OpenAPI spec in the fake API server; lz4 unpacks the vmlinux Firecracker boots
	busybox-static cpio e2fsprogs linux-image-cloud-amd64 lz4 python3-yaml qemu-system-x86 qemu-utils
	# vm: dm-crypt disks for Firecracker (libcryptsetup)
	libcryptsetup-dev
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm (for the AWS Encryption SDK and secretlint peers): this image's nodejs
# package already ships npm; Debian's own need both packages.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
	echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
