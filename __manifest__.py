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
    ],
    "demo": [
        "demo/do_deploy_demo.xml",
    ],
    "assets": {},
    "installable": True,
    "application": True,
}
