# rtpmic — see README.md.
#   make run     install what is missing, build, stream (board/sim when there is no sound card)
#   make test    install what is missing, lint, run every test
#   make bench   measure CPU, memory and latency; results in docs/PERFORMANCE.md
#   make soak    10^7 periods: no allocation, flat memory, consistent counters; then a
#                10-minute paced run with a fault every 30 s
#   make install / uninstall   PREFIX=/usr DESTDIR=  (docs/INSTALL.md)
#   make deb [ARCH=arm64|armhf]  a Debian package in target/ (OUTDIR=…)
#   make cross-aarch64 / cross-armv7   release builds for Raspberry Pi OS 64 / 32 bit
#   make pi-smoke  the aarch64 build under qemu streams board/sim's file PCM to a local probe

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages: build (ALSA, libopus), the simulated board (jackd + ALSA jack plugin),
# the real peers the tests decode and inspect with (ffmpeg, GStreamer, tshark), network namespaces
# (iproute2, nftables), GNU time and GStreamer's ALSA source (alsasrc) for the benchmark.
APT_PACKAGES := build-essential pkg-config libasound2-dev libopus-dev jackd2 libasound2-plugins alsa-utils \
	ffmpeg tshark iproute2 nftables time gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-alsa gir1.2-gst-rtsp-server-1.0 python3-gi
# What a release build alone needs (make release / make deb).
BUILD_PACKAGES := build-essential pkg-config libasound2-dev libopus-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE := target/release/rtpmic

# Package metadata and install layout. VERSION is [package] version in Cargo.toml.
VERSION := $(shell awk -F'"' '/^\[/ { p = ($$0 == "[package]") } p && /^version *=/ { print $$2; exit }' Cargo.toml)
PREFIX ?= /usr
DESTDIR ?=
# systemd looks for units in /lib/systemd/system (Debian; /usr/lib/systemd/system on merged-/usr
# systems is the same directory) and in /usr/local/lib/systemd/system: the unit goes next to the
# binary's prefix. The env file is always /etc/default/rtpmic, the path the unit names.
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
ENVFILE := /etc/default/rtpmic
SHAREDIR := $(PREFIX)/share/rtpmic
# Board profiles that are installed: every board/* but sim (a development board: jackd).
BOARDS := $(filter-out sim,$(notdir $(wildcard board/*)))
# The binary make install / make deb use (BIN=path on the command line, e.g. a cross build).
BIN :=

# Cross builds for the Raspberry Pi: Debian's cross gcc links, pkg-config looks only at the
# target's multiarch .pc files. Kept here rather than in .cargo/config.toml so a plain
# `cargo build` stays native and every setting is visible in one place.
AARCH64 := aarch64-unknown-linux-gnu
ARMV7 := armv7-unknown-linux-gnueabihf
CROSS_PKG_CONFIG = PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/usr/lib/$(1)/pkgconfig:/usr/share/pkgconfig
AARCH64_ENV := CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc $(call CROSS_PKG_CONFIG,aarch64-linux-gnu)
# io-uring ships prebuilt kernel ABI bindings for 64-bit targets only and refuses others unless
# told; the io_uring structures are fixed-width (__u32/__u64), so they fit 32-bit ARM too.
ARMV7_ENV := CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
	CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="--cfg io_uring_skip_arch_check" \
	$(call CROSS_PKG_CONFIG,arm-linux-gnueabihf)
AARCH64_BIN := target/$(AARCH64)/release/rtpmic
ARMV7_BIN := target/$(ARMV7)/release/rtpmic
AARCH64_PACKAGES := gcc-aarch64-linux-gnu libc6-dev-arm64-cross pkg-config libasound2-dev:arm64 libopus-dev:arm64
ARMV7_PACKAGES := gcc-arm-linux-gnueabihf libc6-dev-armhf-cross pkg-config libasound2-dev:armhf libopus-dev:armhf
QEMU_PACKAGES := qemu-user-static

# make deb: the Debian architecture (ARCH=arm64 on the command line; := so that an ARCH in
# the environment, e.g. x86_64, does not leak in) and the binary built for it.
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
ARCH := $(HOST_ARCH)
OUTDIR ?= target
DEB_BUILD_$(HOST_ARCH) := release
DEB_BIN_$(HOST_ARCH) := $(RELEASE)
DEB_BUILD_arm64 := cross-aarch64
DEB_BIN_arm64 := $(AARCH64_BIN)
DEB_BUILD_armhf := cross-armv7
DEB_BIN_armhf := $(ARMV7_BIN)

.PHONY: all deps build run test lint bench soak clean sim-start sim-stop release build-deps \
	install uninstall deb cross-deps-aarch64 cross-deps-armv7 cross-aarch64 cross-armv7 \
	pi-smoke armv7-smoke

all: build

# $(call apt-ensure,PACKAGES): installs those of PACKAGES (name or name:arch) that are missing,
# adding a foreign dpkg architecture first when one is named; apt-get update only then.
define apt-ensure
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		for a in $$(printf '%s\n' $$missing | sed -n 's/^[^:]*:\(.*\)$$/\1/p' | sort -u); do \
			[ "$$a" = "$$(dpkg --print-architecture)" ] || dpkg --print-foreign-architectures | grep -qx "$$a" || \
				{ echo "adding dpkg architecture $$a"; $(SUDO) dpkg --add-architecture "$$a"; }; \
		done; \
		echo "installing:" $$missing; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | $(SUDO) debconf-set-selections; \
		$(SUDO) apt-get update -q || echo "apt-get update failed for some index (a mirror in sync?); installing anyway"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
endef

# $(call rust-target,TRIPLE): the Rust standard library for TRIPLE, when rustup lacks it.
define rust-target
	@rustup target list --installed 2>/dev/null | grep -qx "$(1)" || rustup target add "$(1)"
endef

# Installs only what is missing (apt-get update only then).
deps:
	$(call apt-ensure,$(APT_PACKAGES))

build-deps:
	$(call apt-ensure,$(BUILD_PACKAGES))

build: deps
	$(CARGO) build --release --bins --examples

# With a sound card: the default ALSA device to 127.0.0.1:5004 (override with ENV_FILE=...).
# Without one (/dev/snd absent): board/sim's paced PCM and a generated test signal.
run: build
	@if [ -e /dev/snd ] && [ -z "$(SIM)" ]; then \
		if [ -n "$(ENV_FILE)" ]; then exec $(RELEASE) run --env-file "$(ENV_FILE)"; fi; \
		echo "streaming the default ALSA device to 127.0.0.1:5004; listen: $(RELEASE) sdp > /tmp/rtpmic.sdp && ffplay -nodisp -protocol_whitelist file,udp,rtp -i /tmp/rtpmic.sdp"; \
		RTPMIC_DEST=127.0.0.1:5004 RTPMIC_STATS_INTERVAL_S=10 exec $(RELEASE) run; \
	else \
		exec board/sim/run.sh; \
	fi

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Tests start (and stop) their own simulated board; nothing needs to run beforehand. Then the
# Raspberry Pi builds: both cross builds run under qemu, and an arm64 package is built and
# checked.
test: deps lint
	$(CARGO) test --lib --bins --tests --examples
	$(MAKE) --no-print-directory cross-aarch64 pi-smoke cross-armv7 armv7-smoke
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
		$(MAKE) --no-print-directory deb ARCH=arm64 OUTDIR="$$out" && \
		packaging/check-deb.sh "$$out/rtpmic_$(VERSION)_arm64.deb" arm64

bench: build
	benches/run.sh

# 10^7 periods through the unpaced file PCM: zero hot-path allocations, flat RSS, consistent
# counters (benches/soak.rs; SOAK_PERIODS=N to change the count). Then 10 paced minutes with a
# fault every 30 s: device pulled, link down, RTCP garbage (benches/fault_soak.rs;
# FAULT_SOAK_S, FAULT_SOAK_EVERY_S).
soak: deps
	$(CARGO) bench --bench soak
	$(CARGO) bench --bench fault_soak

sim-start: deps
	board/sim/sim.sh start

sim-stop:
	board/sim/sim.sh stop

# The release binary alone, with only the build packages (for make deb).
release: build-deps
	$(CARGO) build --release --bin rtpmic

# Installs the binary, the unit, the env file template (never over an existing one) and the
# board profiles under $(DESTDIR). Builds nothing: run `make build` (or pass BIN=path) first,
# so `sudo make install` never runs cargo as root.
install:
	@bin="$(or $(BIN),$(RELEASE))"; \
	[ -x "$$bin" ] || { echo "$$bin missing: run 'make build' first (or pass BIN=path)" >&2; exit 1; }; \
	set -e; \
	install -D -m 0755 "$$bin" "$(DESTDIR)$(PREFIX)/bin/rtpmic"; \
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)"; \
	sed 's|^ExecStart=/usr/bin/rtpmic |ExecStart=$(PREFIX)/bin/rtpmic |' systemd/rtpmic.service \
		>"$(DESTDIR)$(UNITDIR)/rtpmic.service"; \
	chmod 0644 "$(DESTDIR)$(UNITDIR)/rtpmic.service"; \
	if [ -e "$(DESTDIR)$(ENVFILE)" ]; then \
		echo "$(DESTDIR)$(ENVFILE) exists: kept (the template is $(SHAREDIR)/rtpmic.env)"; \
	else \
		install -D -m 0600 systemd/rtpmic.env "$(DESTDIR)$(ENVFILE)"; \
	fi; \
	install -D -m 0644 systemd/rtpmic.env "$(DESTDIR)$(SHAREDIR)/rtpmic.env"; \
	for b in $(BOARDS); do \
		install -d -m 0755 "$(DESTDIR)$(SHAREDIR)/board/$$b"; \
		install -m 0644 board/$$b/* "$(DESTDIR)$(SHAREDIR)/board/$$b/"; \
	done; \
	echo "installed rtpmic $(VERSION) under $(DESTDIR)$(PREFIX) (unit: $(DESTDIR)$(UNITDIR)/rtpmic.service)"; \
	if [ -z "$(DESTDIR)" ]; then \
		getent passwd rtpmic >/dev/null || echo "create the service user: useradd --system --gid audio --no-create-home --shell /usr/sbin/nologin rtpmic"; \
		[ ! -d /run/systemd/system ] || systemctl daemon-reload; \
		echo "then edit $(ENVFILE) and: systemctl enable --now rtpmic"; \
	fi

# Removes what install put there. $(ENVFILE) goes only while it is the unchanged template:
# an edited configuration is kept.
uninstall:
	@set -e; \
	rm -f "$(DESTDIR)$(PREFIX)/bin/rtpmic" "$(DESTDIR)$(UNITDIR)/rtpmic.service"; \
	if [ -e "$(DESTDIR)$(ENVFILE)" ]; then \
		if cmp -s systemd/rtpmic.env "$(DESTDIR)$(ENVFILE)"; then rm -f "$(DESTDIR)$(ENVFILE)"; \
		else echo "$(DESTDIR)$(ENVFILE) was edited: kept"; fi; \
	fi; \
	rm -f "$(DESTDIR)$(SHAREDIR)/rtpmic.env"; \
	for b in $(BOARDS); do \
		rm -f "$(DESTDIR)$(SHAREDIR)/board/$$b/"*; \
		rmdir "$(DESTDIR)$(SHAREDIR)/board/$$b" 2>/dev/null || true; \
	done; \
	rmdir "$(DESTDIR)$(SHAREDIR)/board" "$(DESTDIR)$(SHAREDIR)" 2>/dev/null || true; \
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	echo "uninstalled rtpmic from $(DESTDIR)$(PREFIX)"

# target/rtpmic_$(VERSION)_$(ARCH).deb (OUTDIR=dir to put it elsewhere). ARCH=arm64 or armhf
# packages the cross build; BIN=path packages that binary instead of building one.
deb:
	@set -e; \
	bin="$(BIN)"; \
	if [ -z "$$bin" ]; then \
		[ -n "$(DEB_BUILD_$(ARCH))" ] || { echo "ARCH=$(ARCH): not supported (arm64, armhf, $(HOST_ARCH))" >&2; exit 1; }; \
		$(MAKE) --no-print-directory $(DEB_BUILD_$(ARCH)); \
		bin="$(DEB_BIN_$(ARCH))"; \
	fi; \
	stage=$$(mktemp -d); trap 'rm -rf "$$stage"' EXIT; \
	$(MAKE) --no-print-directory install DESTDIR="$$stage/root" PREFIX=/usr BIN="$$bin" >/dev/null; \
	packaging/deb.sh "$$stage/root" "$(ARCH)" "$(VERSION)" "$(OUTDIR)"

cross-deps-aarch64:
	$(call apt-ensure,$(AARCH64_PACKAGES))
	$(call rust-target,$(AARCH64))

cross-deps-armv7:
	$(call apt-ensure,$(ARMV7_PACKAGES))
	$(call rust-target,$(ARMV7))

# Release builds for Raspberry Pi OS 64-bit (Pi 3/4/5, Zero 2) and 32-bit (armhf: Pi 2 and
# later; the Pi 1 and Zero are ARMv6 and not covered).
cross-aarch64: cross-deps-aarch64
	$(AARCH64_ENV) $(CARGO) build --release --target $(AARCH64) --bin rtpmic

cross-armv7: cross-deps-armv7
	$(ARMV7_ENV) $(CARGO) build --release --target $(ARMV7) --bin rtpmic

# The aarch64 build under qemu-user streams board/sim's file PCM to a local probe
# (board/sim/pi-smoke.sh). Needs the cross build and a native rtpmic as the probe.
pi-smoke: cross-aarch64
	$(call apt-ensure,$(QEMU_PACKAGES))
	$(CARGO) build --bin rtpmic --example sim_tone
	board/sim/pi-smoke.sh aarch64 $(AARCH64_BIN) target/debug/rtpmic target/debug/examples/sim_tone

# The same for the 32-bit build, and io-uring's ABI layout tests on armv7 (the crate is built
# with io_uring_skip_arch_check there: packaging/io-uring-abi-check.sh).
armv7-smoke: cross-armv7
	$(call apt-ensure,$(QEMU_PACKAGES))
	$(CARGO) build --bin rtpmic --example sim_tone
	board/sim/pi-smoke.sh armv7 $(ARMV7_BIN) target/debug/rtpmic target/debug/examples/sim_tone
	packaging/io-uring-abi-check.sh

clean:
	$(CARGO) clean

# Fuzzing (docs/FUZZING.md): every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default
# 60), starting from the committed seeds (fuzz/seeds/<target>); what the fuzzer adds goes to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target> (neither committed). Stable Rust:
# RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags (AddressSanitizer included). Installs
# cargo-fuzz when missing. Not part of make test. FUZZ_TARGETS=... to pick, FUZZ_FLAGS=-s none
# where the sanitizer runtime is missing, FUZZ_KNOWN=name,... to skip reported findings.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config_pairs config_env_file rtcp_in red_parse red_roundtrip probe_stats rtsp_server
FUZZ_FLAGS ?=
FUZZ_KNOWN ?=
.PHONY: fuzz
fuzz: build-deps
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build $(FUZZ_FLAGS)
	@failed=; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 RTPMIC_FUZZ_KNOWN="$(FUZZ_KNOWN)" $(CARGO) fuzz run $(FUZZ_FLAGS) $$t \
			fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
			-print_final_stats=1 || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (fuzz/artifacts/<target>/)" >&2; exit 1; fi; \
	echo "fuzz: no crash in $(FUZZ_TARGETS)"
