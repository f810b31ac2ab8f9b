#!/usr/bin/env bash
# bench-policy-ablate: where the egress program's time goes under traffic. Builds of the program
# cut short at successive points (-DEXAI_ABLATE=N, bench only) take turns on the guest's device,
# under the same iperf3 UDP-64 flood as bench-policy.sh, with the live policy (10 000 entries)
# in their maps; each prints ns/packet from the kernel's BPF run-time stats.
# Then the same for builds of the reply program (towards the guest, on the device's egress hook)
# under an iperf3 UDP-64 flood from the tenant to the guest (-R), the replies of the guest's flow.
# Usage: bench-policy-ablate.sh BENCH_POLICY_VARIANT NAME=OBJ... r:NAME=OBJ... (OBJ "pinned": the
# program the policy attached; r: a reply variant). BENCH_SECONDS per run (default 4),
# BENCH_ROUNDS rounds (default 3).
set -uo pipefail

skip() { echo "SKIP: $*"; exit 77; }
command -v clang >/dev/null || skip "clang is not installed"
variant=$1
shift
. "$(dirname "$0")/../integration/policy-netns.sh"

T=${BENCH_SECONDS:-4}
R=${BENCH_ROUNDS:-3}
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
cleanup_extra() { sysctl -qw kernel.bpf_stats_enabled="$stats_was"; }

inP iperf3 -s -B 10.201.0.2 -p 5201 -D --logfile "$work/iperf-s.log" --pidfile "$work/iperf-s.pid"
sleep 0.3
"$PY" - "$work/b.json" <<'PY'
import ipaddress, json, random, sys
rnd = random.Random(10000)
seen = {"10.201.0.2/32"}
avoid = ipaddress.ip_network("10.201.0.0/16")
while len(seen) < 10000:
    plen = rnd.choice([16, 20, 24, 24, 28, 32, 32, 32])
    a = rnd.randrange(1 << 24, 127 << 24)
    net = ipaddress.ip_network((a >> (32 - plen) << (32 - plen), plen))
    if not net.overlaps(avoid):
        seen.add(str(net))
json.dump({"version": 1, "tenant": "bench", "egress": [{"name": "bulk", "to": [{"cidr": c} for c in sorted(seen)],
          "ports": [{"protocol": "TCP", "port": 5201}, {"protocol": "UDP", "port": 5201}]}]}, open(sys.argv[1], "w"))
PY
ctl policy apply --allow-unsigned --no-host-floor --dev hv0 --bpffs "$bpffs" "$work/b.json" >/dev/null || exit 1
printf '#include <linux/bpf.h>\n__attribute__((section("tc"), used)) int pass(struct __sk_buff *s) { return 0; }\nchar l[] __attribute__((section("license"), used)) = "GPL";\n' >"$work/pass.c"
clang -target bpf -O2 -c "$work/pass.c" -o "$work/empty.o" -idirafter /usr/include/$(uname -m)-linux-gnu || exit 1

# The variants cut short note no flows, so the replies towards the guest (iperf3's control
# connection) pass through the empty program for this run.
inH "$variant" "$work/empty.o" hv0 "$bpffs/exai/hv0" egress >/dev/null || exit 1
names=(empty) objs=("$work/empty.o") rnames=(r:empty) robjs=("$work/empty.o")
for a in "$@"; do
	o=${a#*=}
	if [ "${a#r:}" != "$a" ]; then
		[ "$o" = pinned ] && o=$bpffs/exai/hv0/prog_ingress
		a=${a#r:}
		rnames+=("r:${a%%=*}") robjs+=("$o")
	else
		[ "$o" = pinned ] && o=$bpffs/exai/hv0/prog_egress
		names+=("${a%%=*}") objs+=("$o")
	fi
done
stats() { inH bpftool prog show id "$1" -j | "$PY" -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns",0), p.get("run_cnt",0))'; }
declare -A RES
# rounds NAMES OBJS HOOK IPERF-ARGS: the variants in turn, R rounds, each under the flood.
rounds() {
	local -n nm=$1 ob=$2
	local hook=$3 r i id ns t0 c0 t1 c1
	shift 3
	for ((r = 1; r <= R; r++)); do
		for i in "${!nm[@]}"; do
			id=$(inH "$variant" "${ob[$i]}" hv0 "$bpffs/exai/hv0" $hook) || exit 1
			read -r t0 c0 < <(stats "$id")
			inG iperf3 -c 10.201.0.2 -p 5201 -u -b 0 -l 64 -t "$T" "$@" >/dev/null
			read -r t1 c1 < <(stats "$id")
			ns=$("$PY" -c "print(f'{($t1-$t0)/max(1,$c1-$c0):.0f}')")
			RES[${nm[$i]}]+=" $ns"
			echo "round $r ${nm[$i]}: $ns ns/packet over $((c1 - c0)) packets"
		done
	done
}
median() { printf '%s\n' $1 | sort -n | sed -n "$(((R + 1) / 2))p"; }
sysctl -qw kernel.bpf_stats_enabled=1
echo "machine: $(nproc) cores, kernel $(uname -r); ${T}s per run, $R rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)"
rounds names objs ""
if [ ${#rnames[@]} -gt 1 ]; then
	# the guest's side: the policy's own program, which notes the flow the replies belong to
	inH "$variant" "$bpffs/exai/hv0/prog_egress" hv0 "$bpffs/exai/hv0" >/dev/null || exit 1
	rounds rnames robjs egress -R
fi
echo
echo "| variant | ns/packet under the flood (runs) | median | net of empty |"
echo "|---|---|---|---|"
e=$(median "${RES[empty]}")
for n in "${names[@]}"; do
	m=$(median "${RES[$n]}")
	echo "| $n |${RES[$n]} | $m | $((m - e)) |"
done
if [ ${#rnames[@]} -gt 1 ]; then
	e=$(median "${RES[r:empty]}")
	for n in "${rnames[@]}"; do
		m=$(median "${RES[$n]}")
		echo "| $n (replies) |${RES[$n]} | $m | $((m - e)) |"
	done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
