# minimod — every target sets up .venv by itself when it is missing or out of date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Hypothesis profile: `ci` (modest, derandomized) by default; `make test PROFILE=dev` for more examples.
PROFILE ?= ci
PYTEST_ARGS ?=

.PHONY: help setup test lint workbook demo results bench clean

help:
	@echo "make test      set up .venv and run the test suite (minimod, then generated solutions)"
	@echo "make demo      set up .venv, pretrain a small GPT and BERT on built-in data (~2 min)"
	@echo "make results   the fine-tuning experiments: pretrained vs scratch (~30 min), into README"
	@echo "make lint      ruff over the project"
	@echo "make workbook  regenerate exercises/ and solutions/ from minimod/"
	@echo "make bench     time minimod against its torch.nn twin (BENCH_ARGS=\"--device cuda\")"
	@echo "make clean     remove .venv and caches"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,interop,plot]'
	@touch $(STAMP)

setup: $(STAMP)

# `tests` is named so that pytest loads tests/conftest.py (which defines --impl) before parsing.
# Against the generated solutions only the lessons' test files run (conftest.py selects them).
test: $(STAMP)
	HYPOTHESIS_PROFILE=$(PROFILE) $(BIN)/python -m pytest -q tests --impl minimod $(PYTEST_ARGS)
	HYPOTHESIS_PROFILE=$(PROFILE) $(BIN)/python -m pytest -q tests --impl solutions $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check minimod tests exercises solutions examples benchmarks experiments
	$(BIN)/ruff format --check minimod tests

workbook: $(STAMP)
	$(BIN)/python -m minimod.workbook.generate

demo: $(STAMP)
	$(BIN)/minimod demo

results: $(STAMP)
	$(BIN)/python experiments/finetune_results.py $(RESULTS_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/resnet.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache
