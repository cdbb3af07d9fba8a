# rsrun — build, demo, test. Run as root on Linux (Debian 12 is what CI uses).

CARGO ?= cargo
RELEASE := target/release/rsrun

.PHONY: all build demo test deps unit integration fmt-check clean

all: build

build:
	$(CARGO) build --release

# Builds rsrun, makes a busybox bundle in ./demo and runs a container from it.
demo: deps build
	scripts/demo.sh $(RELEASE)

# Everything CI runs: formatting, unit tests (tests/ and src/), integration tests
# (integration/: the real binary as root on busybox bundles).
test: deps fmt-check
	$(CARGO) test --all-targets -- --test-threads=4

unit:
	$(CARGO) test --lib --test unit

integration: deps
	$(CARGO) test --test integration -- --test-threads=4

fmt-check:
	$(CARGO) fmt --all -- --check

# Debian packages the demo and the tests need (installed only when missing).
deps:
	scripts/deps.sh

clean:
	$(CARGO) clean
	rm -rf demo
