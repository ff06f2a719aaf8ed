# rtpmic — see README.md.
#   make run     install what is missing, build, stream (board/sim when there is no sound card)
#   make test    install what is missing, lint, run every test
#   make bench   measure CPU, memory and latency; results in docs/PERFORMANCE.md
#   make soak    10^7 periods: no allocation, flat memory, consistent counters

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages: build (ALSA, libopus), the simulated board (jackd + ALSA jack plugin),
# the real peers the tests decode and inspect with (ffmpeg, GStreamer, tshark), network namespaces
# (iproute2, nftables), and GNU time for the benchmark.
APT_PACKAGES := build-essential pkg-config libasound2-dev libopus-dev jackd2 libasound2-plugins alsa-utils \
	ffmpeg tshark iproute2 nftables time gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE := target/release/rtpmic

.PHONY: all deps build run test lint bench soak clean sim-start sim-stop

all: build

# Installs only what is missing (apt-get update only then).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | $(SUDO) debconf-set-selections; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }

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

clean:
	$(CARGO) clean
