# policy-netns.sh: the three network namespaces the policy e2e test and benchmark use.
# Source it after defining skip(); it sets G H P work bpffs pids, inG/inH/inP/ctl, PY, and a
# cleanup trap (which also calls the caller's optional cleanup_extra).
#
#   guest netns (G)            host netns (H)                 tenant netns (P)
#   gv0 10.200.0.2  <--veth-->  hv0 10.200.0.1 [policy]  hp0 <--veth--> pp0 10.201.0.2, .3
#       fd20::2                     fd20::1                  fd21::1        fd21::2
#                                                                           169.254.169.254
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, BPF)"
EXAICTL=${EXAICTL:-${EXAI_BUILD_ROOT:?EXAI_BUILD_ROOT or EXAICTL must be set}/cli/exaictl}
for t in ip python3 iperf3; do command -v $t >/dev/null || skip "$t is not installed"; done
"$EXAICTL" features | grep -q '^bpf *yes' || skip "exaictl was built without BPF support"
# The system interpreter: a version manager's shim would add a second per connection attempt.
PY=$(command -v /usr/bin/python3 || command -v python3)

tag=e$$
G=$tag-g H=$tag-h P=$tag-p
work=$(mktemp -d /tmp/exai-policy-netns.XXXXXX)
bpffs=$work/bpffs
pids=()

cleanup() {
	declare -F cleanup_extra >/dev/null && cleanup_extra
	[ -f "$work/iperf-s.pid" ] && pids+=($(cat "$work/iperf-s.pid"))
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del $G 2>/dev/null; ip netns del $H 2>/dev/null; ip netns del $P 2>/dev/null
	umount "$bpffs" 2>/dev/null
	[ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

inG() { ip netns exec $G "$@"; }
inH() { ip netns exec $H "$@"; }
inP() { ip netns exec $P "$@"; }
ctl() { inH "$EXAICTL" "$@"; }

# --- topology -------------------------------------------------------------------------------
ip netns add $G && ip netns add $H && ip netns add $P || skip "cannot create network namespaces"
ip link add gv0 netns $G type veth peer name hv0 netns $H || skip "cannot create veth pairs"
ip link add hp0 netns $H type veth peer name pp0 netns $P
inG ip addr add 10.200.0.2/24 dev gv0; inG ip -6 addr add fd20::2/64 dev gv0 nodad
inH ip addr add 10.200.0.1/24 dev hv0; inH ip -6 addr add fd20::1/64 dev hv0 nodad
inH ip addr add 10.201.0.1/24 dev hp0; inH ip -6 addr add fd21::1/64 dev hp0 nodad
inP ip addr add 10.201.0.2/24 dev pp0; inP ip addr add 10.201.0.3/24 dev pp0
inP ip -6 addr add fd21::2/64 dev pp0 nodad; inP ip addr add 169.254.169.254/32 dev pp0
for ns in $G $H $P; do ip -n $ns link set lo up; done
inG ip link set gv0 up; inH ip link set hv0 up; inH ip link set hp0 up; inP ip link set pp0 up
inG ip route add default via 10.200.0.1; inG ip -6 route add default via fd20::1
inP ip route add 10.200.0.0/24 via 10.201.0.1; inP ip -6 route add fd20::/64 via fd21::1
inP ip route add 169.254.0.0/16 via 10.201.0.1 2>/dev/null
inH ip route add 169.254.169.254/32 via 10.201.0.2
inH sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
mkdir -p "$bpffs" && mount -t bpf bpffs "$bpffs" || skip "cannot mount a bpffs"

