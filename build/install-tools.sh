#!/bin/sh
# Installs the real parts the tests and the demo use, when missing:
# mosquitto (the MQTT broker of the integration tests), qemu-user-static
# (to run the ARM builds), dbus-daemon (a private bus for the logind reboot
# test), dpkg and systemd's tools (package tests), and the ARMv7/ARM64 cross
# C compilers the Yocto and Buildroot build reproductions link with (both
# build systems link Go with the target's gcc: cgo, PIE), and PostgreSQL
# for the HQ tests, chromium and CJK fonts (the back office's browser
# tests). Only as root on Debian/Ubuntu; elsewhere it says what is missing
# and the tests that need it fail with that message.
set -e
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_pub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v qemu-arm-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
command -v socat >/dev/null 2>&1 || missing="$missing socat"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus"
command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || missing="$missing gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
# Headless chromium: the back office's browser tests (chromedp); CJK fonts so
# its Chinese pages (and their screenshots) show characters, not boxes.
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || missing="$missing fonts-noto-cjk"
# PostgreSQL server programs: the throwaway clusters of the HQ tests (initdb).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$missing postgresql"
# `install-tools.sh font`: also the Unifont source of the framebuffer font
# generator (make font); builds and tests use the committed subset.
if [ "$1" = font ]; then
	[ -f /usr/share/unifont/unifont.hex ] || missing="$missing unifont"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
else
	echo "missing:$missing (install them, e.g. sudo apt-get install$missing)" >&2
	exit 1
fi
