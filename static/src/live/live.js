import { Component, onWillStart, onWillUnmount, status } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

const FINAL_STATES = ["done", "failed", "rolled_back", "canceled"];
// Notifications arrive in bursts (one per step action, and the last minute's again when
// the page connects): one reload per burst.
const RELOAD_DELAY = 250;

/**
 * Reloads the record of the form it sits in when the server says one of its
 * deployments changed (bus notification ``do_deploy/updated``), so a running
 * deployment and its task update without a page reload. The payload carries
 * only ids and states: what the user may see is read again through the ORM.
 */
export class DoDeployLive extends Component {
    static template = "do_deploy.Live";
    static props = { ...standardWidgetProps };

    setup() {
        this.bus = useService("bus_service");
        this.onUpdate = (payload) => this.reloadIfConcerned(payload);
        this.timer = null;
        onWillStart(() => this.bus.subscribe("do_deploy/updated", this.onUpdate));
        onWillUnmount(() => {
            clearTimeout(this.timer);
            this.bus.unsubscribe("do_deploy/updated", this.onUpdate);
        });
    }

    /**
     * The payload names one deployment and its task: reload when it is this one,
     * its rollback or the one it rolls back, or (on a task) one of the task's
     * deployments, including one started elsewhere (the API) while the form is open.
     */
    concerns(payload) {
        const record = this.props.record;
        if (!record.resId) {
            return false;
        }
        const data = record.data;
        if (record.resModel === "do.deployment") {
            return [record.resId, data.rollback_id?.id, data.rollback_of_id?.id].includes(payload.id);
        }
        if (record.resModel === "project.task") {
            return (
                payload.task_id === record.resId ||
                data.last_deployment_id?.id === payload.id ||
                Boolean(data.deployment_ids?.currentIds?.includes(payload.id))
            );
        }
        return false;
    }

    /** The form already shows what the payload says (e.g. a notification replayed). */
    isStale(payload) {
        const { resModel, data } = this.props.record;
        if (resModel === "do.deployment" && payload.id === this.props.record.resId) {
            return payload.state === data.state && payload.progress === data.progress &&
                FINAL_STATES.includes(payload.state);
        }
        if (resModel === "project.task" && payload.id === data.last_deployment_id?.id) {
            return payload.state === data.last_deployment_state &&
                FINAL_STATES.includes(payload.state);
        }
        return false;
    }

    reloadIfConcerned(payload) {
        if (!this.concerns(payload) || this.isStale(payload)) {
            return;
        }
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reload(), RELOAD_DELAY);
    }

    async reload() {
        const record = this.props.record;
        if (status(this) === "destroyed" || (await record.isDirty())) {
            return;
        }
        // The user may have left the form while isDirty() was answering.
        if (status(this) !== "destroyed") {
            await record.load();
        }
    }
}

registry.category("view_widgets").add("do_deploy_live", { component: DoDeployLive });
