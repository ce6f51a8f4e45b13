# The repository root is the addon, and the engine's own pytest suite runs
# from it with no Odoo installed: pytest imports this file as a plain package
# there, so the Odoo layers load only when Odoo imports the addon.
if __name__.startswith("odoo.addons."):
    from . import controllers, models, wizards
