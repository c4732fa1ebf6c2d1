# hotpatch - build, test, install.
#   make            build build/hotpatch
#   make check      install missing build dependencies, then run every test
#   make check-aarch64  the tests in an arm64 Debian under qemu (see below)
#   make bench-aarch64  the bench's pauses against the floor in that machine
#   make fuzz       fuzz the parsers of untrusted input, FUZZ_SECONDS (300) each
#   make demo       patch a live demo server and show the fix
#   make bench      print timing figures
#   make soak       the long soak: SOAK_CYCLES (3000) apply/revert cycles with
#                   SOAK_KILLS (600) random SIGKILLs of hotpatch
#   make soak-long  the same with 10000 cycles and 1500 kills
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        the Debian package, into $(BUILD)/deb/
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc

# The processor built for: the host's, or another through a cross compiler,
#   make ARCH=aarch64 BUILD=build-arm64 all build-arm64/test/hotpatch testdata unit-programs
# with Debian's gcc-aarch64-linux-gnu and the :arm64 libraries
# (scripts/install-deps --aarch64); only lib/arch/$(ARCH)/ is compiled.
HOST_ARCH := $(shell uname -m)
ARCH ?= $(HOST_ARCH)
ifeq ($(wildcard lib/arch/$(ARCH)/arch_types.h),)
$(error ARCH=$(ARCH) is no processor of lib/arch/ (x86_64, aarch64))
endif
PKG_CONFIG := pkg-config
ifneq ($(ARCH),$(HOST_ARCH))
CROSS ?= $(ARCH)-linux-gnu-
CC := $(CROSS)gcc
PKG_CONFIG := PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/usr/lib/$(ARCH)-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
endif

PKGS := libunwind-ptrace libelf libdw capstone jansson libsodium libdebuginfod
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS ?= -O2 -g
# `hotpatch startup enable` names the loader where `make install` puts it.
LOADER_PATH = $(PREFIX)/lib/hotpatch/libhotpatch-loader.so
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -DHOTPATCH_VERSION='"$(VERSION)"' \
	-DHOTPATCH_LOADER_PATH='"$(LOADER_PATH)"' \
	-Ilib -Ilib/include $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# lib/ is one folder per subsystem (docs/ARCHITECTURE.md); the engine's
# objects go into one archive, so each program links only what it uses.
LIB_SOURCES := $(sort $(filter-out lib/arch/%,$(wildcard lib/*/*.c)) $(wildcard lib/arch/*.c) \
	$(wildcard lib/arch/$(ARCH)/*.c))
LIB_HEADERS := $(wildcard lib/*.h lib/*/*.h lib/arch/*/*.h) lib/include/hotpatch.h
CMD_SOURCES := $(sort $(wildcard cmd/*.c))
# The loader preloaded into processes started later (loader/preload.c, libc
# only) and the engine it loads beside it when a patch fits them.
LOADER := $(BUILD)/lib/hotpatch/libhotpatch-loader.so
LOADER_APPLY := $(BUILD)/lib/hotpatch/libhotpatch-apply.so

.PHONY: all check unit unit-programs bats fuzz fuzz-short testdata demo bench soak soak-long install uninstall \
	clean deps loader deb check-aarch64 bench-aarch64 FORCE

# The loader's path is compiled in: a build remembers the PREFIX it was made
# for, and what depends on it is remade for another (git's GIT-CFLAGS trick).
PREFIX_STAMP := $(BUILD)/prefix
$(PREFIX_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' >$@

all: $(BUILD)/hotpatch loader

loader: $(LOADER) $(LOADER_APPLY)

$(LOADER): loader/preload.c lib/common/loader_outcomes.h Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Wl,-z,now -Wl,-z,relro $(LDFLAGS) -o $@ loader/preload.c -ldl

# Everything but the entry point hidden: the engine must not interpose on
# the process's own symbols.  Without the debuginfod client (never on the
# network at a process's start) and without what it does not call (build),
# so that loading it costs a process little.
LOADER_APPLY_SOURCES := loader/in_process.c loader/no_download.c \
	$(filter-out lib/build/% lib/symbols/debug_download.c,$(LIB_SOURCES))
$(LOADER_APPLY): $(LOADER_APPLY_SOURCES) $(LIB_HEADERS) Makefile $(PREFIX_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -fvisibility=hidden -ffunction-sections -fdata-sections \
		-Wl,--gc-sections -Wl,--as-needed -Wl,-z,now -Wl,-z,relro $(LDFLAGS) -o $@ \
		$(LOADER_APPLY_SOURCES) $(PKG_LIBS)

# Release and test builds share sources; the test build adds sanitizers and
# the fault-injection points used by the rollback tests.
$(BUILD)/hotpatch: $(LIB_SOURCES) $(CMD_SOURCES) $(LIB_HEADERS) cmd/*.h Makefile $(PREFIX_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(LIB_SOURCES) $(CMD_SOURCES) $(PKG_LIBS)

# The engine is compiled once for the test build and linked into the tool
# and every unit test.
TEST_FLAGS = $(ALL_CFLAGS) $(SANITIZE) -DHP_FAULT_INJECTION
TEST_OBJECTS := $(patsubst lib/%.c,$(BUILD)/test/obj/%.o,$(LIB_SOURCES))
$(BUILD)/test/obj/%.o: lib/%.c $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -c -o $@ $<
$(BUILD)/test/obj/machine/startup.o: $(PREFIX_STAMP)

TEST_LIBRARY := $(BUILD)/test/libhotpatch.a
$(TEST_LIBRARY): $(TEST_OBJECTS)
	rm -f $@
	ar rcs $@ $(TEST_OBJECTS)

$(BUILD)/test/hotpatch: $(TEST_OBJECTS) $(CMD_SOURCES) cmd/*.h Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -o $@ $(CMD_SOURCES) $(TEST_OBJECTS) $(PKG_LIBS)

deps:
	@scripts/install-deps --if-missing

testdata: deps
	$(MAKE) -C testdata OUT=$(abspath $(BUILD))/testdata HOTPATCH_INCLUDE=$(abspath lib/include) \
		$(if $(CROSS),CC=$(CC) OBJCOPY=$(CROSS)objcopy)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/test/unit/%,$(wildcard tests/unit/*.c))
# x86-64's planner, trampolines and gates: arm64's are in tests/unit/aarch64/
# (a test that checks nothing elsewhere would count as a run of none).
X86_64_UNIT_TESTS := code_plan_test gate_choose_test gate_step_test gate_test \
	return_sites_test trampoline_test
ifneq ($(ARCH),x86_64)
UNIT_TESTS := $(filter-out $(addprefix $(BUILD)/test/unit/,$(X86_64_UNIT_TESTS)),$(UNIT_TESTS))
endif
$(BUILD)/test/unit/%: tests/unit/%.c $(TEST_LIBRARY) $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -Itests/unit -o $@ $< $(TEST_LIBRARY) $(PKG_LIBS)

# The pure parts of every processor's lib/arch/ (the code we plan and
# write, frames, relocation kinds) are tested on any host: each processor's
# tests/unit/NAME/ tests are linked with those files alone.
ARCH_PURE := code_plan.c return_sites.c trampoline.c stub.c restore_frame.c relocations.c \
	syscall_code.c saved_context.c clobbers.c thunk.c frameless.c
# stub_run runs arm64 code for real: built only by a compiler for arm64 (a
# test that runs nothing elsewhere would count as a run of none).
ARCH_UNIT_TESTS := $(patsubst tests/unit/%_test.c,$(BUILD)/test/unit/%,$(wildcard tests/unit/aarch64/*_test.c))
ifeq ($(filter aarch64-%,$(shell $(CC) -dumpmachine)),)
ARCH_UNIT_TESTS := $(filter-out %/stub_run,$(ARCH_UNIT_TESTS))
endif
$(BUILD)/test/unit/aarch64/%: tests/unit/aarch64/%_test.c $(addprefix lib/arch/aarch64/,$(ARCH_PURE)) \
		$(wildcard lib/arch/*.c) $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -DHP_ARCH_AARCH64 -Itests/unit -o $@ $< \
		$(addprefix lib/arch/aarch64/,$(ARCH_PURE)) $(wildcard lib/arch/*.c) $(PKG_LIBS)

# Built (for the VM of another processor, say) without running them.
unit-programs: $(UNIT_TESTS) $(ARCH_UNIT_TESTS)

unit: deps $(UNIT_TESTS) $(ARCH_UNIT_TESTS)
	@for t in $(UNIT_TESTS) $(ARCH_UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done

# libFuzzer harnesses (clang) of the parsers that read untrusted bytes, each
# linked with only the files it exercises (all of lib/ if not listed); seeds
# in testdata/fuzz/NAME.
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 300
FUZZ_JOBS ?= 1
FUZZERS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SOURCES_fuzz_proc_maps := lib/common/proc_maps.c lib/common/error.c
FUZZ_SOURCES_fuzz_elf := lib/symbols/elf_symbols.c lib/common/error.c
FUZZ_SOURCES_fuzz_patch_file := lib/patch/patch_file.c lib/patch/patch_references.c \
	lib/patch/patch_fixes.c lib/patch/patch_hooks.c \
	lib/patch/patch_elf.c lib/symbols/elf_symbols.c lib/common/error.c \
	lib/arch/$(ARCH)/relocations.c
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIB_SOURCES) $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -g -O1 -o $@ $< \
		$(or $(FUZZ_SOURCES_fuzz_$*),$(LIB_SOURCES)) $(PKG_LIBS)

fuzz: deps $(addprefix $(BUILD)/fuzz/,$(FUZZERS))
	tests/fuzz/run --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(BUILD)/fuzz $(FUZZERS)

# What `make check` runs, after the other tests: the seeds, then the same
# inputs every time (a fixed seed and count), bounded in time on a slow machine.
fuzz-short: deps $(addprefix $(BUILD)/fuzz/,$(FUZZERS))
	@tests/fuzz/run --seconds 30 --runs 500000 $(BUILD)/fuzz $(FUZZERS)

# hotpatch refuses patch files that anyone but root could have changed, on a
# path of directories only root can change: the tests take the patches from
# a private copy, wherever (and under whatever umask) the tree was cloned.
# The three slowest files run beside the rest, one after the other, their
# output after the rest's: two mostly wait on other programs (the Debian
# package built and installed with dpkg; Ansible plays over hosts made as
# namespaces; both use dpkg), and the soak (150 apply/revert cycles and 40
# kills of one target of its own) is a third of the rest's time alone.  So
# do the `hotpatch build` files, which compile and patch programs of their
# own from testdata's sources (read only), and nostop.bats, the longest of
# the rest (its hammering targets at the lowest priority): the two halves
# then take about as long (282 s against 172 s of tests before it moved,
# 230 s against 224 s after).  None touches a process of the others'.
SLOW_BATS := tests/package.bats tests/ansible.bats tests/soak.bats $(wildcard tests/build*.bats) \
	tests/nostop.bats
BATS_ENV = HOTPATCH=$(abspath $(BUILD))/test/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata \
	HP_LOADER=$(abspath $(LOADER)) HP_SOURCE=$(abspath .)
bats: deps $(BUILD)/test/hotpatch testdata loader
	@patches=$$(mktemp -d /tmp/hotpatch-patches.XXXXXX) && slow=$$patches/slow.tap && \
	cp $(BUILD)/testdata/patches/*.so "$$patches"/ && chmod 0644 "$$patches"/*.so && \
	{ $(BATS_ENV) HP_PATCHES="$$patches" bats --print-output-on-failure $(SLOW_BATS) \
		>"$$slow" 2>&1 & } && slow_pid=$$! && \
	$(BATS_ENV) HP_PATCHES="$$patches" bats --print-output-on-failure \
		$(filter-out $(SLOW_BATS),$(sort $(wildcard tests/*.bats))); \
	status=$$?; wait $$slow_pid || status=1; cat "$$slow"; rm -rf "$$patches"; exit $$status

check: deps
	$(MAKE) unit bats fuzz-short

# The tests again on arm64 (as root): an arm64 Debian 12 under
# qemu-system-aarch64 (TCG; scripts/aarch64/, its root file system made once
# and kept in build/aarch64/) runs a ptrace smoke test, the C unit tests and
# AARCH64_TESTS against the cross build in AARCH64_BUILD; AARCH64_TIMEOUT
# (seconds) bounds the machine's run.  Left out by default: ansible.bats
# (ssh hosts in network namespaces), package.bats (make deb) and docs.bats
# (the tree's text, the same on every processor).
AARCH64_BUILD ?= build-arm64
AARCH64_TESTS ?= $(filter-out tests/ansible.bats tests/package.bats tests/docs.bats,$(wildcard tests/*.bats))
AARCH64_TIMEOUT ?= 14400
check-aarch64:
	@scripts/install-deps --if-missing --aarch64 --aarch64-vm
	$(MAKE) ARCH=aarch64 BUILD=$(AARCH64_BUILD) all $(AARCH64_BUILD)/test/hotpatch testdata unit-programs
	AARCH64_BUILD='$(AARCH64_BUILD)' AARCH64_TESTS='$(AARCH64_TESTS)' \
		AARCH64_TIMEOUT='$(AARCH64_TIMEOUT)' scripts/aarch64/check

# The bench's run.sh in the same machine (scripts/aarch64/bench): apply's
# and revert's pauses against the floor, as ratios measured in one run.
bench-aarch64:
	@scripts/install-deps --if-missing --aarch64 --aarch64-vm
	$(MAKE) ARCH=aarch64 BUILD=$(AARCH64_BUILD) all
	AARCH64_BUILD='$(AARCH64_BUILD)' scripts/aarch64/bench

demo: deps $(BUILD)/hotpatch testdata
	HOTPATCH=$(abspath $(BUILD))/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata scripts/demo

soak: deps $(BUILD)/hotpatch testdata
	@patches=$$(mktemp -d /tmp/hotpatch-patches.XXXXXX) && \
	cp $(BUILD)/testdata/patches/hot_v2.so "$$patches"/ && chmod 0644 "$$patches"/*.so && \
	HOTPATCH=$(abspath $(BUILD))/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata \
		HP_PATCHES="$$patches" SOAK_CYCLES=$${SOAK_CYCLES:-3000} SOAK_KILLS=$${SOAK_KILLS:-600} \
		tests/soak/soak.sh; status=$$?; rm -rf "$$patches"; exit $$status

soak-long:
	SOAK_CYCLES=10000 SOAK_KILLS=1500 $(MAKE) soak

bench: deps $(BUILD)/hotpatch testdata loader
	$(MAKE) -C bench OUT=$(abspath $(BUILD))/bench HOTPATCH=$(abspath $(BUILD))/hotpatch \
		LOADER=$(abspath $(LOADER)) \
		HOTPATCH_INCLUDE=$(abspath lib/include) HP_TESTDATA=$(abspath $(BUILD))/testdata run

install: $(BUILD)/hotpatch loader
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/lib/hotpatch
	install -m 0755 $(BUILD)/hotpatch $(DESTDIR)$(PREFIX)/bin/hotpatch
	install -m 0644 lib/include/hotpatch.h $(DESTDIR)$(PREFIX)/include/hotpatch.h
	install -m 0644 man/hotpatch.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotpatch.1
	install -m 0644 man/hotpatch-build.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotpatch-build.1
	install -m 0644 man/hotpatch.h.3 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3
	install -m 0644 cmd/hotpatch.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch
	install -m 0644 $(LOADER) $(LOADER_APPLY) $(DESTDIR)$(PREFIX)/lib/hotpatch/
	install -d -m 0755 $(DESTDIR)/var/lib/hotpatch

# A loader still named in /etc/ld.so.preload is taken out first: a missing
# one would make every process started later print an error.  The store
# (/var/lib/hotpatch) stays: it holds the installed patches.
uninstall:
	if grep -qsF '$(LOADER_PATH)' $(DESTDIR)/etc/ld.so.preload; then \
		$(DESTDIR)$(PREFIX)/bin/hotpatch startup disable --root '$(DESTDIR)/' \
			--loader '$(LOADER_PATH)'; \
	fi
	rm -f $(DESTDIR)$(PREFIX)/bin/hotpatch $(DESTDIR)$(PREFIX)/include/hotpatch.h \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotpatch.1 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3 \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotpatch-build.1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch \
		$(DESTDIR)$(PREFIX)/lib/hotpatch/libhotpatch-loader.so \
		$(DESTDIR)$(PREFIX)/lib/hotpatch/libhotpatch-apply.so
	rmdir --ignore-fail-on-non-empty $(DESTDIR)$(PREFIX)/lib/hotpatch 2>/dev/null || true

# The Debian package (debian/, PREFIX=/usr) into $(BUILD)/deb/.
# dpkg-buildpackage writes beside the tree it builds and leaves its work in
# debian/, so it builds a copy of the tree (without .git and build
# directories), removed afterwards.
DEB_TREE = $(BUILD)/deb/source/hotpatch-$(VERSION)
deb:
	@scripts/install-deps --if-missing --deb
	rm -rf $(BUILD)/deb
	mkdir -p $(DEB_TREE)
	tar -cf - --exclude=./.git --exclude=./build --exclude='./build-*' --exclude='./$(BUILD)' . | \
		tar -xf - -C $(DEB_TREE)
	cd $(DEB_TREE) && dpkg-buildpackage -b -uc -us -Jauto
	mv $(BUILD)/deb/source/*.deb $(BUILD)/deb/source/*.buildinfo $(BUILD)/deb/source/*.changes \
		$(BUILD)/deb/
	rm -rf $(BUILD)/deb/source
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf $(BUILD)
