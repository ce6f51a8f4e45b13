import { registry } from "@web/core/registry";
import { formView } from "@web/views/form/form_view";

/**
 * A report opened as a form (the KPI dashboard): its fields choose what it shows and
 * its figures follow them at once, so there is nothing to save. No save or discard
 * indicator, and leaving it, hiding the tab or closing the page writes nothing, as
 * Odoo's settings form does for the same reason. A button that calls the server
 * (Trend, Pivot) still saves the record first, so that the server reads the period.
 */
export class ReportFormController extends formView.Controller {
    static template = "do_deploy.ReportFormView";

    beforeLeave() {}

    beforeUnload() {}

    beforeVisibilityChange() {}
}

registry.category("views").add("do_deploy_report_form", {
    ...formView,
    Controller: ReportFormController,
});
