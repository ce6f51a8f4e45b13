# do_deploy developer commands. `make setup` once, then any of the others.
# They use the project's .venv once `make setup` has finished it; PYTHON=... overrides.
PYTHON ?= $(if $(wildcard .venv/.setup-complete),$(CURDIR)/.venv/bin/python,python3)
DEMO_DB ?= do_deploy_demo
DEMO_PORT ?= 8069
SIM_PORT ?= 8799
export PYTHON

.PHONY: setup test lint readme demo bench pot

setup:  ## PostgreSQL, Chromium, Odoo 19 and .venv; idempotent (see tools/setup.sh)
	bash tools/setup.sh

test:  ## every test layer this machine can run (engine always, Odoo when importable)
	bash tools/test.sh

lint:  ## ruff, pylint-odoo, and the Apps page (static/description/index.html) against readme/
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pylint --rcfile=.pylintrc .
	$(PYTHON) tools/readme_html.py --check

readme:  ## rewrite static/description/index.html, the module's page in Apps, from readme/*.md
	$(PYTHON) tools/readme_html.py

demo:  ## a demo database with the simulator beside it, served on http://localhost:$(DEMO_PORT)
	bash tools/demo.sh "$(DEMO_DB)" "$(DEMO_PORT)" "$(SIM_PORT)"

bench:
	$(PYTHON) benchmarks/bench_simulator.py
	$(PYTHON) benchmarks/bench_client.py

pot:  ## regenerate i18n/do_deploy.pot from a database that has the addon ($(DEMO_DB) by default)
	bash tools/pot.sh "$(DEMO_DB)"
