# lela: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
JOBS  ?= 2

BOARD ?= icebreaker

.PHONY: setup demo test regress bench bench-fashion bitstream program clean help

help:
	@echo "make demo     set everything up, generate the Verilog and train digits on it in Verilator"
	@echo "make test     the fast test suite (a few minutes)"
	@echo "make regress  every test: all RTL parameter sets on Verilator and Icarus, 10k cycles"
	@echo "make bench    golden-model speed, traffic model, RTL speed and cells, accelerator -> bench/results/"
	@echo "make bench-fashion  the Fashion-MNIST comparison (hours) -> bench/results/"
	@echo "make bitstream BOARD=icebreaker|ulx3s  build/<board>/top.bin|bit and report.json"
	@echo "make program BOARD=icebreaker|ulx3s    load it into the board"

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

bench-fashion: setup
	$(BIN)/python bench/fashion_mnist.py all

bitstream: setup
	$(BIN)/lela bitstream --board $(BOARD)

program: setup
	$(BIN)/lela program --board $(BOARD)

clean:
	rm -rf build runs/demo .pytest_cache
