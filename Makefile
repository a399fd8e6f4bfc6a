# maestro-operator developer entry points. The integration tests run against a
# real local stack (PostgreSQL + Maestro built from source, then kube and the
# agents when their scripts exist); see tests/stack/stack.sh.
#
#   make test         start the stack (kept running), run every test against it
#   make stack-down   stop the stack;  make clean-stack  also deletes its state
#   make image        the operator and CLI container images (podman, release)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
STACK := tests/stack/stack.sh

.PHONY: build test unit lint maestro demo stack-up stack-down stack-status stack-logs clean-stack install uninstall image

# make install: maestro-cli, maestro-operator, the kubectl plugin link
# kubectl-maestro (`kubectl maestro ...`) and completion scripts for bash, zsh
# and fish (for maestro-cli and kubectl-maestro) under $(DESTDIR)$(PREFIX).
PREFIX ?= $(HOME)/.local
DESTDIR ?=
CARGO_PROFILE ?= release

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

# localhost/maestro-operator:$(IMAGE_TAG) and localhost/maestro-cli:$(IMAGE_TAG),
# FROM scratch around the release binaries built here (Containerfile.scratch;
# nothing is pulled). Elsewhere, build the Containerfile instead.
IMAGE_TAG ?= dev
image:
	bash tests/stack/image.sh build --release --tag $(IMAGE_TAG)

# Bring up the stack, run the operator, apply a sample, show its status.
demo:
	bash tests/stack/demo.sh

clean-stack: stack-down
	source tests/stack/env.sh && rm -rf "$$STACK_DIR" && echo "removed $$STACK_DIR"

INSTALL_BIN := $(DESTDIR)$(PREFIX)/bin
INSTALL_SHARE := $(DESTDIR)$(PREFIX)/share
install:
	$(CARGO) build --profile $(CARGO_PROFILE) --bin maestro-cli --bin maestro-operator
	out="$${CARGO_TARGET_DIR:-target}/$(if $(filter dev,$(CARGO_PROFILE)),debug,$(CARGO_PROFILE))"; \
	install -d "$(INSTALL_BIN)" "$(INSTALL_SHARE)/bash-completion/completions" \
	  "$(INSTALL_SHARE)/zsh/site-functions" "$(INSTALL_SHARE)/fish/vendor_completions.d"; \
	install -m 0755 "$$out/maestro-cli" "$$out/maestro-operator" "$(INSTALL_BIN)/"; \
	ln -sfn maestro-cli "$(INSTALL_BIN)/kubectl-maestro"; \
	for name in maestro-cli kubectl-maestro; do \
	  "$(INSTALL_BIN)/$$name" completion bash >"$(INSTALL_SHARE)/bash-completion/completions/$$name"; \
	  "$(INSTALL_BIN)/$$name" completion zsh >"$(INSTALL_SHARE)/zsh/site-functions/_$$name"; \
	  "$(INSTALL_BIN)/$$name" completion fish >"$(INSTALL_SHARE)/fish/vendor_completions.d/$$name.fish"; \
	done; \
	echo "installed maestro-cli, maestro-operator and kubectl-maestro in $(INSTALL_BIN)"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on PATH; kubectl finds the plugin only on PATH";; esac

uninstall:
	rm -f "$(INSTALL_BIN)"/{maestro-cli,maestro-operator,kubectl-maestro}
	for name in maestro-cli kubectl-maestro; do \
	  rm -f "$(INSTALL_SHARE)/bash-completion/completions/$$name" "$(INSTALL_SHARE)/zsh/site-functions/_$$name" \
	    "$(INSTALL_SHARE)/fish/vendor_completions.d/$$name.fish"; \
	done
