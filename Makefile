# rsrun — build, demo, test. Run as root on Linux (Debian 12 is what CI uses).

CARGO ?= cargo
# The release binary is static (glibc + libseccomp.a) and not position-independent:
# nothing to load or relocate at start-up, which happens twice per create/run/exec
# (docs/performance.md says what that buys and what it costs).
TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
RELEASE := target/$(TARGET)/release/rsrun
STATIC := LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/$(shell uname -m)-linux-gnu \
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"

.PHONY: all build demo test test-v2 test-systemd test-cri soak bench bench-smoke deps unit integration fmt-check clean

# The pure cgroup v2 lane: a throwaway QEMU guest booted with cgroup_no_v1=all runs the
# whole integration suite: every test touches cgroups, and most mounts or devices. Under
# software emulation (TCG, 2 vCPUs) it took 8.6 minutes on a quieter host, 17 with other
# guests and suites running beside it; keep it under 10 on a quiet one.
# Skipped there, and why (the guest runs the suite with bash as its PID 1 after
# switch_root, not in a chroot, so user namespaces work there as on a host):
# - rootless::rootless_podman_runs_rsrun_as_runc: about 100 s under TCG (vfs storage,
#   two runtimes); the host lane runs it. (The other rootless tests run here: the
#   delegated v2 cgroup test only can.)
# - runc_diff::cgroup_files_match_runc compares the cgroup v1 files rsrun and runc write
#   (its config sets v1-only knobs such as memory.swappiness).
V2_GUEST ?= scripts/v2-guest.sh
# Tests that say themselves they cannot run there (common::skip): root in the guest
# holds CAP_SYS_RESOURCE, so no rlimit or capability is out of its reach;
# runc_update::update_rt_period_and_runtime needs cgroup v1's RT group bandwidth
# (cpu.rt_runtime_us), which v2 does not have (the host lane runs it).
V2_SKIPS_BY_TEST := process::rlimit_above_hard_limit_names_it,process::capabilities_the_runtime_lacks_are_named,runc_update::update_rt_period_and_runtime
V2_SKIP := runc_diff::cgroup_files_match_runc rootless::rootless_podman_runs_rsrun_as_runc

# The systemd lane: the host's systemd as PID 1 of a QEMU guest (scripts/systemd-guest.sh),
# once on pure cgroup v2 and once on a hybrid host, runs the systemd cgroup driver's tests
# and containerd's CRI plugin with SystemdCgroup = true (integration/cri) (about 5 minutes
# each under TCG); there no test may skip. On a host whose PID 1 is not
# systemd they skip (SYSTEMD_SKIPS).
SYSTEMD_GUEST := scripts/systemd-guest.sh
# systemd_engines:: are Docker and Podman with their systemd defaults, beside runc.
# checkpoint::systemd_ restores under the systemd driver into a scope.
SYSTEMD_TESTS := systemd:: systemd_engines:: checkpoint::systemd_
SYSTEMD_SKIPS := systemd_engines::docker_with_the_systemd_cgroup_driver,systemd::update_through_the_unified_map_sets_unit_properties,systemd_engines::podman_with_the_systemd_cgroup_manager,systemd::allowed_cpus_and_memory_nodes_are_unit_properties,systemd::scope_holds_the_container_and_delete_removes_it,systemd::memory_limit_is_a_unit_property_and_bites,systemd::kubelet_style_nested_slice,systemd::unit_name_collision_is_refused_and_leaves_nothing,systemd::unit_refused_by_systemd_leaves_nothing,systemd::delete_force_after_a_killed_create_stops_the_unit,systemd::update_pause_and_kill_all_on_a_scope,systemd::notify_service_is_active_once_the_container_is_ready,systemd_engines::podman_sdnotify_container_with_the_systemd_cgroup_manager,checkpoint::systemd_cgroup_restore_goes_into_a_scope

all: build

build: deps
	$(STATIC) $(CARGO) build --release --target $(TARGET)

# Builds rsrun, makes a busybox bundle in ./demo and runs a container from it.
demo: deps build
	scripts/demo.sh $(RELEASE)

# Everything CI runs: formatting, unit tests (tests/ and src/), integration tests
# (integration/: the real binary as root on busybox bundles), the Kubernetes node path,
# the cgroup tests again in a pure cgroup v2 guest, and the systemd driver's tests in a
# guest whose PID 1 is systemd. A test that cannot run on a host
# says so (SKIPPED name: why); HOST_SKIPS lists the ones this lane may skip, any other
# skip fails (CI installs everything the tests need).
# rootless::delegated_v2_cgroup_holds_a_memory_limit_that_bites needs pure cgroup v2
# (a cgroup2 subtree delegated to the test user); this host is v1 hybrid.
# runc_cgroups::exec_with_the_init_in_a_sub_cgroup and
# runc_cgroups::cgroup2_mount_inside_shows_no_other_cgroup need pure cgroup v2 (make
# test-v2 runs them); runc_cgroups::per_device_io_weight_for_bfq needs the BFQ I/O
# scheduler, which this host's kernel lacks (the v2 guest loads bfq and loop:
# GUEST_MODULES in scripts/guest-lib.sh).
# runc_update::update_through_the_unified_map,
# runc_update::many_updates_leave_one_device_program and
# runc_update::a_device_program_left_on_the_cgroup_is_replaced need pure cgroup v2 (the unified
# map; the eBPF device program) (make test-v2 runs them).
HOST_SKIPS ?= rootless::delegated_v2_cgroup_holds_a_memory_limit_that_bites,runc_cgroups::exec_with_the_init_in_a_sub_cgroup,runc_cgroups::cgroup2_mount_inside_shows_no_other_cgroup,runc_cgroups::per_device_io_weight_for_bfq,runc_update::update_through_the_unified_map,runc_update::many_updates_leave_one_device_program,runc_update::a_device_program_left_on_the_cgroup_is_replaced
test: deps fmt-check
	RSRUN_ALLOWED_SKIPS="$(HOST_SKIPS),$(SYSTEMD_SKIPS)" $(CARGO) test --all-targets -- --test-threads=4
	$(MAKE) test-cri
	$(MAKE) bench-smoke
	$(MAKE) test-v2
	$(MAKE) test-systemd

# The Kubernetes node path: a CRI client → containerd's CRI plugin → rsrun as a runtime
# handler (integration/cri is a crate of its own: rsrun does not carry the gRPC stack).
# CRI_SYSTEMD_SKIPS: the CRI plugin with SystemdCgroup = true needs systemd as PID 1; the
# systemd lane runs it.
CRI_SYSTEMD_SKIPS := systemd_cgroup_pods_through_containerd_cri
test-cri: deps
	$(CARGO) build
	cd integration/cri && RSRUN_BIN=$(CURDIR)/target/debug/rsrun RSRUN_ALLOWED_SKIPS="$(CRI_SYSTEMD_SKIPS)" $(CARGO) test

test-v2:
	bin=$$($(CARGO) test --test integration --no-run 2>&1 | grep -o 'target/debug/deps/integration-[a-z0-9]*' | head -1); \
	RSRUN_ALLOWED_SKIPS="$(V2_SKIPS_BY_TEST),$(SYSTEMD_SKIPS)" RSRUN_CRASH_RUNS=40 RSRUN_CHURN=24 $(V2_GUEST) "$$bin --test-threads=2 $(addprefix --skip ,$(V2_SKIP))"

unit:
	$(CARGO) test --lib --test unit

integration: deps
	$(CARGO) test --test integration -- --test-threads=4

test-systemd:
	bin=$$($(CARGO) test --test integration --no-run 2>&1 | grep -o 'target/debug/deps/integration-[a-z0-9]*' | head -1); \
	cri=integration/cri/$$(cd integration/cri && $(CARGO) test --no-run 2>&1 | grep -o 'target/debug/deps/cri-[a-z0-9]*' | head -1); \
	run="export RSRUN_ALLOWED_SKIPS= RSRUN_BIN=$(CURDIR)/target/debug/rsrun; $$bin --test-threads=2 $(SYSTEMD_TESTS) && $$cri $(CRI_SYSTEMD_SKIPS)"; \
	$(SYSTEMD_GUEST) --v2 "$$run" && $(SYSTEMD_GUEST) --hybrid "$$run"

fmt-check:
	$(CARGO) fmt --all -- --check
	cd integration/cri && $(CARGO) fmt --all -- --check

# The benchmark harness end to end with one run of each scenario (in `make test`): every
# runtime runs every scenario, the table is complete, the release binary is static.
# Times are not checked: they belong to `make bench` on a quiet machine.
bench-smoke: build
	BENCH_OUT=$(CURDIR)/target/bench-smoke.md RUNS=1 ROUNDS=1 PARALLEL_RUNS=1 scripts/bench.sh $(RELEASE)

# The crash-consistency tests at full size: 1,000 containers run 8 at a time and 1,000
# commands SIGKILLed at random moments (make test runs 64 and 100).
soak: deps
	RSRUN_CHURN=1000 RSRUN_CRASH_RUNS=1000 $(CARGO) test --test integration -- --test-threads=2 crash::

# rsrun, crun and runc side by side (hyperfine); writes bench/RESULTS.md.
bench: build
	scripts/bench.sh $(RELEASE)

# Debian packages the demo and the tests need (installed only when missing).
deps:
	scripts/deps.sh

clean:
	$(CARGO) clean
	rm -rf demo
