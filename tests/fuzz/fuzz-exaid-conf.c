/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-exaid-conf: exaid's configuration parser (daemon/conf.c) over arbitrary bytes.
 * Checks: no crash, leak or undefined behaviour; a rejected file leaves the defaults and a
 * message that starts with "FILE:LINE: "; an accepted one holds only valid settings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exai/core.h>

#include "../../daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exaid_conf conf;
	char err[1024] = "";

	if (size == 0)
		return 0; /* fmemopen needs a non-empty buffer; an empty file is covered by the tests */
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	int r = exaid_conf_read(&conf, f, "fuzz.conf", err, sizeof(err));
	fclose(f);
	if (r < 0) {
		if (r != -EINVAL || strncmp(err, "fuzz.conf:", 10) != 0 || conf.state_dir ||
		    conf.log_level != EXAI_LOG_INFO || conf.log_target != EXAID_LOG_AUTO) {
			fprintf(stderr, "fuzz-exaid-conf: bad failure %d: %s\n", r, err);
			abort();
		}
		return 0;
	}
	if (!exai_log_level_name(conf.log_level) || !strcmp(exaid_log_target_name(conf.log_target), "?") ||
	    (conf.state_dir && (conf.state_dir[0] != '/' || !conf.state_dir_from))) {
		fprintf(stderr, "fuzz-exaid-conf: accepted an invalid setting\n");
		abort();
	}
	exaid_conf_free(&conf);
	return 0;
}
