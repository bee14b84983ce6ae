# runferry developer targets. `make test` is what CI runs (see .ci/run).
# Python (.venv) is only for tests, fixture generators and benchmarks.

GO             ?= go
PYTHON         ?= python3
VENV           := $(CURDIR)/.venv
VENV_STAMP     := $(VENV)/.stamp
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT   ?= 25m
FUZZTIME       ?= 10s
GO_TEST_FLAGS  ?=
BIN            ?= bin

# One static binary: no cgo in any build, whatever the environment says.
export CGO_ENABLED := 0

# Every build and test compiles with -trimpath: no local folder is in a binary, and a
# package's compile no longer depends on the folder it is in, so TestBuiltBinaryReportsCommit's
# build in a clone of the checkout finds `make test`'s compiles in the build cache.
export GOFLAGS := $(strip $(filter-out -trimpath,$(GOFLAGS)) -trimpath)

export RUNFERRY_VENV := $(VENV)

.PHONY: all build venv test lint fuzz bench demo fixtures clean distclean screenshots

all: build

# `runferry --version` prints the commit: go build stamps it (vcs.revision, vcs.time,
# vcs.modified) in a clone, and these -X values, read from git here, stand in where it does
# not (a git worktree, GOFLAGS=-buildvcs=false). Outside git they are empty.
VCS_REVISION := $(shell git rev-parse HEAD 2>/dev/null)
VCS_TIME     := $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
VCS_MODIFIED := $(shell if [ -n "$$(git status --porcelain 2>/dev/null)" ]; then echo true; else echo false; fi)
LDFLAGS      := -X main.vcsRevision=$(VCS_REVISION) -X main.vcsTime=$(VCS_TIME) -X main.vcsModified=$(VCS_MODIFIED)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/runferry ./cmd/runferry

# The stamp is rebuilt whenever requirements-test.txt changes.
venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-test.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# The longest packages (docs/TESTING.md, by wall time in CI) come first, then ./... (go test
# drops the repeats): go test starts the test binaries in command-line order (cmd/go's test
# barriers), at most -p (the cores) at a time, so the long ones no longer start last and run
# alone at the end.
TEST_FIRST     ?= ./sinks/mlflow ./cmd/runferry ./internal/archive ./sources/mlflowsql \
                  ./sinks/parquetdir ./internal/testenv ./sources/mlflowfile ./sources/mlflow

test: venv
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) $(TEST_FIRST) ./...

# Renders a W&B fixture run copied into MLflow, as MLflow's UI shows it, into
# docs/images/ (needs Debian's chromium: apt-get install chromium).
screenshots: venv build
	RUNFERRY=$(CURDIR)/$(BIN)/runferry scripts/screenshots.sh $(CURDIR)/docs/images

lint:
	@out="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Runs every fuzz target briefly; targets are discovered, so new fuzzers are included.
fuzz:
	@set -e; \
	for f in $$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./.venv/' | sort); do \
		dir=$$(dirname $$f); \
		for name in $$(sed -n -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' $$f); do \
			echo "== $$dir $$name"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

# Go microbenchmarks, then side-by-side comparisons with what users would run
# instead (bench/run.sh), written to docs/BENCHMARKS.md. Inputs are generated
# once into BENCH_DIR and reused; bench/sync.sh (the incremental sync section)
# generates its own each time, since it grows them.
# bench-large adds the 100M-point archive run.
BENCH_DIR ?= $(or $(TMPDIR),/tmp)/runferry-bench

bench: venv
	mkdir -p $(BENCH_DIR)
	$(GO) test -run='^$$' -bench=. -benchmem ./... > $(BENCH_DIR)/go-bench.txt 2>&1 || { cat $(BENCH_DIR)/go-bench.txt; exit 1; }
	cat $(BENCH_DIR)/go-bench.txt
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/run.sh
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/sync.sh
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/mlflowstore.sh
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/s3.sh

# W&B folder -> parquet:s3:// against a local versitygw server, beside the
# same copy into a local folder and pyarrow's S3 filesystem (issue 15;
# bench/s3.sh).
.PHONY: bench-s3
bench-s3: venv
	mkdir -p $(BENCH_DIR)
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/s3.sh

# MLflow's SQL store read directly against the same runs through a real
# MLflow server (issue 14; bench/mlflowstore.sh).
.PHONY: bench-mlflowstore
bench-mlflowstore: venv
	mkdir -p $(BENCH_DIR)
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/mlflowstore.sh

# Incremental sync (issue 12): no-change sync and ls of 10,000 generated runs
# against a full copy, and a sync after 1% of them grew, into Parquet and
# (100 runs) into an MLflow server from the venv (bench/sync.sh).
.PHONY: bench-sync
bench-sync: venv
	mkdir -p $(BENCH_DIR)
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) bash bench/sync.sh

.PHONY: bench-large
bench-large: venv
	mkdir -p $(BENCH_DIR)
	RUNFERRY_BENCH_DIR=$(BENCH_DIR) BENCH_LARGE=1 bash bench/run.sh

# The main job on bundled data, no server: W&B run folders (made by the real SDK) into a
# Parquet archive, then the archive listed, summarised and checked against its source.
# Running it again shows that a re-run copies nothing twice. One fixture run names an artifact
# entry whose content is gone (the SDK's staged copy): it is named and counted, and
# --accept-gaps keeps it from failing the demo (exit 3 without).
demo: build
	$(BIN)/runferry copy wandb:testdata/wandb/fixtures parquet:./demo-archive --no-state --accept-gaps
	$(BIN)/runferry ls --count parquet:./demo-archive
	$(BIN)/runferry archive summary ./demo-archive
	$(BIN)/runferry check wandb:testdata/wandb/fixtures parquet:./demo-archive

# Regenerates the W&B run folders with the real wandb SDK (offline) and expected.json.
fixtures: venv
	$(VENV)/bin/python testdata/wandb/generate.py --out testdata/wandb/fixtures

clean:
	rm -rf bin demo-archive
	$(GO) clean -testcache

distclean: clean
	rm -rf $(VENV)
