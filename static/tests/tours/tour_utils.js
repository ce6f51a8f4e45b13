/*
 * What the deployment tours share: the form, how long a pipeline may take to move,
 * and the deploy wizard opened from a task.
 */

export const PIPELINE_TIMEOUT = 60000;
export const form = ".o_form_view";

/** The status bar's current state reads ``label``. */
export const statusbarIs = (label) =>
    `${form} .o_statusbar_status button.o_arrow_button_current:contains('${label}')`;

/** The deployment Deploy opened, following the pipeline live: queued or running. */
export const deploymentStarted = ["Queued", "Running"]
    .map((label) => `${form}:has(.o_do_deploy_live) .o_statusbar_status button.o_arrow_button_current:contains('${label}')`)
    .join(", ");

/** Open the task's deploy wizard, which proposes the tag the task names, and choose ``app``. */
export function deployWizardSteps(app, content) {
    return [
        {
            content: "Deploy the task",
            trigger: `${form} .o_statusbar_buttons button[name='action_open_deploy_wizard']`,
            run: "click",
        },
        {
            content: "The tag the task names is proposed",
            trigger: ".modal .o_form_view div[name='image_tag'] input:value('v1.2.0')",
        },
        {
            content,
            trigger: ".modal div[name='app_id'] input",
            run: `edit ${app}`,
        },
        {
            trigger: `.o-autocomplete--dropdown-item a:contains('${app}')`,
            run: "click",
        },
    ];
}
