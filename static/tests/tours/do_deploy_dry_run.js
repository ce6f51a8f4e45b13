import { registry } from "@web/core/registry";

/*
 * Dry run from the deploy wizard: the diff and the monthly cost show above Deploy, and
 * the deployment Deploy creates keeps that dry run for its approvers.
 */

const form = ".o_form_view";

registry.category("web_tour.tours").add("do_deploy_dry_run", {
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
            content: "Choose the staging app",
            trigger: ".modal div[name='app_id'] input",
            run: "edit odoo-staging",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('odoo-staging')",
            run: "click",
        },
        {
            content: "Dry run",
            trigger: ".modal footer button[name='action_dry_run']",
            run: "click",
        },
        {
            content: "DigitalOcean accepts the change",
            trigger: ".modal .o_do_deploy_dry_run_valid:contains('odoo-staging')",
        },
        {
            content: "The images change from the live tag to the new one",
            trigger: ".modal .o_do_deploy_dry_run_images td:contains('odoo:v1.0.0') + td:contains('odoo:v1.2.0')",
        },
        {
            content: "The monthly cost before and after",
            trigger: ".modal .o_do_deploy_dry_run_cost:has(.o_do_deploy_cost_before:contains('$24.00')):has(.o_do_deploy_cost_after:contains('$24.00'))",
        },
        {
            content: "Deploy",
            trigger: ".modal footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The deployment shows the dry run it was deployed with",
            trigger: `${form} .o_notebook .o_do_deploy_dry_run .o_do_deploy_dry_run_images td:contains('odoo:v1.2.0')`,
        },
    ],
});
