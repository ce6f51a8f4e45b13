import { registry } from "@web/core/registry";

/*
 * The KPI dashboard reads as a dashboard: no save or discard indicator, before or after
 * the period changes; a new period shows its figures at once; leaving it saves nothing.
 */

const form = ".o_form_view";
const noSaveIndicator = ".o_control_panel:not(:has(.o_form_status_indicator))";

registry.category("web_tour.tours").add("do_deploy_kpi_dashboard", {
    steps: () => [
        {
            content: "The dashboard opens on the last 30 days: nothing deployed then",
            trigger: `${form} div[name='total_line_ids'] .o_data_row td[name='deployments']:contains(0)`,
        },
        {
            content: "The totals are one row, without blank rows padding them to four",
            trigger: `${form} div[name='total_line_ids'] .o_data_row`,
            run() {
                const blank = [...this.anchor.closest("tbody").children].filter(
                    (row) => !row.classList.contains("o_data_row") && row.offsetHeight > 0);
                if (blank.length) {
                    throw new Error(`${blank.length} blank row(s) under the totals.`);
                }
            },
        },
        {
            content: "No save or discard indicator on a dashboard just opened",
            trigger: noSaveIndicator,
        },
        {
            content: "Choose January 2026",
            trigger: `${form} button[data-field='date_from']`,
            run: "click",
        },
        {
            trigger: `${form} input[data-field='date_from']`,
            run: "edit 01/01/2026",
        },
        {
            trigger: `${form} button[data-field='date_to']`,
            run: "click",
        },
        {
            trigger: `${form} input[data-field='date_to']`,
            run: "edit 01/31/2026 && click body",
        },
        {
            content: "January's figures show at once: the whole period and each app",
            trigger: `${form} div[name='total_line_ids'] .o_data_row td[name='deployments']:contains(3)`,
        },
        {
            trigger: `${form} div[name='app_line_ids'] .o_kanban_record:contains(shop-staging)`,
        },
        {
            content: "Still nothing to save once the period changed",
            trigger: noSaveIndicator,
        },
        {
            content: "Leave for another menu",
            trigger: ".o_main_navbar a[data-menu-xmlid='do_deploy.menu_do_deploy_error_codes']",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row",
        },
    ],
});

registry.category("web_tour.tours").add("do_deploy_kpi_dashboard_phone", {
    steps: () => [
        {
            // The card's zero downtime showed n/a in red where the list shows it grey.
            content: "On a phone, a period without deployments colours nothing",
            trigger: `${form} div[name='total_line_ids'] .o_kanban_record:contains('0 deployments'):contains('Zero downtime')`,
            run() {
                const coloured = this.anchor.querySelector("[class*='danger'], [class*='success']");
                if (coloured) {
                    throw new Error(`"${coloured.textContent}" is coloured without deployments.`);
                }
            },
        },
    ],
});
