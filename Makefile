# aspstate — see README.md. Every target works on a fresh clone.
GO        ?= go
BIN       := bin/aspstate
REVISION  := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -s -w -X main.revision=$(REVISION)
FUZZTIME  ?= 2m
TESTFLAGS ?=

# testcontainers-go: no Ryuk (no registry to pull it from), reach mapped ports over loopback.
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := localhost

.PHONY: all build run test lint fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/aspstate

## run: the main job — reference server in-process, a short real exchange.
run: build
	./scripts/demo.sh

## test: formatting, vet, and every test with the race detector.
test: lint
	$(GO) test -race -timeout 12m $(TESTFLAGS) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run every native fuzz target for FUZZTIME each.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## bench: Go benchmarks of the codec and store.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./protocol/ ./servers/...

clean:
	rm -rf bin
