/* SPDX-License-Identifier: Apache-2.0 */
/* bench-policy-variant: puts one build of the egress program on a device's ingress hook in place
 * of what the policy attached there, for bench-policy-ablate.sh. PROG is a BPF object file
 * (its maps pinned under PINDIR are reused, so it sees the device's live policy; its program
 * "exai_egress", or else the first, is attached) or a pinned program. Prints the program's id.
 * With "egress" as fourth argument, the device's egress hook (towards the guest) instead, and
 * the object's program "exai_ingress".
 * Usage: bench-policy-variant PROG DEV PINDIR [egress] */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	if (argc != 4 && (argc != 5 || strcmp(argv[4], "egress"))) {
		fprintf(stderr, "usage: bench-policy-variant PROG DEV PINDIR [egress]\n");
		return 2;
	}
	const char *prog = argv[1], *dev = argv[2], *pindir = argv[3];
	int ifindex = (int)if_nametoindex(dev);
	if (!ifindex) {
		fprintf(stderr, "bench-policy-variant: no device %s\n", dev);
		return 1;
	}
	int fd;
	libbpf_set_print(NULL); /* "Exclusivity flag on" when the qdisc exists: expected */
	size_t len = strlen(prog);
	if (len > 2 && !strcmp(prog + len - 2, ".o")) {
		LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pindir);
		struct bpf_object *obj = bpf_object__open_file(prog, &oo);
		struct bpf_map *note = obj ? bpf_object__find_map_by_name(obj, "exai_note") : NULL;
		if (note) /* sized as the loader does, so that the pinned one is reused */
			bpf_map__set_max_entries(note, 2 * (__u32)libbpf_num_possible_cpus());
		if (!obj || bpf_object__load(obj) < 0) {
			fprintf(stderr, "bench-policy-variant: cannot load %s: %s\n", prog, strerror(errno));
			return 1;
		}
		struct bpf_program *p = bpf_object__find_program_by_name(obj, argc == 5 ? "exai_ingress" : "exai_egress");
		if (!p)
			p = bpf_object__next_program(obj, NULL);
		fd = p ? bpf_program__fd(p) : -1; /* the object stays open: the filter takes a reference */
	} else {
		fd = bpf_obj_get(prog);
	}
	if (fd < 0) {
		fprintf(stderr, "bench-policy-variant: no program in %s\n", prog);
		return 1;
	}
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = argc == 5 ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, a, .handle = 0xe4a1, .priority = 1, .prog_fd = fd, .flags = BPF_TC_F_REPLACE);
	int r = bpf_tc_hook_create(&hook);
	if ((r < 0 && r != -EEXIST) || (r = bpf_tc_attach(&hook, &a)) < 0) {
		fprintf(stderr, "bench-policy-variant: cannot attach to %s: %s\n", dev, strerror(-r));
		return 1;
	}
	printf("%u\n", a.prog_id);
	return 0;
}
