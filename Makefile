# The two commands of the README: `make demo` and `make test`. Both set up on first run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
MODEL  ?=
EXTRAS := serving,models,client,deploy,test,bench,notebook
VIDEO  ?=

.PHONY: all venv java test demo bench soak clean constraints

all: test

# The venv is rebuilt when the pins or the package metadata change.
$(STAMP): constraints.txt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c constraints.txt pip setuptools wheel
	$(PIP) install --quiet -c constraints.txt --no-build-isolation -e '.[$(EXTRAS)]'
	$(PIP) check
	touch $(STAMP)

venv: $(STAMP)

# MMS needs Java 8+. Install it when missing and we can (root with apt-get).
java:
	@if command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "java not found: installing openjdk-17-jre-headless"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	else \
	  echo "java not found: Multi Model Server needs Java 8+. Install it (Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME, then rerun."; \
	  exit 1; \
	fi

test: $(STAMP) java
	$(BIN)/python -m pytest

demo: $(STAMP) java
	$(BIN)/frame-infer demo $(if $(MODEL),--model $(MODEL)) $(if $(VIDEO),--video $(VIDEO))

# Re-resolve the pins after changing requirements.in (then review the diff).
constraints:
	rm -rf build/constraints-venv && $(PYTHON) -m venv build/constraints-venv
	build/constraints-venv/bin/pip install --quiet -r requirements.in '.[$(EXTRAS),peers]'
	(echo "# Every install uses this file: pip install -c constraints.txt ... (numpy<1.24 for mxnet)."; \
	 build/constraints-venv/bin/pip freeze --all | grep -v -i '^frame-infer') > constraints.txt

clean:
	rm -rf build .pytest_cache

# Benchmarks (a quiet machine gives steadier numbers): writes build/bench/;
# `make bench SAVE=1` also updates benchmarks/results/ (the README's table).
bench: $(STAMP) java
	OMP_NUM_THREADS=$$(nproc) $(BIN)/python -m benchmarks.bench $(if $(SAVE),--save)

# Load and faults against `frame-infer serve` (a few minutes; not in CI): writes
# build/soak/soak.md; `make soak SAVE=1` also updates benchmarks/results/soak.md.
soak: $(STAMP) java
	$(BIN)/python -m benchmarks.soak $(if $(SAVE),--save)

# The served path against the Python servers a user would pick instead (LitServe, Ray
# Serve, BentoML, FastAPI + uvicorn; benchmarks/peers/). The peers' ~75 packages go into a
# venv of their own under build/, pinned by the same constraints.txt, so `make test` and
# `make demo` never install or import them and .venv is not rewritten under running tests.
# Minutes on a quiet machine (320 frames of all five took 4 min at load average 3-8);
# writes build/bench-peers/peers.{md,json,png} and the servers' logs in logs/ there;
# `make bench-peers SAVE=1` also updates benchmarks/results/.
PEERS_VENV  := build/peers-venv
PEERS_STAMP := $(PEERS_VENV)/.installed
.PHONY: bench-peers

$(PEERS_STAMP): constraints.txt setup.cfg pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -c constraints.txt pip setuptools wheel
	$(PEERS_VENV)/bin/python -m pip install --quiet -c constraints.txt --no-build-isolation \
	  -e '.[serving,models,client,bench,peers]'
	$(PEERS_VENV)/bin/python -m pip check
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP) java
	$(PEERS_VENV)/bin/python -m benchmarks.peers $(if $(SAVE),--save)
