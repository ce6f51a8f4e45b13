from . import (
    do_account,
    do_app,
    do_app_endpoint_check,
    do_call_budget,
    do_deployment,
    do_deployment_runner,
    do_deployment_steps,
    do_deployment_rollback,
    do_deployment_step,
    do_error_code,
    ir_config_parameter,
    project_task,
)
