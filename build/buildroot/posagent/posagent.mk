################################################################################
#
# posagent
#
################################################################################

POSAGENT_VERSION = 1.0.0
POSAGENT_SITE = $(call github,posagent,posagent,v$(POSAGENT_VERSION))
POSAGENT_LICENSE = Proprietary
POSAGENT_GOMOD = github.com/posagent/posagent

# Static, no cgo: the same binary `make arm` builds.
POSAGENT_GO_ENV = CGO_ENABLED=0
POSAGENT_LDFLAGS = -s -w -X main.version=$(POSAGENT_VERSION)
POSAGENT_BUILD_TARGETS = cmd/posagentd
POSAGENT_INSTALL_BINS = posagentd

ifeq ($(BR2_PACKAGE_POSAGENT_LAB_TOOLS),y)
POSAGENT_BUILD_TARGETS += cmd/hqctl cmd/acquirer-sim
POSAGENT_INSTALL_BINS += hqctl acquirer-sim
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

define POSAGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/build/posagentd.service \
		$(TARGET_DIR)/usr/lib/systemd/system/posagentd.service
endef

# The data dir, 0700 root: the identity is made by `posagentd factory-init`
# at the factory, never in the image.
define POSAGENT_PERMISSIONS
	/var/lib/posagent d 0700 0 0 - - - - -
endef

$(eval $(golang-package))
