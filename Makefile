# The two quick-start commands are `make demo` and `make test`; both install
# what is missing first, so they work on a fresh Debian 12 machine.
BUILD      ?= build/release
ASAN_BUILD ?= build/asan
FUZZ_BUILD ?= build/fuzz
JOBS       ?= $(shell nproc)
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo -G Ninja)

.PHONY: all deps build build-asan build-fuzz demo test test-unit test-integration test-asan test-fuzz test-vm bench check format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSG_SANITIZE=ON

$(FUZZ_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSG_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

build-fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

demo: build
	bash scripts/demo.sh $(BUILD)/sockgate

# Every tier: unit + integration on the release build, the same again under
# ASan+UBSan, then each fuzz target for a bounded time.
test: build build-asan build-fuzz
	bash scripts/run-tests.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

test-unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure

test-integration: build
	ctest --test-dir $(BUILD) -L integration --output-on-failure

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) -L 'unit|integration' --output-on-failure

test-fuzz: build-fuzz
	ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure

# Tests that need Debian's 6.1 kernel (ESP/AH, kTLS), each in its own qemu VM.
test-vm: build
	ctest --test-dir $(BUILD) -L vm --output-on-failure

bench: build
	bash bench/run.sh $(BUILD)

check: build
	bash scripts/check.sh $(BUILD)

clean:
	rm -rf build
