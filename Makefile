# digester: `make demo` and `make test` do all set-up on a fresh machine (see README).
GO      ?= go
BIN     := bin/digester
# What digester --version prints, and the image's org.opencontainers.image.version and .revision labels.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
export GOTOOLCHAIN := local
export GOFLAGS     := -buildvcs=false

.PHONY: all build build-webhook deps demo test unit fuzz-short fuzz stress mutate bench bench-webhook image image-webhook image-docker e2e clean

all: build

## build: the static binary, as shipped.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w -X main.version=$(VERSION) -X main.commit=$(REVISION)' -o $(BIN) .

## build-webhook: the admission webhook's static binary (cmd/webhook), a command of its own.
build-webhook:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/digester-webhook ./cmd/webhook

## deps: what the tests need beyond Go (apt packages, pinned Go tools); idempotent.
deps:
	./scripts/install-deps.sh

## demo: pin an example package against an in-process registry; needs no internet.
demo: build
	$(GO) run ./cmd/demo -digester $(BIN)

## test: everything: vet, unit, golden, binary and end-to-end tests, and a short run of each fuzz target.
test: deps build
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -count=1 ./...
	$(MAKE) fuzz-short

## fuzz-short: each fuzz target for 10,000 inputs, a few seconds (part of make test).
fuzz-short:
	./scripts/fuzz.sh 10000x

## fuzz: each fuzz target for 500,000 inputs, one to four minutes.
fuzz:
	./scripts/fuzz.sh 500000x

## stress: the token race test (issue 15) 1,002 times, a third each under GOMAXPROCS 1, 2 and 4; a few minutes.
## Then the model-based test of the three front ends (e2e/model) on MODEL_CASES new random cases (make test runs the same 25 each time) (default 500,
## about ten minutes); a failing case prints its seed, MODEL_SEED=N go test ./e2e/model -run TestModel runs it again.
MODEL_CASES ?= 500
stress:
	$(GO) test -count=1 -timeout 60m -run '^TestTokenStress$$' -cpu 1,2,4 ./resolver -args -stress 334
	MODEL_RANDOM=1 $(GO) test -count=1 -timeout 120m -run '^TestModel$$' ./e2e/model -args -cases $(MODEL_CASES)

## mutate: mutation testing (gremlins, pinned in tools/go.mod) of each package in MUTATE, one at a time
## with one worker (the tests themselves run concurrently); fails below 90 % efficacy. Tens of
## minutes; not part of make test. Survivors judged equivalent are listed in docs/testing.md. -count=1: gremlins
## times each mutant's tests from its coverage run, and a cached coverage run (1 s) timed every mutant out.
MUTATE ?= resolver walker config pin podcreds
mutate:
	cd tools && $(GO) build -o ../bin/gremlins github.com/go-gremlins/gremlins/cmd/gremlins
	@mkdir -p out
	@set -e; for p in $(MUTATE); do \
	  echo "== $$p"; \
	  GOFLAGS="$(GOFLAGS) -count=1" bin/gremlins unleash ./$$p --config tools/gremlins.yaml --workers 1 --timeout-coefficient 10 \
	    --output-statuses lt -o out/mutate-$${p##*/}.json; \
	done

## bench: digester against a no-op SDK function on generated packages, registry on loopback (docs/performance.md).
bench: build bench-webhook
	$(GO) run ./bench -digester $(BIN)

## bench-webhook: AdmissionReviews over HTTPS at rising rates: p50/p99 latency and lookups (bench/webhook).
bench-webhook:
	$(GO) run ./bench/webhook

## image: the linux/amd64+arm64 image as an OCI layout in out/image, without docker; IMAGE=registry/digester:tag also pushes it,
## LOAD=localhost/digester:dev also loads the image of the Docker daemon's platform into it (docker load; kpt then needs no registry).
## Files are dated to the last commit (SOURCE_DATE_EPOCH), so a commit always gives the same digest.
image:
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  $(GO) run ./cmd/mkimage -out out/image -version '$(VERSION)' -revision '$(REVISION)' $(if $(IMAGE),-push $(IMAGE)) $(if $(LOAD),-load $(LOAD))

## image-webhook: the admission webhook's image (cmd/webhook, deploy/webhook runs it), the same way, in out/image-webhook;
## IMAGE=registry/digester-webhook:tag pushes it, LOAD=localhost/digester-webhook:dev loads it.
image-webhook:
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  $(GO) run ./cmd/mkimage -image webhook -out out/image-webhook -version '$(VERSION)' -revision '$(REVISION)' $(if $(IMAGE),-push $(IMAGE)) $(if $(LOAD),-load $(LOAD))

## image-docker: the same image for this machine's platform with `docker build` (Dockerfile, FROM scratch: nothing is pulled), tagged TAG.
TAG ?= localhost/digester:dev
image-docker: build
	$(GO) run ./cmd/mkimage -rootfs out/rootfs
	docker build --build-arg VERSION='$(VERSION)' --build-arg REVISION='$(REVISION)' -t $(TAG) .

clean:
	rm -rf bin out
