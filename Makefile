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

.PHONY: FORCE all setup test data teacher distill students student bad-student report translate evaluate bench-train \
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
# run). Recomputed on every call and written only when it changes, outside the run folder: make -n or a failed plan
# creates nothing there, and a no-op make writes nothing at all.
PLAN := $(or $(TMPDIR),/tmp)/seqkd-plan$(subst /,-,$(abspath $(RUN))).mk
FORCE:

ifeq ($(filter setup test help lint clean-run,$(MAKECMDGOALS)),)
PLAN_ERROR := $(shell $(PY) -m pipeline.plan --preset $(PRESET) --run_dir $(RUN) --data_args "$(DATA_ARGS)" \
	--out $(PLAN) 2>&1 >/dev/null)
ifneq ($(PLAN_ERROR),)
$(error $(PLAN_ERROR))
endif
include $(PLAN)
endif

data: $(RUN)/data/manifest.json
teacher: $(RUN)/teacher/manifest.json
distill: $(RUN)/distill/manifest.json
students: $(STUDENT_TARGETS)
STUDENT_DIR := $(if $(filter teacher+seq-inter,$(NAME)),teacher+seq-inter,students/$(SIZE)/$(NAME))
student: $(if $(and $(filter $(NAME),$(STUDENT_NAMES)),$(filter $(SIZE),$(STUDENT_SIZES))),$(RUN)/$(STUDENT_DIR)/manifest.json,bad-student)
bad-student:
	@echo "make student: NAME=$(NAME) SIZE=$(SIZE) is not a student of this project; NAME is one of: $(STUDENT_NAMES); SIZE one of: $(STUDENT_SIZES)" >&2; exit 2

report: $(RUN)/report.md

# make translate CKPT=runs/default/students/student/seq-kd/best.pt < input.txt > output.txt
CKPT ?= $(RUN)/students/$(SIZE)/$(NAME)/best.pt
BEAM ?= 5
translate:
	@$(SEQKD) translate --checkpoint $(CKPT) --beam $(BEAM)

evaluate:
	$(SEQKD) evaluate --checkpoint $(CKPT) --data_dir $(RUN)/data

bench-train:
	$(PY) -m pipeline.bench_train $(BENCH_ARGS)

bench-decode:
	$(PY) -m pipeline.bench_decode $(BENCH_ARGS)

clean-run:
	rm -rf $(RUN)

help:
	@sed -n '1,6p' Makefile
	@echo ""
	@echo "stage targets (each runs what it needs first): data teacher distill students student report"
	@echo "  make student NAME=seq-kd SIZE=student-small     one configuration of pipeline/configs/students/"
	@echo "other targets: translate evaluate clean-run bench-train bench-decode setup test lint help"
	@echo ""
	@echo "variables (now):"
	@echo "  PRESET=$(PRESET)   a name from pipeline/presets/ or a path to a .yaml file; presets:"
	@echo "      $(notdir $(basename $(wildcard pipeline/presets/*.yaml)))"
	@echo "  RUN=$(RUN)   the run folder (default runs/PRESET, runs/PRESET-CORPUS with CORPUS)"
	@echo "  CORPUS=   default multi30k iwslt14 wmt14 text: the data stage's corpus instead of the preset's"
	@echo "  MIRROR=   a directory or URL holding the corpus files (make data CORPUS=multi30k MIRROR=../shared/data/multi30k)"
	@echo "  SRC= TGT= TRAIN= VALID= TEST=   with CORPUS=text: languages and file prefixes (TRAIN=path/train reads path/train.SRC)"
	@echo "  NAME=$(NAME) SIZE=$(SIZE)   the student of make student / translate / evaluate"
	@echo "  CKPT=$(CKPT)   the checkpoint of make translate / evaluate"
	@echo "  BEAM=$(BEAM)   beam size of make translate (1 = greedy)"
	@echo "  THREADS=   CPU threads per stage (default: the cores the process may use); make -j2 THREADS=1 runs two stages side by side"
	@echo "  BENCH_ARGS=   flags for make bench-train / bench-decode (python -m pipeline.bench_train --help, python -m pipeline.bench_decode --help)"
	@echo "  TORCH=$(TORCH)   what make setup installs when no torch is importable"
