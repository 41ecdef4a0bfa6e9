# seqkd: sequence-level knowledge distillation for NMT.
#   make setup          a .venv with a CPU torch (unless one is importable) and seqkd in editable mode
#   make                the whole default preset, offline: data -> teacher -> distill -> students -> report
#   make test           the test suite
#   make help           every target and variable
# Every stage target points at the stage's manifest.json; a stage whose manifest matches its settings is skipped.

PRESET ?= default
# A corpus given on the command line gets its own run folder, so it never mixes with the preset's own data.
RUN ?= runs/$(PRESET)$(if $(CORPUS),-$(CORPUS))
VENV ?= .venv
PY := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
SEQKD := $(PY) -m pipeline.cli
# make setup installs this torch when none is importable; e.g. TORCH='torch --index-url https://download.pytorch.org/whl/cu124'
TORCH ?= torch==2.13.0
EXTRAS ?= dev,plot
NAME ?= baseline
SIZE ?= student
# CPU threads per stage (default: the cores the process may use). Two stages side by side: make -j2 THREADS=1
THREADS_ARG := $(if $(THREADS),--threads $(THREADS))

DATA_ARGS := $(if $(CORPUS),--corpus $(CORPUS)) $(if $(MIRROR),--mirror $(abspath $(MIRROR))) \
	$(if $(SRC),--src $(SRC)) $(if $(TGT),--tgt $(TGT)) $(if $(TRAIN),--train $(abspath $(TRAIN))) \
	$(if $(VALID),--valid $(abspath $(VALID))) $(if $(TEST),--test $(abspath $(TEST)))
PRESET_FILE := $(if $(filter %.yaml %.yml,$(PRESET)),$(PRESET),pipeline/presets/$(PRESET).yaml)

.DEFAULT_GOAL := all

.PHONY: FORCE all setup test data teacher distill students student report translate evaluate bench-train \
	bench-decode clean-run help lint
.DELETE_ON_ERROR:

all: report

setup:
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/pip install $(TORCH)
	$(VENV)/bin/pip install -e ".[$(EXTRAS)]"
	$(VENV)/bin/python -c "import torch, seqkd; print('seqkd ready; torch', torch.__version__)"

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m pyflakes seqkd pipeline tests 2>/dev/null || $(PY) -m compileall -q seqkd pipeline tests

# The plan: rules for every stage of this run, written from the preset and the variables (make -n shows what would
# run). Recomputed on every call but written only when it changes, so make does not restart for nothing.
$(RUN)/plan.mk: FORCE
	@$(PY) -m pipeline.plan --preset $(PRESET) --run_dir $(RUN) --data_args "$(DATA_ARGS)" --out $@
FORCE:

ifeq ($(filter setup test help lint clean-run,$(MAKECMDGOALS)),)
include $(RUN)/plan.mk
endif

data: $(RUN)/data/manifest.json
teacher: $(RUN)/teacher/manifest.json
distill: $(RUN)/distill/manifest.json
students: $(STUDENT_TARGETS)
student: $(RUN)/$(if $(filter teacher+seq-inter,$(NAME)),teacher+seq-inter,students/$(SIZE)/$(NAME))/manifest.json

report: $(RUN)/report.md

# make translate CKPT=runs/default/students/student/seq-kd/best.pt < input.txt > output.txt
CKPT ?= $(RUN)/students/$(SIZE)/$(NAME)/best.pt
BEAM ?= 5
translate:
	@$(SEQKD) translate --checkpoint $(CKPT) --beam $(BEAM)

evaluate:
	$(SEQKD) evaluate --checkpoint $(CKPT) --data_dir $(RUN)/data

bench-train:
	$(PY) -m pipeline.bench train $(BENCH_ARGS)

bench-decode:
	$(PY) -m pipeline.bench decode $(BENCH_ARGS)

clean-run:
	rm -rf $(RUN)

help:
	@sed -n '1,6p' Makefile
	@echo "stage targets: data teacher distill students student report (PRESET=$(PRESET) RUN=$(RUN))"
	@echo "  make student NAME=seq-kd SIZE=student-small   one configuration of pipeline/configs/students/"
	@echo "  make data CORPUS=multi30k MIRROR=../shared/data/multi30k"
	@echo "  make data CORPUS=text SRC=en TGT=de TRAIN=path/train VALID=path/valid TEST=path/test"
	@echo "  make translate CKPT=... BEAM=5 < in > out;  make evaluate CKPT=...;  make clean-run"
	@echo "  make bench-train / bench-decode (see README);  make setup TORCH='torch==X --index-url ...'"
