# SPDX-License-Identifier: GPL-2.0
# rtarget: user-facing targets. Kbuild reads ./Kbuild; this file only drives scripts/.
#   make          build the modules (bootstraps the kernel build on first use)
#   make check    host tests + selftests in a VM; ends with "N passed, N failed"
#   make demo     boot a VM, load rtarget, show it working
#   make bench    fio in one VM: rtarget vs C LIO vs scsi_debug vs brd (ratios, bench.json)
#   make clippy   build with CLIPPY=1, warnings as errors
#   make fmt      rustfmt with the kernel's settings
#   make fuzz     libFuzzer over the iSCSI codecs (FUZZ_SECONDS each; FUZZ_MERGE=1 grows the corpus)
.PHONY: all modules check demo bench clippy fmt fuzz bootstrap host-test clean

all: modules

bootstrap:
	scripts/bootstrap

modules:
	scripts/build

fmt:
	scripts/fmt

clippy:
	scripts/build CLIPPY=1 KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror

host-test:
	cd target_core/proto && cargo test
	cd fabrics/iscsi/proto && cargo test
	cd fabrics/nvme/proto && cargo test

fuzz:
	scripts/fuzz

check:
	scripts/check

demo:
	scripts/demo

bench:
	scripts/bench

clean:
	rm -f *.ko *.o *.mod *.mod.c *.mod.o modules.order Module.symvers .*.cmd
	find . \( -path ./target_core/proto/target -o -path ./fabrics/iscsi/proto/target -o -path ./fabrics/nvme/proto/target \) -prune -o \( -name '*.o' -o -name '.*.cmd' -o -name '*.rmeta' \
		-o -name '*.d' -o -name 'exports_*_generated.h' -o -name 'bindings_generated.rs' \) -print0 | xargs -0 rm -f
	cd target_core/proto && cargo clean
	cd fabrics/iscsi/proto && cargo clean
	cd fabrics/nvme/proto && cargo clean
