import { registry } from "@web/core/registry";
import { GraphRenderer } from "@web/views/graph/graph_renderer";
import { graphView } from "@web/views/graph/graph_view";
import { DEPLOYMENT_STATES } from "../fields/deployment_badge";

/** The background colour of the state's badge (list, kanban, form), so a graph by state
 * reads like them. */
export function stateColor(state) {
    const badgeClass = DEPLOYMENT_STATES[state]?.[1];
    if (!badgeClass) {
        return null;
    }
    const probe = document.createElement("span");
    probe.className = `badge ${badgeClass}`;
    probe.style.display = "none";
    document.body.append(probe);
    const color = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return color || null;
}

/**
 * Deployments graph whose series (or bars) by state take the state's colour:
 * done green, failed red, rolled back orange, running blue, canceled grey.
 * Any other grouping keeps Odoo's palette.
 */
export class DeploymentGraphRenderer extends GraphRenderer {
    stateByLabel() {
        const field = this.model.metaData.fields.state;
        return Object.fromEntries((field?.selection || []).map(([value, label]) => [label, value]));
    }

    groupIndexOfState() {
        return (this.model.metaData.groupBy || []).findIndex((gb) => gb.fieldName === "state");
    }

    recolor(data, mode) {
        const index = this.groupIndexOfState();
        if (index < 0) {
            return data;
        }
        const byLabel = this.stateByLabel();
        if (index === 0 && (mode === "pie" || this.model.metaData.groupBy.length === 1)) {
            // One series whose points are the states.
            for (const dataset of data.datasets) {
                const colors = data.labels.map((label) => stateColor(byLabel[label]));
                if (colors.every(Boolean)) {
                    dataset.backgroundColor = colors;
                    if (mode === "line") {
                        dataset.pointBackgroundColor = colors;
                    }
                }
            }
            return data;
        }
        for (const dataset of data.datasets) {
            const color = stateColor(byLabel[dataset.label]);
            if (!color) {
                continue;
            }
            if (mode === "line") {
                dataset.borderColor = color;
                dataset.pointBackgroundColor = color;
            } else {
                dataset.backgroundColor = color;
            }
        }
        return data;
    }

    getBarChartData() {
        return this.recolor(super.getBarChartData(), "bar");
    }

    getLineChartData() {
        return this.recolor(super.getLineChartData(), "line");
    }

    getPieChartData() {
        return this.recolor(super.getPieChartData(), "pie");
    }
}

registry.category("views").add("do_deploy_deployment_graph", {
    ...graphView,
    Renderer: DeploymentGraphRenderer,
});
