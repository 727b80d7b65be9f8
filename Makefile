# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help install demo test test-all bench bench-training bench-scenarios pictures zoo lint format clean

help:
	@echo "make demo      create .venv, install, run the default care scenarios headless (runs/demo/...)"
	@echo "make test      create .venv, install, run the fast test suite"
	@echo "make test-all  also run the slow tests (training, benchmarks)"
	@echo "make bench     benchmarks -> experiments/results/*.md (sim, env, control loop, bridge)"
	@echo "make bench-training  time to 95% success, 3 seeds x 2 reach tasks (up to 90 min) -> training.md"
	@echo "make bench-scenarios every scenario in-process and through the bridge (about 15 min) -> scenarios_bridge.md"
	@echo "make pictures  re-render the README pictures -> experiments/results/*.png"
	@echo "make zoo       retrain and re-evaluate the policy zoo -> assets/policies, experiments/results/zoo.md"
	@echo "make lint      ruff"

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tianji demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python experiments/bench/sim_speed.py
	$(BIN)/python -m pip install --quiet "gymnasium[mujoco]"  # the Humanoid-v5 peer, for the benchmark only
	$(BIN)/python experiments/bench/env_speed.py
	$(BIN)/python experiments/bench/control_loop.py
	$(BIN)/python experiments/bench/bridge.py

bench-training: $(STAMP)
	$(BIN)/python experiments/bench/training.py

bench-scenarios: $(STAMP)
	$(BIN)/python experiments/bench/scenarios_bridge.py

zoo: $(STAMP)
	$(BIN)/python experiments/zoo.py

pictures: $(STAMP)
	$(BIN)/tianji show care_room --camera room --out experiments/results/care_room.png
	$(BIN)/tianji show care_room --camera overview --out experiments/results/care_room_overview.png
	for r in g1 tiago allegro; do $(BIN)/tianji show $$r --width 480 --height 480 --out experiments/results/robot_$$r.png; done
	$(BIN)/tianji show human --preset standing --width 480 --height 480 --out experiments/results/robot_human.png

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
