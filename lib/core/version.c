/* SPDX-License-Identifier: Apache-2.0 */
/* version.c: the library's version and the features it was built with. */
#include "core-internal.h"
#include "exai-config.h"

EXAI_API const char *exai_version(void)
{
	return EXAI_VERSION_STRING;
}

EXAI_API uint32_t exai_version_number(void)
{
	return EXAI_VERSION_NUMBER;
}

static const struct {
	uint64_t bit;
	const char *name;
	int built;
} features[] = {
	{ EXAI_FEATURE_QEMU, "qemu", EXAI_HAVE_QEMU },
	{ EXAI_FEATURE_FIRECRACKER, "firecracker", EXAI_HAVE_FIRECRACKER },
	{ EXAI_FEATURE_PKCS11, "pkcs11", EXAI_HAVE_PKCS11 },
	{ EXAI_FEATURE_BPF, "bpf", EXAI_HAVE_BPF },
	{ EXAI_FEATURE_POSTGRES, "postgres", EXAI_HAVE_POSTGRES },
	{ EXAI_FEATURE_NATS, "nats", EXAI_HAVE_NATS },
	{ EXAI_FEATURE_SCRUB, "scrub", EXAI_HAVE_SCRUB },
	{ EXAI_FEATURE_CRYPTSETUP, "cryptsetup", EXAI_HAVE_CRYPTSETUP },
};

EXAI_API uint64_t exai_features(void)
{
	uint64_t mask = 0;
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(features); i++)
		if (features[i].built)
			mask |= features[i].bit;
	return mask;
}

EXAI_API const char *exai_feature_name(uint64_t feature)
{
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(features); i++)
		if (features[i].bit == feature)
			return features[i].name;
	return NULL;
}
