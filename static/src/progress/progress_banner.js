import { Component, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { deserializeDateTime } from "@web/core/l10n/dates";
import { useRecordObserver } from "@web/model/relational_model/utils";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { formatDuration } from "../fields/duration";
import { codeParts, openStepDialog, STEP_FIELDS, stepElapsed } from "../timeline/timeline";

const IN_FLIGHT = ["queued", "running", "rolling_back"];
const DEPLOYMENT_FIELDS = [
    "name", "state", "kind", "image_tag", "app_id", "environment", "start_date", "queued_at",
    "rollback_id", "previous_version", "error_code_id",
];

/**
 * The banner a task shows while its deployment is queued, runs or rolls back:
 * which version goes to which app, step n of N with its name, DigitalOcean's
 * phase and progress, the time it has taken, and a way to the deployment.
 * The task form reloads on every bus notification about its deployments (the
 * live widget); the banner reads the steps again then and ticks in between.
 */
export class DeploymentProgressBanner extends Component {
    static template = "do_deploy.ProgressBanner";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.codeParts = codeParts;
        this.state = useState({ info: null, now: Date.now() });
        useRecordObserver(async (record) => {
            const { last_deployment_id, last_deployment_state, write_date } = record.data;
            void write_date;
            await this.load(last_deployment_id?.id, last_deployment_state);
        });
        this.ticker = setInterval(() => {
            if (this.state.info) {
                this.state.now = Date.now();
            }
        }, 1000);
        onWillUnmount(() => clearInterval(this.ticker));
    }

    async load(deploymentId, deploymentState) {
        if (!deploymentId || !IN_FLIGHT.includes(deploymentState)) {
            this.state.info = null;
            return;
        }
        const [deployment] = await this.orm.read("do.deployment", [deploymentId], DEPLOYMENT_FIELDS);
        if (!deployment || !IN_FLIGHT.includes(deployment.state)) {
            this.state.info = null;
            return;
        }
        // While a deployment rolls back, its rollback is what runs.
        let runner = deployment;
        if (deployment.state === "rolling_back" && deployment.rollback_id) {
            [runner] = await this.orm.read("do.deployment", [deployment.rollback_id[0]],
                DEPLOYMENT_FIELDS);
        }
        const steps = await this.orm.searchRead(
            "do.deployment.step", [["deployment_id", "=", runner.id]], STEP_FIELDS,
            { order: "sequence, id" });
        const current = steps.find((s) => s.state === "running") ||
            steps.find((s) => s.state === "pending") || null;
        this.state.info = { deployment, runner, steps, current };
    }

    get alertClass() {
        return this.state.info.deployment.state === "rolling_back" ? "alert-warning" : "alert-info";
    }

    get headline() {
        const { deployment, runner } = this.state.info;
        const app = deployment.app_id[1];
        if (deployment.state === "rolling_back") {
            return _t("Rolling %(app)s back to %(version)s", {
                app,
                version: runner.image_tag || deployment.previous_version || _t("the previous version"),
            });
        }
        if (deployment.state === "queued") {
            return _t("%(tag)s is queued for %(app)s", { tag: deployment.image_tag, app });
        }
        return _t("Deploying %(tag)s to %(app)s", { tag: deployment.image_tag, app });
    }

    get stepLine() {
        const { steps, current, deployment } = this.state.info;
        if (deployment.state === "queued") {
            return _t("It starts as soon as the app has no other deployment running.");
        }
        if (!current) {
            return _t("Finishing…");
        }
        return _t("Step %(number)s of %(total)s: %(name)s", {
            number: current.sequence,
            total: steps.length,
            name: current.name,
        });
    }

    get phase() {
        const current = this.state.info.current;
        if (!current || !current.do_phase || current.state !== "running") {
            return "";
        }
        return current.do_progress ? `${current.do_phase} · ${current.do_progress}` : current.do_phase;
    }

    get stepElapsed() {
        const current = this.state.info.current;
        if (!current || current.state !== "running") {
            return "";
        }
        const budget = current.budget ? ` / ${formatDuration(current.budget)}` : "";
        return `${formatDuration(stepElapsed(current, this.state.now))}${budget}`;
    }

    get totalElapsed() {
        const { deployment } = this.state.info;
        const since = deployment.start_date || deployment.queued_at;
        if (!since) {
            return "";
        }
        return formatDuration((this.state.now - deserializeDateTime(since).toMillis()) / 1000);
    }

    get doneRatio() {
        const { steps } = this.state.info;
        const finished = steps.filter((s) => ["done", "warning", "skipped"].includes(s.state));
        return steps.length ? Math.round((100 * finished.length) / steps.length) : 0;
    }

    openDeployment() {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "do.deployment",
            res_id: this.state.info.runner.id,
            views: [[false, "form"]],
            target: "current",
        });
    }

    openCurrentStep() {
        const { current, steps } = this.state.info;
        if (current) {
            openStepDialog(this.action, current, steps.length);
        }
    }
}

registry.category("view_widgets").add("do_deploy_progress_banner", {
    component: DeploymentProgressBanner,
    fieldDependencies: [
        { name: "last_deployment_id", type: "many2one", relation: "do.deployment" },
        { name: "last_deployment_state", type: "selection" },
        { name: "write_date", type: "datetime" },
    ],
});
