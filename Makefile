# WeIntervene: `make run` brings everything up with demo data; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every transitive dependency pinned with its hashes (docs/FOUNDATIONS.md); `make lock` regenerates both.
LOCK      := requirements/lock.txt
TEST_LOCK := requirements/test-lock.txt
# The lock tool lives in its own throwaway venv, never among the project's dependencies.
LOCK_TOOLS := .lock-tools
UV_VERSION := 0.13.8
LOCK_ARGS  ?=
export PYTHONWARNINGS ?= ignore::DeprecationWarning
export AMQP_URI ?= amqp://guest:guest@localhost:5672/

.PHONY: run test unit integration bench broker venv lock clean translations

# Rebuilt when pyproject or the lock changes. Only what the lock names is installed (--no-deps: a
# dependency missing from the lock fails `pip check` instead of being fetched at whatever version).
$(STAMP): pyproject.toml $(TEST_LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: sudo apt-get install -y python3.11 python3.11-venv"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(TEST_LOCK)
	# A weintervene.egg-info left in the checkout by an older `pip install .` is stale metadata.
	rm -rf weintervene.egg-info
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

## RabbitMQ at $AMQP_URI: start a local one if installed but stopped, else say how to install it.
broker:
	@bash scripts/ensure-broker.sh

run: venv broker
	WEINTERVENE_DEV_MODE=1 WEINTERVENE_DATA_DIR=$${WEINTERVENE_DATA_DIR:-data} $(BIN)/weintervene run --demo

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: venv broker
	$(BIN)/python -m bench $(BENCH_ARGS)

## Regenerate the locks from pyproject's pins (keeps other pins; `make lock LOCK_ARGS=--upgrade` moves them).
## The runtime lock constrains the test lock, so what ships is what was tested.
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml requirements/build.in --generate-hashes \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" \
		$(LOCK_ARGS) -o $(LOCK)
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml requirements/build.in --extra test -c $(LOCK) --generate-hashes \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" \
		$(LOCK_ARGS) -o $(TEST_LOCK)

## Family-facing texts (docs/LANGUAGES.md): extract the source's msgids to the template, merge
## them into every language's catalog (new texts empty, changed ones fuzzy), check they compile.
LOCALE_DIR := services/referrals/locale
translations: venv
	$(BIN)/pybabel extract -F babel.cfg --no-location --project WeIntervene --copyright-holder WeIntervene \
		--msgid-bugs-address translations@weintervene.invalid -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALE_DIR) --statistics

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) data test-artifacts
