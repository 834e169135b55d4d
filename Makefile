# Set-up and the two entry points: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   := build/demo

.PHONY: demo test bench venv clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: $(BIN)/.installed

# compress and decompress the bundled sample; prints bytes, bpp and PSNR
demo: venv
	@mkdir -p $(DEMO)
	$(BIN)/lcodec compress samples/parrots.png -o $(DEMO)/parrots.lcd -q 3 -f -v --verify
	$(BIN)/lcodec decompress $(DEMO)/parrots.lcd -o $(DEMO)/parrots.png -f -v --reference samples/parrots.png
	@$(BIN)/lcodec info $(DEMO)/parrots.lcd

# pytest exits 5 when it collects nothing: that is a failure here too, reported as such
test: venv
	$(BIN)/python -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$rc

bench: venv
	$(BIN)/python benchmarks/entropy_bench.py
	$(BIN)/lcodec eval ../shared/data/kodak --baseline jpeg,webp -j 2 -o benchmarks/results/kodak

clean:
	rm -rf build $(VENV)
