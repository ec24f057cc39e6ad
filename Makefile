# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# llama-cpp-python builds from source; a native build crashed here at inference
# (AVX-512/AMX code paths), so it is built for AVX2 (see DEVELOPERS.md).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
DEMO_TRIALS ?= 6

.PHONY: install demo test lint bench-throughput bench-scaling clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

demo: install
	env -u OPENAI_API_KEY -u OPENAI_BASE_URL LGT_OFFLINE=1 $(VENV)/bin/lgt tune --target digits --trials $(DEMO_TRIALS) --seed 0

test: install
	$(PY) -m pytest -q

# What CI checks besides the tests: ruff, mypy (strict) and the import layers (pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench-throughput: install
	$(PY) benchmarks/trainer_throughput.py

bench-scaling: install
	scripts/with-postgres.sh $(PY) benchmarks/scaling.py

clean:
	rm -rf $(VENV) results/*/ results/studies.db
