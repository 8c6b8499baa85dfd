#!/usr/bin/env bash
# build/demo.sh — the posagent lab in one command (`make demo` runs it after
# `make build`): an embedded MQTT broker, the acquirer simulator, the HQ
# service (hqd on SQLite: activation codes and service, jobs, API) and one
# simulated terminal, DEMO-0001, whose screen and keypad are this terminal.
#
# Usage: build/demo.sh [--fresh] [--lang en|zh-CN]
#
# The lab lives in .demo/ (kept between runs: the terminal stays activated,
# its batch stays open). --fresh (or DEMO_FRESH=1) starts over. --lang
# zh-CN (or DEMO_LANG=zh-CN) shows the Chinese terminal: its screens, and
# its receipts in GB18030 (iconv -f GB18030 .demo/receipts.txt). Every
# screen is also drawn as the terminal's 320x240 LCD would show it, into
# .demo/screen.png (open it in an image viewer that reloads).
#
# Environment, for tests and for running two labs side by side:
#   DEMO_DIR          work directory (default .demo in the repository)
#   DEMO_BIN          directory of posagentd, hqctl, hqd, acquirer-sim (default build/out)
#   DEMO_BROKER_PORT  lab broker port (default 18883)
#   DEMO_ACQ_PORT     acquirer simulator port (default 15000)
#   DEMO_HQ_PORT      hqd's API port on 127.0.0.1 (default 18440)
#   DEMO_FRESH=1      same as --fresh
#   DEMO_LANG         same as --lang
#
# The terminal runs in the foreground; when it asks for a reboot (exit
# status 3, [hal] reboot = "exit") it is started again, like a supervisor
# would. Ctrl-C stops it and everything the script started. Logs:
# .demo/{broker,acquirer,hqd,posagentd}.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SERIAL=DEMO-0001
TECH_PWD=4321
SUPERVISOR_PWD=123456
TID=10000001
MID=100000000000001
MERCHANT="POSAGENT DEMO SHOP"
# Back-office logins of the demo (operators made on the first run).
ADMIN_PWD=admin-demo-pass
REQUESTER_PWD=alice-demo-pass
APPROVER_PWD=bob-demo-pass

BIN=${DEMO_BIN:-build/out}
DIR=${DEMO_DIR:-.demo}
BROKER_PORT=${DEMO_BROKER_PORT:-18883}
ACQ_PORT=${DEMO_ACQ_PORT:-15000}
HQ_PORT=${DEMO_HQ_PORT:-18440}
FRESH=${DEMO_FRESH:-0}
LANG_UI=${DEMO_LANG:-en}

usage="usage: build/demo.sh [--fresh] [--lang en|zh-CN]"
while [ $# -gt 0 ]; do
	case $1 in
	--fresh) FRESH=1 ;;
	--lang)
		if [ $# -lt 2 ]; then
			echo "demo: --lang needs a value ($usage)" >&2
			exit 2
		fi
		LANG_UI=$2
		shift
		;;
	--lang=*) LANG_UI=${1#--lang=} ;;
	-h | --help)
		sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown argument $1 ($usage)" >&2
		exit 2
		;;
	esac
	shift
done
case $LANG_UI in
en | zh-CN) ;;
*)
	echo "demo: --lang $LANG_UI: want en or zh-CN" >&2
	exit 2
	;;
esac
if [ "$LANG_UI" = zh-CN ]; then
	MERCHANT="上海演示商户"
fi

for b in posagentd hqctl hqd acquirer-sim; do
	if [ ! -x "$BIN/$b" ]; then
		echo "demo: $BIN/$b is missing: run make build (or make demo)" >&2
		exit 1
	fi
done
BIN=$(cd "$BIN" && pwd)

# --fresh wipes only a directory this script made (it holds the marker),
# never some other directory DEMO_DIR happens to name.
if [ "$FRESH" = 1 ] && [ -e "$DIR" ]; then
	if [ -e "$DIR/.posagent-demo" ] || [ -z "$(ls -A "$DIR")" ]; then
		rm -rf "$DIR"
	else
		echo "demo: $DIR is not a demo directory (no .posagent-demo marker); not wiping it" >&2
		exit 1
	fi
fi
mkdir -p "$DIR"
chmod 700 "$DIR"
DIR=$(cd "$DIR" && pwd)
touch "$DIR/.posagent-demo"

# One lab per directory: a second `make demo` would fight over the ports
# and the terminal's store.
exec 9>"$DIR/demo.lock"
if ! flock -n 9; then
	echo "demo: another demo is running in $DIR" >&2
	exit 1
fi

PIDS=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# wait_for LOG TEXT PID WHAT: wait until LOG contains TEXT, or fail if the
# process died or 15 s passed.
wait_for() {
	local log=$1 text=$2 pid=$3 what=$4 i
	for i in $(seq 150); do
		if grep -q "$text" "$log" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "demo: $what exited; its log ($log):" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "demo: $what did not start within 15 s; its log ($log):" >&2
	tail -n 20 "$log" >&2
	exit 1
}

# --- once: HQ signing key and the terminal's factory identity ---
if [ ! -f "$DIR/hq/hq-1.key" ]; then
	"$BIN/hqctl" keygen --kid hq-1 --out "$DIR/hq" >/dev/null
fi
# The demo's root key (demo-admin's): it signs key rollouts (hq_keys), so
# keys the operators make in their browsers reach the terminal.
if [ ! -f "$DIR/hq/root-1.key" ]; then
	"$BIN/hqctl" keygen --kid root-1 --out "$DIR/hq" >/dev/null
fi
if [ ! -f "$DIR/registry.jsonl" ]; then
	if [ -e "$DIR/data/identity.db" ]; then
		echo "demo: $DIR/data has an identity but no registry.jsonl: start over with build/demo.sh --fresh" >&2
		exit 1
	fi
	printf '%s\n' "$TECH_PWD" >"$DIR/tech-pwd"
	chmod 600 "$DIR/tech-pwd"
	"$BIN/posagentd" factory-init --data-dir "$DIR/data" --serial "$SERIAL" \
		--hq-key "hq-1=$(tr -d '\n' <"$DIR/hq/hq-1.pub")" \
		--hq-root-key "root-1=$(tr -d '\n' <"$DIR/hq/root-1.pub")" --tech-pwd-file "$DIR/tech-pwd" \
		>"$DIR/registry.jsonl.tmp"
	mv "$DIR/registry.jsonl.tmp" "$DIR/registry.jsonl"
fi

# The card reader is a FIFO: every `build/swipe.sh` line is one swipe.
if [ ! -p "$DIR/card" ]; then
	rm -f "$DIR/card"
	mkfifo -m 600 "$DIR/card"
fi

cat >"$DIR/posagent.toml" <<EOF
# Written by build/demo.sh on every run.
data_dir = "$DIR/data"
log_level = "info"

[hal]
kind = "sim"
console = "stdio"
card_reader = "$DIR/card"
printer = "$DIR/receipts.txt"
reboot = "exit"
# The screens as the terminal's 320x240 LCD shows them, for people who
# would rather look than read.
display_png = "$DIR/screen.png"
display_png_size = "320x240"

[ui]
lang = "$LANG_UI"

[mqtt]
broker = "tcp://127.0.0.1:$BROKER_PORT"

[acquirer]
timeout = "30s"
EOF

# --- the lab in the background ---
"$BIN/hqctl" broker --listen "127.0.0.1:$BROKER_PORT" >"$DIR/broker.log" 2>&1 &
PIDS+=($!)
wait_for "$DIR/broker.log" "listening" "$!" "the lab broker (port $BROKER_PORT)"

"$BIN/acquirer-sim" --listen "127.0.0.1:$ACQ_PORT" --keys "$DIR/acquirer-keys.json" \
	--ledger "$DIR/ledger.json" >"$DIR/acquirer.log" 2>&1 &
PIDS+=($!)
wait_for "$DIR/acquirer.log" "listening on" "$!" "the acquirer simulator (port $ACQ_PORT)"

# HQ: hqd on SQLite with the demo's ops key hq-1 (it signs provision
# commands and unbinds: the demo's policy needs one signature). An admin
# operator's API token lets hqctl (and this script) talk to it.
cat >"$DIR/hqd.toml" <<EOF
# Written by build/demo.sh on every run.
db = "sqlite://$DIR/hq.db"
[mqtt]
broker = "tcp://127.0.0.1:$BROKER_PORT"
client_id = "hqd-demo"
[http]
listen = "127.0.0.1:$HQ_PORT"
[signing]
key_file = "$DIR/hq/hq-1.key"
[activation]
acquirer_keys = "$DIR/acquirer-keys.json"
[jobs]
resend_interval = "30s"
EOF
if [ ! -f "$DIR/admin.token" ]; then
	printf '%s\n' "$ADMIN_PWD" >"$DIR/admin.pwd"
	"$BIN/hqd" operator add --config "$DIR/hqd.toml" --name demo-admin --roles admin \
		--password-file "$DIR/admin.pwd" --token-out "$DIR/admin.token" >>"$DIR/hqd.log" 2>&1
fi
# The back office's two demo operators: one asks for unbinds (and issues
# activation codes), the other reviews them.
if [ ! -f "$DIR/operators" ]; then
	printf '%s\n' "$REQUESTER_PWD" >"$DIR/requester.pwd"
	printf '%s\n' "$APPROVER_PWD" >"$DIR/approver.pwd"
	"$BIN/hqd" operator add --config "$DIR/hqd.toml" --name alice --roles requester,technician \
		--password-file "$DIR/requester.pwd" >>"$DIR/hqd.log" 2>&1
	"$BIN/hqd" operator add --config "$DIR/hqd.toml" --name bob --roles approver \
		--password-file "$DIR/approver.pwd" >>"$DIR/hqd.log" 2>&1
	"$BIN/hqd" key add --config "$DIR/hqd.toml" --kid root-1 --pub "$(tr -d '\n' <"$DIR/hq/root-1.pub")" \
		--role root --operator demo-admin >>"$DIR/hqd.log" 2>&1
	touch "$DIR/operators"
fi
"$BIN/hqd" register --config "$DIR/hqd.toml" "$DIR/registry.jsonl" >>"$DIR/hqd.log" 2>&1
"$BIN/hqd" run --config "$DIR/hqd.toml" >>"$DIR/hqd.log" 2>&1 &
PIDS+=($!)
wait_for "$DIR/hqd.log" "subscribed to" "$!" "the HQ service (hqd, port $HQ_PORT)"
export HQCTL_HQ="http://127.0.0.1:$HQ_PORT"
hq_state() { "$BIN/hqctl" fleet state --token-file "$DIR/admin.token" "$SERIAL" 2>/dev/null || echo unknown; }

# --- the terminal in the foreground ---
SWIPE=build/swipe.sh
if [ -n "${DEMO_DIR:-}" ]; then
	SWIPE="DEMO_DIR=$DIR build/swipe.sh"
fi

# banner prints the lab's facts above the terminal's screen. It issues a
# fresh activation code unless HQ saw the terminal activated.
BANNER_LINES=0
banner() {
	local state code lines=()
	state=$(hq_state)
	lines+=("posagent demo: terminal $SERIAL ($LANG_UI)")
	if [ "$state" = active ]; then
		lines+=("  terminal          ACTIVE (activated in an earlier run; --fresh starts over)")
	else
		code=$("$BIN/hqctl" code issue --token-file "$DIR/admin.token" --serial "$SERIAL" \
			--tid "$TID" --mid "$MID" --merchant-name "$MERCHANT" \
			--acquirer "127.0.0.1:$ACQ_PORT" --json | sed -n 's/.*"code":"\([0-9]\{8\}\)".*/\1/p')
		if [ -z "$code" ]; then
			echo "demo: could not issue an activation code" >&2
			exit 1
		fi
		lines+=("  activation code   $code   (1 ACTIVATE, tech pwd, code, Enter)")
	fi
	lines+=("  technician pwd    $TECH_PWD")
	lines+=("  supervisor pwd    $SUPERVISOR_PWD")
	lines+=("  swipe a card      from another terminal: $SWIPE [PAN]")
	lines+=("  HQ back office    $HQCTL_HQ/  in a browser (API token .demo/admin.token)")
	lines+=("  operators         alice / $REQUESTER_PWD (requester)   bob / $APPROVER_PWD (approver)   demo-admin / $ADMIN_PWD")
	lines+=("  the LCD           $DIR/screen.png")
	lines+=("  quit              Ctrl-C        lab and logs: $DIR")
	lines+=("--------------------------------------------------------------------------")
	printf '\033[2J\033[H'
	printf '%s\n' "${lines[@]}"
	# Rows taken, counting the lines the terminal wraps.
	local cols l
	cols=$(stty size 2>/dev/null </dev/tty | cut -d' ' -f2) || true
	case $cols in '' | *[!0-9]* | 0) cols=80 ;; esac
	BANNER_LINES=0
	for l in "${lines[@]}"; do
		BANNER_LINES=$((BANNER_LINES + (${#l} + cols - 1) / cols))
	done
}

# below_banner keeps the banner on screen: each terminal screen starts
# with ESC[2J ESC[H (erase all, home), which would wipe it; this rewrites
# that into "go to the line under the banner, erase below". Screens come
# in one write each (hal/console.Render), so a 4 KiB read holds whole ones.
# SIGINT is ignored: the filter ends when posagentd closes the pipe, so
# Ctrl-C never leaves posagentd writing into a dead pipe.
below_banner() {
	if ! command -v perl >/dev/null 2>&1; then
		cat
		return
	fi
	ROW=$((BANNER_LINES + 1)) perl -e '
		$SIG{INT} = "IGNORE"; $| = 1;
		my $to = "\e[$ENV{ROW};1H\e[J";
		while (sysread(STDIN, my $b, 4096)) { $b =~ s/\e\[2J\e\[H/$to/g; print $b; }'
}

# From here Ctrl-C is the way out: posagentd gets the SIGINT too and stops
# cleanly (exit 0, store closed); the loop then ends and cleanup runs.
# (bash runs a trap only once the foreground pipeline is done, so a
# SIGTERM or SIGHUP sent to this script alone waits for posagentd.)
STOP=0
trap 'STOP=1' INT TERM HUP
while :; do
	banner
	set +e
	"$BIN/posagentd" --config "$DIR/posagent.toml" 2>>"$DIR/posagentd.log" | below_banner
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" = 3 ] && [ "$STOP" = 0 ]; then
		echo "demo: the terminal asked for a reboot; starting it again" >>"$DIR/posagentd.log"
		# An unbind reboots: give hqd a moment to record the unbind's final
		# ack (or the `unbound` event), so the banner offers a new code.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ "$(hq_state)" = active ] || break
			sleep 0.3
		done
		continue
	fi
	break
done
printf '\ndemo: stopped (the lab stays in %s; build/demo.sh resumes it)\n' "$DIR"
if [ "$rc" != 0 ]; then
	echo "demo: posagentd exited with status $rc; see $DIR/posagentd.log" >&2
	tail -n 5 "$DIR/posagentd.log" >&2
fi
exit "$rc"
