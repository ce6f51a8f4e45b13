from . import do_deploy_wizard
from . import do_rollback_wizard
from . import do_gate_decision
