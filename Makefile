# leo-video: `make demo` and `make test` each set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.leo-installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A plain `torch` requirement would pull a multi-GB CUDA build: install the CPU wheel first.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not gpu" --timeout=900

demo: $(STAMP)
	$(VENV)/bin/leo-video demo --out demo

clean:
	rm -rf $(VENV) demo runs build dist
