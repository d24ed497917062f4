# Two entry points (see README): `make demo` and `make test`. Both create or reuse .venv and install the
# pinned dependencies only when requirements.lock or pyproject.toml changed (the stamp file records a hash).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HASH   := $(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(HASH)
OUT    ?= runs/demo

.PHONY: setup demo test test-all bench lock clean

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(VENV)/bin/birdcall demo --out $(OUT)

test: setup
	$(PY) -m pytest -m "not slow and not gpu and not network" -q

test-all: setup
	$(PY) -m pytest -m "not gpu and not network" -q

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > requirements.tmp
	{ sed -n '1,3p' requirements.lock; cat requirements.tmp; } > requirements.lock && rm requirements.tmp

clean:
	rm -rf $(VENV) runs .pytest_cache
