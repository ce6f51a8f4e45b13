import { registry } from "@web/core/registry";
import { PIPELINE_TIMEOUT, deployWizardSteps, deploymentStarted, form, statusbarIs } from "@do_deploy/../tests/tours/tour_utils";

/*
 * Tours of the three places people use the addon. None of them reloads the
 * page while a deployment runs: the Python side advances the pipeline in the
 * background and the forms must follow through the bus, or the tour times out.
 */

const step = (code, state) =>
    `${form} .o_do_deploy_timeline .o_do_deploy_step[data-code='${code}'][data-state='${state}']`;

registry.category("web_tour.tours").add("do_deploy_task_deploy", {
    steps: () => [
        ...deployWizardSteps("odoo-staging", "Choose the staging app"),
        {
            content: "The wizard shows the app's environment",
            trigger: ".modal div[name='environment']:contains('Staging')",
        },
        {
            content: "Confirm",
            trigger: ".modal footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The new deployment opens, queued or running",
            trigger: deploymentStarted,
        },
        {
            content: "The eight steps are listed",
            trigger: `${form} .o_do_deploy_lane_deploy .o_do_deploy_step[data-code='update_task']`,
        },
        {
            content: "Steps complete live: update the spec",
            trigger: step("update_spec", "done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "... the build on DigitalOcean",
            trigger: step("monitor", "done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "... the health check, traffic switch and validation",
            trigger: step("validate", "done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "A done step's card opens its detail",
            trigger: step("validate", "done"),
            run: "click",
        },
        {
            content: "... with its timing and log",
            trigger: ".modal .modal-title:contains('Step 7 of 8 · Post-deployment validation')",
        },
        {
            trigger: ".modal div[name='log']:contains('OK')",
        },
        {
            trigger: ".modal .modal-footer button:contains('Close')",
            run: "click",
        },
        {
            content: "Go to the task while the last step is pending",
            trigger: `${form} .o-form-buttonbox button[name='action_view_task']`,
            run: "click",
        },
        {
            content: "The task lands in its deployed stage by itself",
            trigger: `${form}:has(.o_do_deploy_live) .o_statusbar_status button.o_arrow_button_current:contains('Deployed')`,
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "Its smart button shows the deployment and its state",
            trigger: `${form} .o-form-buttonbox button[name='action_view_deployments']:contains('1'):contains('Done')`,
        },
    ],
});

registry.category("web_tour.tours").add("do_deploy_health_check_rollback", {
    steps: () => [
        {
            content: "The deployment runs",
            trigger: `${form}:has(.o_do_deploy_live) .o_do_deploy_timeline .o_do_deploy_step[data-code='health_check']`,
        },
        {
            content: "Its health check fails, with its error code",
            trigger: step("health_check", "failed") + ":has(.o_do_deploy_step_error:contains('HEALTH_CHECK_FAIL'))",
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The error code, its severity and mitigation are on the form",
            trigger: `${form} .o_do_deploy_error:contains('HEALTH_CHECK_FAIL'):contains('critical'):contains('What to do'):contains('rolled back')`,
        },
        {
            content: "While it rolls back, the status bar says so (and never Done)",
            trigger: `${form}:not(:has(.o_statusbar_status:visible button:contains('Done'))) .o_statusbar_status:visible button.o_arrow_button_current:contains('Rolling Back')`,
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The automatic rollback appears and runs",
            trigger: `${form} .o_do_deploy_lane_rollback .o_do_deploy_step[data-code='rb_validate']`,
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The rollback commits",
            trigger: step("rb_commit", "done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The deployment ends rolled back",
            trigger: `${form} .ribbon:contains('Rolled back')`,
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "... and points to its incident",
            trigger: `${form} div[name='incident_task_id']:contains('INCIDENT')`,
            timeout: PIPELINE_TIMEOUT,
        },
    ],
});

registry.category("web_tour.tours").add("do_deploy_manual_rollback", {
    steps: () => [
        {
            content: "A finished deployment can be rolled back",
            trigger: `${form} .ribbon:contains('Live')`,
        },
        {
            content: "Roll back",
            trigger: `${form} .o_statusbar_buttons button:contains('Roll back')`,
            run: "click",
        },
        {
            content: "The wizard says from which version to which",
            trigger: ".modal .o_do_deploy_rollback_versions:contains('v1.1.0'):contains('v1.0.0')",
        },
        {
            content: "Give the reason",
            trigger: ".modal div[name='reason'] textarea",
            run: "edit Checkout errors after the release",
        },
        {
            content: "Confirm",
            trigger: ".modal footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The rollback deployment opens",
            trigger: `${form}:has(.o_do_deploy_live) .oe_title:contains('Rollback of')`,
        },
        {
            content: "... with its reason",
            trigger: `${form} div[name='rollback_reason']:contains('Checkout errors after the release')`,
        },
        {
            content: "Its steps run live",
            trigger: step("rb_commit", "done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The rollback is done",
            trigger: statusbarIs("Done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "Open the deployment it rolled back",
            trigger: `${form} .oe_title div[name='rollback_of_id'] a`,
            run: "click",
        },
        {
            content: "That deployment is rolled back",
            trigger: `${form} .ribbon:contains('Rolled back')`,
        },
        {
            content: "... and offers no second rollback",
            trigger: `${form}:not(:has(.o_statusbar_buttons button:contains('Roll back')))`,
        },
    ],
});
