/*
	The rollout controller: AWS IoT Jobs' rollout, abort and timeout rules applied to one job over a list of
	things, on a virtual fleet clock (milliseconds since the job was created).

	Virtual time. The controller is a discrete-event simulation with three kinds of events:
	  - the rollout tick at every whole minute, which notifies the next batch of things at the current rate:
	    maximumPerMinute, or an exponential rate baseRatePerMinute × incrementFactor^k (at most
	    maximumPerMinute), where k rises by one each time another numberOfNotifiedThings have been notified or
	    another numberOfSucceededThings have succeeded, whichever comes first;
	  - a board taking its execution (IN_PROGRESS) and reporting its terminal status (SUCCEEDED, FAILED,
	    REJECTED), each at its notification time plus the board's own time until then;
	  - the in-progress timeout, inProgressTimeoutInMinutes after an execution started, if it is still
	    IN_PROGRESS then.
	A notified thing's board runs at once, in real time and concurrently with the rest of its batch (the
	runner bounds how many run together), and reports how long its execution took in virtual time: the time
	on the board's own virtual clock (which jumps over the device's timers and runs at real speed only while
	the device waits on its sockets), plus what the runner adds (a board's downtime after a power cut, its
	link's transfer time). The controller then places the terminal event on the fleet clock. Before each tick
	it waits until every board notified so far has reported, so every event that can come before the tick is
	known, and it processes the events strictly in fleet-time order: the abort rules and the succeeded count
	that raises the rate see the fleet exactly as it stood at that moment. An hour of rollout costs the real
	time of its boards' updates, not an hour.

	AWS semantics mirrored: a batch of things is notified at each minute; an execution is QUEUED until its
	board takes it (at once when the board is on); after every terminal status each abort criterion is
	checked: with at least minNumberOfExecutedThings completed executions, if failures of its failureType
	(ALL: FAILED, REJECTED and TIMED_OUT) are at least thresholdPercentage of them, the job is canceled: QUEUED
	executions become CANCELED, IN_PROGRESS ones run on, no further thing is notified. A terminal status that
	arrives after the in-progress timer has expired is refused: the execution is TIMED_OUT at the timer's end.
*/

import type { AbortCriterion, RolloutConfig } from "../../tools/fleet/deployment-config";

export type ExecutionStatus = "QUEUED" | "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT" | "CANCELED";
export type TerminalStatus = "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT";
export const executionStatuses: readonly ExecutionStatus[] = ["QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"];
/** Counts per status, and the things never notified. */
export type StatusCounts = Record<ExecutionStatus | "NOT_NOTIFIED", number>;

export interface RolloutRules {
	rollout: RolloutConfig | undefined;
	abortCriteria: AbortCriterion[] | undefined;
	inProgressTimeoutInMinutes: number | undefined;
}

/** What a board did with its execution; times are virtual milliseconds since its thing was notified. */
export interface BoardReport<D> {
	/** When the execution went IN_PROGRESS; undefined when it never did (the board was off, or rejected the job). */
	startedAfterMs?: number;
	/** The terminal status the device reported, or the service's TIMED_OUT at the deadline; none while it runs on. */
	status?: TerminalStatus;
	afterMs?: number;
	detail: D;
}

/** Runs `thing`'s board for its execution; timeoutMs is the in-progress timer, when the job has one. */
export type BoardRunner<D> = (thing: string, notifiedAtMs: number, timeoutMs: number | undefined) => Promise<BoardReport<D>>;

export interface Execution<D> {
	thing: string;
	status: ExecutionStatus;
	notifiedAtMs: number;
	startedAtMs: number | undefined;
	endedAtMs: number | undefined;
	/** A status the device reported after the in-progress timer had expired (refused by the service). */
	lateStatus: TerminalStatus | undefined;
	detail: D | undefined;
}

export interface AbortDecision {
	atMs: number;
	criterion: AbortCriterion;
	completed: number;
	failures: number;
	percentage: number;
}

export interface RolloutResult<D> {
	/** In notification order. */
	executions: Execution<D>[];
	notNotified: string[];
	batches: { atMs: number; ratePerMinute: number; notified: number }[];
	abort: AbortDecision | undefined;
	/** Fleet time of the last event. */
	endMs: number;
}

export interface RolloutProgress {
	atMs: number;
	ratePerMinute: number;
	/** Set once an abort criterion has canceled the job. */
	abort: AbortDecision | undefined;
	counts: StatusCounts;
	boardsReported: number;
	boardsRunning: number;
}

export interface RolloutObserver {
	progress?(state: RolloutProgress): void;
	/** The job was canceled at atMs: these things' QUEUED executions are CANCELED. */
	canceled?(things: string[], atMs: number): void;
}

/** AWS's rate when a job has no rollout configuration. */
const defaultMaximumPerMinute = 1000;
const completedStatuses: readonly ExecutionStatus[] = ["SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT"];

/** Things to notify in a minute, given how many have been notified and have succeeded so far. */
export function ratePerMinute(rollout: RolloutConfig | undefined, notified: number, succeeded: number): number {
	if (!rollout) return defaultMaximumPerMinute;
	const exponential = rollout.exponentialRate;
	if (!exponential) return rollout.maximumPerMinute;
	const { numberOfNotifiedThings: perNotified, numberOfSucceededThings: perSucceeded } = exponential.rateIncreaseCriteria;
	const steps = Math.max(perNotified ? Math.floor(notified / perNotified) : 0, perSucceeded ? Math.floor(succeeded / perSucceeded) : 0);
	return Math.min(rollout.maximumPerMinute, Math.floor(exponential.baseRatePerMinute * exponential.incrementFactor ** steps));
}

/** The first criterion the counts meet, if any. */
function abortCriterionMet(criteria: AbortCriterion[], counts: StatusCounts): Omit<AbortDecision, "atMs"> | undefined {
	const completed = completedStatuses.reduce((sum, status) => sum + counts[status], 0);
	for (const criterion of criteria) {
		if (completed < criterion.minNumberOfExecutedThings) continue;
		const failures = criterion.failureType === "ALL" ? counts.FAILED + counts.REJECTED + counts.TIMED_OUT : counts[criterion.failureType];
		if (failures * 100 >= criterion.thresholdPercentage * completed) return { criterion, completed, failures, percentage: (failures * 100) / completed };
	}
	return undefined;
}

type Event = { atMs: number; order: number; thing: string; status: "IN_PROGRESS" | TerminalStatus; late?: TerminalStatus };

/** Events in fleet-time order (ties in the order they were added). */
class EventQueue {
	#events: Event[] = [];
	#added = 0;

	add(event: Omit<Event, "order">): void {
		const entry = { ...event, order: this.#added++ };
		let low = 0, high = this.#events.length;
		while (low < high) {
			const middle = (low + high) >> 1;
			const other = this.#events[middle];
			if (other.atMs < entry.atMs || (other.atMs === entry.atMs && other.order < entry.order)) low = middle + 1;
			else high = middle;
		}
		this.#events.splice(low, 0, entry);
	}

	/** Removes and returns the earliest event at or before `untilMs`. */
	take(untilMs: number): Event | undefined {
		return this.#events.length && this.#events[0].atMs <= untilMs ? this.#events.shift() : undefined;
	}
}

export async function runRollout<D>(things: string[], rules: RolloutRules, runner: BoardRunner<D>, observer: RolloutObserver = {}): Promise<RolloutResult<D>> {
	const timeoutMs = rules.inProgressTimeoutInMinutes === undefined ? undefined : rules.inProgressTimeoutInMinutes * 60_000;
	const executions: Execution<D>[] = [];
	const byThing = new Map<string, Execution<D>>();
	const counts = Object.fromEntries([...executionStatuses, "NOT_NOTIFIED"].map((status) => [status, 0])) as StatusCounts;
	counts.NOT_NOTIFIED = things.length;
	const events = new EventQueue();
	const batches: RolloutResult<D>["batches"] = [];
	let abort: AbortDecision | undefined;
	let running: Promise<void>[] = [];
	let now = 0, rate = 0, reported = 0;

	const setStatus = (execution: Execution<D>, status: ExecutionStatus) => {
		counts[execution.status]--;
		counts[status]++;
		execution.status = status;
	};
	const progress = () => observer.progress?.({ atMs: now, ratePerMinute: rate, abort, counts: { ...counts }, boardsReported: reported, boardsRunning: executions.length - reported });

	const accept = (execution: Execution<D>, report: BoardReport<D>) => {
		execution.detail = report.detail;
		const started = report.startedAfterMs === undefined ? undefined : execution.notifiedAtMs + report.startedAfterMs;
		if (started !== undefined) events.add({ atMs: started, thing: execution.thing, status: "IN_PROGRESS" });
		const deadline = started !== undefined && timeoutMs !== undefined ? started + timeoutMs : undefined;
		const at = report.afterMs === undefined ? undefined : execution.notifiedAtMs + report.afterMs;
		if (report.status && at !== undefined && (deadline === undefined || at <= deadline))
			events.add({ atMs: at, thing: execution.thing, status: report.status });
		else if (deadline !== undefined)
			events.add({ atMs: deadline, thing: execution.thing, status: "TIMED_OUT", late: report.status === "TIMED_OUT" ? undefined : report.status });
	};

	const process = (untilMs: number) => {
		for (let event = events.take(untilMs); event; event = events.take(untilMs)) {
			const execution = byThing.get(event.thing)!;
			if (event.status === "IN_PROGRESS") {
				if (execution.status !== "QUEUED") continue;
				now = event.atMs;
				execution.startedAtMs = event.atMs;
				setStatus(execution, "IN_PROGRESS");
				continue;
			}
			if (execution.status !== "QUEUED" && execution.status !== "IN_PROGRESS") continue;
			now = event.atMs;
			execution.endedAtMs = event.atMs;
			execution.lateStatus = event.late;
			setStatus(execution, event.status);
			if (abort || !rules.abortCriteria) continue;
			const met = abortCriterionMet(rules.abortCriteria, counts);
			if (!met) continue;
			abort = { atMs: now, ...met };
			const queued = executions.filter((each) => each.status === "QUEUED");
			for (const each of queued) {
				each.endedAtMs = now;
				setStatus(each, "CANCELED");
			}
			observer.canceled?.(queued.map((each) => each.thing), now);
		}
	};

	for (let minute = 0; ; minute++) {
		await Promise.all(running);
		running = [];
		if (abort || executions.length === things.length) break;
		const tick = minute * 60_000;
		process(tick);
		if (abort) break;
		now = tick;
		rate = ratePerMinute(rules.rollout, executions.length, counts.SUCCEEDED);
		const batch = things.slice(executions.length, executions.length + rate);
		batches.push({ atMs: tick, ratePerMinute: rate, notified: batch.length });
		for (const thing of batch) {
			const execution: Execution<D> = { thing, status: "QUEUED", notifiedAtMs: tick, startedAtMs: undefined, endedAtMs: undefined, lateStatus: undefined, detail: undefined };
			executions.push(execution);
			byThing.set(thing, execution);
			counts.NOT_NOTIFIED--;
			counts.QUEUED++;
			running.push(runner(thing, tick, timeoutMs).then((report) => {
				reported++;
				accept(execution, report);
				progress();
			}));
		}
		progress();
	}
	process(Infinity);
	progress();
	return { executions, notNotified: things.slice(executions.length), batches, abort, endMs: now };
}
