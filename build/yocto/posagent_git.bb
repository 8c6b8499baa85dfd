SUMMARY = "posagent: the firmware-side agent of an ARM POS payment terminal"
DESCRIPTION = "posagentd drives the operator menu of the terminal, speaks ISO 8583 \
to the acquirer and takes signed commands from HQ over MQTT."
HOMEPAGE = "https://github.com/posagent/posagent"
SECTION = "console/utils"

# Our own code is proprietary (LICENSE at the repository root); the Go
# modules linked in add theirs through posagent-licenses.inc.
LICENSE = "Proprietary"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=086b64da7369bb6db01b7221d45592ae"
NO_GENERIC_LICENSE[Proprietary] = "src/${GO_IMPORT}/LICENSE"

# A release: the commit is pinned, PV says which. Bump both together, then
# regenerate the two includes (README, "Yocto").
SRC_URI = "git://github.com/posagent/posagent.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
SRCREV = "afacd980401e9bfec4b9a0a6a3d5c82592f5fbe1"
PV = "1.0.0+git"

# Every Go module the build reads, as gomod:// entries with their sha256
# (fetched into DL_DIR like any source, so a mirror or an offline build
# has them), and their licenses. Generated from go.mod and the module
# cache by internal/modlicense, the way go-mod-update-modules.bbclass does.
require ${BPN}-go-mods.inc
require ${BPN}-licenses.inc

GO_IMPORT = "github.com/posagent/posagent"
GO_INSTALL = "${GO_IMPORT}/cmd/posagentd"

# Linking, read against OE-core's go.bbclass and goarch.bbclass (the
# quotes are in cmd/posagentd/buildflags.md):
# - go.bbclass appends -buildmode=pie to GOBUILDFLAGS on arm and aarch64
#   (for the textrel QA check) and exports CGO_ENABLED ?= "1". On ARMv7
#   Go can only make a PIE with the external linker, so CGO_ENABLED stays
#   1: the target's gcc links a dynamic PIE (ASLR) against glibc, with
#   the distro's LDFLAGS (relro, now) and the loader go.bbclass names.
#   CGO_ENABLED = "0" fails there ("-buildmode=pie requires external
#   (cgo) linking"); dropping PIE would need INSANE_SKIP and gives up ASLR.
# - goarch.bbclass sets GO_DYNLINK on arm/aarch64, so go.bbclass would add
#   -linkshared against go-runtime's libstd.so and an rpath to it: off
#   (GO_LINKSHARED, GO_RPATH and GO_RPATH_LINK all follow GO_DYNLINK), so
#   the agent is one self-contained binary that an update replaces alone.
# - GO_LINKMODE: on aarch64 Go would link the PIE itself (internal
#   linking), and OE's LDFLAGS (-z relro -z now) would never reach a
#   linker; external linking on both arches gives both the same hardening.
# - No -s -w: OE strips the binary and splits its symbols into ${PN}-dbg
#   (-s -w would trip the already-stripped QA check).
GO_DYNLINK:arm = ""
GO_DYNLINK:aarch64 = ""
GO_LINKMODE = "-linkmode=external"
GO_EXTRA_LDFLAGS:append = " -X main.version=${PV}"

inherit go-mod systemd useradd

# The service user: a system account in the device groups of the
# terminal's hardware (serial ports, evdev keypad, framebuffer, printers).
# Add gpio in a bbappend where the image has that group.
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/posagent --no-create-home --shell /sbin/nologin --user-group --groups dialout,input,video,lp posagent"

SYSTEMD_SERVICE:${PN} = "posagentd.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install:append() {
	install -d ${D}${systemd_system_unitdir}
	install -m 0644 ${S}/src/${GO_IMPORT}/build/posagentd.service ${D}${systemd_system_unitdir}/posagentd.service
	install -d ${D}${sysconfdir}/posagent
	install -m 0644 ${S}/src/${GO_IMPORT}/build/package/posagent.toml ${D}${sysconfdir}/posagent/posagent.toml
	# The data dir, empty: the identity comes from `posagentd factory-init`;
	# the unit's StateDirectory= gives it to posagent at start.
	install -d -m 0700 ${D}${localstatedir}/lib/posagent
}

# opkg/dpkg/rpm keep an edited config on upgrade.
CONFFILES:${PN} = "${sysconfdir}/posagent/posagent.toml"
FILES:${PN} += "${systemd_system_unitdir}/posagentd.service ${localstatedir}/lib/posagent"

# go.bbclass ships the source tree in ${PN}-dev; its scripts use bash.
RDEPENDS:${PN}-dev += "bash"
