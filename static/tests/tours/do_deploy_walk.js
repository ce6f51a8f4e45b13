import { registry } from "@web/core/registry";
import { rpcBus } from "@web/core/network/rpc";
import { animationFrame, click, delay, queryAll, queryFirst, waitUntil } from "@odoo/hoot-dom";

/*
 * Walks every screen of the Deployments app as the logged-in user sees it:
 * every menu, every view of its action (and the form of its first record),
 * every filter and every group-by of the search panel in the action's first
 * view, and every group-by again in each other view. A client error anywhere
 * (an "Oops!" dialog, an error in the console) fails the tour, and the console
 * log names the last screen reached.
 */

let pendingRpcs = 0;
rpcBus.addEventListener("RPC:REQUEST", () => pendingRpcs++);
rpcBus.addEventListener("RPC:RESPONSE", () => (pendingRpcs = Math.max(0, pendingRpcs - 1)));

const visited = [];

/** Wait until no RPC is in flight and the screen has painted twice. */
async function settle() {
    await animationFrame();
    await waitUntil(() => pendingRpcs === 0, { timeout: 20000 });
    await animationFrame();
    await delay(50);
    await waitUntil(() => pendingRpcs === 0, { timeout: 20000 });
    const dialog = queryFirst(".o_error_dialog, .o_dialog:has(.o_error_detail)");
    if (dialog) {
        throw new Error(`Client error on ${visited.at(-1)}: ${dialog.innerText.slice(0, 500)}`);
    }
}

async function visit(label, action) {
    visited.push(label);
    console.log(`do_deploy walk: ${label}`);
    await action();
    await settle();
}

function openSearchMenu() {
    if (!queryFirst(".o_search_bar_menu")) {
        return click(".o_control_panel .o_searchview_dropdown_toggler");
    }
}

/** Toggle each item of one menu of the search panel on, then off again. */
async function* walkSearchItems(screen, menuSelector) {
    // A report opened as a form (KPI Dashboard, Stage Benchmarks, DORA) has no search panel.
    if (!queryFirst(".o_control_panel .o_searchview_dropdown_toggler")) {
        return;
    }
    await visit(`${screen} › search panel`, openSearchMenu);
    const count = queryAll(`${menuSelector} .o_menu_item`).length;
    for (let index = 0; index < count; index++) {
        await openSearchMenu();
        await settle();
        const item = queryAll(`${menuSelector} .o_menu_item`)[index];
        if (!item || item.matches(".o_add_custom_filter, .o_add_custom_group_menu")) {
            continue;
        }
        const label = `${screen} › ${item.innerText.trim()}`;
        if (item.matches(".o_accordion_toggle")) {
            await visit(`${label} (options)`, () => click(item));
            const options = queryAll(`${menuSelector} .o_accordion_values .o_item_option`);
            if (options.length) {
                await visit(`${label} › ${options[0].innerText.trim()}`, () => click(options[0]));
                const again = queryFirst(`${menuSelector} .o_accordion_values .o_item_option`);
                if (again) {
                    await visit(`${label} › off`, () => click(again));
                }
            }
            const toggle = queryAll(`${menuSelector} .o_menu_item`)[index];
            if (toggle && toggle.matches(".open")) {
                await visit(`${label} (close)`, () => click(toggle));
            }
            yield;
            continue;
        }
        await visit(`${label} on`, () => click(item));
        await openSearchMenu();
        await settle();
        const same = queryAll(`${menuSelector} .o_menu_item`)[index];
        if (same) {
            await visit(`${label} off`, () => click(same));
        }
        yield;
    }
    if (queryFirst(".o_search_bar_menu")) {
        await visit(`${screen} › close search panel`, () =>
            click(".o_control_panel .o_searchview_dropdown_toggler")
        );
    }
}

/** The view types offered by the switcher of the current action. */
function viewTypes() {
    return queryAll(".o_control_panel .o_switch_view").map((button) =>
        [...button.classList].find((cls) => /^o_(list|kanban|form|graph|pivot|calendar|activity)$/.test(cls))
    ).filter(Boolean);
}

async function* walkAction(menuLabel) {
    await waitUntil(() => queryFirst(".o_action_manager .o_view_controller"), { timeout: 20000 });
    await settle();
    const types = viewTypes();
    const first = types[0] || "single view";
    yield* walkSearchItems(`${menuLabel} [${first}]`, ".o_filter_menu");
    yield* walkSearchItems(`${menuLabel} [${first}]`, ".o_group_by_menu");
    for (const type of types.slice(1)) {
        const screen = `${menuLabel} [${type.slice(2)}]`;
        await visit(screen, () => click(`.o_control_panel .o_switch_view.${type}`));
        yield;
        yield* walkSearchItems(screen, ".o_group_by_menu");
    }
    // The form of a record, opened from the list when there is one.
    if (types.includes("o_list")) {
        await visit(`${menuLabel} [list]`, () => click(".o_control_panel .o_switch_view.o_list"));
        const row = queryFirst(".o_list_view .o_data_row:not(.o_sample_data_row) td.o_data_cell");
        if (row) {
            await visit(`${menuLabel} › first record`, () => click(row));
            await waitUntil(() => queryFirst(".o_form_view"), { timeout: 20000 });
            await settle();
            yield;
            await visit(`${menuLabel} › back`, () => click(".o_breadcrumb .o_back_button, .o_breadcrumb li:first-child a"));
        }
    }
}

/** Every menu entry of the app's navbar, as [label, how to open it]. */
async function collectMenus() {
    const menus = [];
    for (const entry of queryAll(".o_main_navbar .o_menu_sections > a.o_nav_entry")) {
        menus.push({ label: entry.innerText.trim(), xmlid: entry.dataset.menuXmlid, parent: null });
    }
    for (const button of queryAll(".o_main_navbar .o_menu_sections button[data-menu-xmlid]")) {
        const parentXmlid = button.dataset.menuXmlid;
        await click(button);
        await animationFrame();
        for (const item of queryAll(".o-dropdown--menu .dropdown-item[data-menu-xmlid]")) {
            menus.push({
                label: `${button.innerText.trim()} › ${item.innerText.trim()}`,
                xmlid: item.dataset.menuXmlid,
                parent: parentXmlid,
            });
        }
        await click(button);
        await animationFrame();
    }
    return menus;
}

/** The whole walk, one screen at a time: each ``next()`` visits one more screen. */
async function* walkAll() {
    const menus = await collectMenus();
    if (!menus.length) {
        throw new Error("The Deployments app shows no menu.");
    }
    console.log(`do_deploy walk: menus ${menus.map((menu) => menu.label).join(", ")}`);
    for (const menu of menus) {
        await visit(menu.label, async () => {
            if (menu.parent) {
                await click(`.o_main_navbar .o_menu_sections button[data-menu-xmlid='${menu.parent}']`);
                await animationFrame();
                await click(`.o-dropdown--menu .dropdown-item[data-menu-xmlid='${menu.xmlid}']`);
            } else {
                await click(`.o_main_navbar .o_menu_sections a[data-menu-xmlid='${menu.xmlid}']`);
            }
        });
        yield;
        yield* walkAction(menu.label);
    }
}

let walker = null;
let finished = false;
// A tour step may last 60 s at most: the walk is spread over as many steps as it needs,
// each going on for up to WALK_SLICE ms.
const WALK_SLICE = 20000;
const WALK_STEPS = 80;

registry.category("web_tour.tours").add("do_deploy_walk_all_screens", {
    steps: () => [
        {
            content: "The Deployments app is open",
            trigger: ".o_main_navbar .o_menu_sections [data-menu-xmlid]",
        },
        ...Array.from({ length: WALK_STEPS }, (_value, index) => ({
            content: `Walk every menu, view, filter and group-by (part ${index + 1})`,
            trigger: ".o_main_navbar",
            timeout: 60000,
            run: async () => {
                walker ??= walkAll();
                const end = Date.now() + WALK_SLICE;
                while (!finished && Date.now() < end) {
                    finished = (await walker.next()).done;
                }
            },
        })),
        {
            content: "The walk reached its end without a client error",
            trigger: "body:not(:has(.o_error_dialog))",
            run: () => {
                if (!finished) {
                    throw new Error(`The walk did not finish; last screen: ${visited.at(-1)}`);
                }
                console.log(`do_deploy walk: done, ${visited.length} screens`);
            },
        },
    ],
});
