# rtpmic — see README.md.
#   make run     install what is missing, build, stream (board/sim when there is no sound card)
#   make test    install what is missing, lint, run every test
#   make bench   measure CPU, memory and latency; results in docs/PERFORMANCE.md
#   make soak    10^7 periods: no allocation, flat memory, consistent counters
#   make install / uninstall   PREFIX=/usr DESTDIR=  (docs/INSTALL.md)
#   make deb     a Debian package in target/ (OUTDIR=…)

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages: build (ALSA, libopus), the simulated board (jackd + ALSA jack plugin),
# the real peers the tests decode and inspect with (ffmpeg, GStreamer, tshark), network namespaces
# (iproute2, nftables), and GNU time for the benchmark.
APT_PACKAGES := build-essential pkg-config libasound2-dev libopus-dev jackd2 libasound2-plugins alsa-utils \
	ffmpeg tshark iproute2 nftables time gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
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

# make deb: the Debian architecture (ARCH=… on the command line; := so that an ARCH in the
# environment, e.g. x86_64, does not leak in) and the binary built for it.
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
ARCH := $(HOST_ARCH)
OUTDIR ?= target
DEB_BUILD_$(HOST_ARCH) := release
DEB_BIN_$(HOST_ARCH) := $(RELEASE)

.PHONY: all deps build run test lint bench soak clean sim-start sim-stop release build-deps \
	install uninstall deb

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

# Tests start (and stop) their own simulated board; nothing needs to run beforehand.
test: deps lint
	$(CARGO) test --lib --bins --tests --examples

bench: build
	benches/run.sh

# 10^7 periods through the unpaced file PCM: zero hot-path allocations, flat RSS, consistent
# counters (benches/soak.rs; SOAK_PERIODS=N to change the count).
soak: deps
	$(CARGO) bench --bench soak

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
		install -D -m 0644 systemd/rtpmic.env "$(DESTDIR)$(ENVFILE)"; \
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

# target/rtpmic_$(VERSION)_$(ARCH).deb (OUTDIR=dir to put it elsewhere). BIN=path packages
# that binary instead of building one.
deb:
	@set -e; \
	bin="$(BIN)"; \
	if [ -z "$$bin" ]; then \
		[ -n "$(DEB_BUILD_$(ARCH))" ] || { echo "ARCH=$(ARCH): not supported ($(HOST_ARCH))" >&2; exit 1; }; \
		$(MAKE) --no-print-directory $(DEB_BUILD_$(ARCH)); \
		bin="$(DEB_BIN_$(ARCH))"; \
	fi; \
	stage=$$(mktemp -d); trap 'rm -rf "$$stage"' EXIT; \
	$(MAKE) --no-print-directory install DESTDIR="$$stage/root" PREFIX=/usr BIN="$$bin" >/dev/null; \
	packaging/deb.sh "$$stage/root" "$(ARCH)" "$(VERSION)" "$(OUTDIR)"

clean:
	$(CARGO) clean
