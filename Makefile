# RankRepro: `make run` (the main job on the synthetic default) and `make test`.
# Both set up the environment first; `make setup` alone does only that.
PYTHON ?= python3.11
VENV ?= .venv
PINS := requirements/pins.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.rankrepro-installed

.PHONY: setup test test-all test-slurm run benchmark clean-venv docker-test

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

# The test command of the README and CI: everything but the tests marked `slow` (long smoke
# trainings: every R-CNN config's smoke variant, the learning checks, LVIS / Cityscapes runs).
test: setup
	$(PY) -m pytest -m "not slow" tests

# Every test, the slow ones included.
test-all: setup
	$(PY) -m pytest tests

# The SLURM profile against a real one-node SLURM started here (root; installs slurm-wlm and
# munge with apt if missing), then stopped: the sbatch options and a smoke table through
# workflow/profiles/slurm, every training a SLURM job (tests/test_slurm.py, marker `slurm`).
# SLURM_ACCOUNTING=1 make test-slurm: with slurmdbd + MariaDB, the table also with sacct.
test-slurm: setup
	tools/slurm/start.sh
	RANKREPRO_REQUIRE_SLURM=1 $(PY) -m pytest -m slurm tests/test_slurm.py; status=$$?; tools/slurm/stop.sh; exit $$status

# The Docker images (docker/README.md): hadolint on both Dockerfiles, then the CPU image built
# from a local Debian base and a host-built wheelhouse (both cached in ~/.cache/rankrepro/docker)
# and a smoke table regenerated in it onto a mounted folder (tests/test_docker.py, marker
# `docker`).  Starts dockerd if none answers (root; Debian: apt-get install docker.io debootstrap).
docker-test: setup
	tools/docker/lint.sh
	tools/docker/dockerd.sh
	RANKREPRO_REQUIRE_DOCKER=1 $(PY) -m pytest -m docker tests/test_docker.py

# The main job: RS paper Table 1 (Faster R-CNN with RS Loss and its baselines), regenerated
# at smoke scale by the Snakemake workflow: synthetic data, 8 CPU smoke trainings,
# evaluation, and results/smoke/tables/table1.{md,csv,tex,html,png,pdf}.
TABLE ?= reproduce_table1
run: setup
	$(VENV)/bin/snakemake --workflow-profile workflow/profiles/default --cores all $(TABLE)

# The full benchmark of the README (several minutes on two cores).
benchmark: setup
	$(PY) benchmarks/loss_speed.py

clean-venv:
	rm -rf $(VENV)
