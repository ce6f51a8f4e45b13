{
    "name": "DigitalOcean Deployments",
    "summary": "Blue-green deployments to DigitalOcean App Platform from project tasks, "
    "with live progress, history and automatic rollback",
    "version": "19.0.1.0.0",
    "category": "Services/Project",
    "author": "do_deploy team",
    "website": "https://github.com/do-deploy/do_deploy",
    "license": "LGPL-3",
    "depends": ["project", "mail", "bus"],
    "external_dependencies": {"python": ["requests", "PyYAML"]},
    "data": [
        "security/do_deploy_security.xml",
        "security/ir.model.access.csv",
        "data/ir_sequence_data.xml",
        "data/do_error_code_data.xml",
        "data/ir_cron_data.xml",
        "wizards/do_deploy_wizard_views.xml",
        "wizards/do_rollback_wizard_views.xml",
        "views/do_account_views.xml",
        "views/do_app_views.xml",
        "views/do_deployment_step_views.xml",
        "views/do_deployment_views.xml",
        "views/do_error_code_views.xml",
        "views/project_task_views.xml",
        "views/menus.xml",
    ],
    "demo": [
        "demo/do_deploy_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "do_deploy/static/src/**/*",
            # Odoo's graph view is in the lazy bundle, so the graph that extends it is too.
            ("remove", "do_deploy/static/src/graph/**/*"),
        ],
        "web.assets_backend_lazy": ["do_deploy/static/src/graph/**/*"],
        "web.assets_tests": ["do_deploy/static/tests/tours/**/*"],
    },
    "application": True,
}
