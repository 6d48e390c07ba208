# SPDX-License-Identifier: MIT
# Two commands do everything on a fresh Debian 12 machine:
#   make run    install what is missing, build, start the main job
#   make test   install what is missing, build, run every test
# Also: build, demo, uptime-demo, bench, fuzz, test-asan, lint, install, clean.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE      := cmake
PREFIX     ?= /usr/local
# DESTDIR (staging root for packagers) is read from the environment or the
# command line: make install PREFIX=/usr DESTDIR=/tmp/stage

# Debian 12 packages the build, the tests and the tools need.
APT_PACKAGES := build-essential cmake pkg-config clang libclang-rt-14-dev \
	libluajit-5.1-dev luajit lua-cjson lua-yaml lua-busted lua-check cppcheck \
	libuv1-dev libsodium-dev libsecp256k1-dev nettle-dev libssl-dev openssl \
	libgmp-dev libsqlite3-dev libseccomp-dev libcurl4-openssl-dev libh2o-dev \
	wrk nodejs qemu-system-x86 cpio xz-utils prometheus faketime chromium \
	postgresql libpq-dev bubblewrap

.PHONY: all deps build run serve demo uptime-demo test bench fuzz test-asan lint install clean

all: build

# Install only what is missing; apt-get update only when something is.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing; \
	fi
	@# npm: bundled with some nodejs builds, a separate package with Debian's
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }

$(BUILD)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt contracts/node_modules/.package-lock.json
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# npm packages pinned by contracts/package-lock.json (solc, anvil, viem, x402)
contracts/node_modules/.package-lock.json: contracts/package-lock.json | deps
	cd contracts && npm ci --no-audit --no-fund

# the full local stack: anvil + contracts + the controller (examples/run-local.sh)
run: build
	BUILD=$(BUILD) sh examples/run-local.sh

# the controller alone, on the embedded defaults (no chain, no payments)
serve: build
	$(BUILD)/workproof serve

demo: build
	$(BUILD)/workproof run examples/demo.lua

# proof of uptime, live: a provider and a consumer on loopback (2 s beats)
uptime-demo: build
	$(BUILD)/workproof run examples/uptime/demo.lua

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/workproof run spec/bench/run.lua

test-asan: deps
	$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWP_SANITIZE=ON
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/spec/lsan.supp \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

# libFuzzer targets built with clang; each runs FUZZ_SECONDS over its corpus.
fuzz: deps
	CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWP_FUZZ=ON
	$(CMAKE) --build $(FUZZ_BUILD) -j $(JOBS) --target \
		$$(for f in spec/fuzz/fuzz_*.c; do basename $$f .c; done)
	@for t in $(FUZZ_BUILD)/fuzz_*; do \
		name=$$(basename $$t | sed 's/^fuzz_//'); \
		mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
		echo "== fuzzing $$name for $(FUZZ_SECONDS)s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(FUZZ_BUILD)/corpus/$$name spec/fuzz/corpus/$$name || exit 1; \
	done

# FHS layout under PREFIX (docs/operations.md, "Installing"): bin/workproof,
# libexec/workproof/ (worker, runtimes, VM scripts), share/lua/5.1/workproof,
# lib/lua/5.1/workproof/core.so, share/workproof/policies, share/doc/workproof.
# Stripped: no path of this tree ends up in the installed binaries.
# Builds only what is installed (no npm, no tests).
install: deps $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target workproof workproof-worker wpcore_module
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD) --prefix "$(PREFIX)" --strip

lint: build
	cd $(BUILD) && ctest -R '^lint/' --output-on-failure

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
