# do_deploy developer commands. Each assumes an installed Odoo 19 (importable by
# $(PYTHON)) and a PostgreSQL server, and says what is missing when they are not.
PYTHON ?= python3
DEMO_DB ?= do_deploy_demo
DEMO_PORT ?= 8069
SIM_PORT ?= 8799

.PHONY: test lint demo bench pot

test:  ## every test layer this machine can run (engine always, Odoo when importable)
	bash tools/test.sh

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pylint --rcfile=.pylintrc .

demo:  ## a demo database with the simulator beside it, served on http://localhost:$(DEMO_PORT)
	bash tools/demo.sh "$(DEMO_DB)" "$(DEMO_PORT)" "$(SIM_PORT)"

bench:
	$(PYTHON) benchmarks/bench_simulator.py
	$(PYTHON) benchmarks/bench_client.py

pot:  ## regenerate i18n/do_deploy.pot from a database that has the addon ($(DEMO_DB) by default)
	bash tools/pot.sh "$(DEMO_DB)"
