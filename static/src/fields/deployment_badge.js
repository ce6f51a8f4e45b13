import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

export const DEPLOYMENT_STATES = {
    draft: [_t("Draft"), "text-bg-secondary"],
    waiting: [_t("Waiting"), "text-bg-light"],
    queued: [_t("Queued"), "text-bg-info"],
    running: [_t("Running"), "text-bg-info"],
    rolling_back: [_t("Rolling Back"), "text-bg-warning"],
    done: [_t("Done"), "text-bg-success"],
    failed: [_t("Failed"), "text-bg-danger"],
    rolled_back: [_t("Rolled Back"), "text-bg-warning"],
    canceled: [_t("Canceled"), "text-bg-secondary"],
};

export const SEVERITY_CLASSES = {
    critical: "text-bg-danger",
    high: "text-bg-warning",
    medium: "text-bg-info",
    low: "text-bg-secondary",
};

/**
 * A many2one to a deployment shown as its name and a coloured state badge,
 * read in the same request as the record (relatedFields), e.g. an app's last
 * deployment on its dashboard card.
 */
export class DeploymentBadgeField extends Component {
    static template = "do_deploy.DeploymentBadgeField";
    static props = { ...standardFieldProps };

    get deployment() {
        return this.props.record.data[this.props.name];
    }

    get stateLabel() {
        return (DEPLOYMENT_STATES[this.deployment.state] || [this.deployment.state])[0];
    }

    get stateClass() {
        return (DEPLOYMENT_STATES[this.deployment.state] || [null, "text-bg-secondary"])[1];
    }
}

registry.category("fields").add("do_deploy_deployment_badge", {
    component: DeploymentBadgeField,
    supportedTypes: ["many2one"],
    listViewWidth: [180, 260],
    relatedFields: [
        { name: "display_name", type: "char" },
        { name: "state", type: "char" },
    ],
});

/**
 * A many2one to an error code shown as the code and its severity badge, with
 * the description as tooltip; compact, the code alone in a badge coloured by
 * its severity, so a list row stays one line.
 */
export class ErrorCodeField extends Component {
    static template = "do_deploy.ErrorCodeField";
    static props = { ...standardFieldProps, compact: { type: Boolean, optional: true } };

    get errorCode() {
        return this.props.record.data[this.props.name];
    }

    get severityClass() {
        return SEVERITY_CLASSES[this.errorCode.severity] || "text-bg-secondary";
    }
}

registry.category("fields").add("do_deploy_error_code", {
    component: ErrorCodeField,
    supportedTypes: ["many2one"],
    listViewWidth: [200, 280],
    // compact: the code alone, coloured by its severity (lists, cards).
    extractProps: ({ options }) => ({ compact: Boolean(options.compact) }),
    relatedFields: [
        { name: "display_name", type: "char" },
        { name: "code", type: "char" },
        { name: "name", type: "char" },
        { name: "severity", type: "char" },
    ],
});
