/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/exai.h
 * @brief The umbrella header of libexai: includes every public module header.
 *
 * Link with `pkg-config --cflags --libs libexai`. See exai/core.h for the conventions
 * (errors, ownership, options structs, threads) that every module follows.
 */
#ifndef EXAI_EXAI_H
#define EXAI_EXAI_H

#include <exai/core.h>
#include <exai/keys.h>
#include <exai/policy.h>
#include <exai/audit.h>
#include <exai/scrub.h>
#include <exai/vm.h>

#endif /* EXAI_EXAI_H */
