import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * Seconds as people read them: "0.4 s", "33 s", "2 min 05 s", "1 h 02 min".
 * Durations are stored in seconds; Odoo's float_time widget reads hours.
 * A negative value (a browser clock behind the server's) reads as 0.
 */
export function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || seconds === false || Number.isNaN(seconds)) {
        return "";
    }
    const value = Math.max(0, seconds);
    if (value < 60) {
        return _t("%s s", value.toFixed(value < 10 ? 1 : 0));
    }
    const total = Math.round(value);
    if (total < 3600) {
        const minutes = Math.floor(total / 60);
        return _t("%(minutes)s min %(seconds)s s", {
            minutes,
            seconds: String(total % 60).padStart(2, "0"),
        });
    }
    const hours = Math.floor(total / 3600);
    return _t("%(hours)s h %(minutes)s min", {
        hours,
        minutes: String(Math.floor((total % 3600) / 60)).padStart(2, "0"),
    });
}

registry.category("formatters").add("do_deploy_duration", (value) => formatDuration(value));

/** A float field of seconds shown with formatDuration (list, form, kanban). */
export class DurationField extends Component {
    static template = "do_deploy.DurationField";
    static props = { ...standardFieldProps };

    get formatted() {
        const value = this.props.record.data[this.props.name];
        return value === false || value === null ? "" : formatDuration(value);
    }
}

registry.category("fields").add("do_deploy_duration", {
    component: DurationField,
    displayName: _t("Duration in seconds"),
    supportedTypes: ["float", "integer"],
    listViewWidth: [70, 110],
});
