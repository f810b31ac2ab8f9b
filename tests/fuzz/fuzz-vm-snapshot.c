/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-vm-snapshot: the snapshot file reader (lib/vm/snapshot.c, exai__vm_snapshot_check):
 * magic, version, header JSON, lengths and the version 3 disk section of a file anyone could
 * hand to `ws restore`. The input is a snapshot file without its trailer; the target appends a
 * matching trailer (payload length, SHA-256, end magic) so that the fuzzer gets past the
 * digest into the header and the sections. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vm-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	uint8_t trailer[48] = { 0 };
	uint64_t hlen = size >= 16 ? ((uint64_t)data[12] << 24 | (uint64_t)data[13] << 16 | (uint64_t)data[14] << 8 | data[15]) : 0;
	uint64_t plen = size >= 16 + hlen ? size - 16 - hlen : 0;
	for (int i = 0; i < 8; i++)
		trailer[i] = (uint8_t)(plen >> (56 - 8 * i));
	unsigned int dl;
	EVP_Digest(data, size, trailer + 8, &dl, EVP_sha256(), NULL);
	memcpy(trailer + 40, "EXAIEND1", 8);
	int fd = memfd_create("snap", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if ((!size || write(fd, data, size) == (ssize_t)size) && write(fd, trailer, 48) == 48) {
		struct exai__vm_spec spec = { 0 };
		struct exai__snap_info info = { 0 };
		if (exai__vm_snapshot_check(fd, "fuzz.snap", &spec, &info) == 0) {
			uint64_t total = size + 48;
			if (info.off + info.len > total - 48 || (info.disk_len && info.disk_off + info.disk_len > total - 56) ||
			    (info.disk_len && info.off + info.len != info.disk_off) || spec.vcpus < 1 || spec.vcpus > 32 ||
			    (spec.disk_mib && spec.disk_mib > 1048576) || strlen(info.id) != 32 ||
			    !memchr(spec.cmdline, 0, sizeof(spec.cmdline)))
				abort();
		}
	}
	close(fd);
	return 0;
}
