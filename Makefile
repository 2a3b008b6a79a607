# Building the performance-metrics daemons for an Opentrons Flex and getting them onto one.
# `make` (or `make help`) lists the targets; systemd/README.md walks through an install.
#
# Every target that talks to a robot needs host=<flex-ip>. Robot access is as root over
# ssh with the robot key, like the other Opentrons Makefiles (scripts/push.mk).

.DEFAULT_GOAL := help
# Recipes that talk to a robot run one after another.
.NOTPARALLEL:

# --- robot access -------------------------------------------------------------------------
default_ssh_key := ~/.ssh/robot_key
default_ssh_opts := -o stricthostkeychecking=no -o userknownhostsfile=/dev/null
# Identity file for the robot (empty: let ssh choose).
ssh_key ?= $(default_ssh_key)
# Further ssh/scp options.
ssh_opts ?= $(default_ssh_opts)
ssh_helper = $(if $(ssh_key),-i $(ssh_key)) $(ssh_opts)
# OpenSSH 9 speaks SFTP by default; the robot may only have the legacy scp protocol.
# -O asks for that, where this scp knows the flag.
scp_legacy = $(shell scp -O 2>&1 | grep -q 'unknown option' || echo -O)
# The robot server's HTTP port (tests point it at a stand-in).
port ?= 31950

# --- building -----------------------------------------------------------------------------
CARGO ?= cargo
flex_target ?= aarch64-unknown-linux-gnu
flex_linker ?= aarch64-linux-gnu-gcc
# The cross compiler. rustup cannot always fetch an aarch64 standard library; Debian's
# rustc-web with libstd-rust-web-dev:arm64 brings one. Host builds keep the rustup rustc:
# only the cross build is run with RUSTC=$(flex_rustc), in a target dir of its own.
flex_rustc ?= $(firstword $(wildcard /usr/bin/rustc) rustc)
# The rustdoc beside it: doctests of the cross build compile against the same std.
flex_rustdoc ?= $(firstword $(wildcard $(dir $(flex_rustc))rustdoc) rustdoc)
# maturin builds the aarch64 wheel (pip install 'maturin>=1.5,<2').
MATURIN ?= maturin
# The robot's glibc is 2.35: maturin refuses a wheel that needs more, and so does the
# test of the bundle for the binaries (tests/tests/flex_bundle.rs).
flex_manylinux := manylinux_2_35
cargo_target_dir := $(or $(CARGO_TARGET_DIR),target)
flex_target_dir = $(abspath $(cargo_target_dir)/flex)
# The `flex` profile (root Cargo.toml): release, stripped, thin LTO; target-cpu=cortex-a53
# comes from .cargo/config.toml.
flex_bin_dir = $(flex_target_dir)/$(flex_target)/flex
flex_wheel_dir = $(flex_target_dir)/wheels
binaries := perf-drainer system-resource-tracker perf-metrics perf-load
flex_packages := -p perf-drainer -p perf-sampler -p perf-metrics -p perf-tests
flex_version := $(shell sed -n 's/^version = "\(.*\)"/\1/p' cli/Cargo.toml | head -n 1)
dist_dir ?= dist
bundle_name = performance-metrics-flex-$(flex_version)
bundle = $(dist_dir)/$(bundle_name).tar.gz
flex_env = RUSTC=$(flex_rustc) CARGO_TARGET_DIR=$(flex_target_dir) RUSTDOC=$(flex_rustdoc) \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$(flex_linker)
# One line naming what to install when the cross toolchain is missing.
flex_apt := sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross

# --- what goes where on the robot ---------------------------------------------------------
# The root filesystem is read-only except while remounted; /data is writable.
remote_bin_dir := /opt/opentrons-performance-metrics/bin
remote_unit_dir := /etc/systemd/system
remote_stage := /data/.opentrons-performance-metrics-push
units := perf-drainer.service system-resource-tracker.service system-resource-tracker-dev.service
data_dirs := /data/performance_metrics_data /data/performance_metrics_data_dev
shm_dir := /dev/shm/performance_metrics
# Which tracker unit push enables: system-resource-tracker or system-resource-tracker-dev.
tracker ?= system-resource-tracker

# --- argument checks, before anything runs ------------------------------------------------
host_targets := push set-performance-metrics-ff unset-performance-metrics-ff \
	override-robot-version cleanup-remote-flex
ifneq ($(filter $(host_targets),$(MAKECMDGOALS)),)
ifeq ($(strip $(host)),)
$(error host is not set: give the robot's address, e.g. `make $(firstword $(filter $(host_targets),$(MAKECMDGOALS))) host=<flex-ip>`)
endif
endif
ifneq ($(filter override-robot-version,$(MAKECMDGOALS)),)
ifeq ($(strip $(version)),)
$(error version is not set: give the app's version, e.g. `make override-robot-version version=<app-version> host=<flex-ip>`)
endif
endif
ifeq ($(filter system-resource-tracker system-resource-tracker-dev,$(tracker)),)
$(error tracker must be system-resource-tracker or system-resource-tracker-dev, not "$(tracker)")
endif

# Remote shell snippets. The robot runs them with root's login shell, so they stay POSIX.
# Whatever fails (or if the connection drops: HUP), the EXIT trap puts the root filesystem
# back to read-only; the rw window covers only the copy.
remount_rw = trap "mount -o remount,ro /" EXIT; trap "exit 1" HUP INT TERM; mount -o remount,rw /
remount_ro = mount -o remount,ro /; trap - EXIT

.PHONY: help
help: ## Show this list
	@echo 'Targets (host=<flex-ip> for every robot target; ssh_key=, ssh_opts=, port= to override):'
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-30s %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))

.PHONY: check-flex-toolchain
check-flex-toolchain: ## Check that the aarch64 Rust toolchain, linker and maturin are installed
	@missing=0; \
	if ! sysroot=$$($(flex_rustc) --print sysroot 2>/dev/null) || [ ! -d "$$sysroot/lib/rustlib/$(flex_target)/lib" ]; then \
		echo "error: no Rust standard library for $(flex_target) in $(flex_rustc); on Debian run: $(flex_apt) (or pass flex_rustc=<a rustc that has it>)" >&2; \
		missing=1; \
	elif ! command -v $(flex_linker) >/dev/null 2>&1; then \
		echo "error: the linker $(flex_linker) is not installed; on Debian run: $(flex_apt) (or pass flex_linker=<your aarch64 gcc>)" >&2; \
		missing=1; \
	fi; \
	if ! $(MATURIN) --version >/dev/null 2>&1; then \
		echo "error: $(MATURIN) is not installed; run: pip install 'maturin>=1.5,<2' (or pass MATURIN=<path>)" >&2; \
		missing=1; \
	fi; \
	exit $$missing

.PHONY: build-flex
build-flex: check-flex-toolchain ## Cross-build everything for the Flex (aarch64) into dist/performance-metrics-flex-<version>.tar.gz
	$(flex_env) $(CARGO) build --locked --profile flex --target $(flex_target) $(flex_packages) --bins
	rm -rf $(flex_wheel_dir)
	cd python && $(flex_env) $(MATURIN) build --locked --profile flex --target $(flex_target) \
		--compatibility $(flex_manylinux) --out $(abspath $(flex_wheel_dir))
	sh packaging/build-bundle.sh $(flex_version) $(flex_bin_dir) $(flex_wheel_dir)/*.whl $(dist_dir) $(binaries)

.PHONY: test-flex
test-flex: check-flex-toolchain ## Cross-build and run the test suites under qemu-aarch64 (needs qemu-user, libc6:arm64)
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /" $(flex_env) \
		$(CARGO) test --locked --profile flex --target $(flex_target) --workspace --exclude perf-python

.PHONY: push
push: build-flex ## Ship the bundle to host= and run its install script (tracker=...-dev for the dev unit)
	ssh $(ssh_helper) root@$(host) 'rm -rf $(remote_stage) && mkdir -p $(remote_stage)'
	scp $(scp_legacy) $(ssh_helper) $(bundle) root@$(host):$(remote_stage)/
	ssh $(ssh_helper) root@$(host) 'set -e; cd $(remote_stage); tar -xzf $(bundle_name).tar.gz; \
		sh $(bundle_name)/install.sh --tracker $(tracker); \
		cd /; rm -rf $(remote_stage)'

# POST the robot's settings API: enablePerformanceMetrics = $(1).
define set_ff
	curl --silent --show-error --fail -X POST \
		-H 'opentrons-version: *' \
		-H 'Content-Type: application/json' \
		-d '{"id": "enablePerformanceMetrics", "value": $(1)}' \
		http://$(host):$(port)/settings
	@echo
endef

.PHONY: set-performance-metrics-ff
set-performance-metrics-ff: ## Turn the robot's enablePerformanceMetrics feature flag on
	$(call set_ff,true)

.PHONY: unset-performance-metrics-ff
unset-performance-metrics-ff: ## Turn the robot's enablePerformanceMetrics feature flag off
	$(call set_ff,false)

version_keys := opentrons_api_version update_server_version robot_server_version \
	server_utils_version opentrons_hardware_version
version_file = $(cargo_target_dir)/flex-VERSION.json

.PHONY: override-robot-version
override-robot-version: ## Make host= report version=<v> so that the app accepts it
	@command -v python3 >/dev/null 2>&1 || { echo "error: override-robot-version needs python3 on this machine" >&2; exit 1; }
	@mkdir -p $(cargo_target_dir)
	ssh $(ssh_helper) root@$(host) 'cat /etc/VERSION.json' > $(version_file)
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d.update(dict.fromkeys(sys.argv[3:], sys.argv[2])); open(sys.argv[1], "w").write(json.dumps(d, indent=2) + "\n")' \
		$(version_file) '$(version)' $(version_keys)
	scp $(scp_legacy) $(ssh_helper) $(version_file) root@$(host):/data/VERSION.json
	ssh $(ssh_helper) root@$(host) 'set -e; $(remount_rw); cp /data/VERSION.json /etc/VERSION.json; $(remount_ro); rm -f /data/VERSION.json'
	rm -f $(version_file)
	ssh $(ssh_helper) root@$(host) 'systemctl restart opentrons-robot-server'

.PHONY: cleanup-remote-flex
# A bundle install is undone by the uninstall.sh it installed (which also puts back the
# Python package it replaced); the inline removal is for installs from before the bundle.
remote_uninstall := /opt/opentrons-performance-metrics/uninstall.sh

.PHONY: cleanup-remote-flex
cleanup-remote-flex: ## Stop, disable and remove daemons, units, Python package and data from host=; flag off
	ssh $(ssh_helper) root@$(host) 'rm -rf $(remote_stage); \
		if [ -f $(remote_uninstall) ]; then sh $(remote_uninstall) --purge-data || exit 1; else \
		systemctl stop $(basename $(units)) 2>/dev/null; \
		set -e; $(remount_rw); \
		systemctl disable --quiet $(basename $(units)) 2>/dev/null || true; \
		rm -f $(addprefix $(remote_unit_dir)/,$(units)); \
		rm -rf $(dir $(remote_bin_dir)); \
		$(remount_ro); \
		systemctl daemon-reload; \
		rm -rf $(data_dirs) $(shm_dir) $(remote_stage); \
		for u in $(basename $(units)); do if systemctl is-active --quiet $$u; then echo "error: $$u is still active" >&2; exit 1; fi; done; \
		echo "performance metrics removed"; fi'
	$(MAKE) --no-print-directory unset-performance-metrics-ff host=$(host) port=$(port)
