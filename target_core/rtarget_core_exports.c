// SPDX-License-Identifier: GPL-2.0
/*
 * Exports the Rust symbols of rtarget_core that fabric modules use. The list is generated at
 * build time from the fabrics' undefined symbols (see ../Kbuild), as nova-core does.
 */
#include <linux/export.h>

#define EXPORT_SYMBOL_RUST_GPL(sym) extern int sym; EXPORT_SYMBOL_GPL(sym)

#include "exports_rtarget_core_generated.h"
