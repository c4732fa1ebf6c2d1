# hotpatch - build, test, install.
#   make            build build/hotpatch
#   make check      install missing build dependencies, then run every test
#   make demo       patch a live demo server and show the fix
#   make bench      print timing figures
#   make install    PREFIX=/usr/local DESTDIR=
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc

PKGS := libunwind-ptrace libelf capstone jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -DHOTPATCH_VERSION='"$(VERSION)"' \
	-Ilib -Ilib/include $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

LIB_SOURCES := $(sort $(wildcard lib/*.c))
CMD_SOURCES := $(sort $(wildcard cmd/*.c))

.PHONY: all check unit bats testdata demo bench install uninstall clean deps

all: $(BUILD)/hotpatch

# Release and test builds share sources; the test build adds sanitizers and
# the fault-injection points used by the rollback tests.
$(BUILD)/hotpatch: $(LIB_SOURCES) $(CMD_SOURCES) lib/*.h lib/include/hotpatch.h cmd/*.h Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $(LIB_SOURCES) $(CMD_SOURCES) $(PKG_LIBS)

$(BUILD)/test/hotpatch: $(LIB_SOURCES) $(CMD_SOURCES) lib/*.h lib/include/hotpatch.h cmd/*.h Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SANITIZE) -DHP_FAULT_INJECTION -o $@ $(LIB_SOURCES) $(CMD_SOURCES) $(PKG_LIBS)

deps:
	@scripts/install-deps --if-missing

testdata: deps
	$(MAKE) -C testdata OUT=$(abspath $(BUILD))/testdata HOTPATCH_INCLUDE=$(abspath lib/include)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/test/unit/%,$(wildcard tests/unit/*.c))
$(BUILD)/test/unit/%: tests/unit/%.c $(LIB_SOURCES) lib/*.h Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SANITIZE) -Itests/unit -o $@ $< $(LIB_SOURCES) $(PKG_LIBS)

unit: deps $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done

bats: deps $(BUILD)/test/hotpatch testdata
	HOTPATCH=$(abspath $(BUILD))/test/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata \
		HP_SOURCE=$(abspath .) bats --print-output-on-failure tests/

check: deps
	$(MAKE) unit bats

demo: deps $(BUILD)/hotpatch testdata
	HOTPATCH=$(abspath $(BUILD))/hotpatch HP_TESTDATA=$(abspath $(BUILD))/testdata scripts/demo

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
	install -m 0644 man/hotpatch.h.3 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3
	install -m 0644 cmd/hotpatch.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hotpatch $(DESTDIR)$(PREFIX)/include/hotpatch.h \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotpatch.1 $(DESTDIR)$(PREFIX)/share/man/man3/hotpatch.h.3 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hotpatch

clean:
	rm -rf $(BUILD)
