# The two set-up commands of the README. Both install whatever is missing first.
.PHONY: serve test test-coqui test-ray bench setup setup-test

serve: setup
	.venv/bin/voice-chat serve $(ARGS)

test: setup-test
	.venv/bin/ruff check voice_chat tests benchmarks
	.venv/bin/python -m pytest -ra -m "not ray" $(ARGS)

bench: setup-test
	.venv/bin/python benchmarks/latency.py $(ARGS)

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

test-coqui:
	bash scripts/install-coqui.sh
	.venv-coqui/bin/python -m pytest -ra -m coqui tests/test_coqui.py

test-ray: setup-test
	.venv/bin/python -m pip install -q -e ".[ray]"
	VOICE_CHAT_TEST_RAY=required .venv/bin/python -m pytest -ra -m ray tests/test_ray.py
