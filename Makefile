# LLM Template System — one make target per workflow; CI (.ci/run) calls `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := 3.11
UV_VERSION ?= 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY := .venv/bin/python
PYTEST := $(UV) run --frozen pytest
SERVICES := gateway auth catalog templates generator exporter
PKGS := llmts_api llmts_common llmts_providers llmts_templating llmts_client $(addprefix llmts_,$(SERVICES))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

.PHONY: uv
uv:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || python3 -m pip install --quiet --user "uv==$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"

.PHONY: install
install: uv ## install Python 3.11 deps of every package into .venv (from uv.lock)
	@$(UV) sync --all-packages --frozen --quiet

.PHONY: sync
sync: install

.PHONY: lock
lock: uv ## re-resolve uv.lock after changing a pyproject.toml
	@$(UV) lock

.PHONY: fmt
fmt: install ## format and auto-fix
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

.PHONY: lint
lint: install compose-validate k8s-validate ## ruff, format check, mypy --strict, import rules, size rules, event schemas current + no breaking change, compose + k8s validation
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy $(addprefix -p ,$(PKGS))
	@$(UV) run --frozen lint-imports
	@$(PY) scripts/check_sizes.py
	@$(PY) scripts/event_schemas.py --check
	@$(PY) scripts/event_schemas.py --compat

.PHONY: compose-validate
compose-validate: install ## validate docker-compose.yml against the Compose Specification schema
	@$(PY) scripts/compose_validate.py docker-compose.yml

.PHONY: k8s-validate
k8s-validate: ## render every Kustomize overlay and validate it with kubeconform (offline schemas)
	@bash scripts/k8s_validate.sh

.PHONY: k8s-render
k8s-render: ## print the rendered prod overlay
	@$${LLMTS_CACHE_DIR:-$$HOME/.cache/llmts}/bin/kustomize build deploy/k8s/overlays/$${OVERLAY:-prod}

.PHONY: k8s-pin
k8s-pin: ## release step: pin the prod overlay's images to their digests (REGISTRY=… TAG=…; crane from the Go proxy)
	@REGISTRY=$(REGISTRY) TAG=$(TAG) bash scripts/k8s_pin.sh

.PHONY: infra-up
infra-up: ## start the real local Kafka (KRaft), MongoDB-wire server and local model (no Docker), then create topics
	@bash scripts/infra.sh up
	@$(MAKE) --no-print-directory topics

.PHONY: infra-down
infra-down: ## stop the local Kafka, MongoDB-wire server and local model
	@bash scripts/infra.sh down

.PHONY: status
status: ## state of the local Kafka, MongoDB-wire server and local model (Ollama)
	@bash scripts/infra.sh status

.PHONY: topics
topics: install ## create every topic and its DLQ (idempotent)
	@$(PY) scripts/provision_topics.py

.PHONY: run
run: install infra-up ## install, start infra and the six services (INTERNAL_TOKEN from .env or var/internal_token); gateway on http://127.0.0.1:8000 (Ctrl-C stops)
	@echo "gateway: http://127.0.0.1:$${GATEWAY_PORT:-8000}  (docs: /docs, readiness: /ready)"
	@$(UV) run --frozen honcho -f Procfile -e "$$(bash scripts/run_env.sh)" start

.PHONY: run-demo
run-demo: install infra-up ## like run, plus fake OpenRouter/Ollama servers so generation works offline
	@echo "gateway: http://127.0.0.1:$${GATEWAY_PORT:-8000}  (fake OpenRouter on :18080, fake Ollama on :18081)"
	@OPENROUTER_BASE_URL=http://127.0.0.1:18080/api/v1 OPENROUTER_API_KEY=demo-key OLLAMA_BASE_URL=http://127.0.0.1:18081 \
		$(UV) run --frozen honcho -f Procfile.demo -e "$$(bash scripts/run_env.sh)" start

.PHONY: test
test: install ## install everything, start infra, run unit + integration + e2e tiers, stop what was started
	@bash scripts/test.sh

.PHONY: test-unit
test-unit: install ## unit tier only (no I/O)
	@$(PYTEST) -m "not connected and not e2e and not model and not browser and not replicas" libs services clients tests

.PHONY: test-integration
test-integration: install ## integration tier (needs `make infra-up`)
	@$(PYTEST) -m "connected" libs services

.PHONY: test-model
test-model: install ## connected-model tier: provider + whole-stack jobs against the real local Ollama (starts it)
	@bash scripts/local_model.sh up
	@$(PYTEST) -m "model" libs tests/model

.PHONY: test-e2e
test-e2e: install ## end-to-end tier through the gateway (needs `make infra-up`)
	@$(PYTEST) -m "e2e" tests

.PHONY: test-replicas
test-replicas: install ## multi-replica tier: 2 gateways, 2 generators, 2 exporters; a generator killed mid-job (needs `make infra-up`)
	@$(PYTEST) -m "replicas" tests/replicas

.PHONY: test-browser
test-browser: install ## browser tier: the web console in Debian's headless Chromium (installs it with apt-get if missing; starts its own stack, needs `make infra-up`)
	@bash scripts/browser.sh ensure >/dev/null
	@CHROMIUM_PATH=$$(bash scripts/browser.sh path) $(PYTEST) -m "browser" tests/browser

.PHONY: bench-render
bench-render: install ## sandboxed vs plain Jinja2 rendering rate
	@$(PY) bench/bench_render.py

.PHONY: bench-render-guard
bench-render-guard: install infra-up ## generator /health p99 while one client renders pathological templates in a loop (worker processes vs threads); attack refusal time
	@$(PY) bench/bench_render_guard.py

.PHONY: bench-export
bench-export: install ## export formats at 100k items: time, ratio vs baseline, peak RSS
	@$(PY) bench/bench_export.py

.PHONY: bench-generation
bench-generation: install infra-up ## 1000 items at C=32 against the fake OpenRouter (L=200ms) through the gateway; then adaptive concurrency against a hidden capacity of 8
	@$(PY) bench/bench_generation.py

.PHONY: bench-fairness
bench-fairness: install infra-up ## user A's 20 jobs × 500 items vs user B's 10-item job on the fake OpenRouter (L=200ms): B's time alone and behind A
	@$(PY) bench/bench_fairness.py

.PHONY: bench-economy
bench-economy: install infra-up ## re-run of a 500-item job from the response cache (cost, time ratio) and extend +500 (cost ratio); sampled estimate of a 200-item job vs its cost — on the fake OpenRouter (L=1s, C=16); batch vs sync cost of 1000 items with a kill -9 of the generator mid-window (fake OpenAI-compatible)
	@$(PY) bench/bench_economy.py

.PHONY: bench-quality
bench-quality: install infra-up ## N=1000 on the fake OpenRouter (L=1–1.3s, C=20; 2% near-duplicate, 3% low-scoring answers): wall with an LLM judge / without, near-duplicate rate after the filter and its wall overhead, sampler tokens, category deviation
	@$(PY) bench/bench_quality.py

.PHONY: bench-local-model
bench-local-model: install infra-up ## N=20 through the whole stack on the real local Ollama vs a direct client loop at its best concurrency
	@$(PY) bench/bench_local_model.py

.PHONY: bench-gateway
bench-gateway: install infra-up ## gateway at 200 rps for 20 s: GET /auth/session vs a bare FastAPI endpoint, forwarded GET /templates/<id> with CPU per request per process
	@$(PY) bench/bench_gateway.py

.PHONY: chaos
chaos: install infra-up ## chaos scenarios (kill/restart generator, Kafka, Mongo, exporter, gateway; provider storm)
	@$(UV) run --frozen python -m tests.chaos.run

.PHONY: clean
clean: ## remove caches and local state (keeps downloaded jars in ~/.cache/llmts)
	@bash scripts/infra.sh down || true
	@rm -rf var .pytest_cache .mypy_cache .ruff_cache

.PHONY: asyncapi
asyncapi: install ## regenerate docs/asyncapi.yaml from the contracts
	@$(PY) scripts/asyncapi.py

.PHONY: schemas
schemas: install ## regenerate docs/schemas/ (JSON Schema of every event version, the envelope, the index)
	@$(PY) scripts/event_schemas.py

.PHONY: config-docs
config-docs: install ## regenerate docs/configuration.md from the settings classes
	@$(PY) scripts/settings_reference.py

.PHONY: admin
admin: install ## give EMAIL the admin role in the auth database (ACTION=revoke takes it back); effective at the user's next token refresh
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=you@example.com [ACTION=grant|revoke]"; exit 2; }
	@$(PY) -m llmts_auth admin $(or $(ACTION),grant) "$(EMAIL)"
