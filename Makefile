# lela: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
JOBS  ?= 2

BOARD ?= icebreaker

.PHONY: setup demo test regress bench bench-fashion bitstream program clean help mutate

help:
	@echo "make demo     set everything up, generate the Verilog and train digits on it in Verilator"
	@echo "make test     the fast test suite (a few minutes)"
	@echo "make regress  every test: all RTL parameter sets on Verilator and Icarus, 10k cycles"
	@echo "make bench    golden-model speed, traffic model, RTL speed and cells, accelerator, energy -> bench/results/"
	@echo "make bench-fashion  the Fashion-MNIST comparison (hours) -> bench/results/"
	@echo "make bitstream BOARD=icebreaker|ulx3s|ulx3s-sdram  build/<board>/top.bin|bit and report.json"
	@echo "make program BOARD=icebreaker|ulx3s|ulx3s-sdram    load it into the board"
	@echo "make mutate   sampled mutants of hw/ against make test's selection (REGRESS=1: make"
	@echo "              regress's); SEED, COUNT, MUTATE_FILES -> bench/results/mutation.json"

setup:
	@tools/setup.sh

demo: setup
	$(BIN)/lela verilog --config configs/digits.toml -o build/verilog
	$(BIN)/lela train --backend rtl --dataset digits --config configs/digits.toml --epochs 20 \
		--out runs/demo

test: setup
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not slow" -q

regress: setup
	LELA_REGRESS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q

bench: setup
	$(BIN)/python bench/golden_speed.py
	$(BIN)/python bench/traffic_model.py
	$(BIN)/python bench/rtl_units.py
	$(BIN)/python bench/accelerator.py
	$(BIN)/python bench/accelerator.py traffic --config configs/ulx3s.toml --arch 64 128 128
	$(BIN)/python bench/energy.py

bench-fashion: setup
	$(BIN)/python bench/fashion_mnist.py all

bitstream: setup
	$(BIN)/lela bitstream --board $(BOARD)

program: setup
	$(BIN)/lela program --board $(BOARD)

# The units whose RTL is stable: core, host_interface, classifier_weights, backproject and
# weight_updater were being rewritten when this target was added (tools/mutate.py takes any hw/
# file: MUTATE_FILES="hw/core.py ..." or MUTATE_FILES= for all of them).
SEED  ?= 1
COUNT ?= 50
MUTATE_FILES ?= hw/arith.py hw/mac_array.py hw/lfsr_prng.py hw/local_error.py hw/uart.py \
	hw/activation_buffer.py hw/weight_memory.py hw/ram_collisions.py

mutate: setup
	$(BIN)/python tools/mutate.py --seed $(SEED) --count $(COUNT) \
		$(if $(strip $(MUTATE_FILES)),--files $(MUTATE_FILES)) $(if $(REGRESS),--regress)

clean:
	rm -rf build runs/demo .pytest_cache
