import { registry } from "@web/core/registry";
import { deployWizardSteps, form } from "@do_deploy/../tests/tours/tour_utils";

/*
 * Dry run from the deploy wizard: the diff and the monthly cost show above Deploy, and
 * the deployment Deploy creates keeps that dry run for its approvers.
 */

registry.category("web_tour.tours").add("do_deploy_dry_run", {
    steps: () => [
        ...deployWizardSteps("odoo-staging", "Choose the staging app"),
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
