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
    "data": [],
    "demo": [],
    "assets": {},
    "installable": True,
    "application": True,
}
