#!/bin/sh
# build/package.sh — the posagent .deb and .ipk for each arch, into
# build/out/ (make package). nfpm v2.45.2 runs as a tool through
# `go install …/cmd/nfpm@v2.45.2` into build/out/tools: it comes from the
# Go module proxy like any module, and go.mod stays free of nfpm's ~40
# modules (newer nfpm tags pull a module that does not download).
#
# Environment:
#   ARCHES       Go-style arches (default "amd64 arm7 arm64"; arm7 = armhf)
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
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
NFPM_VERSION=v2.45.2
NFPM="$TOOLS/nfpm"

# dpkg and opkg want a version that starts with a digit, and a hyphen only
# before a revision: v1.2.3-4-gabc → 1.2.3+4+gabc, abc123-dirty → 0.0.0+gitabc123+dirty.
pkg_version() {
	v=$(printf '%s' "$1" | sed 's/^v//; s/-/+/g; s/[^A-Za-z0-9.+~]/./g')
	case "$v" in
	[0-9]*) printf '%s\n' "$v" ;;
	*) printf '0.0.0+git%s\n' "$v" ;;
	esac
}
PKG_VERSION=${PKG_VERSION:-$(pkg_version "$VERSION")}

if [ ! -x "$NFPM" ] || ! "$NFPM" --version 2>&1 | grep -q "$NFPM_VERSION"; then
	mkdir -p "$TOOLS"
	# -ldflags stamps the version so the check above finds it next time.
	GOBIN="$TOOLS" CGO_ENABLED=0 "$GO" install \
		-ldflags "-X main.version=$NFPM_VERSION" \
		"github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

for arch in $ARCHES; do
	case "$arch" in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	arm7) goarch=arm goarm=7 ;;
	*) echo "package.sh: unknown arch $arch (amd64, arm7, arm64)" >&2; exit 2 ;;
	esac
	stage="$OUT/stage/$arch"
	mkdir -p "$stage"
	cmds="posagentd hqctl acquirer-sim"
	config=build/package/nfpm.yaml
	if [ "$arch" = arm7 ]; then
		# acquirer-sim runs on the moov-io reference codec, which does not
		# compile for 32-bit ARM (moov-io/iso8583 v0.26.1): the armhf
		# package carries the terminal's binaries only.
		cmds="posagentd hqctl"
		config="$stage/nfpm.yaml"
		awk '/src: \$\{STAGE\}\/acquirer-sim/ {skip=4} skip>0 {skip--; next} {print}' build/package/nfpm.yaml >"$config"
	fi
	for c in $cmds; do
		CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm "$GO" build -trimpath \
			-ldflags "-s -w -X main.version=$VERSION" -o "$stage/$c" "./cmd/$c"
	done
	for fmt in $FORMATS; do
		NFPM_ARCH=$arch STAGE=$stage PKG_VERSION=$PKG_VERSION \
			"$NFPM" package --config "$config" --packager "$fmt" --target "$OUT/"
	done
done
