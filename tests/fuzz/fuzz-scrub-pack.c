/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-scrub-pack: custom pattern packs and policies from arbitrary bytes. Checks: a pack is
 * either accepted or refused with -EINVAL and a sentence naming the pack; an accepted pack's
 * scrubber scans its own input without crashing.
 */
#include "fuzz-scrub-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pack = malloc(size + 1);
	if (!pack)
		return 0;
	memcpy(pack, data, size);
	pack[size] = 0;
	const char *packs[] = { pack };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_STAGE2);
	exai_scrubber *s = NULL;
	int r = exai_scrubber_new(&s, NULL, &o);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM, "scrubber_new: %d", r);
		FUZZ_ASSERT(r == -ENOMEM || strstr(exai_errmsg(), "scrub") != NULL, "errmsg: %s", exai_errmsg());
	} else {
		exai_scrub_result *res = NULL;
		FUZZ_ASSERT(exai_scrub_text(&res, s, pack, size, NULL) == 0, "scan: %s", exai_errmsg());
		exai_scrub_result_free(res);
		exai_scrubber_free(s);
	}
	/* the same bytes as a policy over the fuzz pack */
	const char *fp[] = { fuzz_pack };
	EXAI_OPTS(exai_scrubber_opts, po, .packs = fp, .n_packs = 1, .policy = pack,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_STAGE2);
	r = exai_scrubber_new(&s, NULL, &po);
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOMEM, "policy: %d", r);
	if (r == 0)
		exai_scrubber_free(s);
	free(pack);
	return 0;
}
