# rds-csi: the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
FUZZTIME  ?= 10s
BENCHTIME ?= 2s
BIN       := bin

# Every fuzz target, as package:Target. CI runs each for FUZZTIME.
FUZZ_TARGETS := \
	./emulator/routeros:FuzzParse \
	./emulator/routeros:FuzzQuote \
	./driver/rds:FuzzParseDetail \
	./driver/rds:FuzzRoundTrip \
	./driver/rds:FuzzQuote \
	./driver/rds:FuzzDestructiveNeedsProof \
	./scenarios/spec:FuzzParse

.PHONY: all build demo emulator-demo scenarios test vet unit fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## demo: replay the 2026-02-05 outage on the virtual clock; the timeline prints, incident.html is the report.
demo:
	$(GO) run ./cmd/rds-scenario run scenarios/incidents/rds-crash-2026-02-05.yaml --report incident.html

## emulator-demo: start the emulator and play a scripted RouterOS session against it over SSH.
emulator-demo:
	$(GO) run ./cmd/rds-emulator demo

## test: everything CI runs: vet, race-enabled unit and integration tests, bounded fuzzing.
test: vet unit scenarios fuzz deploy-test

# The clock seam: code the scenario runner drives takes a clock.Clock. The binaries
# under cmd/ may use real time.
# scenarios/engine is exempt: its barrier settles in real time by design.
CLOCK_DIRS := driver emulator chaos scenarios/spec

vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@wall=$$(grep -rnE 'time\.(Now|Sleep|After|Since|Until|NewTimer|NewTicker|Tick|AfterFunc)\(' --include='*.go' $(CLOCK_DIRS) | grep -v '_test\.go:' || true); \
		if [ -n "$$wall" ]; then echo "wall-clock calls outside the clock seam:"; echo "$$wall"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

## scenarios: every shipped scenario, 20 runs each for determinism and 50 swarm seeds,
## without the race detector (the -race lane above runs fewer of each).
scenarios:
	$(GO) test -count=1 -timeout 15m -run 'TestShipped|TestDeterminism|TestSwarm|TestPlantedBugs|TestIncidentCompression' ./scenarios/

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

## bench: throughput and latency figures (see README for what each one means).
## Logs (stderr) are dropped so the figures stay readable.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./emulator/... ./driver/... 2>/dev/null

clean:
	rm -rf $(BIN)

## e2e: the driver against a real control plane (etcd, kube-apiserver,
## kube-controller-manager) and the real CSI sidecars, with the tests playing the
## kubelet. Root only (loop devices, mounts). hack/e2e/tools.sh builds the Kubernetes
## binaries once into ~/.cache/rds-csi/e2e (RDS_CSI_E2E_CACHE), keyed by version.
.PHONY: e2e
e2e:
	@vars="$$(hack/e2e/tools.sh)" && env $$vars $(GO) test -tags e2e -count=1 -timeout 60m -v ./e2e/...

## deploy-test: render deploy/ (kustomize overlays, Helm chart), decode every
## object strictly and check the install invariants; lint the Dockerfile, build
## ./cmd/... from the image's build context, shellcheck the kind scripts. The
## test lives in its own module (deploy/go.mod) to keep kustomize and Helm out of
## the driver's.
.PHONY: deploy-test kind-up kind-down kind-e2e
deploy-test:
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 ./...
	@if command -v shellcheck >/dev/null; then shellcheck deploy/kind/*.sh; else echo "shellcheck not installed: skipped (apt-get install shellcheck)"; fi

## kind-up / kind-down / kind-e2e: a kind cluster against the emulator (needs
## docker, kind, kubectl). See deploy/README.md.
kind-up:
	deploy/kind/kind-up.sh

kind-down:
	deploy/kind/kind-down.sh

kind-e2e:
	deploy/kind/kind-e2e.sh
