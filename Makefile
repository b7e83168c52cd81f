# Shortcuts for the scripts (the build itself is CMake).
.PHONY: all run test build clean bench install deb

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

# The release build into PREFIX (default /usr/local; README "Install")
PREFIX ?= /usr/local
install: build
	cmake --install build-release --prefix $(PREFIX)

# The Debian package: build-release/herald_VERSION_ARCH.deb
deb: build
	cd build-release && cpack -G DEB

clean:
	rm -rf build build-release build-asan build-fuzz
