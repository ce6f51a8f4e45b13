"""Plain-Python core of do_deploy: DigitalOcean App Platform client, doctl
backend, app-spec tools, checks, the error catalogue and a simulator.

Nothing here imports Odoo; the addon's models call into it. Import the
submodules you need (``engine.client``, ``engine.appspec``...): this package
stays light so that ``engine.error_catalogue`` loads without ``requests``.
"""
