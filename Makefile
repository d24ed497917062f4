# Two entry points (see README): `make demo` and `make test`. Both create or reuse .venv and install the
# pinned dependencies only when requirements.lock or pyproject.toml changed (the stamp file records a hash).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HASH   := $(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(HASH)
OUT    ?= runs/demo

.PHONY: setup demo test test-fast bench lock clean

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(VENV)/bin/birdcall demo --out $(OUT)

# What CI runs: every tier that needs no GPU and no network, the slow demo acceptance test included (~5 min).
test: setup
	$(PY) -m pytest -m "not gpu and not network" -q

# The quick default tier (plain `pytest` does the same): under a minute.
test-fast: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/feature_speed.py

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > requirements.tmp
	{ sed -n '1,3p' requirements.lock; cat requirements.tmp; } > requirements.lock && rm requirements.tmp

clean:
	rm -rf $(VENV) runs .pytest_cache
