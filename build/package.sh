#!/bin/sh
# build/package.sh — the .deb and .ipk of each package for each arch, into
# build/out/ (make package):
#   posagent      the terminal: posagentd, its unit, sysusers file, config
#   posagent-hq   HQ: hqd, its unit, sysusers file and sample config;
#                 hqctl; the broker profile (build/mosquitto/)
#   posagent-lab  acquirer-sim, for lab machines (64-bit only)
# Each package carries /usr/share/doc/<package>/copyright, generated from
# the build information of its binaries (the modules `go version -m`
# lists) and the licenses in the module cache
# (internal/modlicense/cmd/modlicense). nfpm v2.45.2 runs as a tool through
# `go install …/cmd/nfpm@v2.45.2` into build/out/tools: it comes from the
# Go module proxy like any module, and go.mod stays free of nfpm's ~40
# modules (newer nfpm tags pull a module that does not download).
#
# Environment:
#   ARCHES       Go-style arches (default "amd64 arm7 arm64"; arm7 = armhf)
#   PACKAGES     which packages (default "posagent posagent-hq posagent-lab")
#   FORMATS      nfpm packagers (default "deb ipk")
#   VERSION      build version (default: git describe), stamped into the binaries
#   PKG_VERSION  package version (default: VERSION made dpkg/opkg-safe)
#   OUT, GO      output dir (default build/out), go command
#   TOOLS        where nfpm is installed (default build/out/tools)
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${OUT:-build/out}
TOOLS=${TOOLS:-build/out/tools}
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
case "$TOOLS" in /*) ;; *) TOOLS="$PWD/$TOOLS" ;; esac
ARCHES=${ARCHES:-amd64 arm7 arm64}
FORMATS=${FORMATS:-deb ipk}
PACKAGES=${PACKAGES:-posagent posagent-hq posagent-lab}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
NFPM_VERSION=v2.45.2
NFPM="$TOOLS/nfpm"

# dpkg and opkg want a version that starts with a digit, and a hyphen only
# before a revision: v1.2.3-4-gabc → 1.2.3+4+gabc, abc123-dirty → 0.0.0+gitabc123+dirty.
pkg_version() {
	v=$(printf '%s' "$1" | sed 's/^v//; s/-/+/g; s/[^A-Za-z0-9.+~]/./g')
	# Only a tag (v1.2.3…) makes a release version: an untagged describe is
	# a bare commit hash, which may start with a digit ("4a7b225") and
	# would then sort above every release.
	if printf '%s' "$1" | grep -Eq '^v?[0-9]+\.[0-9]+'; then
		printf '%s\n' "$v"
	else
		printf '0.0.0+git%s\n' "$v"
	fi
}
PKG_VERSION=${PKG_VERSION:-$(pkg_version "$VERSION")}

if [ ! -x "$NFPM" ] || ! "$NFPM" --version 2>&1 | grep -q "$NFPM_VERSION"; then
	mkdir -p "$TOOLS"
	# -ldflags stamps the version so the check above finds it next time.
	GOBIN="$TOOLS" CGO_ENABLED=0 "$GO" install \
		-ldflags "-X main.version=$NFPM_VERSION" \
		"github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi
mkdir -p "$TOOLS"
CGO_ENABLED=0 "$GO" build -o "$TOOLS/modlicense" ./internal/modlicense/cmd/modlicense

# The binaries of a package.
pkg_bins() {
	case "$1" in
	posagent) echo posagentd ;;
	posagent-hq) echo hqctl hqd ;;
	posagent-lab) echo acquirer-sim ;;
	*) echo "package.sh: unknown package $1" >&2; exit 2 ;;
	esac
}

for arch in $ARCHES; do
	case "$arch" in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	arm7) goarch=arm goarm=7 ;;
	*) echo "package.sh: unknown arch $arch (amd64, arm7, arm64)" >&2; exit 2 ;;
	esac
	bindir="$OUT/stage/$arch/bin"
	mkdir -p "$bindir"
	for pkg in $PACKAGES; do
		if [ "$pkg" = posagent-lab ] && [ "$arch" = arm7 ]; then
			# acquirer-sim runs on the moov-io reference codec, which does
			# not compile for 32-bit ARM (moov-io/iso8583 v0.26.1).
			continue
		fi
		stage="$OUT/stage/$arch/$pkg"
		rm -rf "$stage"
		mkdir -p "$stage"
		bins=""
		for c in $(pkg_bins "$pkg"); do
			if [ ! -f "$bindir/$c" ]; then
				CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm "$GO" build -trimpath \
					-ldflags "-s -w -X main.version=$VERSION" -o "$bindir/$c" "./cmd/$c"
			fi
			cp "$bindir/$c" "$stage/$c"
			bins="$bins $stage/$c"
		done
		# shellcheck disable=SC2086
		"$TOOLS/modlicense" copyright -name "$pkg" -o "$stage/copyright" $bins
		config="$stage/nfpm.yaml"
		cp "build/package/$pkg.yaml" "$config"
		for fmt in $FORMATS; do
			NFPM_ARCH=$arch STAGE=$stage PKG_VERSION=$PKG_VERSION \
				"$NFPM" package --config "$config" --packager "$fmt" --target "$OUT/"
		done
	done
	rm -rf "$bindir"
done
