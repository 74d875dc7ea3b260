# RankRepro: `make run` (the main job on the synthetic default) and `make test`.
# Both set up the environment first; `make setup` alone does only that.
PYTHON ?= python3.11
VENV ?= .venv
PINS := requirements/pins.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.rankrepro-installed

.PHONY: setup test run benchmark clean-venv

setup: $(STAMP)

# One stamp for the whole environment: rebuilt when the pins or the package metadata change.
$(STAMP): $(PINS) pyproject.toml tools/install_mmcv.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(PINS) setuptools wheel ninja numpy torch
	$(PIP) install -q -c $(PINS) mmengine mmdet pycocotools lvis cityscapesscripts pandas matplotlib pytest opencv-python scipy scikit-learn
	$(PIP) install -q -c $(PINS) snakemake snakemake-executor-plugin-slurm snakefmt pyyaml
	tools/install_mmcv.sh $(VENV) $$(sed -n 's/^mmcv==//p' $(PINS))
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import torch, mmcv.ops, mmengine, mmdet, pycocotools, rankrepro.losses; \
	print('[setup] torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__, '| mmdet', mmdet.__version__)"
	touch $@

test: setup
	$(PY) -m pytest tests

# The main job until the Snakemake workflow exists: generate the synthetic dataset, train
# RS-ATSS (smoke variant: ResNet-18, 128 px, 600 iterations on CPU) and evaluate it;
# writes results/smoke/rs_atss_metrics.json (AP, oLRP and components).
DATA ?= data/synthetic
SMOKE_ITERS ?= 600
RUN_CONFIG := configs/atss/rs_atss_r50_fpn_1x_coco.py
RUN_DIR := work_dirs/smoke/rs_atss
run: setup
	$(VENV)/bin/rankrepro make-data $(DATA)
	$(VENV)/bin/rankrepro train $(RUN_CONFIG) --smoke --data-root $(DATA) --max-iters $(SMOKE_ITERS) --work-dir $(RUN_DIR)
	$(VENV)/bin/rankrepro test $(RUN_CONFIG) $(RUN_DIR)/iter_$(SMOKE_ITERS).pth --smoke --data-root $(DATA) \
		--work-dir $(RUN_DIR)/test --out results/smoke/rs_atss_metrics.json

# The full benchmark of the README (several minutes on two cores).
benchmark: setup
	$(PY) benchmarks/loss_speed.py

clean-venv:
	rm -rf $(VENV)
