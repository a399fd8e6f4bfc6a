# maestro-operator developer entry points. The integration tests run against a
# real local stack (PostgreSQL + Maestro built from source, then kube and the
# agents when their scripts exist); see tests/stack/stack.sh.
#
#   make test         start the stack (kept running), run every test against it
#   make stack-down   stop the stack;  make clean-stack  also deletes its state

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
STACK := tests/stack/stack.sh

.PHONY: build test unit lint maestro demo stack-up stack-down stack-status stack-logs clean-stack

build:
	$(CARGO) build --all-targets

# The tests read the endpoints (MAESTRO_HTTP_ENDPOINT, ...) from the environment.
test: stack-up
	eval "$$(bash $(STACK) env)" && $(CARGO) test

unit:
	$(CARGO) test --lib --bins

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

# Build (once, cached per version) the pinned Maestro server.
maestro:
	bash tests/stack/maestro.sh build

stack-up:
	bash $(STACK) up

stack-down:
	bash $(STACK) down

stack-status:
	bash $(STACK) status

stack-logs:
	bash $(STACK) logs

# Bring up the stack, run the operator, apply a sample, show its status.
demo:
	bash tests/stack/demo.sh

clean-stack: stack-down
	source tests/stack/env.sh && rm -rf "$$STACK_DIR" && echo "removed $$STACK_DIR"
