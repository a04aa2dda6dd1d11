/*
	Maintenance: when the agent may check for updates and take the device down to install one.

	Status      IDLE → STARTED → COMPLETE | INCOMPLETE | ERROR, every change notified
	  COMPLETE    every task ran and succeeded
	  INCOMPLETE  a task was skipped (an install held by the user's opt-out)
	  ERROR       a task failed, the network never came, or stop() ended it
	Kinds
	  on boot     (unsolicited) at every start; critical tasks only: check for updates, install a critical one
	  scheduled   (solicited) daily when the window opens, every task: check, then install what waits.
	              The window opens at a local time of day in the device's POSIX TZ, converted to UTC for each
	              local calendar day, and the day is persisted as done before the tasks run: exactly once per
	              local day, across daylight-saving changes and reboots. A scheduled start while an on-boot one
	              runs is postponed to the next day.
	Before the tasks, a network check: up to 4 tries 30 s apart. When all fail the status is ERROR and the
	maintenance watches the network (same interval); when it returns, the critical tasks run.

	Installs (installAt): critical updates and BYPASS_OPTOUT install at once; ENFORCE_OPTOUT holds the others
	until the user consents; FOREGROUND installs at once; BACKGROUND waits for the scheduled maintenance's
	install task in the window, but never past the update's maximum defer period. IGNORE_UPDATE refuses
	non-critical updates outright (refuses()).
*/

import type { Clock, KeyValueStore, Logger } from "../platform/ports";
import { type TimeZone, localDay, localToUtc, parseTimeZone } from "../lib/posix-tz";

export type MaintenanceStatus = "IDLE" | "STARTED" | "ERROR" | "COMPLETE" | "INCOMPLETE";
export type MaintenanceKind = "on-boot" | "scheduled";
export type MaintenanceMode = "FOREGROUND" | "BACKGROUND";
export type OptOut = "NONE" | "IGNORE_UPDATE" | "BYPASS_OPTOUT" | "ENFORCE_OPTOUT";
export type TaskOutcome = "done" | "skipped" | "failed";

const modes: readonly string[] = ["FOREGROUND", "BACKGROUND"];
const optOuts: readonly string[] = ["NONE", "IGNORE_UPDATE", "BYPASS_OPTOUT", "ENFORCE_OPTOUT"];

export interface MaintenanceSettings {
	/** Local time of day the window opens, "HH:MM"; "" when the server gave none (no scheduled maintenance). */
	start: string;
	/** POSIX TZ of the device's location, as ESP-IDF takes it: "CET-1CEST,M3.5.0,M10.5.0/3". */
	tz: string;
	windowMinutes: number;
	mode: MaintenanceMode;
	optOut: OptOut;
}

export const defaultMaintenanceSettings: Readonly<MaintenanceSettings> = { start: "", tz: "UTC0", windowMinutes: 60, mode: "FOREGROUND", optOut: "NONE" };

/** HH:MM. A fresh RegExp per call, not a module constant (a preloaded RegExp: see url.ts). */
function startPattern(): RegExp {
	return /^([01]\d|2[0-3]):([0-5]\d)$/;
}

/** Why `settings` cannot be used (a short reason), or undefined when they can. */
export function checkMaintenanceSettings(settings: MaintenanceSettings): string | undefined {
	if (settings.start !== "" && !startPattern().test(settings.start)) return "start must be HH:MM";
	const zone = parseTimeZone(settings.tz);
	if (typeof zone === "string") return `tz: ${zone}`;
	if (!Number.isInteger(settings.windowMinutes) || settings.windowMinutes < 1 || settings.windowMinutes > 1440) return "window must be 1 to 1440 minutes";
	if (modes.indexOf(settings.mode) < 0) return `unknown mode ${settings.mode}`;
	if (optOuts.indexOf(settings.optOut) < 0) return `unknown opt-out ${settings.optOut}`;
	return undefined;
}

export interface MaintenanceTask {
	name: string;
	/** Runs in on-boot maintenance (and when the network returns), not only in the daily window. */
	critical(): boolean;
	/** Calls done once; returns how to abort it, when it can be aborted. */
	run(done: (outcome: TaskOutcome) => void): (() => void) | void;
}

export interface MaintenanceListener {
	maintenance(status: MaintenanceStatus, kind: MaintenanceKind): void;
	/** A scheduled maintenance met a running on-boot one: it runs at `nextStart` instead. */
	postponed(nextStart: number): void;
}

export interface MaintenancePorts {
	clock: Clock;
	store: KeyValueStore;
	log: Logger;
	/** Whether the device has a network connection now. */
	online(): boolean;
}

export interface MaintenanceOptions {
	networkTries: number;
	networkRetryMs: number;
}

export const defaultMaintenanceOptions: MaintenanceOptions = { networkTries: 4, networkRetryMs: 30000 };

const settingsKey = "mt";
const dayKey = "mt.day";
const dayMs = 86400000;
const minuteMs = 60000;
/** Before 2020 the wall clock was never set (no SNTP yet): schedules wait for it. */
const earliestWallClock = 1577836800000;
const unsetClockRetryMs = 3600000;

export class Maintenance {
	#ports: MaintenancePorts;
	#options: MaintenanceOptions;
	#listener: MaintenanceListener;
	#settings: MaintenanceSettings = { ...defaultMaintenanceSettings };
	#zone: TimeZone | undefined;
	#startMinutes = -1;
	#lastDay = -1;
	#tasks: MaintenanceTask[] = [];
	#status: MaintenanceStatus = "IDLE";
	#kind: MaintenanceKind = "on-boot";
	#scheduleTimer: unknown;
	#networkTimer: unknown;
	#abortTask: (() => void) | undefined;
	/** Counts runs, so a task that answers after stop() or a later run changes nothing. */
	#run = 0;
	#closed = false;

	constructor(ports: MaintenancePorts, options: MaintenanceOptions, listener: MaintenanceListener) {
		this.#ports = ports;
		this.#options = options;
		this.#listener = listener;
	}

	get status(): MaintenanceStatus {
		return this.#status;
	}

	get kind(): MaintenanceKind {
		return this.#kind;
	}

	get settings(): Readonly<MaintenanceSettings> {
		return this.#settings;
	}

	set tasks(tasks: MaintenanceTask[]) {
		this.#tasks = tasks;
	}

	/** Reads the persisted settings and day; says whether trustworthy settings were stored (bad ones are logged and dropped). */
	load(): boolean {
		const day = this.#ports.store.get(dayKey);
		this.#lastDay = typeof day === "number" ? day : -1;
		const stored = this.#ports.store.get(settingsKey);
		if (stored === undefined) return false;
		let error: string | undefined = "not json";
		try {
			const settings: unknown = typeof stored === "string" ? JSON.parse(stored) : undefined;
			if (settings && typeof settings === "object") error = this.#apply(settings as Partial<MaintenanceSettings>);
		}
		catch {
			// error stays "not json"
		}
		if (error) this.#ports.log(`maintenance settings discarded: ${error}`);
		return !error;
	}

	/**
	 * Changes the settings the server or the app gives (all checked first: a bad one changes nothing), persists
	 * them and re-arms the schedule. Returns a short reason when refused.
	 */
	configure(changes: Partial<MaintenanceSettings>): string | undefined {
		const error = this.#apply(changes);
		if (error) return error;
		this.#ports.store.set(settingsKey, JSON.stringify(this.#settings));
		if (this.#status !== "STARTED") this.#arm();
		return undefined;
	}

	/** The unsolicited maintenance of every boot; arms the daily schedule first, so a window opening meanwhile is postponed. */
	startOnBoot(): void {
		this.#arm();
		this.#begin("on-boot");
	}

	/** Starts a scheduled maintenance now (the app's startMaintenance); false when one already runs. */
	start(): boolean {
		return this.#begin("scheduled");
	}

	/** Ends a running maintenance in ERROR, aborting its task; false when none runs. */
	stop(): boolean {
		if (this.#status !== "STARTED") return false;
		this.#ports.log("maintenance stopped");
		this.#finish("ERROR");
		return true;
	}

	/** Shutdown: stops a running maintenance and arms nothing more. */
	close(): void {
		this.stop();
		this.#closed = true;
		this.#run++;
		this.#ports.clock.clearTimeout(this.#scheduleTimer);
		this.#ports.clock.clearTimeout(this.#networkTimer);
	}

	/** When the next scheduled maintenance starts (ms since 1970), or -1 without a schedule or a set clock. */
	nextStartTime(): number {
		const zone = this.#zone, now = this.#ports.clock.now();
		if (!zone || this.#startMinutes < 0 || now < earliestWallClock) return -1;
		// Yesterday's window may still be open just after local midnight.
		for (let day = localDay(zone, now) - 1; ; day++) {
			if (day <= this.#lastDay) continue;
			const start = this.#startOf(day);
			if (start + this.#settings.windowMinutes * minuteMs > now) return start;
		}
	}

	/** Whether a maintenance window is open now (whether or not today's maintenance already ran). */
	inWindow(): boolean {
		const zone = this.#zone, now = this.#ports.clock.now();
		if (!zone || this.#startMinutes < 0 || now < earliestWallClock) return false;
		const today = localDay(zone, now);
		for (let day = today - 1; day <= today; day++) {
			const start = this.#startOf(day);
			if (now >= start && now < start + this.#settings.windowMinutes * minuteMs) return true;
		}
		return false;
	}

	/** Whether the user's opt-out refuses an update before it is even downloaded. */
	refuses(critical: boolean): boolean {
		return !critical && this.#settings.optOut === "IGNORE_UPDATE";
	}

	/**
	 * When the agent installs an update downloaded at `downloadedAt` on its own (ms since 1970): at once, at
	 * the end of its maximum defer period, or never (Infinity: held until the user consents). A window that
	 * opens before then installs it through the scheduled maintenance's install task, so stop() and the
	 * network check apply to it.
	 */
	installAt(critical: boolean, downloadedAt: number, maxDeferSeconds: number): number {
		const now = this.#ports.clock.now(), { mode, optOut } = this.#settings;
		if (critical || optOut === "BYPASS_OPTOUT") return now;
		if (optOut === "ENFORCE_OPTOUT") return Infinity;
		const scheduledRunning = this.#status === "STARTED" && this.#kind === "scheduled";
		if (mode === "FOREGROUND" || maxDeferSeconds <= 0 || scheduledRunning || this.inWindow()) return now;
		return Math.max(now, downloadedAt + maxDeferSeconds * 1000);
	}

	#apply(changes: Partial<MaintenanceSettings>): string | undefined {
		const next = { ...this.#settings, ...changes };
		const error = checkMaintenanceSettings(next);
		if (error) return error;
		const start = startPattern().exec(next.start);
		this.#settings = next;
		this.#zone = parseTimeZone(next.tz) as TimeZone;
		this.#startMinutes = start ? Number(start[1]) * 60 + Number(start[2]) : -1;
		return undefined;
	}

	#startOf(day: number): number {
		return localToUtc(this.#zone!, day * dayMs + this.#startMinutes * minuteMs);
	}

	#begin(kind: MaintenanceKind): boolean {
		if (this.#closed) return false;
		if (this.#status === "STARTED") {
			if (kind === "scheduled" && this.#kind === "on-boot") this.#postpone();
			return false;
		}
		// Persisted before any task runs: a reboot inside the window does not run the day twice.
		if (kind === "scheduled" && this.#startMinutes >= 0) this.#markTodayDone();
		this.#kind = kind;
		this.#move("STARTED");
		this.#checkNetwork(++this.#run, 1);
		return true;
	}

	#markTodayDone(): void {
		if (!this.#zone) return;
		this.#lastDay = localDay(this.#zone, this.#ports.clock.now());
		this.#ports.store.set(dayKey, this.#lastDay);
	}

	#postpone(): void {
		this.#markTodayDone();
		const next = this.nextStartTime();
		this.#ports.log("scheduled maintenance postponed to the next day: on-boot maintenance is running");
		this.#listener.postponed(next);
	}

	#checkNetwork(run: number, attempt: number): void {
		if (run !== this.#run) return;
		const { clock, log, online } = this.#ports;
		if (online()) return this.#runTask(run, 0, false, false);
		if (attempt < this.#options.networkTries) {
			this.#networkTimer = clock.setTimeout(() => this.#checkNetwork(run, attempt + 1), this.#options.networkRetryMs);
			return;
		}
		log(`no network after ${attempt} tries`);
		this.#finish("ERROR");
		this.#watchNetwork(this.#run);
	}

	/** After a failed network check: waits for the network, then runs the critical tasks. */
	#watchNetwork(run: number): void {
		this.#networkTimer = this.#ports.clock.setTimeout(() => {
			if (run !== this.#run || this.#status === "STARTED") return;
			if (!this.#ports.online()) return this.#watchNetwork(run);
			this.#ports.log("network is back");
			this.#begin("on-boot");
		}, this.#options.networkRetryMs);
	}

	#runTask(run: number, index: number, skipped: boolean, failed: boolean): void {
		if (run !== this.#run) return;
		const tasks = this.#tasks;
		while (index < tasks.length && this.#kind === "on-boot" && !tasks[index].critical()) index++;
		if (index >= tasks.length) return this.#finish(failed ? "ERROR" : skipped ? "INCOMPLETE" : "COMPLETE");
		const task = tasks[index];
		let answered = false;
		const abort = task.run((outcome) => {
			if (answered || run !== this.#run) return;
			answered = true;
			this.#abortTask = undefined;
			if (outcome !== "done") this.#ports.log(`maintenance task ${task.name}: ${outcome}`);
			this.#runTask(run, index + 1, skipped || outcome === "skipped", failed || outcome === "failed");
		});
		if (!answered) this.#abortTask = abort || undefined;
	}

	#finish(status: MaintenanceStatus): void {
		const abort = this.#abortTask;
		this.#abortTask = undefined;
		this.#run++;
		this.#ports.clock.clearTimeout(this.#networkTimer);
		abort?.();
		this.#move(status);
		this.#arm();
	}

	#move(status: MaintenanceStatus): void {
		this.#status = status;
		this.#listener.maintenance(status, this.#kind);
	}

	/** Sets the timer for the next scheduled start. */
	#arm(): void {
		const clock = this.#ports.clock;
		clock.clearTimeout(this.#scheduleTimer);
		this.#scheduleTimer = undefined;
		if (!this.#zone || this.#startMinutes < 0 || this.#closed) return;
		const now = clock.now();
		if (now < earliestWallClock) {
			this.#scheduleTimer = clock.setTimeout(() => this.#arm(), unsetClockRetryMs);
			return;
		}
		const start = this.nextStartTime();
		this.#scheduleTimer = clock.setTimeout(() => this.#begin("scheduled"), Math.max(0, start - now));
	}
}
