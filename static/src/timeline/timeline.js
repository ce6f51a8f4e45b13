import { Component, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { deserializeDateTime } from "@web/core/l10n/dates";
import { useRecordObserver } from "@web/model/relational_model/utils";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { formatDuration } from "../fields/duration";

export const STEP_FIELDS = [
    "sequence", "code", "name", "state", "start_date", "end_date", "duration", "budget",
    "over_budget", "error_code_id", "deployment_id", "do_phase", "do_progress",
];

const STATE_ICONS = {
    pending: "fa-circle-o",
    running: "fa-circle-o-notch fa-spin",
    done: "fa-check",
    warning: "fa-exclamation",
    failed: "fa-times",
    skipped: "fa-minus",
};

const STATE_LABELS = {
    pending: _t("Pending"),
    running: _t("Running"),
    done: _t("Done"),
    warning: _t("Done with warning"),
    failed: _t("Failed"),
    skipped: _t("Skipped"),
};

/** Seconds as "4.2 s", "2 min 05 s" (kept for callers of the former helper). */
export const formatSeconds = formatDuration;

/** Seconds a step has taken: its duration, or the time since it started while it runs. */
export function stepElapsed(step, now) {
    if (step.state === "running" && step.start_date) {
        // A browser clock behind the server's would give a negative time.
        return Math.max(0, (now - deserializeDateTime(step.start_date).toMillis()) / 1000);
    }
    return step.state === "pending" ? null : step.duration;
}

/** An error code split after its underscores, so it wraps between words, never inside one. */
export function codeParts(code) {
    return (code || "").split(/(?<=_)/);
}

/**
 * Opens one step's detail: state, timing against budget, DigitalOcean's phase and
 * progress, the failing part of the log first, the code and mitigation. The step's
 * form is read only and brings its own Close button.
 */
export function openStepDialog(actionService, step, total) {
    return actionService.doAction({
        type: "ir.actions.act_window",
        name: _t("Step %(number)s of %(total)s · %(name)s", {
            number: step.sequence,
            total,
            name: step.name,
        }),
        res_model: "do.deployment.step",
        res_id: step.id,
        views: [[false, "form"]],
        target: "new",
        context: { form_view_initial_mode: "readonly" },
    });
}

/**
 * The deployment's steps, and those of its rollback, drawn as a pipeline:
 * one card per step with its state, duration against its budget, DigitalOcean's
 * phase while it builds and deploys, and its error code. A card opens the
 * step's detail. The steps are read again whenever the form's record changes,
 * which the live widget makes happen on every bus notification.
 */
export class DoDeployStepTimeline extends Component {
    static template = "do_deploy.StepTimeline";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ lanes: [], now: Date.now(), doAppId: null });
        this.codeParts = codeParts;
        useRecordObserver(async (record) => {
            // Reading these fields makes the observer run again when they change.
            const { state, progress, rollback_id, rollback_of_id, write_date, app_id } = record.data;
            void [state, progress, write_date];
            await Promise.all([
                this.loadSteps(record.resId, rollback_id?.id, rollback_of_id?.id),
                this.loadApp(app_id?.id),
            ]);
        });
        this.ticker = setInterval(() => {
            if (this.state.lanes.some((lane) => lane.steps.some((s) => s.state === "running"))) {
                this.state.now = Date.now();
            }
        }, 1000);
        onWillUnmount(() => clearInterval(this.ticker));
    }

    async loadSteps(deploymentId, rollbackId, rollbackOfId) {
        if (!deploymentId) {
            this.state.lanes = [];
            return;
        }
        const ids = [deploymentId, rollbackId, rollbackOfId].filter(Boolean);
        const steps = await this.orm.searchRead(
            "do.deployment.step",
            [["deployment_id", "in", ids]],
            STEP_FIELDS,
            { order: "deployment_id, sequence, id" }
        );
        const lanes = [];
        const pushLane = (key, title, laneSteps) => {
            if (laneSteps.length) {
                lanes.push({ key, title, steps: laneSteps });
            }
        };
        const own = steps.filter((s) => s.deployment_id[0] === deploymentId);
        const isRollbackStep = (s) => (s.code || "").startsWith("rb_");
        if (rollbackOfId) {
            pushLane("of", _t("Deployment rolled back"),
                steps.filter((s) => s.deployment_id[0] === rollbackOfId && !isRollbackStep(s)));
        }
        pushLane("deploy", rollbackOfId ? _t("Rollback") : _t("Deployment"),
            own.filter((s) => !isRollbackStep(s)));
        pushLane("rollback", _t("Rollback"), [
            ...own.filter(isRollbackStep),
            ...steps.filter((s) => s.deployment_id[0] === rollbackId),
        ]);
        this.state.lanes = lanes;
    }

    async loadApp(appId) {
        if (!appId || appId === this.appId) {
            return;
        }
        this.appId = appId;
        const [app] = await this.orm.read("do.app", [appId], ["do_app_id"]);
        this.state.doAppId = app?.do_app_id || null;
    }

    /** Links to the app and to this deployment in DigitalOcean's control panel. */
    get consoleLinks() {
        const doAppId = this.state.doAppId;
        if (!doAppId) {
            return [];
        }
        const appUrl = `https://cloud.digitalocean.com/apps/${encodeURIComponent(doAppId)}`;
        const links = [{ key: "app", label: _t("App in the DigitalOcean console"), url: appUrl }];
        const deploymentId = this.props.record.data.do_deployment_id;
        if (deploymentId) {
            links.push({
                key: "deployment",
                label: _t("This deployment in the console"),
                url: `${appUrl}/deployments/${encodeURIComponent(deploymentId)}`,
            });
        }
        return links;
    }

    elapsed(step) {
        return stepElapsed(step, this.state.now);
    }

    durationLabel(step) {
        if (step.state === "skipped") {
            return _t("skipped");
        }
        const elapsed = this.elapsed(step);
        if (elapsed === null || elapsed === undefined || step.state === "pending") {
            return step.budget ? _t("budget %s", formatDuration(step.budget)) : "";
        }
        return step.budget
            ? `${formatDuration(elapsed)} / ${formatDuration(step.budget)}`
            : formatDuration(elapsed);
    }

    /** DigitalOcean's phase and progress steps, for the steps that watch a deployment. */
    phaseLabel(step) {
        if (!step.do_phase || ["pending", "skipped"].includes(step.state)) {
            return "";
        }
        return step.do_progress ? `${step.do_phase} · ${step.do_progress}` : step.do_phase;
    }

    cardTitle(step) {
        return _t("%(what)s: click for the step's detail and log", {
            what: step.error_code_id ? step.error_code_id[1] : this.stateLabel(step),
        });
    }

    stateLabel(step) {
        return STATE_LABELS[step.state] || step.state;
    }

    isOverBudget(step) {
        const elapsed = this.elapsed(step);
        return step.over_budget || Boolean(step.budget && elapsed && elapsed > step.budget);
    }

    budgetRatio(step) {
        const elapsed = this.elapsed(step);
        if (!step.budget || !elapsed) {
            return 0;
        }
        return Math.min(100, Math.round((elapsed / step.budget) * 100));
    }

    errorCode(step) {
        return step.error_code_id ? step.error_code_id[1].split(" - ")[0] : "";
    }

    icon(step) {
        return STATE_ICONS[step.state] || "fa-circle-o";
    }

    openStep(step, lane) {
        openStepDialog(this.action, step, lane.steps.filter(
            (s) => s.deployment_id[0] === step.deployment_id[0]).length);
    }

    onKeydown(ev, step, lane) {
        if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            this.openStep(step, lane);
        }
    }
}

registry.category("view_widgets").add("do_deploy_step_timeline", {
    component: DoDeployStepTimeline,
    fieldDependencies: [
        { name: "state", type: "selection" },
        { name: "progress", type: "float" },
        { name: "write_date", type: "datetime" },
        { name: "rollback_id", type: "many2one", relation: "do.deployment" },
        { name: "rollback_of_id", type: "many2one", relation: "do.deployment" },
        { name: "app_id", type: "many2one", relation: "do.app" },
        { name: "do_deployment_id", type: "char" },
    ],
});
