# The two set-up commands of the README. Both install whatever is missing first.
.PHONY: serve test test-coqui bench setup setup-test

serve: setup
	.venv/bin/voice-chat serve $(ARGS)

test: setup-test
	.venv/bin/ruff check voice_chat tests benchmarks
	.venv/bin/python -m pytest -ra $(ARGS)

bench: setup-test
	.venv/bin/python benchmarks/latency.py $(ARGS)

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

test-coqui:
	bash scripts/install-coqui.sh
	.venv-coqui/bin/python -m pytest -ra -m coqui tests/test_coqui.py
