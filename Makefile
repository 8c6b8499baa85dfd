# posagent — build, test and demo targets. See README.md.
#
# `make test` and `make demo` install what they need when it is missing:
# Go modules, and (as root on Debian) mosquitto and qemu-user-static.

GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
OUT       := build/out
CMDS      := posagentd hqctl hqd acquirer-sim
# acquirer-sim is a host-side tool on the moov-io reference codec, which
# does not compile for 32-bit ARM (moov-io/iso8583 v0.26.1 prefix/binary.go
# overflows int): only the terminal-side binaries are cross-built.
ARM_CMDS  := posagentd hqctl
# Packages whose tests also run for ARMv7 under qemu-arm-static.
ARM_TEST_PKGS := ./storage/... ./terminal/... ./iso8583 ./iso8583/acqmsg ./iso8583/mac ./iso8583/link ./hal/evdev ./hal/fbdev/...
TEST_TIMEOUT  ?= 12m
BENCHTIME     ?= 1s
FUZZTIME      ?= 20s

export CGO_ENABLED ?= 0

.PHONY: test-standalone all build test test-unit test-arm test-arm-core bench fuzz arm demo lint clean deps tools soak

all: build

## deps: download Go modules; install mosquitto and qemu-user-static when missing
deps:
	@$(GO) mod download
	@build/install-tools.sh

build:
	@mkdir -p $(OUT)
	@for c in $(CMDS); do \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/$$c ./cmd/$$c || exit 1; \
	done

## arm: static ARMv7 and ARM64 binaries into build/out/
arm:
	@mkdir -p $(OUT)
	@for c in $(ARM_CMDS); do \
		GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/$$c-armv7 ./cmd/$$c || exit 1; \
		GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/$$c-arm64 ./cmd/$$c || exit 1; \
	done
	@ls -l $(OUT)/*-armv7 $(OUT)/*-arm64

STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(OUT)/tools/staticcheck

$(STATICCHECK):
	@mkdir -p $(OUT)/tools
	GOBIN=$(CURDIR)/$(OUT)/tools CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet, staticcheck and `go mod tidy -diff`
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

## test-standalone: the repository stands alone: a clone of HEAD with
## nothing beside it runs the tests that read testdata
test-standalone:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	git clone -q . "$$tmp/posagent" && cd "$$tmp/posagent" && \
	! grep -rn --include='*.go' -e 'shared/spec' . && \
	$(GO) test -count=1 ./iso8583/... ./hal/sesim && echo "standalone clone: ok"

## test: every test — lint, unit and integration tests (real mosquitto, TCP,
## ptys, bbolt, kill -9), then the core packages for ARMv7 under qemu.
test: deps lint build test-unit test-standalone test-arm-core test-arm
	@echo "make test: all passed"

test-unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# The core packages' tests cross-compiled for ARMv7 and run under
# qemu-arm-static; POSAGENT_EXEC_WRAPPER lets a test that re-executes itself
# (the kill -9 power-cut tests) start the child under qemu too, without
# binfmt_misc.
test-arm-core: arm
	GOOS=linux GOARCH=arm GOARM=7 POSAGENT_EXEC_WRAPPER=qemu-arm-static \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -exec qemu-arm-static $(ARM_TEST_PKGS)
	qemu-arm-static $(OUT)/posagentd-armv7 version

## test-arm: the agent's end-to-end tests with the ARMv7 build of posagentd
## under qemu-arm-static; the harness (and acquirer-sim, mosquitto) stay native
ARM_E2E_TESTS ?= ^(TestE2E|TestRemoteUnbindTLSAndACL|TestRemoteRejections|TestRemoteOfflineDelivery)
test-arm: arm
	POSAGENT_TEST_DAEMON=$(CURDIR)/$(OUT)/posagentd-armv7 POSAGENT_TEST_DAEMON_WRAPPER=qemu-arm-static \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(ARM_E2E_TESTS)' ./cmd/posagentd

## soak: the power-cut tests with many more kill points
SOAK ?= 1000
soak:
	POSAGENT_SOAK=$(SOAK) $(GO) test -count=1 -timeout 60m -run 'PowerCut' -v ./cmd/posagentd

## bench: codec fast path vs moov-io side by side, with ratios
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./iso8583/reference/ | tee $(OUT)/bench-iso8583.txt
	@$(GO) run ./iso8583/internal/benchratio < $(OUT)/bench-iso8583.txt

## fuzz: each fuzz target for FUZZTIME
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## font: regenerate the framebuffer's Unifont subset from the message
## catalog (after a word changes; needs Debian's unifont, installed here)
font:
	@build/install-tools.sh font
	$(GO) run ./hal/fbdev/internal/fontgen

## demo: the host simulator against the acquirer simulator and a lab broker
## (make demo DEMO_LANG=zh-CN: the Chinese terminal)
demo: deps build
	@build/demo.sh $(if $(DEMO_LANG),--lang $(DEMO_LANG))

clean:
	rm -rf $(OUT) .demo

## package: .deb and .ipk for armhf (arm7), arm64 and amd64 into build/out/,
## with nfpm v2.45.2 run as a tool (see README.md, "Packaging")
package:
	VERSION=$(VERSION) GO=$(GO) OUT=$(OUT) build/package.sh
	@ls -l $(OUT)/*.deb $(OUT)/*.ipk

## test-package: build the amd64 .deb/.ipk of the three packages, inspect
## them, install over the pre-split package, upgrade and purge in a scratch
## root with dpkg, systemd-analyze verify both units, hqd's sample config
## parses, an upgrade during a sale;
## check the Buildroot package and the Yocto recipe, and reproduce both build
## systems' builds for ARMv7 and ARM64 (build/buildflags.md)
test-package:
	@build/install-tools.sh
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '^(TestPackage|TestIdleRestart)' -v ./cmd/posagentd
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '^TestShippedSampleConfig$$' -v ./cmd/hqd
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./build ./internal/modlicense ./hal/reboot

## yocto-includes: regenerate the Yocto recipe's gomod:// and license
## includes from go.mod and the module cache
yocto-includes:
	$(GO) mod download
	$(GO) run ./internal/modlicense/cmd/modlicense yocto -o build/yocto ./cmd/posagentd

## footprint: stripped ARMv7 binary size, idle RSS (amd64 and qemu-arm-static),
## cold start to MAIN MENU with a 999-transaction batch
footprint:
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkFootprint' -timeout $(TEST_TIMEOUT) ./cmd/posagentd

.PHONY: package test-package footprint font yocto-includes

## bench-hq: HQ figures: code issue and job creation at 100,000 terminals
## (SQLite, PostgreSQL; p99 and mean), a job over all of them, signature
## batches at that size, acks/s ingested by two hqd instances on PostgreSQL,
## a 10,000-terminal unbind job end to end with its settlement peak
bench-hq:
	@mkdir -p $(OUT)
	uptime | tee $(OUT)/bench-hq.txt
	$(GO) test -run '^$$' -bench '^Benchmark(IssueCode|CreateJob)$$' -benchtime 2000x -timeout 30m ./internal/hq/store/ | tee -a $(OUT)/bench-hq.txt
	$(GO) test -run '^$$' -bench '^Benchmark(CreateJobFleet|AddSignatures)$$' -benchtime 1x -timeout 30m ./internal/hq/store/ | tee -a $(OUT)/bench-hq.txt
	$(GO) test -run '^$$' -bench 'IngestAcks|UnbindJob10k' -benchtime 1x -timeout 60m -v ./cmd/hqd/ | grep -E 'Benchmark|bench_test|ok|FAIL' | tee -a $(OUT)/bench-hq.txt
	uptime | tee -a $(OUT)/bench-hq.txt

.PHONY: bench-hq

## screenshots: the back office's pictures in docs/img (README), taken by its
## browser tests in headless chromium against a real hqd and terminals
screenshots:
	$(GO) test -count=1 -run '^(TestBackOfficeInBrowser|TestKeyRolloutAndPolicy)$$' -timeout 20m ./internal/hq/web -args -screenshots $(CURDIR)/docs/img

## bench-backoffice: the fleet page at 100,000 terminals (SQLite, PostgreSQL)
bench-backoffice:
	@mkdir -p $(OUT)
	$(GO) test -run '^$$' -bench BenchmarkFleetPage -benchtime 50x -timeout 30m ./internal/hq/web | tee $(OUT)/bench-backoffice.txt

.PHONY: screenshots bench-backoffice
