# Shortcuts for the scripts (the build itself is CMake).
.PHONY: all run test build clean bench

all: build

build:
	scripts/setup.sh build
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF -DHERALD_E2E=OFF
	cmake --build build-release -j$$(nproc)

# Build and serve the default app on http://localhost:3000
run:
	scripts/run.sh

# Every test: unit, end-to-end, sanitizers, fuzzers
test:
	scripts/test.sh

bench:
	bench/run.sh

clean:
	rm -rf build build-release build-asan build-fuzz
