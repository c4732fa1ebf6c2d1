# hotpatch - build, test, install.
#   make            build build/hotpatch
#   make check      install missing build dependencies, then run every test
#   make fuzz       fuzz the parsers of untrusted input, FUZZ_SECONDS (300) each
#   make demo       patch a live demo server and show the fix
#   make bench      print timing figures
#   make soak       the long soak: SOAK_CYCLES (3000) apply/revert cycles with
#                   SOAK_KILLS (600) random SIGKILLs of hotpatch
#   make soak-long  the same with 10000 cycles and 1500 kills
#   make install    PREFIX=/usr/local DESTDIR=
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc

PKGS := libunwind-ptrace libelf libdw capstone jansson libsodium libdebuginfod
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -DHOTPATCH_VERSION='"$(VERSION)"' \
	-Ilib -Ilib/include $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# lib/ is one folder per subsystem (docs/ARCHITECTURE.md); the engine's
# objects go into one archive, so each program links only what it uses.
LIB_SOURCES := $(sort $(wildcard lib/*/*.c lib/*/*/*.c))
LIB_HEADERS := $(wildcard lib/*.h lib/*/*.h) lib/include/hotpatch.h
CMD_SOURCES := $(sort $(wildcard cmd/*.c))
# The loader preloaded into processes started later (loader/preload.c, libc
# only) and the engine it loads beside it when a patch fits them.
LOADER := $(BUILD)/lib/hotpatch/libhotpatch-loader.so
LOADER_APPLY := $(BUILD)/lib/hotpatch/libhotpatch-apply.so

.PHONY: all check unit bats fuzz fuzz-short testdata demo bench soak soak-long install uninstall \
	clean deps loader

all: $(BUILD)/hotpatch loader

loader: $(LOADER) $(LOADER_APPLY)

$(LOADER): loader/preload.c Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Wl,-z,now -Wl,-z,relro -o $@ loader/preload.c -ldl

# Everything but the entry point hidden: the engine must not interpose on
# the process's own symbols.
$(LOADER_APPLY): loader/in_process.c $(LIB_SOURCES) $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -fvisibility=hidden -Wl,-z,now -Wl,-z,relro -o $@ \
		loader/in_process.c $(LIB_SOURCES) $(PKG_LIBS)

# Release and test builds share sources; the test build adds sanitizers and
# the fault-injection points used by the rollback tests.
$(BUILD)/hotpatch: $(LIB_SOURCES) $(CMD_SOURCES) $(LIB_HEADERS) cmd/*.h Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $(LIB_SOURCES) $(CMD_SOURCES) $(PKG_LIBS)

# The engine is compiled once for the test build and linked into the tool
# and every unit test.
TEST_FLAGS = $(ALL_CFLAGS) $(SANITIZE) -DHP_FAULT_INJECTION
TEST_OBJECTS := $(patsubst lib/%.c,$(BUILD)/test/obj/%.o,$(LIB_SOURCES))
$(BUILD)/test/obj/%.o: lib/%.c $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -c -o $@ $<

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
	$(MAKE) -C testdata OUT=$(abspath $(BUILD))/testdata HOTPATCH_INCLUDE=$(abspath lib/include)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/test/unit/%,$(wildcard tests/unit/*.c))
$(BUILD)/test/unit/%: tests/unit/%.c $(TEST_LIBRARY) $(LIB_HEADERS) Makefile
	@mkdir -p $(@D)
	$(CC) $(TEST_FLAGS) -Itests/unit -o $@ $< $(TEST_LIBRARY) $(PKG_LIBS)

unit: deps $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done

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
	lib/arch/x86_64/relocations.c
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
bats: deps $(BUILD)/test/hotpatch testdata
	@patches=$$(mktemp -d /tmp/hotpatch-patches.XXXXXX) && \
	cp $(BUILD)/testdata/patches/*.so "$$patches"/ && chmod 0644 "$$patches"/*.so && \
	HOTPATCH=$(abspath $(BUILD))/test/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata \
		HP_PATCHES="$$patches" HP_SOURCE=$(abspath .) bats --print-output-on-failure tests/; \
	status=$$?; rm -rf "$$patches"; exit $$status

check: deps
	$(MAKE) unit bats fuzz-short

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

bench: deps $(BUILD)/hotpatch testdata
	$(MAKE) -C bench OUT=$(abspath $(BUILD))/bench HOTPATCH=$(abspath $(BUILD))/hotpatch \
		HOTPATCH_INCLUDE=$(abspath lib/include) HP_TESTDATA=$(abspath $(BUILD))/testdata run

install: $(BUILD)/hotpatch
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(BUILD)/hotpatch $(DESTDIR)$(PREFIX)/bin/hotpatch
	install -m 0644 lib/include/hotpatch.h $(DESTDIR)$(PREFIX)/include/hotpatch.h
	install -m 0644 man/hotpatch.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotpatch.1
	install -m 0644 man/hotpatch-build.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotpatch-build.1
	install -m 0644 man/hotpatch.h.3 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3
	install -m 0644 cmd/hotpatch.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hotpatch $(DESTDIR)$(PREFIX)/include/hotpatch.h \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotpatch.1 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3 \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotpatch-build.1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch

clean:
	rm -rf $(BUILD)
