# WeIntervene: `make run` brings everything up with demo data; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PYTHONWARNINGS ?= ignore::DeprecationWarning
export AMQP_URI ?= amqp://guest:guest@localhost:5672/

.PHONY: run test unit integration bench broker venv clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: sudo apt-get install -y python3.11 python3.11-venv"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
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

clean:
	rm -rf $(VENV) data test-artifacts
