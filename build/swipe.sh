#!/bin/sh
# build/swipe.sh [PAN [YYMM]] — swipe a card on the demo terminal: writes one
# track-2 line into the card reader FIFO of build/demo.sh (.demo/card, or
# $DEMO_DIR/card). Default: the test card 6222021234567890123, expiry 2512.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${DEMO_DIR:-$ROOT/.demo}
PAN=${1:-6222021234567890123}
EXP=${2:-2512}

case $PAN in
*[!0-9]* | "")
	echo "swipe: PAN must be 12 to 19 digits" >&2
	exit 2
	;;
esac
if [ ${#PAN} -lt 12 ] || [ ${#PAN} -gt 19 ]; then
	echo "swipe: PAN must be 12 to 19 digits" >&2
	exit 2
fi
if [ ! -p "$DIR/card" ]; then
	echo "swipe: no card reader at $DIR/card: is build/demo.sh running?" >&2
	exit 1
fi
# The terminal holds the FIFO open while it runs; with nobody reading, the
# open would block forever, so give up after 5 s.
if ! timeout 5 sh -c 'printf ";%s=%s1010000000000?\n" "$1" "$2" >"$3"' swipe "$PAN" "$EXP" "$DIR/card"; then
	echo "swipe: the terminal is not reading $DIR/card (not running?)" >&2
	exit 1
fi
echo "swiped ${PAN%"${PAN#??????}"}******${PAN#"${PAN%????}"}"
