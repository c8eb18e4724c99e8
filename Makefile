# Front end for the two commands in README.md (`make demo`, `make test`) and a few helpers.
# Each target installs missing Debian packages first, so a fresh machine needs nothing else.

JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CMAKE_FLAGS ?=

export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS  ?= halt_on_error=1:second_deadlock_stack=1

.PHONY: all deps build demo test test-release test-asan test-tsan bench docs format clean

all: build

deps:
	@./scripts/install-deps.sh

# configure DIR EXTRA-FLAGS
define configure
	cmake -S . -B $(BUILD)/$(1) -DKTH_WERROR=ON -DKTH_BUILD_TESTS=ON -DKTH_BUILD_BENCH=ON $(2) \
	  $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD)/$(1) -j $(JOBS)
endef

build: deps
	$(call configure,release,-DCMAKE_BUILD_TYPE=RelWithDebInfo)

demo: build
	@./scripts/demo.sh $(BUILD)/release

# The whole suite: once as built for use, once under ASan+UBSan, and the threaded tests once
# more under ThreadSanitizer.
test: deps
	$(MAKE) --no-print-directory test-release
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan

test-release:
	$(call configure,release,-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	cd $(BUILD)/release && ctest --output-on-failure -j $(JOBS)

test-asan:
	$(call configure,asan,-DCMAKE_BUILD_TYPE=Debug -DKTH_SANITIZE=address -DKTH_BUILD_BENCH=OFF)
	cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS)

test-tsan:
	$(call configure,tsan,-DCMAKE_BUILD_TYPE=Debug -DKTH_SANITIZE=thread -DKTH_BUILD_BENCH=OFF)
	cd $(BUILD)/tsan && ctest --output-on-failure -j $(JOBS) -L threaded

bench: build
	@./scripts/bench.sh $(BUILD)/release

# The HTML API reference from the public headers (doc/Doxyfile), into $(BUILD)/docs/html.
docs:
	@./scripts/install-deps.sh doxygen
	mkdir -p $(BUILD)/docs
	KTH_DOCS_OUT=$(BUILD)/docs doxygen doc/Doxyfile
	@echo "docs: $(BUILD)/docs/html/index.html"

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
