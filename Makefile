# memfence build.
#
#   make            build the command, the libraries and the pkg-config file into build/
#   make check      install missing Debian packages, build, run the whole test suite
#   make demo       install missing Debian packages, build, run the demonstration
#   make diagnose-corpus  the labelled runs of memfence diagnose, with its accuracy
#   make install    install under $(DESTDIR)$(PREFIX) (default /usr/local)
#   make uninstall  remove what install put there
#   make fuzz       the fuzz targets into build/fuzz (clang, libFuzzer; tests/integration/fuzz.sh runs them)
#   make wheel      dist/memfence-VERSION-cp38-abi3-linux_x86_64.whl (pip install it)
#   make deb        dist/memfence_VERSION-1_ARCH.deb (dpkg -i it)
#
# Sources are picked up by directory, so adding a file needs no edit here
# (ARCHITECTURE.md says what each folder is and which way dependencies point):
#   src/base/*.c        shim-safe base (libc only, never allocates): in the
#                       shim and in libmemfence-host.a
#   src/host/*.c        host-side library: limits, plan, launch, segment reader, messages
#   src/store/*.c       the quarantine store (SQLite, Redis)
#   src/profile/*.c     profile files: reader and outputs
#                       (base, host, store, profile: libmemfence-host.a)
#   src/shim/*.c        libmemfence.so, the LD_PRELOAD accounting shim and public API
#   src/supervisor/*.c  the supervisor of `memfence run` (libmemfence-sup.a)
#   src/cli/*.c         the memfence command (linked with the two above)
#   tests/unit/test_*.c one test program each, linked with the host library;
#                       test_shim_*.c with the shim's objects instead
#                       (libmemfence-shim-test.a, below); test_sup_*.c with
#                       the supervisor's archive (libmemfence-sup.a) too
#   tests/shim/*.c      programs run under the shim by the tests
#   tests/progs/*.c     plain programs the tests run
#   tests/uml/xstate.c  preloaded into user-mode Linux by tests/uml/run-in-v2
#   tests/fuzz/fuzz_*.c one libFuzzer target per reader (`make fuzz`, clang)

# The one place the version is written: the command, the pkg-config file
# and the Python package (python/setup.py) read VERSION.
VERSION    := $(shell cat VERSION)
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGDIR     ?= $(LIBDIR)/pkgconfig
# Where the installed command looks for the preload libraries.
PRELOADDIR ?= $(LIBDIR)/memfence

B          ?= build
CC         ?= gcc
PKG_CONFIG ?= pkg-config
WERROR     ?= $(if $(CI),-Werror,)
OPT        ?= -O2 -g
SAN        ?=

CFLAGS_BASE := -std=gnu11 $(OPT) -Wall -Wextra -Wshadow -Wpointer-arith \
               -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 $(WERROR) \
               -fPIC -D_GNU_SOURCE -Iinclude -Isrc $(SAN)
CFLAGS     += $(CFLAGS_BASE) -DMF_VERSION='"$(VERSION)"' -DMF_PRELOADDIR='"$(PRELOADDIR)"'

DEP_PKGS   := jansson libmicrohttpd sqlite3 hiredis zlib libcurl
DEP_CFLAGS  = $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) 2>/dev/null)
DEP_LIBS    = $(shell $(PKG_CONFIG) --libs $(DEP_PKGS) 2>/dev/null)
# The command loads libmicrohttpd when its HTTP server starts, and SQLite and
# hiredis when it opens a quarantine store, libcurl for --profile-push, zlib
# when it writes a pprof profile (src/host/dynlib.h), by the
# sonames of the libraries it was built against (src/host/dynlib.c).
DLOPEN_PKGS := libmicrohttpd sqlite3 hiredis libcurl zlib
CLI_LIBS    = $(shell $(PKG_CONFIG) --libs $(filter-out $(DLOPEN_PKGS),$(DEP_PKGS)) 2>/dev/null)
soname       = $(shell objdump -p "$$($(CC) -print-file-name=$(1).so)" 2>/dev/null | \
                awk '$$1 == "SONAME" { print $$2 }')
DYNLIBS     := MICROHTTPD:libmicrohttpd SQLITE:libsqlite3 HIREDIS:libhiredis CURL:libcurl ZLIB:libz
DYNLIB_DEFS := $(foreach l,$(DYNLIBS),\
                 $(if $(call soname,$(word 2,$(subst :, ,$(l)))),\
                   -DMF_$(word 1,$(subst :, ,$(l)))_SONAME='"$(call soname,$(word 2,$(subst :, ,$(l))))"'))
# The same sonames, for the Debian package's Depends (make deb).
DYNLIB_SONAMES = $(foreach l,$(DYNLIBS),$(call soname,$(word 2,$(subst :, ,$(l)))))

BASE_SRC  := $(sort $(wildcard src/base/*.c))
HOST_SRC  := $(BASE_SRC) $(sort $(wildcard src/host/*.c src/store/*.c src/profile/*.c))
SHIM_SRC  := $(sort $(wildcard src/shim/*.c))
SUP_SRC   := $(sort $(wildcard src/supervisor/*.c))
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TPROG_SRC := $(sort $(wildcard tests/shim/*.c))
PROG_SRC  := $(sort $(wildcard tests/progs/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

# The shim is injected into arbitrary programs: besides its own files it
# takes only the shim-safe base, built with the shim's flags.
HOST_OBJ  := $(HOST_SRC:%.c=$(B)/obj/%.o)
SHIM_OBJ  := $(SHIM_SRC:%.c=$(B)/obj/%.o) $(BASE_SRC:%.c=$(B)/obj/shim-base/%.o)
SUP_OBJ   := $(SUP_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TPROG_BIN := $(TPROG_SRC:tests/shim/%.c=$(B)/tests/shim/%)
PROG_BIN  := $(PROG_SRC:tests/progs/%.c=$(B)/tests/progs/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

HOST_LIB  := $(B)/libmemfence-host.a
SUP_LIB   := $(B)/libmemfence-sup.a
SHIM_LIB  := $(B)/libmemfence.so
STACK_LIB := $(B)/libmemfence-stack.so
CLI_BIN   := $(B)/memfence
PC_FILE   := $(B)/memfence.pc

all: $(CLI_BIN) $(SHIM_LIB) $(STACK_LIB) $(PC_FILE) tests-build

tests-build: $(UNIT_BIN) $(TPROG_BIN) $(PROG_BIN) $(B)/tests/uml-xstate.so

.PHONY: all tests-build check soak demo bench install uninstall clean deps-build python fuzz \
	diagnose-corpus

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -MMD -MP -c $< -o $@

# Shim objects: hidden visibility, no stack protector surprises in constructors
# that run before TLS is complete, and the initial-exec TLS model everywhere.
SHIM_CFLAGS := -fvisibility=hidden -ftls-model=initial-exec -fno-omit-frame-pointer -DMF_SHIM

$(B)/obj/src/shim/%.o: src/shim/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/shim-base/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@

$(HOST_LIB): $(HOST_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHIM_LIB): $(SHIM_OBJ) src/shim/exports.map
	$(CC) $(CFLAGS) -shared -Wl,--version-script=src/shim/exports.map \
	  -Wl,-soname,libmemfence.so.0 -o $@ $(SHIM_OBJ) -ldl -lpthread

# The stack library is the one file of the shim that sets the default thread
# stack size: `memfence exec` preloads it when accounting is off.
STACK_SRC := src/shim/stack.c src/base/size.c src/base/env.c src/base/logline.c
$(STACK_LIB): $(STACK_SRC) src/shim/exports-stack.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) -shared \
	  -Wl,--version-script=src/shim/exports-stack.map -o $@ $(STACK_SRC) -lpthread

# The objects that print the version.
$(B)/obj/src/cli/main.o: VERSION

# The supervisor is a library of its own: the command links it, and so do
# its unit tests (tests/unit/test_sup_*.c), which drive its rules on
# synthetic samples without a process, a cgroup or a socket.
$(SUP_LIB): $(SUP_OBJ)
	rm -f $@ && ar rcs $@ $^

$(CLI_BIN): $(CLI_OBJ) $(SUP_LIB) $(HOST_LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(SUP_LIB) $(HOST_LIB) $(CLI_LIBS) -ldl -lpthread

$(B)/obj/src/host/dynlib.o: CFLAGS += $(DYNLIB_DEFS)
$(filter $(B)/obj/src/store/%,$(HOST_OBJ)): CFLAGS += -DMF_STORE_DLOPEN

# Unit tests find their data (tests/data) wherever they are run from.
$(B)/tests/%: tests/unit/%.c $(HOST_LIB) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Itests/unit -DMF_TEST_DATA='"$(CURDIR)/tests/data"' \
	  -o $@ $< $(HOST_LIB) $(DEP_LIBS) -lpthread -lm

# (The shorter stem wins: test_sup_* take this rule.)
$(B)/tests/test_sup_%: tests/unit/test_sup_%.c $(SUP_LIB) $(HOST_LIB) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -Itests/unit -o $@ $< $(SUP_LIB) $(HOST_LIB) $(CLI_LIBS) \
	  -ldl -lpthread -lm

# The shim's objects once more, for its unit tests: a static archive built
# without -fvisibility=hidden (and without MF_SHIM, which makes MF_HIDDEN
# hide a symbol), so that tests/unit/test_shim_*.c call the policies, the
# ledger and the parsers as plain functions, without preloading anything.
# hooks.c and stack.c stay out: linked into a test program, they would
# interpose its malloc and set its threads' stacks.
SHIM_TEST_SRC := $(filter-out src/shim/hooks.c src/shim/stack.c,$(SHIM_SRC)) $(BASE_SRC)
SHIM_TEST_OBJ := $(SHIM_TEST_SRC:%.c=$(B)/obj/shim-test/%.o)
SHIM_TEST_LIB := $(B)/libmemfence-shim-test.a

$(B)/obj/shim-test/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -ftls-model=initial-exec -fno-omit-frame-pointer -MMD -MP -c $< -o $@

$(SHIM_TEST_LIB): $(SHIM_TEST_OBJ)
	rm -f $@ && ar rcs $@ $^

# (The shorter stem wins: test_shim_* take this rule, not the one above.)
$(B)/tests/test_shim_%: tests/unit/test_shim_%.c $(SHIM_TEST_LIB) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(SHIM_TEST_LIB) -ldl -lpthread

# Test programs use the public API and link against the shim like any user would.
$(B)/tests/shim/%: tests/shim/%.c $(SHIM_LIB) include/memfence.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fno-builtin -o $@ $< -L$(B) -lmemfence -Wl,-rpath,'$$ORIGIN/../..' -lpthread -ldl

# Plain programs the tests and benchmarks run, with no link to memfence at all.
$(B)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lpthread

$(B)/tests/progs/%: tests/progs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lpthread

# Lets Debian's user-mode Linux run on hosts with AMX (see the file).
$(B)/tests/uml-xstate.so: tests/uml/xstate.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $< -ldl

# Fuzz targets: one per reader of a file someone else may have written
# (post-mortems, the journal, profiles, stats segments, the quarantine
# database, the model), built with clang's libFuzzer under AddressSanitizer
# and UBSan; the host library and the supervisor are built again with the
# same flags into $(B)/fuzz. tests/integration/fuzz.sh runs each for a
# bounded time from its corpus in tests/fuzz/corpus/NAME.
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fno-omit-frame-pointer -Wno-gnu-variable-sized-type-not-at-end \
	       -D_GNU_SOURCE -Iinclude -Isrc \
	       -DMF_VERSION='"$(VERSION)"' -DMF_PRELOADDIR='"$(PRELOADDIR)"' $(FUZZ_SAN)
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_OBJ    := $(HOST_SRC:%.c=$(B)/fuzz/obj/%.o) $(SUP_SRC:%.c=$(B)/fuzz/obj/%.o)
FUZZ_LIB    := $(B)/fuzz/libmemfence-fuzz.a

fuzz: $(FUZZ_BIN)

$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEP_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEP_CFLAGS) -Itests/fuzz -o $@ $< \
	  $(FUZZ_LIB) $(DEP_LIBS) -lpthread -lm

# The pkg-config file is written again at install time with that PREFIX.
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	     -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|'

$(PC_FILE): memfence.pc.in Makefile VERSION
	@mkdir -p $(dir $@)
	$(PC_SED) $< > $@

# Shim soname link so -lmemfence and the soname both resolve in the build tree.
$(B)/libmemfence.so.0: $(SHIM_LIB)
	ln -sf libmemfence.so $@

all: $(B)/libmemfence.so.0

check:
	scripts/deps.sh check
	$(MAKE) all
	tests/run

# Every run of the labelled corpus of memfence diagnose, with its accuracy.
diagnose-corpus:
	scripts/deps.sh check
	$(MAKE) all
	tests/diagnose_corpus.sh

# Not part of check: each server's oversized-request test, MF_SOAK_RUNS
# (default 10) times in a row under load, with a table (tests/soak).
soak:
	scripts/deps.sh check
	$(MAKE) all
	tests/soak

demo:
	scripts/deps.sh demo
	$(MAKE) all
	examples/demo.sh

bench:
	scripts/deps.sh bench
	$(MAKE) all $(BENCH_BIN)
	bench/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PRELOADDIR) \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(CLI_BIN) $(DESTDIR)$(BINDIR)/memfence
	install -m 0755 $(SHIM_LIB) $(DESTDIR)$(LIBDIR)/libmemfence.so.0
	ln -sf libmemfence.so.0 $(DESTDIR)$(LIBDIR)/libmemfence.so
	install -m 0755 $(STACK_LIB) $(DESTDIR)$(PRELOADDIR)/libmemfence-stack.so
	ln -sf ../libmemfence.so.0 $(DESTDIR)$(PRELOADDIR)/libmemfence.so
	install -m 0644 include/memfence.h $(DESTDIR)$(INCLUDEDIR)/memfence.h
	$(PC_SED) memfence.pc.in > $(DESTDIR)$(PKGDIR)/memfence.pc
	install -m 0644 docs/memfence.1 $(DESTDIR)$(MANDIR)/man1/memfence.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memfence $(DESTDIR)$(LIBDIR)/libmemfence.so \
	  $(DESTDIR)$(LIBDIR)/libmemfence.so.0 $(DESTDIR)$(PRELOADDIR)/libmemfence-stack.so \
	  $(DESTDIR)$(PRELOADDIR)/libmemfence.so $(DESTDIR)$(INCLUDEDIR)/memfence.h \
	  $(DESTDIR)$(PKGDIR)/memfence.pc $(DESTDIR)$(MANDIR)/man1/memfence.1
	-rmdir $(DESTDIR)$(PRELOADDIR) 2>/dev/null

clean:
	rm -rf $(B) build-asan build-tsan dist

# --- python -----------------------------------------------------------------
# The Python package, built for the tests into $(B)/python (PYTHONPATH): the
# .py files copied, the extension compiled against Debian's python3 headers
# (stable ABI) with the host library linked in statically. Its limit
# code is used only if the archive has it, so the package still builds (scopes,
# isolate) while a host file is missing. `pip install ./python` is the route
# for users; this is the route for the tests.
PYTHON     ?= /usr/bin/python3
PYINC      ?= $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_SRC     := $(sort $(wildcard python/memfence/*.py python/memfence/*/*.py))
PY_OUT     := $(PY_SRC:python/%=$(B)/python/%)
PY_EXT     := $(B)/python/memfence/_memfence.abi3.so
PY_HOST    := $(B)/python/memfence/_host.abi3.so

PY_PYC     := $(B)/python/.compiled

ifneq ($(wildcard $(PYINC)/Python.h),)
python: $(PY_OUT) $(PY_EXT) $(PY_HOST) $(PY_PYC)
else
python:
	@echo "python: $(PYTHON) headers not found (install python3-dev); package not built"
endif

all: python

$(B)/python/%.py: python/%.py
	@mkdir -p $(dir $@)
	cp $< $@

# Byte-compiled ahead: every Python program under `memfence run` imports the
# bootstrap, and compiling it at each start would cost milliseconds where the
# program cannot write a cache (an installed tree, PYTHONDONTWRITEBYTECODE).
$(PY_PYC): $(PY_OUT)
	$(PYTHON) -m compileall -q $(B)/python/memfence
	@touch $@

# The package where `memfence run` can put it on a Python child's PYTHONPATH
# (memfence/_bootstrap holds the sitecustomize that enables it).
PYLIBDIR   ?= $(PRELOADDIR)/python
.PHONY: install-python
install-python: python
	install -d $(DESTDIR)$(PYLIBDIR)/memfence/_bootstrap
	install -m 0644 $(patsubst python/%,$(B)/python/%,$(wildcard python/memfence/*.py)) $(DESTDIR)$(PYLIBDIR)/memfence/
	install -m 0644 $(B)/python/memfence/_bootstrap/*.py $(DESTDIR)$(PYLIBDIR)/memfence/_bootstrap/
	install -m 0755 $(PY_EXT) $(PY_HOST) $(DESTDIR)$(PYLIBDIR)/memfence/
	$(PYTHON) -m compileall -q -d $(PYLIBDIR)/memfence $(DESTDIR)$(PYLIBDIR)/memfence

$(PY_EXT): python/memfence/_memfence.c include/memfence.h src/host/memory.h src/host/plan.h $(HOST_LIB) VERSION
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DMF_HAVE_LIMITS -isystem $(PYINC) -fvisibility=hidden -shared \
	  -o $@ $< $(HOST_LIB) -ldl -lpthread

# The store and the segment reader, a module of their own (see the file):
# only the processes that use them load SQLite, hiredis and jansson. The
# host library's symbols stay inside it.
PY_HOST_PKGS := jansson sqlite3 hiredis
$(PY_HOST): python/memfence/_host.c src/store/quarantine.h src/host/segread.h $(HOST_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags $(PY_HOST_PKGS)) -isystem $(PYINC) \
	  -fvisibility=hidden -shared -Wl,--exclude-libs,ALL -o $@ $< $(HOST_LIB) \
	  $(shell $(PKG_CONFIG) --libs $(PY_HOST_PKGS)) -lpthread

# --- packages ---------------------------------------------------------------
# What make install and make install-python install, as one package
# (scripts/package.py: the layout, and why):
#   make wheel   $(DIST)/memfence-VERSION-cp38-abi3-linux_x86_64.whl: pip install
#                it, and the environment's bin/memfence finds its libraries
#                and the Python bootstrap in its lib/memfence
#   make deb     $(DIST)/memfence_VERSION-1_ARCH.deb: /usr/bin/memfence,
#                /usr/lib/memfence, the Python package in Debian's
#                dist-packages; Depends from the libraries it links and
#                the ones it loads by soname (DYNLIB_SONAMES)
# Both take the files this build made, with their debug information stripped.
DIST       ?= dist
PKG_FILES   = --version $(VERSION) --command $(CLI_BIN) --man docs/memfence.1 \
	      --lib $(SHIM_LIB) $(STACK_LIB) --pyroot $(B)/python --py $(PY_OUT) $(PY_EXT) $(PY_HOST)
.PHONY: wheel deb
wheel: $(CLI_BIN) $(SHIM_LIB) $(STACK_LIB) python
	$(PYTHON) scripts/package.py wheel --out $(DIST) $(PKG_FILES)

deb: $(CLI_BIN) $(SHIM_LIB) $(STACK_LIB) python
	$(PYTHON) scripts/package.py deb --out $(DIST) $(PKG_FILES) --dlopen $(DYNLIB_SONAMES) \
	  --doc README.md $(sort $(wildcard docs/*.md))

-include $(shell find $(B)/obj $(B)/fuzz -name '*.d' 2>/dev/null)
