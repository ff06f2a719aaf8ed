#!/usr/bin/env bash
# The armv7 build compiles the io-uring crate with `--cfg io_uring_skip_arch_check`: the crate
# ships kernel ABI bindings generated on 64-bit targets and refuses 32-bit ones unless told.
# This proves the override sound for the io-uring version in Cargo.lock: the crate's own
# bindgen layout tests (size, alignment and offset of every io_uring structure) are built for
# armv7 and run under qemu-arm. Only the library's unit tests; its dev-dependencies are
# dropped from a scratch copy of the crate so that nothing new is downloaded.
#
# Usage: io-uring-abi-check.sh   (from the repository; needs cargo, the armv7 cross
# toolchain of `make cross-deps-armv7` and qemu-arm-static)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=armv7-unknown-linux-gnueabihf

fail() { echo "io-uring-abi-check: FAILED: $*" >&2; exit 1; }

version=$(cargo pkgid io-uring | sed 's/.*@//')
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"io-uring-$version" 2>/dev/null | head -n1)
[ -n "$src" ] || fail "io-uring $version not in the cargo registry cache (build once first)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-io-uring.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/io-uring"
cp -r "$src/src" "$src/build.rs" "$src/README.md" "$TMP/io-uring/"
# The normalized manifest without features, optional, dev- and build-dependencies, examples.
awk '
    function flush() {
        if (sec != "" && !drop && !(sec ~ /^\[dependencies\./ && optional)) printf "%s", buf
        buf = ""; optional = 0
    }
    /^\[/ { flush(); sec = $0; drop = (sec ~ /^\[(features|\[example|\[test|\[bench)|dev-dependencies|build-dependencies/) }
    /^optional *= *true/ { optional = 1 }
    { buf = buf $0 "\n" }
    END { flush() }
' "$src/Cargo.toml" >"$TMP/io-uring/Cargo.toml"
# The same versions of its dependencies as rtpmic builds with.
cp Cargo.lock "$TMP/io-uring/"

cd "$TMP/io-uring"
env CARGO_TARGET_DIR="$TMP/target" \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="--cfg io_uring_skip_arch_check" \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER=qemu-arm-static \
    cargo test --offline --quiet --lib --target "$TARGET" -- bindgen_test_layout >"$TMP/test.log" 2>&1 ||
    { cat "$TMP/test.log" >&2; fail "io-uring $version layout tests on $TARGET"; }
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$TMP/test.log")
[ "${passed:-0}" -ge 20 ] || { cat "$TMP/test.log" >&2; fail "only ${passed:-0} layout tests ran"; }
echo "io-uring-abi-check: io-uring $version: $passed ABI layout tests pass on $TARGET (qemu-arm)"
