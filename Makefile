# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast venv lint typecheck pytest clean compose-test gateway-lock

venv: $(STAMP)

# Reinstall when the dependency list changes; the stamp keeps `make test` fast otherwise.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Local encoder + Milvus Lite + the bundled tiny model; generates and ingests demo pictures.
run: venv
	BIN=$(BIN) bash scripts/run_demo.sh

lint: venv
	$(BIN)/ruff check services tests scripts
	$(BIN)/ruff format --check services tests scripts

typecheck: venv
	$(BIN)/mypy

pytest: venv export-venv encoder-venv chromium vit-b32
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The inner loop, about a minute: lint, types and the tests that need neither of the two
# extra venvs nor a Milvus server (nor the slow ones, nor the browser). `make test` still runs everything.
FAST_MARKERS := not standalone and not encoder_venv and not export_venv and not slow and not browser
test-fast: lint typecheck
	$(BIN)/python -m pytest -q -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# Debian's chromium for the web app's browser tests (tests/web, marker `browser`): installed
# with apt when missing and we are root; Playwright drives it, never a browser of its own.
.PHONY: chromium
chromium:
	bash scripts/install_chromium.sh

# torch + open_clip for scripts/export_open_clip.py and its test; the script keeps a stamp.
# A ViT-B-32 export with random weights (600 MB, ~1.5 min), for the runtimes' cosine test
# (tests/encoder/test_runtimes_vit_b32.py); made once, kept in .cache.
.PHONY: vit-b32
vit-b32: export-venv
	[ -f .cache/ViT-B-32-random/visual.onnx ] || .venv-export/bin/python scripts/export_open_clip.py --random-init --out .cache/ViT-B-32-random

.PHONY: export-venv
export-venv:
	PYTHON=$(PYTHON) bash scripts/build_export_venv.sh

# clip-server 0.8.2 + clip-client (jina pins pydantic<2): a second venv, .venv-encoder,
# rebuilt only when services/encoder/{requirements,constraints}.txt change (stamp inside).
.PHONY: encoder-venv
encoder-venv:
	PYTHON=$(PYTHON) bash scripts/build_encoder_venv.sh

# The compose stack built and run for real (root, a private dockerd, ~9 min cold): opt-in,
# not part of `make test` or CI. Run it when deploy files change; see deploy/COMPOSE-TEST.md.
compose-test: venv
	BIN=$(BIN) bash deploy/compose-test/run.sh

# Re-pin the gateway image's dependencies (deploy/gateway.lock.txt) after changing pyproject.
gateway-lock:
	PYTHON=$(PYTHON) bash scripts/lock_gateway.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
