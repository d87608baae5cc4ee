# gpt2in - GPT-2's input stage in C.
#
#   make            build build/libgpt2in.a, build/libgpt2in.so, build/gpt2in
#   make check      build and run the unit and command-line suites (quick, no
#                   package installation, no sanitizers, fuzzing or huge inputs)
#   make test       install missing dependencies, build, run every test suite
#                   (also under ASan/UBSan with fault injection, in build-asan/)
#   make demo       install missing dependencies, build, run the demo
#   make bench      benchmarks, side by side with tiktoken and PyTorch
#   make install PREFIX=/usr/local
#   make deps       install missing Debian packages (apt-get, as root or with sudo)

PREFIX ?= /usr/local
CC ?= cc
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN = -Wall -Wextra
# Only the functions marked GPT2IN_API in bpe.h and embed.h are exported from
# libgpt2in.so. -MMD -MP: each object lists the headers it includes (.d files).
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread -fvisibility=hidden -MMD -MP $(WARN) \
  -I. -Ibpe -Iembed
# The library needs utf8proc and jansson (JSON vocabularies), and so does
# the program. gpt2in shard also reads gzip and zstd corpora, hashes them and
# parses JSON Lines fast (simdjson): it is a program of its own,
# gpt2in-shard, so that no other command loads those at start-up; and
# simdjson with the C++ runtime is gpt2in-shard-json.so beside it, loaded
# only for JSON Lines. gpt2in-shard takes utf8proc, jansson, zstd and zlib
# from their static archives, as gpt2in does (CLI_LIBS): a shared library
# costs its loading and relocation at every start.
LIB_LIBS = -lutf8proc -ljansson -lm -pthread
LDLIBS = $(LIB_LIBS)
SHARD_LIBS = -Wl,-Bstatic -lutf8proc -ljansson -lzstd -lz -Wl,-Bdynamic -lm -ldl -pthread
B ?= build
VERSION = 0.1.0

LIB_SRC := $(filter-out bpe/gpt2.c,$(wildcard bpe/*.c embed/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
SHARD_SRC := tools/gpt2in_shard.c $(wildcard tools/cmd_shard*.c)
CLI_COMMON_SRC := $(wildcard tools/cli_*.c)
CLI_SRC := tools/gpt2in.c $(filter-out $(SHARD_SRC),$(wildcard tools/cmd_*.c)) $(CLI_COMMON_SRC)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
SHARD_OBJ := $(SHARD_SRC:%.c=$(B)/%.o) $(CLI_COMMON_SRC:%.c=$(B)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
EXAMPLE_SRC := $(wildcard tools/example_*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:tools/%.c=$(B)/%)
# The sanitizer build of `make test`; GPT2IN_FAULTS compiles in the fault
# injection hooks (failing allocations, failing writes), never in a release.
ASAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
  -fno-sanitize-recover=undefined -DGPT2IN_FAULTS

.PHONY: all check-deps deps check test test-asan bench demo install uninstall clean fuzz FORCE
.DELETE_ON_ERROR:

all: check-deps $(B)/libgpt2in.a $(B)/libgpt2in.so $(B)/gpt2in $(B)/gpt2in-shard $(B)/gpt2in-shard-json.so \
  $(B)/gpt2in.pc $(EXAMPLE_BIN)

check-deps:
	@sh tools/deps.sh check

deps:
	@sh tools/deps.sh install

# Everything is rebuilt when the compiler or its flags change.
$(B)/cflags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(BASE_CFLAGS) $(CFLAGS)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(B)/%.o: %.c $(B)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

# gpt2in shard's JSON Lines fast path uses simdjson, a C++ library.
$(B)/%.o: %.cpp $(B)/cflags
	@mkdir -p $(dir $@)
	$(CXX) $(subst -std=c11,-std=c++17,$(BASE_CFLAGS)) $(CFLAGS) -c $< -o $@

# The GPT-2 vocabulary is compiled into the library as a ready-to-use image
# (built here by the library's own loader), so nothing is parsed at start-up.
$(B)/bpe_gen: $(B)/tools/bpe_gen.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/gpt2.img: $(B)/bpe_gen gpt2_weights/encoder.json gpt2_weights/vocab.bpe
	$(B)/bpe_gen gpt2_weights/encoder.json gpt2_weights/vocab.bpe $@ $(B)/gpt2_layout.h

$(B)/bpe/gpt2.o: bpe/gpt2.c $(B)/gpt2.img $(B)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -I$(B) $(CFLAGS) -c $< -o $@

$(B)/gpt2_image.o: bpe/gpt2_image.S $(B)/gpt2.img
	$(CC) -c -fPIC -DIMAGE='"$(B)/gpt2.img"' $< -o $@

ALL_LIB_OBJ = $(LIB_OBJ) $(B)/bpe/gpt2.o $(B)/gpt2_image.o

$(B)/libgpt2in.a: $(ALL_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgpt2in.so: $(ALL_LIB_OBJ)
	$(CC) -shared -Wl,-soname,libgpt2in.so.0 $(CFLAGS) -o $@ $^ $(LIB_LIBS)

# The program takes utf8proc and jansson from their static archives: each
# shared library is opened, mapped and relocated at every start, before a
# single byte is read (`echo hello | gpt2in encode` is mostly start-up).
# libc and libm stay shared (libm's archive needs a static libc).
CLI_LIBS = -Wl,-Bstatic -lutf8proc -ljansson -Wl,-Bdynamic -lm -pthread

$(B)/gpt2in: $(CLI_OBJ) $(B)/libgpt2in.a
	$(CC) $(CFLAGS) -o $@ $^ $(CLI_LIBS)

# gpt2in shard runs this, found beside gpt2in or in ../libexec/gpt2in/.
$(B)/gpt2in-shard: $(SHARD_OBJ) $(B)/libgpt2in.a
	$(CC) $(CFLAGS) -o $@ $^ $(SHARD_LIBS)

$(B)/gpt2in-shard-json.so: $(B)/tools/cmd_shard_json.o
	$(CXX) -shared $(CFLAGS) -o $@ $^ -lsimdjson

$(B)/tests/%: tests/%.c $(B)/libgpt2in.a $(B)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itests -o $@ $< $(B)/libgpt2in.a $(LDLIBS)

$(B)/example_%: tools/example_%.c $(B)/libgpt2in.a $(B)/cflags
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< $(B)/libgpt2in.a $(LDLIBS)

# The pkg-config file names PREFIX, so it is rewritten when PREFIX changes.
# A space in it is written '\ ', as pkg-config escapes it in its output.
empty :=
space := $(empty) $(empty)
PC_PREFIX = $(subst $(space),\$(space),$(PREFIX))
$(B)/gpt2in.pc: FORCE
	@mkdir -p $(B)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: gpt2in\nDescription: GPT-2 byte-level BPE tokenizer and token embeddings\nVersion: %s\nRequires.private: libutf8proc jansson\nLibs: -L$${libdir} -lgpt2in\nLibs.private: -lm -pthread\nCflags: -I$${includedir}\n' '$(PC_PREFIX)' '$(VERSION)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

FORCE:

-include $(wildcard $(B)/*.d $(B)/*/*.d $(B)/*/*/*.d)

# ---- tests ------------------------------------------------------------------

# Both builds' passes run side by side on two cores or more (tests/run.sh).
JOBS := $(shell nproc 2>/dev/null || echo 1)
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all tests-bin
	@$(MAKE) --no-print-directory -j$(JOBS) B=build-asan OPT=-O1 CFLAGS='$(ASAN_CFLAGS)' all tests-bin
	@sh tests/run.sh

# The daily tier: the normal build only, suites that need no package beyond
# the build's; tests/run.sh skips the slow ones (GPT2IN_CHECK=1).
check: check-deps
	@$(MAKE) --no-print-directory -j$(JOBS) all tests-bin
	@GPT2IN_BUILDS='$(B)' GPT2IN_CHECK=1 sh tests/run.sh

tests-bin: $(TEST_BIN)

# Only the sanitizer build (faster to iterate on).
test-asan: check-deps
	@$(MAKE) --no-print-directory B=build-asan OPT=-O1 CFLAGS='$(ASAN_CFLAGS)' all tests-bin
	@GPT2IN_BUILDS=build-asan sh tests/run.sh

# ---- fuzzing ------------------------------------------------------------------
# make fuzz [FUZZ_SECONDS=60]: clang + libFuzzer + ASan/UBSan, built in
# build-fuzz/; each target of tests/fuzz/ runs FUZZ_SECONDS on its corpus
# (new inputs go to build-fuzz/corpus/, crashes to build-fuzz/crashes/).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = encode pieces safetensors npy vocab vocab_files table_llmc table_gguf table_npy $(if $(wildcard tools/cli_ids.c),ids)
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
  -fno-sanitize-recover=undefined

fuzz: check-deps fuzz-bin
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

.PHONY: fuzz-bin
fuzz-bin:
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang OPT=-O1 CFLAGS='$(FUZZ_CFLAGS)' \
	  $(FUZZ_TARGETS:%=build-fuzz/fuzz/fuzz_%)

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/libgpt2in.a $(B)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/libgpt2in.a $(LDLIBS)

FUZZ_CLI_OBJ = $(B)/tools/cli_ids.o $(B)/tools/cli_common.o
$(B)/fuzz/fuzz_ids: tests/fuzz/fuzz_ids.c $(FUZZ_CLI_OBJ) $(B)/libgpt2in.a $(B)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Itools $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CLI_OBJ) \
	  $(B)/libgpt2in.a $(LDLIBS)

bench: all
	@sh tests/bench/run.sh

demo:
	@sh tools/deps.sh install-build
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

# ---- install ----------------------------------------------------------------

# Headers go to include/gpt2in/: #include <gpt2in/bpe.h>, <gpt2in/embed.h>.
# DEST is quoted for the shell: PREFIX and DESTDIR may hold spaces (not a ').
DEST = '$(DESTDIR)$(PREFIX)'
install: all $(B)/gpt2in.pc
	install -d $(DEST)/bin $(DEST)/lib $(DEST)/include/gpt2in \
	  $(DEST)/lib/pkgconfig $(DEST)/libexec/gpt2in
	install -m 755 $(B)/gpt2in $(DEST)/bin/gpt2in
	install -m 755 $(B)/gpt2in-shard $(DEST)/libexec/gpt2in/gpt2in-shard
	install -m 644 $(B)/gpt2in-shard-json.so $(DEST)/libexec/gpt2in/gpt2in-shard-json.so
	install -m 755 tools/gpt2in_dask_shard.py $(DEST)/bin/gpt2in-dask-shard
	install -m 644 $(B)/libgpt2in.a $(DEST)/lib/libgpt2in.a
	install -m 755 $(B)/libgpt2in.so $(DEST)/lib/libgpt2in.so.$(VERSION)
	ln -sf libgpt2in.so.$(VERSION) $(DEST)/lib/libgpt2in.so.0
	ln -sf libgpt2in.so.0 $(DEST)/lib/libgpt2in.so
	install -m 644 bpe/bpe.h embed/embed.h $(DEST)/include/gpt2in/
	install -m 644 $(B)/gpt2in.pc $(DEST)/lib/pkgconfig/gpt2in.pc

# Removes exactly the files install made (and include/gpt2in/ and
# libexec/gpt2in/ if left empty).
uninstall:
	rm -f $(DEST)/bin/gpt2in $(DEST)/bin/gpt2in-dask-shard $(DEST)/lib/libgpt2in.a \
	  $(DEST)/lib/libgpt2in.so.$(VERSION) $(DEST)/lib/libgpt2in.so.0 \
	  $(DEST)/lib/libgpt2in.so $(DEST)/include/gpt2in/bpe.h \
	  $(DEST)/include/gpt2in/embed.h $(DEST)/lib/pkgconfig/gpt2in.pc
	rm -f $(DEST)/libexec/gpt2in/gpt2in-shard $(DEST)/libexec/gpt2in/gpt2in-shard-json.so
	rmdir $(DEST)/include/gpt2in $(DEST)/libexec/gpt2in 2>/dev/null || true

clean:
	rm -rf build build-asan build-fuzz

# The Python package (tools/python/), built in place into $(B)/python/:
#   PYTHONPATH=$(B)/python /usr/bin/python3 -c 'import gpt2in'
PYTHON ?= /usr/bin/python3
.PHONY: python
python: $(B)/libgpt2in.a
	cd tools/python && GPT2IN_LIB=$(abspath $(B))/libgpt2in.a $(PYTHON) setup.py -q build \
	  --build-base $(abspath $(B))/python/tmp --build-lib $(abspath $(B))/python
