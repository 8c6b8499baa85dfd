SUMMARY = "posagent: the firmware-side agent of an ARM POS payment terminal"
DESCRIPTION = "posagentd drives the operator menu of the terminal, speaks ISO 8583 \
to the acquirer and takes signed commands from HQ over MQTT."
HOMEPAGE = "https://github.com/posagent/posagent"
SECTION = "console/utils"
LICENSE = "CLOSED"

SRC_URI = "git://github.com/posagent/posagent.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
SRCREV = "${AUTOREV}"
PV = "1.0.0+git"

GO_IMPORT = "github.com/posagent/posagent"
GO_INSTALL = "${GO_IMPORT}/cmd/posagentd"
# Static and stripped like `make arm`; the version the CLI prints.
GO_LINKSHARED = ""
GOBUILDFLAGS:append = " -trimpath"
GO_EXTRA_LDFLAGS:append = " -s -w -X main.version=${PV}"
export CGO_ENABLED = "0"

# go-mod.bbclass: module mode with a module cache. The modules come from
# the Go module proxy in do_compile; on a release with the gomod://
# fetcher, `bitbake -c update_modules posagent` pins them in SRC_URI
# instead and this line goes.
do_compile[network] = "1"

inherit go-mod systemd

SYSTEMD_SERVICE:${PN} = "posagentd.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install:append() {
	install -d ${D}${systemd_system_unitdir}
	install -m 0644 ${S}/src/${GO_IMPORT}/build/posagentd.service ${D}${systemd_system_unitdir}/posagentd.service
	install -d ${D}${sysconfdir}/posagent
	install -m 0644 ${S}/src/${GO_IMPORT}/build/package/posagent.toml ${D}${sysconfdir}/posagent/posagent.toml
	# The data dir, empty: the identity comes from `posagentd factory-init`.
	install -d -m 0700 ${D}${localstatedir}/lib/posagent
}

# opkg/dpkg/rpm keep an edited config on upgrade.
CONFFILES:${PN} = "${sysconfdir}/posagent/posagent.toml"
FILES:${PN} += "${systemd_system_unitdir}/posagentd.service ${localstatedir}/lib/posagent"

# go.bbclass ships the source tree in ${PN}-dev; its scripts use bash.
RDEPENDS:${PN}-dev += "bash"
