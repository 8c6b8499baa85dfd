################################################################################
#
# posagent
#
################################################################################

# The release tag; its vendored tarball's hash is in posagent.hash.
POSAGENT_VERSION = 1.0.0
POSAGENT_SITE = $(call github,posagent,posagent,v$(POSAGENT_VERSION))
POSAGENT_LICENSE = Proprietary
POSAGENT_LICENSE_FILES = LICENSE
# A vendor's own code: `make legal-info` lists it without its source.
POSAGENT_REDISTRIBUTE = NO
POSAGENT_GOMOD = github.com/posagent/posagent

# pkg-golang.mk builds each target with the target's gcc as the external
# linker when the toolchain can (BR2_PACKAGE_HOST_GO_TARGET_CGO_LINKING_SUPPORTS:
# CGO_ENABLED=1): no -buildmode is added, so the binary is a dynamically
# linked executable, not stripped here (Buildroot strips at target-finalize
# per BR2_STRIP_strip). Only the version is ours.
POSAGENT_LDFLAGS = -X main.version=$(POSAGENT_VERSION)

# Since 2025.11 the binaries installed are those of _BUILD_TARGETS, named
# after each target's last element (no _INSTALL_BINS): /usr/bin/posagentd.
POSAGENT_BUILD_TARGETS = cmd/posagentd

ifeq ($(BR2_PACKAGE_POSAGENT_LAB_TOOLS),y)
# acquirer-sim's reference codec (moov-io/iso8583) needs a 64-bit target.
POSAGENT_BUILD_TARGETS += cmd/hqctl cmd/acquirer-sim
endif

# The default config; an existing one in the overlay wins (installed
# only when missing, as a conffile would be).
define POSAGENT_INSTALL_CONFIG
	if [ ! -f $(TARGET_DIR)/etc/posagent/posagent.toml ]; then \
		$(INSTALL) -D -m 0644 $(@D)/build/package/posagent.toml \
			$(TARGET_DIR)/etc/posagent/posagent.toml; \
	fi
endef
POSAGENT_POST_INSTALL_TARGET_HOOKS += POSAGENT_INSTALL_CONFIG

# systemd: the unit runs posagentd as the posagent user (POSAGENT_USERS)
# with CAP_SYS_BOOT; StateDirectory= hands it /var/lib/posagent.
define POSAGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/build/posagentd.service \
		$(TARGET_DIR)/usr/lib/systemd/system/posagentd.service
endef

# BusyBox init / SysV: S95posagentd runs posagentd as root under a respawn
# loop (no ambient capabilities without systemd: see the script).
define POSAGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/build/buildroot/posagent/S95posagentd \
		$(TARGET_DIR)/etc/init.d/S95posagentd
endef

# The service user (makeusers syntax): system uid and group, home the data
# dir, the device groups of the terminal's hardware.
define POSAGENT_USERS
	posagent -1 posagent -1 * /var/lib/posagent - dialout,input,video,lp posagent POS terminal agent
endef

# The data dir, 0700: the identity is made by `posagentd factory-init` at
# the factory, never in the image. Owned by root here; systemd's
# StateDirectory= gives it to posagent at start.
define POSAGENT_PERMISSIONS
	/var/lib/posagent d 0700 0 0 - - - - -
endef

$(eval $(golang-package))
