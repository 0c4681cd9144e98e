# lela: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
JOBS  ?= 2

.PHONY: setup demo test regress bench bench-fashion clean help

help:
	@echo "make demo     set everything up, generate the Verilog and train digits on it in Verilator"
	@echo "make test     the fast test suite (a few minutes)"
	@echo "make regress  every test: all RTL parameter sets on Verilator and Icarus, 10k cycles"
	@echo "make bench    golden-model speed, traffic model, RTL speed and cells, accelerator -> bench/results/"
	@echo "make bench-fashion  the Fashion-MNIST comparison (hours) -> bench/results/"

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

clean:
	rm -rf build runs/demo .pytest_cache
