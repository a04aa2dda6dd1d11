// Maintenance: its state machine on a fake clock (network check, postponement, stop, statuses, the install
// decision), then whole simulated boards on the virtual clock: once a day across DST changes for 400 days, a
// deferred install in the next window and not before, opt-out modes, and stop during maintenance.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { Maintenance, type MaintenanceKind, type MaintenanceStatus, type MaintenanceTask, type TaskOutcome } from "../src/agent/maintenance";
import { MemoryStore } from "./support/memory-store";
import { FakeClock } from "./support/fake-clock";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import type { DeviceOptions, DeviceOutcome, DeviceReport } from "../host-sim/device";
import { factoryVersion } from "../host-sim/device";
import { assertNewFirmware, partitionBytes, publish, run, tempDir } from "./support/sim";

const berlin = "CET-1CEST,M3.5.0,M10.5.0/3";
const minute = 60000, hour = 3600000, day = 86400000;

function harness(startIso: string, options: { online?: () => boolean; tasks?: MaintenanceTask[] } = {}) {
	const clock = new FakeClock(Date.parse(startIso));
	const store = new MemoryStore();
	const statuses: { status: MaintenanceStatus; kind: MaintenanceKind; at: number }[] = [];
	const postponed: number[] = [];
	const logs: string[] = [];
	const maintenance = new Maintenance({ clock, store, log: (line) => logs.push(line), online: options.online ?? (() => true) },
		{ networkTries: 4, networkRetryMs: 30000 }, {
			maintenance: (status, kind) => statuses.push({ status, kind, at: clock.now() }),
			postponed: (next) => postponed.push(next),
		});
	maintenance.tasks = options.tasks ?? [];
	return { clock, store, maintenance, statuses, postponed, logs };
}

/** A task that finishes when told to, counting its runs and aborts. */
function manualTask(name: string, critical: boolean) {
	const task = { runs: 0, aborts: 0, finish: undefined as ((outcome: TaskOutcome) => void) | undefined };
	const definition: MaintenanceTask = {
		name,
		critical: () => critical,
		run(done) {
			task.runs++;
			task.finish = done;
			return () => task.aborts++;
		},
	};
	return { task, definition };
}

test("network check: 4 tries 30 s apart, then ERROR; when the network returns, the critical tasks run", () => {
	let online = false;
	const check = manualTask("check", true), install = manualTask("install", false);
	const { clock, maintenance, statuses, logs } = harness("2026-05-01T10:00:00Z", { online: () => online, tasks: [check.definition, install.definition] });
	maintenance.startOnBoot();
	assert.equal(statuses.map((entry) => entry.status), ["STARTED"]);
	clock.advance(89_999);
	assert.equal(statuses.map((entry) => entry.status), ["STARTED"], "still trying at 89.999 s");
	clock.advance(1);
	assert.equal(statuses.map((entry) => [entry.status, entry.at - Date.parse("2026-05-01T10:00:00Z")]), [["STARTED", 0], ["ERROR", 90_000]]);
	assert.ok(logs.includes("no network after 4 tries"), logs.join("\n"));
	assert.is(check.task.runs, 0, "no task ran without the network");
	clock.advance(10 * minute);
	assert.is(statuses.length, 2, "waiting for the network");
	online = true;
	clock.advance(30_000);
	assert.equal(statuses.slice(2).map((entry) => [entry.status, entry.kind]), [["STARTED", "on-boot"]]);
	assert.is(check.task.runs, 1);
	check.task.finish!("done");
	assert.is(install.task.runs, 0, "a non-critical task is not part of on-boot maintenance");
	assert.equal(statuses.map((entry) => entry.status).slice(-1), ["COMPLETE"]);
});

test("a scheduled start during on-boot maintenance is postponed to the next day", () => {
	const check = manualTask("check", true);
	const { clock, maintenance, statuses, postponed } = harness("2026-05-01T00:25:00Z", { tasks: [check.definition] });
	assert.is(maintenance.configure({ start: "02:30", tz: berlin, windowMinutes: 60 }), undefined);
	maintenance.startOnBoot(); // 02:25 CEST; the window opens at 02:30 while the check still runs
	clock.advance(10 * minute);
	assert.equal(postponed, [Date.parse("2026-05-02T00:30:00Z")]);
	check.task.finish!("done");
	clock.advance(20 * hour);
	assert.equal(statuses.map((entry) => `${entry.status} ${entry.kind}`), ["STARTED on-boot", "COMPLETE on-boot"], "nothing more today");
	clock.advance(5 * hour);
	assert.equal(statuses.slice(2).map((entry) => `${entry.status} ${entry.kind} ${new Date(entry.at).toISOString()}`),
		["STARTED scheduled 2026-05-02T00:30:00.000Z"]);
});

test("stop aborts the running task and ends in ERROR; outcomes give COMPLETE, INCOMPLETE or ERROR", () => {
	const check = manualTask("check", true);
	const { maintenance, statuses } = harness("2026-05-01T10:00:00Z", { tasks: [check.definition] });
	assert.is(maintenance.stop(), false, "nothing to stop");
	assert.is(maintenance.start(), true);
	assert.is(maintenance.start(), false, "one at a time");
	assert.is(maintenance.stop(), true);
	assert.is(check.task.aborts, 1);
	check.task.finish!("done");
	assert.equal(statuses.map((entry) => entry.status), ["STARTED", "ERROR"], "a late answer changes nothing");
	for (const [outcomes, expected] of [[["done", "done"], "COMPLETE"], [["done", "skipped"], "INCOMPLETE"], [["failed", "skipped"], "ERROR"]] as const) {
		const tasks = outcomes.map((outcome, i): MaintenanceTask => ({ name: `t${i}`, critical: () => true, run: (done) => done(outcome) }));
		const run = harness("2026-05-01T10:00:00Z", { tasks });
		run.maintenance.start();
		assert.is(run.maintenance.status, expected, outcomes.join(", "));
	}
});

test("settings are checked as a whole, persisted, and a bad stored copy is discarded", () => {
	const { maintenance, store } = harness("2026-05-01T10:00:00Z");
	assert.is(maintenance.configure({ start: "24:00" }), "start must be HH:MM");
	assert.match(maintenance.configure({ start: "02:30", tz: "CET" })!, /^tz: /);
	assert.is(maintenance.configure({ windowMinutes: 0 }), "window must be 1 to 1440 minutes");
	assert.is(maintenance.configure({ mode: "LATER" as never }), "unknown mode LATER");
	assert.is(maintenance.configure({ optOut: "MAYBE" as never }), "unknown opt-out MAYBE");
	assert.is(maintenance.settings.start, "", "refused settings change nothing");
	assert.is(maintenance.configure({ start: "03:15", tz: berlin, windowMinutes: 45, mode: "BACKGROUND", optOut: "ENFORCE_OPTOUT" }), undefined);
	const again = harness("2026-05-01T10:00:00Z");
	again.store.values = store.values;
	again.maintenance.load();
	assert.equal(again.maintenance.settings, { start: "03:15", tz: berlin, windowMinutes: 45, mode: "BACKGROUND", optOut: "ENFORCE_OPTOUT" });
	store.set("mt", "{broken");
	const broken = harness("2026-05-01T10:00:00Z");
	broken.store.values = store.values;
	broken.maintenance.load();
	assert.is(broken.maintenance.settings.start, "");
	assert.ok(broken.logs.includes("maintenance settings discarded: not json"), broken.logs.join("\n"));
});

test("install decision: critical and BYPASS at once, ENFORCE held, FOREGROUND at once, BACKGROUND waits for the window or the defer limit", () => {
	const { maintenance, clock } = harness("2026-05-01T10:00:00Z"); // 12:00 CEST
	const now = clock.now(), windowStart = Date.parse("2026-05-02T00:30:00Z");
	maintenance.configure({ start: "02:30", tz: berlin, windowMinutes: 60, mode: "BACKGROUND" });
	assert.is(maintenance.installAt(false, now, 7 * 86400), now + 7 * day, "background: on its own only at the defer limit (the window's task installs sooner)");
	assert.is(maintenance.installAt(false, now - 23 * hour, 86400), now + hour, "background: the defer limit comes first");
	assert.is(maintenance.installAt(false, now - 2 * day, 86400), now, "defer limit passed: at once");
	assert.is(maintenance.installAt(false, now, 0), now, "maximum defer period 0: no waiting");
	assert.is(maintenance.installAt(true, now, 7 * 86400), now, "critical: at once");
	maintenance.configure({ optOut: "ENFORCE_OPTOUT" });
	assert.is(maintenance.installAt(false, now - 30 * day, 86400), Infinity, "enforce: held until consent, whatever the defer limit");
	assert.is(maintenance.installAt(true, now, 86400), now, "critical overrides the opt-out");
	maintenance.configure({ optOut: "BYPASS_OPTOUT" });
	assert.is(maintenance.installAt(false, now, 86400), now);
	maintenance.configure({ optOut: "NONE", mode: "FOREGROUND" });
	assert.is(maintenance.installAt(false, now, 86400), now);
	maintenance.configure({ optOut: "IGNORE_UPDATE" });
	assert.ok(maintenance.refuses(false));
	assert.not.ok(maintenance.refuses(true), "a critical update is never refused");
	maintenance.configure({ optOut: "NONE", mode: "BACKGROUND" });
	clock.advance(windowStart - now + 5 * minute);
	assert.ok(maintenance.inWindow());
	assert.is(maintenance.installAt(false, now, 86400), clock.now(), "in the window: at once");
});

// --- whole boards on the virtual clock ---

let www: string;
let server: UpdateServer;
let image: { bytes: Uint8Array; sha256: string };

test.before(async () => {
	www = tempDir("www");
	image = publish(www, "app.bin", 128 * 1024, "2.0.0");
	server = await startUpdateServer({ dir: www });
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

async function board(options: Partial<DeviceOptions> & { startIso: string }): Promise<DeviceOutcome & { events: DeviceReport[] }> {
	const events: DeviceReport[] = [];
	const outcome = await run({
		dir: tempDir("board"),
		startTime: Date.parse(options.startIso),
		...options,
		onEvent: (event) => {
			if (event.event !== "progress") events.push(event);
			options.onEvent?.(event);
		},
	});
	return { ...outcome, events };
}

function localParts(epoch: number, zone: string): { date: string; time: string } {
	const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
		.formatToParts(epoch).map((part) => [part.type, part.value]));
	return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

const zones = [
	{ iana: "Europe/Berlin", tz: berlin, start: "02:30", springDay: "2026-03-29", springTime: "03:30" },
	{ iana: "America/Los_Angeles", tz: "PST8PDT,M3.2.0,M11.1.0", start: "01:30", springDay: "", springTime: "" },
	{ iana: "America/Los_Angeles", tz: "PST8PDT,M3.2.0,M11.1.0", start: "02:30", springDay: "2026-03-08", springTime: "03:30" },
];

for (const zone of zones) {
	test(`scheduled maintenance runs exactly once a day for 400 days in ${zone.iana} at ${zone.start}, across both DST changes`, async () => {
		const startIso = "2026-01-01T12:00:00Z";
		const outcome = await board({ startIso, runFor: 400 * day, config: { maintenanceStart: zone.start, tz: zone.tz, maintenanceWindow: 60 } });
		assert.is(outcome.end, "time-up");
		const runs = outcome.events.filter((event) => event.event === "maintenance" && event.kind === "scheduled");
		const started = runs.filter((event) => event.status === "STARTED").map((event) => event.at as number);
		assert.is(runs.filter((event) => event.status === "COMPLETE").length, started.length, "each one completes");
		assert.is(started.length, 400, "one per day");
		const days = started.map((at) => localParts(at, zone.iana));
		assert.is(new Set(days.map((entry) => entry.date)).size, 400, "on 400 different local days");
		for (let i = 0; i < days.length; i++) {
			const expected = days[i].date === zone.springDay ? zone.springTime : zone.start;
			assert.is(days[i].time, expected, `${days[i].date}`);
			if (i) assert.is(Date.parse(`${days[i].date}T00:00:00Z`) - Date.parse(`${days[i - 1].date}T00:00:00Z`), day, `no day skipped before ${days[i].date}`);
		}
		// Both changes of 2026 fall inside the run.
		const dates = days.map((entry) => entry.date);
		assert.ok(dates.includes("2026-03-29") && dates.includes("2026-10-25") && dates.includes("2026-11-01") && dates.includes("2026-03-08"));
	});
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: background mode: the install waits (State 2, result 11) for the next window and happens in it`, async () => {
		// 12:00 CEST; the window opens at 02:30 local the next day.
		const outcome = await board({
			engine, startIso: "2026-06-10T10:00:00Z", runFor: 3 * day, url: `${server.url}/app.bin`,
			config: { maintenanceStart: "02:30", tz: berlin, maintenanceWindow: 60, maintenanceMode: "BACKGROUND" },
		});
		assertNewFirmware({ ...outcome, end: "idle" }, image.sha256, "2.0.0", "installed in the window");
		const deferred = outcome.events.find((event) => event.event === "state" && event.state === 2 && event.result === 11);
		assert.ok(deferred, "reported deferred");
		const newBoot = outcome.events.find((event) => event.event === "boot" && event.version === "2.0.0")!;
		const windowStart = Date.parse("2026-06-11T00:30:00Z");
		assert.ok((newBoot.at as number) >= windowStart && (newBoot.at as number) < windowStart + hour, `new image booted at ${new Date(newBoot.at as number).toISOString()}`);
		const oldBoots = outcome.events.filter((event) => event.event === "boot" && event.version === factoryVersion);
		assert.is(oldBoots.length, 1, "no reboot before the window");
		const installing = outcome.events.slice(0, outcome.events.indexOf(newBoot)).filter((event) => event.event === "maintenance" && event.kind === "scheduled");
		assert.equal(installing.map((event) => event.status), ["STARTED", "COMPLETE"], "the window's maintenance completes, then the install reboots");
		const fetched = outcome.events.filter((event) => event.event === "state").length;
		assert.ok(outcome.wakeups < 200 + fetched, `${outcome.wakeups} wake-ups in 3 days: nothing polls while the install waits`);
	});
}

test("background mode: the maximum defer period installs before a window that comes too late", async () => {
	const outcome = await board({
		startIso: "2026-06-10T10:00:00Z", runFor: 2 * day, url: `${server.url}/app.bin`,
		config: { maintenanceStart: "02:30", tz: berlin, maintenanceMode: "BACKGROUND", maxDeferSeconds: 3600 },
	});
	const newBoot = outcome.events.find((event) => event.event === "boot" && event.version === "2.0.0")!;
	const at = (newBoot.at as number) - Date.parse("2026-06-10T10:00:00Z");
	assert.ok(at >= hour && at < hour + 5 * minute, `installed ${at / 1000} s after the download`);
	assert.is(outcome.running.version, "2.0.0");
});

test("a critical update installs at once in background mode; IGNORE_UPDATE refuses others before any byte", async () => {
	const critical = await board({
		startIso: "2026-06-10T10:00:00Z", runFor: day,
		config: { maintenanceStart: "02:30", tz: berlin, maintenanceMode: "BACKGROUND", optOut: "IGNORE_UPDATE" },
		commands: [{ action: "update", uri: `${server.url}/app.bin`, severity: "critical" }],
	});
	assert.is(critical.running.version, "2.0.0");
	assert.not.ok(critical.events.some((event) => event.event === "state" && event.result === 11), "never deferred");
	const ignored = await board({
		startIso: "2026-06-10T10:00:00Z", runFor: day, url: `${server.url}/app.bin`,
		config: { optOut: "IGNORE_UPDATE" },
	});
	assert.is(ignored.result, 10, "cancelled");
	assert.is(ignored.bytesFetched, 0);
	assert.is(ignored.running.version, factoryVersion);
});

test("ENFORCE_OPTOUT holds the install through windows (INCOMPLETE) until the user consents with BYPASS_OPTOUT", async () => {
	const commands: DeviceOptions["commands"] = [];
	let windows = 0;
	const outcome = await board({
		startIso: "2026-06-10T10:00:00Z", runFor: 4 * day, url: `${server.url}/app.bin`, commands,
		config: { maintenanceStart: "02:30", tz: berlin, maintenanceMode: "BACKGROUND", optOut: "ENFORCE_OPTOUT", maxDeferSeconds: 3600 },
		onEvent: (event) => {
			if (event.event === "maintenance" && event.kind === "scheduled" && event.status === "INCOMPLETE" && ++windows === 2)
				commands.push({ action: "maintenance", settings: { optOut: "BYPASS_OPTOUT" } });
		},
	});
	const scheduled = outcome.events.filter((event) => event.event === "maintenance" && event.kind === "scheduled").map((event) => event.status);
	assert.equal(scheduled.slice(0, 4), ["STARTED", "INCOMPLETE", "STARTED", "INCOMPLETE"], "held past the 1 h defer limit, twice");
	assert.is(outcome.running.version, "2.0.0", "installed once the user consented");
	const newBoot = outcome.events.find((event) => event.event === "boot" && event.version === "2.0.0")!;
	assert.ok((newBoot.at as number) > Date.parse("2026-06-12T00:30:00Z"), "not before the consent");
});

test("stop during maintenance ends in ERROR with the verified image intact in its slot, installed the next day", async () => {
	const commands: DeviceOptions["commands"] = [];
	const windowStart = Date.parse("2026-06-11T00:30:00Z");
	const dir = tempDir("board");
	const outcome = await board({
		dir, startIso: "2026-06-10T10:00:00Z", runFor: 2 * day, url: `${server.url}/app.bin`, commands,
		config: { maintenanceStart: "02:30", tz: berlin, maintenanceMode: "BACKGROUND", networkRetryMs: 30000 },
		// No network in the first window: the maintenance is still checking when the app stops it.
		online: (at) => at < windowStart || at > windowStart + hour,
		onEvent: (event) => {
			if (event.event === "maintenance" && event.kind === "scheduled" && event.status === "STARTED" && (event.at as number) < windowStart + hour) {
				commands.push({ action: "maintenance-stop" });
				const slot = partitionBytes(dir, "ota_1", image.bytes.length);
				assert.ok(Buffer.from(slot).equals(Buffer.from(image.bytes)), "the verified image is in the inactive slot");
			}
		},
	});
	const firstWindow = outcome.events.filter((event) => event.event === "maintenance" && (event.at as number) < windowStart + hour && event.kind === "scheduled");
	assert.equal(firstWindow.map((event) => event.status), ["STARTED", "ERROR"]);
	const slot = partitionBytes(dir, "ota_0", 4);
	assert.is(slot[0], 0xe9, "the running slot untouched");
	assert.is(outcome.running.version, "2.0.0", "the intact image installs in the next window");
	const newBoot = outcome.events.find((event) => event.event === "boot" && event.version === "2.0.0")!;
	assert.ok((newBoot.at as number) >= windowStart + day, "not in the stopped window");
});

test.run();
