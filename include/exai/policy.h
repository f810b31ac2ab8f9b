/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/policy.h
 * @brief eBPF egress policy: signed tenant bundles compiled into TC programs on a device.
 *
 * A bundle (docs/formats/policy.md) lists what a workspace may reach. exai_policy_parse()
 * validates and compiles it into the tables the datapath uses; exai_policy_apply() loads them
 * onto the host side of a VM's tap or veth: default deny both ways, egress only by rule,
 * inbound only for replies to flows the guest started, and a floor (link-local, metadata and
 * the host's own addresses) that no bundle lifts. Updates are atomic, failures leave the
 * device down (fail closed).
 *
 * Threads: an ::exai_policy is immutable after parsing and may be shared between threads.
 * The device functions may be called from any thread; two processes applying to the same
 * device at once is not supported (the last switch wins).
 */
#ifndef EXAI_POLICY_H
#define EXAI_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <exai/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A validated, compiled bundle. Single owner; free with exai_policy_free(). */
typedef struct exai_policy exai_policy;

/** Flags for exai_policy_parse_opts::flags. */
enum exai_policy_parse_flags {
	/** Accept a bundle without a valid signature (development only; logged as a warning). */
	EXAI_POLICY_ALLOW_UNSIGNED = 1u << 0,
};

struct exai_policy_parse_opts {
	size_t sz; /**< set by EXAI_OPTS() */
	/** The minisign signature file's contents (the `.minisig` text); NULL: unsigned. */
	const char *signature;
	/** Trusted minisign public keys (each the key file's text or its base64 line),
	 *  NULL-terminated; the signature must verify under one of them. */
	const char *const *trusted_keys;
	/** When set, the bundle's `tenant` must equal it (-EACCES otherwise). */
	const char *tenant;
	uint32_t flags; /**< ::exai_policy_parse_flags */
};

/**
 * Validates the bundle @p json (@p len bytes) and compiles it. Unless
 * EXAI_POLICY_ALLOW_UNSIGNED is set, the signature in @p opts must verify under one of the
 * trusted keys first. @p ctx may be NULL (no logging).
 * @retval -EBADMSG the JSON is malformed or a field is invalid; exai_errmsg() names the JSON
 *         path (e.g. `egress[2].to[0].except[1]`) and the reason
 * @retval -E2BIG   the bundle exceeds the datapath's limits (rules, port ranges, entries)
 * @retval -EACCES  unsigned, wrongly signed, signed by an untrusted key, or for another tenant
 *                  than opts->tenant
 * @retval -EINVAL  a trusted key is not a minisign public key
 * @retval -EINVAL  bad arguments or options
 * @retval -ENOMEM
 */
EXAI_API int exai_policy_parse(exai_policy **ret, exai_ctx *ctx, const char *json, size_t len,
			       const struct exai_policy_parse_opts *opts);
/** Frees a policy; NULL is accepted. */
EXAI_API void exai_policy_free(exai_policy *policy);
/** The bundle's tenant; valid as long as @p policy. */
EXAI_API const char *exai_policy_tenant(const exai_policy *policy);

/**
 * The compiled tables as one JSON object (rules, port sets, LPM entries per family with the
 * floor included), as `exaictl policy check` prints them. *@p ret is freed with exai_free().
 * @retval -ENOMEM
 */
EXAI_API int exai_policy_dump(char **ret, const exai_policy *policy);

/**
 * The verdict for a packet from the guest to @p dst, written `ADDR`, `ADDR:PORT`,
 * `[V6ADDR]:PORT`, each optionally followed by `/tcp`, `/udp`, `/icmp` (default tcp), computed
 * by the same tables and port-set match the datapath uses. *@p ret is a JSON object
 * `{"verdict":"allow"|"deny","reason":...,"rule":...,"entry":...}`, freed with exai_free().
 * @retval -EINVAL @p dst cannot be parsed
 */
EXAI_API int exai_policy_explain(char **ret, const exai_policy *policy, const char *dst);

/** Flags for exai_policy_dev_opts::flags. */
enum exai_policy_dev_flags {
	/** Do not add the host's own addresses to the floor (operator override). */
	EXAI_POLICY_NO_HOST_FLOOR = 1u << 0,
};

/** Options for the functions that act on a device. */
struct exai_policy_dev_opts {
	size_t sz; /**< set by EXAI_OPTS() */
	/** bpffs mount point; NULL: /sys/fs/bpf (mounted if nothing is mounted there). Maps and
	 *  programs are pinned under `<bpffs>/exai/<ifname>/`. */
	const char *bpffs;
	/** Operator override: CIDRs carved out of the floor, NULL-terminated (e.g.
	 *  "169.254.169.254/32" for a metadata service a workspace must reach). */
	const char *const *floor_allow;
	uint32_t flags;          /**< ::exai_policy_dev_flags */
	uint32_t event_rate;     /**< deny events per second per device; 0: 100 */
	uint32_t event_burst;    /**< bucket depth in events; 0: 200 */
	/** How long an address of a matchName rule stays allowed after its DNS TTL ran out and
	 *  the name no longer resolves to it (open flows finish); 0: 60 s. */
	uint32_t fqdn_grace_s;
	/** Path of the network namespace whose addresses are the floor's "host addresses" (e.g.
	 *  `/proc/1/ns/net`); NULL: the calling thread's. For a device inside another namespace
	 *  (a tenant's, as the vm module's taps are), the host's own addresses live elsewhere. */
	const char *host_netns;
};

/**
 * Loads @p policy onto the device @p ifname: the first time, loads the programs, pins them and
 * their maps and attaches them to the device's clsact hooks (the guest's egress is the
 * device's ingress); later, builds the new tables beside the running ones and switches in one
 * step. Fail closed: if attaching fails, or anything fails while the device has no policy yet,
 * the device is set down and the error says so. When a policy is already attached, any other
 * failure leaves it as it was.
 * @retval -ENODEV  no such device
 * @retval -E2BIG   the policy plus floor exceeds the maps
 * @retval -EPERM   not allowed to load BPF programs (needs CAP_BPF and CAP_NET_ADMIN)
 * @retval -ENOTSUP this libexai was built without BPF support
 */
EXAI_API int exai_policy_apply(exai_ctx *ctx, const char *ifname, const exai_policy *policy,
			       const struct exai_policy_dev_opts *opts);

/**
 * When the policy on @p ifname should be applied again so that the addresses of its matchName
 * rules are re-resolved before their TTL runs out: *@p ret_ms is the time from now in
 * milliseconds (0: now), or UINT32_MAX when no rule needs it. exai_policy_apply() resolves the
 * names (glibc's resolver), keeps each address until its TTL plus the grace period has passed,
 * and records the TTLs on the device, so any process may ask.
 * @retval -ENOENT nothing attached to @p ifname
 */
EXAI_API int exai_policy_refresh_in(uint32_t *ret_ms, exai_ctx *ctx, const char *ifname,
				    const struct exai_policy_dev_opts *opts);

/**
 * Learns the addresses of @p policy's matchPattern rules from the DNS answers the guest behind
 * @p ifname received from its resolvers (UDP, up to 4096 bytes; copied by the datapath while
 * such a policy is applied), waiting up to @p timeout_ms for the first (0: only what is
 * there). An answer whose question name matches a pattern adds the A/AAAA addresses of that
 * name and its CNAME chain to the rule, kept for their TTL (clamped to 5 s .. 1 day) plus
 * exai_policy_dev_opts::fqdn_grace_s. When @p policy is the one running on @p ifname, each new
 * address goes into the live tables before this returns (a /32 or /128 entry allowing what the
 * pattern's rule allows there; an addition needs no swap), so the guest's first packets to it
 * pass. An address that cannot go in live (another policy running, rules overlapping at the
 * address in a combination the running tables lack, the IPv4 direct table's spare chunks used
 * up: all logged) reaches the datapath with the next exai_policy_apply() of the same policy;
 * the caller applies again when this returns more than 0 to be sure, and when
 * exai_policy_refresh_in() says so, which also drops expired addresses.
 * Returns the number of addresses not known before, or a negative errno.
 * @retval -ENOMSG the policy has no matchPattern rules
 * @retval -ENOENT nothing attached to @p ifname
 */
EXAI_API int exai_policy_learn_dns(exai_ctx *ctx, const char *ifname, const exai_policy *policy,
				   const struct exai_policy_dev_opts *opts, int timeout_ms);

/** Detaches the programs from @p ifname and removes its pins. -ENOENT if nothing is attached. */
EXAI_API int exai_policy_detach(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts);

/** One counter, summed over CPUs. */
struct exai_policy_counter {
	char name[64];     /**< a reason ("deny-default", "floor", ...) or "rule:<rule name>" */
	int deny;          /**< 1 for a deny reason */
	uint64_t packets;
	uint64_t bytes;
};

/**
 * The counters of the policy attached to @p ifname (reasons, then each rule of the active
 * policy). *@p ret (*@p retn elements) is freed with exai_free(). Also reports the active
 * policy id in *@p ret_policy_id when not NULL.
 * @retval -ENOENT nothing attached to @p ifname
 */
EXAI_API int exai_policy_stats(struct exai_policy_counter **ret, size_t *retn, uint32_t *ret_policy_id,
			       exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts);

/** Called for each deny event with its OCSF Network Activity (class_uid 4001) JSON text. */
typedef int (*exai_policy_event_fn)(void *userdata, const char *ocsf_json);

/**
 * Reads the deny events of @p ifname waiting up to @p timeout_ms (0: only what is there;
 * negative: until @p fn returns non-zero). Each event goes to the context's audit log and to
 * @p fn (may be NULL). Only one reader per device at a time. Returns the number of events
 * read, or a negative errno; a non-zero return of @p fn stops and is returned.
 * @retval -ENOENT nothing attached to @p ifname
 */
EXAI_API int exai_policy_events(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts,
				int timeout_ms, exai_policy_event_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* EXAI_POLICY_H */
