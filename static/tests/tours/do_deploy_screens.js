import { registry } from "@web/core/registry";

/*
 * What the screens of issue 11 show in the browser: status bars that only name the
 * states a deployment went through, readable durations, step cards that open their
 * detail and keep error codes whole, the task's live banner and Roll back, history
 * colours and columns, and the steps on a phone.
 */

const form = ".o_form_view";
const dialog = ".modal:has(.o_form_view)";

function fail(message) {
    throw new Error(message);
}

/** Every error badge of the cards shows its whole code (nothing hidden behind an
 * ellipsis), and each text part sits on one line: no word is cut. */
function checkErrorCodesWhole() {
    const badges = document.querySelectorAll(".o_do_deploy_step_error");
    if (!badges.length) {
        fail("No error badge on the step cards.");
    }
    for (const badge of badges) {
        if (badge.scrollWidth > badge.clientWidth + 1) {
            fail(`The error code "${badge.textContent}" is cut (${badge.scrollWidth} px in ${badge.clientWidth} px).`);
        }
        const card = badge.closest(".o_do_deploy_step").getBoundingClientRect();
        const rect = badge.getBoundingClientRect();
        if (rect.left < card.left - 1 || rect.right > card.right + 1) {
            fail(`The error code "${badge.textContent}" overflows its card.`);
        }
        for (const node of badge.childNodes) {
            if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) {
                continue;
            }
            const range = document.createRange();
            range.selectNodeContents(node);
            const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
            if (lines.size > 1) {
                fail(`The error code is cut inside "${node.textContent}" (${lines.size} lines).`);
            }
        }
    }
}

/** The statusbar shows exactly ``labels``, in that order. */
function statusbarShows(labels) {
    return {
        content: `The status bar reads ${labels.join(" › ")}`,
        trigger: `${form} .o_statusbar_status:visible`,
        run() {
            // Odoo lays the status bar out right to left: its buttons come last state first.
            const shown = [...document.querySelectorAll(".o_form_view .o_statusbar_status")]
                .filter((bar) => bar.offsetParent !== null)
                .flatMap((bar) => [...bar.querySelectorAll("button.o_arrow_button")])
                .filter((button) => button.offsetParent !== null)
                .map((button) => button.textContent.trim())
                .filter(Boolean)
                .reverse();
            if (JSON.stringify(shown) !== JSON.stringify(labels)) {
                fail(`The status bar reads ${shown.join(" › ")}, not ${labels.join(" › ")}.`);
            }
        },
    };
}

const tours = registry.category("web_tour.tours");

// A deployment rolled back automatically after HEALTH_CHECK_FAIL; one tour per defect.
tours.add("do_deploy_rolled_back_statusbar", {
    steps: () => [statusbarShows(["Queued", "Running", "Rolling Back", "Rolled Back"])],
});

tours.add("do_deploy_rolled_back_duration", {
    steps: () => [
        {
            content: "The duration reads in seconds and minutes, not as hours",
            trigger: `${form} div[name='duration'] span`,
            run() {
                const text = this.anchor.textContent.trim();
                if (!/^\d+(\.\d)? s$|^\d+ min \d\d s$/.test(text)) {
                    fail(`The duration reads "${text}".`);
                }
            },
        },
    ],
});

tours.add("do_deploy_rolled_back_reason", {
    steps: () => [
        {
            content: "The rollback's reason shows on the deployment it rolled back",
            trigger: `${form}:has(.o_do_deploy_timeline)`,
            run() {
                const reason = document.querySelector(".o_form_view div[name='rolled_back_because']");
                if (!reason?.textContent.includes("Automatic rollback after HEALTH_CHECK_FAIL")) {
                    fail("The deployment does not say why it was rolled back.");
                }
            },
        },
    ],
});

tours.add("do_deploy_error_code_whole", {
    steps: () => [
        {
            content: "Error codes on the cards are never cut inside a word",
            trigger: `${form} .o_do_deploy_step[data-state='failed'] .o_do_deploy_step_error`,
            run: checkErrorCodesWhole,
        },
    ],
});

tours.add("do_deploy_monitor_phase", {
    steps: () => [
        {
            content: "The monitor card shows DigitalOcean's last phase",
            trigger: `${form} .o_do_deploy_step[data-code='monitor']`,
            run() {
                if (!this.anchor.querySelector(".o_do_deploy_step_phase")?.textContent.includes("ACTIVE")) {
                    fail(`The monitor card shows no phase: "${this.anchor.textContent.trim()}".`);
                }
            },
        },
    ],
});

tours.add("do_deploy_step_detail", {
    steps: () => [
        {
            content: "No list repeats the cards",
            trigger: `${form}:has(.o_do_deploy_timeline)`,
            run() {
                if (document.querySelector(".o_form_view .o_field_one2many[name='step_ids']")) {
                    fail("A Steps list repeats the cards.");
                }
            },
        },
        {
            content: "A step's card opens its detail",
            trigger: `${form} .o_do_deploy_step[data-code='health_check']`,
            run: "click",
        },
        {
            content: "... titled with the step, not 'Open: Steps'",
            trigger: `.modal .modal-title:contains('Step 5 of 8 · Health check')`,
        },
        {
            content: "... with the code and what to do",
            trigger: `${dialog} .o_do_deploy_error:contains('HEALTH_CHECK_FAIL'):contains('What to do')`,
        },
        {
            content: "... and the failing part of the log first",
            trigger: `${dialog} div[name='log_excerpt']`,
            run() {
                const first = this.anchor.textContent.trim().split("\n")[0];
                if (!/^\d\d:\d\d:\d\d FAILED HEALTH_CHECK_FAIL: /.test(first)) {
                    fail(`The excerpt starts with "${first}".`);
                }
            },
        },
        {
            content: "... read only: one Close button, no Save",
            trigger: `.modal:not(:has(.o_form_button_save)) .modal-footer button:contains('Close')`,
            run() {
                const buttons = document.querySelectorAll(".modal .modal-footer button");
                if (buttons.length !== 1) {
                    fail(`The step's detail has ${buttons.length} buttons.`);
                }
                this.anchor.click();
            },
        },
        {
            content: "Closed",
            trigger: "body:not(:has(.modal))",
        },
    ],
});

// A deployment that failed at step 1 (a wrong token), before it changed the app.
tours.add("do_deploy_failed_statusbar", {
    steps: () => [statusbarShows(["Queued", "Running", "Failed"])],
});

tours.add("do_deploy_retry_wizard", {
    steps: () => [
        {
            content: "Retry opens the deploy wizard, filled in",
            trigger: `${form} .o_statusbar_buttons button:contains('Retry')`,
            run: "click",
        },
        {
            content: "It says what it retries",
            trigger: `${dialog} .alert:contains('Retrying'):contains('DEP/')`,
        },
        {
            content: "... with the same tag",
            trigger: `${dialog} div[name='image_tag'] input:value('v1.2.0')`,
        },
        {
            content: "Deploy",
            trigger: `${dialog} footer button[name='action_confirm']`,
            run: "click",
        },
        {
            content: "The retry opens, linked to what it retries",
            trigger: `${form} .o_do_deploy_subtitle:contains('Retry of')`,
        },
    ],
});

// A deployment building on DigitalOcean (monitor running), seen from its task.
tours.add("do_deploy_running_banner", {
    steps: () => [
        {
            content: "The task shows its deployment running, step n of 8, and DigitalOcean's phase",
            trigger: `${form} .o_do_deploy_progress_banner:contains('Deploying v1.2.0 to odoo-staging'):contains('Step 4 of 8: Monitor deployment') .o_do_deploy_progress_phase:contains('BUILDING')`,
        },
        {
            content: "... with the time it has taken",
            trigger: `${form} .o_do_deploy_progress_banner .fa-clock-o`,
        },
        {
            content: "The banner's step log opens the running step",
            trigger: `${form} .o_do_deploy_progress_banner .o_do_deploy_progress_step_button`,
            run: "click",
        },
        {
            content: "... whose detail shows the phase",
            trigger: `${dialog} div[name='do_phase']:contains('BUILDING')`,
        },
        {
            trigger: `.modal .modal-footer button:contains('Close')`,
            run: "click",
        },
        {
            content: "Open the deployment from the banner",
            trigger: `${form} .o_do_deploy_progress_banner .o_do_deploy_progress_open`,
            run: "click",
        },
        {
            content: "The deployment opens",
            trigger: `${form} .o_do_deploy_step[data-code='monitor'][data-state='running']`,
        },
    ],
});

tours.add("do_deploy_building_phase", {
    steps: () => [
        {
            content: "The monitor card shows the phase while it builds",
            trigger: `${form} .o_do_deploy_step[data-code='monitor'][data-state='running']`,
            run() {
                if (!this.anchor.querySelector(".o_do_deploy_step_phase")?.textContent.includes("BUILDING")) {
                    fail(`The building monitor card shows no phase: "${this.anchor.textContent.trim()}".`);
                }
            },
        },
    ],
});

tours.add("do_deploy_no_negative_time", {
    steps: () => [
        {
            content: "A server clock ahead of the browser's never gives a negative time",
            trigger: `${form} .o_do_deploy_step[data-code='monitor'][data-state='running'] .o_do_deploy_step_duration`,
            run() {
                if (this.anchor.textContent.includes("-")) {
                    fail(`The running step reads "${this.anchor.textContent}".`);
                }
            },
        },
    ],
});

// A task deployed once, whose description names v1.2.0.
tours.add("do_deploy_wizard_tag_source", {
    steps: () => [
        {
            content: "The task's stat button counts one deployment in the singular",
            trigger: `${form} .o_do_deploy_task_stat .o_stat_value:visible`,
            run() {
                const text = this.anchor.innerText.replace(/\s+/g, " ").trim();
                if (text !== "1 Deployment") {
                    fail(`The stat button reads "${text}".`);
                }
            },
        },
        {
            trigger: `${form} button[name='action_open_deploy_wizard']`,
            run: "click",
        },
        {
            content: "The wizard proposes the task's tag and says so",
            trigger: `${dialog} div[name='image_tag'] input:value('v1.2.0')`,
        },
        {
            trigger: `${dialog} .o_do_deploy_tag_source:visible:contains('the task')`,
        },
        {
            content: "Another tag typed",
            trigger: `${dialog} div[name='image_tag'] input`,
            run: "edit v1.3.0 && press Tab",
        },
        {
            content: "... is no longer said to come from the task",
            trigger: `${dialog}:not(:has(.o_do_deploy_tag_source:visible)) div[name='image_tag'] input:value('v1.3.0')`,
        },
        {
            trigger: ".modal footer button[special='cancel']",
            run: "click",
        },
        {
            trigger: "body:not(:has(.modal))",
        },
    ],
});

tours.add("do_deploy_task_rollback", {
    steps: () => [
        {
            content: "The live task offers Roll back where Deploy is",
            trigger: `${form} .o_statusbar_buttons button[name='action_open_rollback_wizard']`,
            run: "click",
        },
        {
            content: "The wizard says from which version to which",
            trigger: `.modal .o_do_deploy_rollback_versions:contains('v1.2.0'):contains('v1.1.0')`,
        },
        {
            trigger: ".modal div[name='reason'] textarea",
            run: "edit Checkout errors after the release",
        },
        {
            trigger: ".modal footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The rollback shows what it rolls back, to which version, and why",
            trigger: `${form} .o_do_deploy_subtitle:contains('Rollback of'):contains('v1.2.0'):contains('v1.1.0')`,
        },
        {
            trigger: `${form} div[name='rollback_reason']:contains('Checkout errors after the release')`,
        },
    ],
});

tours.add("do_deploy_history_graph_colours", {
    steps: () => [
        {
            content: "The history graph's series by state take the colours of the state badges",
            trigger: ".o_graph_renderer canvas",
            async run() {
                const Chart = window.Chart;
                const chart = Chart && Chart.getChart(this.anchor);
                if (!chart) {
                    fail("No chart on the graph view.");
                }
                const byLabel = Object.fromEntries(
                    chart.data.datasets.map((dataset) => [dataset.label, dataset.backgroundColor]));
                // The colour of each state's badge in the list.
                const badge = (cls) => {
                    const probe = document.createElement("span");
                    probe.className = `badge ${cls}`;
                    document.body.append(probe);
                    const color = getComputedStyle(probe).backgroundColor;
                    probe.remove();
                    return color;
                };
                if (!byLabel.Done) {
                    fail(`No "Done" series: ${Object.keys(byLabel).join(", ")}`);
                }
                for (const [label, cls] of [["Done", "text-bg-success"], ["Failed", "text-bg-danger"],
                                            ["Rolled Back", "text-bg-warning"]]) {
                    if (byLabel[label] && byLabel[label] !== badge(cls)) {
                        fail(`${label} is drawn ${byLabel[label]}, not ${badge(cls)} as its badge.`);
                    }
                }
            },
        },
    ],
});

tours.add("do_deploy_history_list_columns", {
    steps: () => [
        {
            content: "Names and states of the history list are not cut",
            trigger: ".o_list_view .o_data_row td[name='name']",
            run() {
                for (const cell of document.querySelectorAll(
                    ".o_list_view .o_data_row td[name='name'], .o_list_view .o_data_row td[name='state']")) {
                    if (cell.scrollWidth > cell.clientWidth + 1) {
                        fail(`"${cell.textContent.trim()}" is cut in the history list.`);
                    }
                }
            },
        },
    ],
});

tours.add("do_deploy_error_codes_list", {
    steps: () => [
        {
            content: "Error code rows are not coloured red or orange; codes are whole",
            trigger: ".o_list_view .o_data_row td[name='code']:contains('HEALTH_CHECK_FAIL')",
            run() {
                const colored = document.querySelectorAll(
                    ".o_list_view tr.o_data_row.text-danger, .o_list_view tr.o_data_row.text-warning");
                if (colored.length) {
                    fail(`${colored.length} error code rows are coloured.`);
                }
                for (const cell of document.querySelectorAll(".o_list_view .o_data_row td[name='code']")) {
                    if (cell.scrollWidth > cell.clientWidth + 1) {
                        fail(`${cell.textContent.trim()} is cut.`);
                    }
                }
            },
        },
    ],
});

tours.add("do_deploy_error_code_resolution", {
    steps: () => [
        {
            content: "A resolution time that varies says so",
            trigger: ".o_list_view .o_data_row:has(td[name='code']:contains('HEALTH_CHECK_FAIL'))",
            run() {
                if (!this.anchor.textContent.includes("Varies")) {
                    fail(`HEALTH_CHECK_FAIL's row reads "${this.anchor.textContent.trim()}".`);
                }
            },
        },
    ],
});

tours.add("do_deploy_phone_steps", {
    steps: () => [
        {
            content: "The cards are stacked",
            trigger: `${form} .o_do_deploy_step[data-code='health_check'][data-state='failed']`,
            run() {
                const rect = this.anchor.getBoundingClientRect();
                if (rect.left < 0 || rect.right > window.innerWidth) {
                    fail(`The failed step is off screen (${rect.left}-${rect.right} of ${window.innerWidth}).`);
                }
                const steps = this.anchor.closest(".o_do_deploy_steps");
                if (steps.scrollWidth > steps.clientWidth + 1) {
                    fail("The steps scroll sideways.");
                }
            },
        },
        {
            content: "... and open their detail",
            trigger: `${form} .o_do_deploy_step[data-code='health_check']`,
            run: "click",
        },
        {
            trigger: `.modal div[name='log_excerpt']:contains('HEALTH_CHECK_FAIL')`,
        },
    ],
});

tours.add("do_deploy_dora_phone", {
    steps: () => [
        {
            // Without a card view the lines showed their group's name only.
            content: "On a phone, DORA's lines are cards with their figures",
            trigger: `${form} div[name='total_line_ids'] .o_kanban_record:contains('All production'):contains('Per week'):contains('Change failure rate'):contains('Time to restore')`,
        },
    ],
});

tours.add("do_deploy_stage_benchmarks_phone", {
    steps: () => [
        {
            // The list's seven columns scrolled sideways on a phone.
            content: "On a phone, the stage benchmarks are cards with their figures",
            trigger: `${form} div[name='overall_line_ids'] .o_kanban_record:contains('Health check'):contains('Budget'):contains('p95')`,
            run() {
                const sheet = this.anchor.closest(".o_form_sheet_bg") || document.body;
                if (sheet.scrollWidth > sheet.clientWidth + 1) {
                    fail(`The report scrolls sideways (${sheet.scrollWidth} px in ${sheet.clientWidth}).`);
                }
            },
        },
    ],
});
