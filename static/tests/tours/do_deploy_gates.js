import { registry } from "@web/core/registry";
import { PIPELINE_TIMEOUT, deployWizardSteps, deploymentStarted, form, statusbarIs } from "@do_deploy/../tests/tours/tour_utils";

/*
 * Issue 12's journey: a Deployment User requests a production deployment, which waits
 * for approval; a Deployment Manager approves it from the activity's link, and it runs
 * to done while the form follows through the bus.
 */

registry.category("web_tour.tours").add("do_deploy_gates_request", {
    steps: () => [
        ...deployWizardSteps(
            "odoo-production",
            "A Deployment User may choose the production app: it waits for approval"
        ),
        {
            trigger: ".modal div[name='environment']:contains('Production')",
        },
        {
            content: "Confirm",
            trigger: ".modal footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The deployment waits, and says for what",
            trigger: `${form} .o_do_deploy_waiting:contains('Waiting for Approval')`,
        },
        {
            trigger: statusbarIs("Waiting"),
        },
        {
            content: "The requester cannot approve it",
            trigger: `${form}:not(:has(button[name='action_open_approve']))`,
        },
    ],
});

registry.category("web_tour.tours").add("do_deploy_gates_approve", {
    steps: () => [
        {
            content: "The approver has an activity on the waiting deployment",
            trigger: ".o-mail-Activity:contains('Approve DEP') .o-mail-Activity-note:contains('asks to deploy v1.2.0')",
        },
        {
            content: "Its Approve link opens the approval page",
            trigger: ".o-mail-Activity .o-mail-Activity-note a:contains('Approve')",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The page shows the request and its gates",
            trigger: ".o_do_deploy_approval:contains('asks to deploy'):contains('Approval')",
        },
        {
            trigger: ".o_do_deploy_approval textarea[name='comment']",
            run: "edit Release CHG-1042 approved",
        },
        {
            content: "Approve",
            trigger: ".o_do_deploy_approval button[value='approve']",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Back on the deployment, which left the waiting room",
            trigger: deploymentStarted,
        },
        {
            content: "It runs to done",
            trigger: statusbarIs("Done"),
            timeout: PIPELINE_TIMEOUT,
        },
        {
            content: "The approval is recorded on the Gates tab",
            trigger: `${form} .o_notebook a:contains('Gates')`,
            run: "click",
        },
        {
            trigger: `${form} div[name='approval_ids'] td:contains('Release CHG-1042 approved')`,
        },
    ],
});
