# clustercls: `make demo` runs the whole job end to end; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := data/sample_listings.csv
OUT    := data/processed

# MLflow draws a progress bar per artifact download; the logs do not need them.
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: setup data train evaluate predict promote review report demo test test-slow test-code test-data test-model fuzz lint format clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py src/clustercls/_cleaner.c src/clustercls/_ngrams.c src/clustercls/_tokens.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@# The build skips a compiled part it cannot compile; say so rather than run slow unawares.
	@$(BIN)/python -c "from clustercls.predict import compiled_parts; \
	missing = [k for k, v in compiled_parts().items() if not v]; \
	missing and print('note: compiled parts not built:', ', '.join(missing), \
	'- same results, about half the speed (needs gcc and libpcre2-dev; see README)')"
	touch $@

data: setup
	$(BIN)/clustercls data build

train: setup
	$(BIN)/clustercls train

evaluate: setup
	$(BIN)/clustercls evaluate

predict: setup
	$(BIN)/clustercls predict --input $(SAMPLE) --output $(OUT)/sample_predictions.csv
	@head -n 6 $(OUT)/sample_predictions.csv

promote: setup
	$(BIN)/clustercls promote || test $$? -eq 5

review: setup
	$(BIN)/clustercls review --out $(OUT)/review

# A reviewer's one command from a fresh clone: build, train, write the report, open it.
report: data train review
	@echo "report: $(OUT)/review/report.html"
	-@command -v xdg-open >/dev/null && xdg-open $(OUT)/review/report.html >/dev/null 2>&1 || true

demo: data train evaluate predict promote review

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

# One layer at a time (markers in pyproject.toml): code, data or model.
test-code test-data test-model: test-%: setup
	$(BIN)/python -m pytest -m "$* and not slow"

# The C parts read Python's buffers and write into numpy's: a bug there corrupts memory
# silently or differs from the Python twin only on odd input. This rebuilds both with
# ASan and UBSan (out of tree) and compares them with their twins on generated and hostile
# text for FUZZ_SECONDS (build included); a sanitizer report or any difference fails.
FUZZ_SECONDS ?= 240
FUZZ_SEED ?=
fuzz: setup
	$(BIN)/python -m tests.fuzz.fuzz_compiled --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(OUT) models/v* mlflow.db mlruns
