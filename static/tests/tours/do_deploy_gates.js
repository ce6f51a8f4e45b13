import { registry } from "@web/core/registry";

/*
 * Issue 12's journey: a Deployment User requests a production deployment, which waits
 * for approval; a Deployment Manager approves it from the activity's link, and it runs
 * to done while the form follows through the bus.
 */

const PIPELINE_TIMEOUT = 60000;
const form = ".o_form_view";
const statusbarIs = (label) =>
    `${form} .o_statusbar_status button.o_arrow_button_current:contains('${label}')`;

registry.category("web_tour.tours").add("do_deploy_gates_request", {
    steps: () => [
        {
            content: "Deploy the task",
            trigger: `${form} .o_statusbar_buttons button[name='action_open_deploy_wizard']`,
            run: "click",
        },
        {
            content: "The tag the task names is proposed",
            trigger: ".modal .o_form_view div[name='image_tag'] input:value('v1.2.0')",
        },
        {
            content: "A Deployment User may choose the production app: it waits for approval",
            trigger: ".modal div[name='app_id'] input",
            run: "edit odoo-production",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('odoo-production')",
            run: "click",
        },
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
            trigger: `${form}:has(.o_do_deploy_live) .o_statusbar_status button.o_arrow_button_current:contains('Queued'), ${form}:has(.o_do_deploy_live) .o_statusbar_status button.o_arrow_button_current:contains('Running')`,
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
