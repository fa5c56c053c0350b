# Shared settings for rtarget's scripts. Source it; do not run it.
# Everything slow lives under $RTARGET_CACHE, outside the repository.

RTARGET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RTARGET_CACHE=${RTARGET_CACHE:-$HOME/.cache/rtarget}
KERNEL_SERIES=7.3
BINDGEN_VERSION=0.72.1
VNG_VERSION=1.42
LLVM_SUFFIX=-19
# Test kernel flavour: debug (lockdep, KASAN, kmemleak...: make check, make demo) or release
# (make bench). Modules built against one do not load into the other.
RTARGET_FLAVOUR=${RTARGET_FLAVOUR:-debug}

export LIBCLANG_PATH=/usr/lib/llvm${LLVM_SUFFIX}/lib
export PATH="$RTARGET_CACHE/cargo/bin:$RTARGET_CACHE/vng/bin:$PATH"

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi

say() { printf '[rtarget] %s\n' "$*" >&2; }
die() { printf '[rtarget] error: %s\n' "$*" >&2; exit 1; }

# The kernel source tree unpacked from linux-source-$KERNEL_SERIES.
kernel_src() {
    local d
    d=$(ls -d "$RTARGET_CACHE"/src/linux-source-"$KERNEL_SERIES" 2>/dev/null | head -1)
    [ -n "$d" ] && [ -f "$d/Makefile" ] || return 1
    echo "$d"
}

# The config fragments of a flavour, in merge order.
kernel_fragments() {
    echo "$RTARGET_ROOT/selftests/config"
    case "${1:-$RTARGET_FLAVOUR}" in
        debug) echo "$RTARGET_ROOT/selftests/config.debug" ;;
        kasan) echo "$RTARGET_ROOT/selftests/config.debug"; echo "$RTARGET_ROOT/selftests/config.kasan" ;;
    esac
}

# Cache key of a kernel build: what it depends on.
kernel_key() {
    local flavour=${1:-$RTARGET_FLAVOUR} src ver frag rustc clang
    src=$(kernel_src) || die "kernel source missing: run scripts/bootstrap"
    ver=$(make -s -C "$src" kernelversion 2>/dev/null)
    # shellcheck disable=SC2046
    frag=$(cat $(kernel_fragments "$flavour") | sha256sum | cut -c1-12)
    rustc=$(rustc --version | awk '{print $2}')
    clang=$(clang$LLVM_SUFFIX --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1)
    echo "linux-$ver-$flavour-cfg-$frag-rustc-$rustc-clang-$clang"
}

kernel_build_dir() { echo "$RTARGET_CACHE/kbuild/$(kernel_key "$@")"; }
