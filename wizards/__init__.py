from . import do_deploy_wizard
from . import do_deploy_wizard_dry_run
from . import do_rollback_wizard
from . import do_gate_decision
