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
	./driver/rds:FuzzQuote

.PHONY: all build demo test vet unit fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## demo: start the emulator and play a scripted RouterOS session against it.
demo:
	$(GO) run ./cmd/rds-emulator demo

## test: everything CI runs: vet, race-enabled unit and integration tests, bounded fuzzing.
test: vet unit fuzz

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
