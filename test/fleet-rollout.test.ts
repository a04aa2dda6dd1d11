// The rollout controller on the virtual fleet clock, with scripted boards: AWS's constant and exponential rates
// (the developer guide's own example), abort rules met at the exact terminal status that meets them, QUEUED
// executions canceled and IN_PROGRESS ones left to finish, in-progress timeouts. Boards answer in a shuffled real
// order, so every result here comes from fleet time alone.

import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AbortCriterion, RolloutConfig } from "../tools/fleet/deployment-config";
import { ratePerMinute, runRollout, type BoardReport, type RolloutRules, type TerminalStatus } from "../host-sim/fleet/rollout";
import { seeded } from "../host-sim/random";

/** What a scripted board does; it takes its job at once unless `started` is false or `startedAfterMs` says when. */
type Script = { afterMs?: number; status?: TerminalStatus; started?: boolean; startedAfterMs?: number };

function things(count: number): string[] {
	return Array.from({ length: count }, (_, index) => `t${index}`);
}

/** A runner whose boards do what `script` says, answering after a random few real milliseconds. */
function scripted(script: (thing: string, index: number) => Script, seed = 3) {
	const random = seeded(seed);
	const calls: { thing: string; notifiedAtMs: number; timeoutMs: number | undefined }[] = [];
	const runner = async (thing: string, notifiedAtMs: number, timeoutMs: number | undefined): Promise<BoardReport<null>> => {
		calls.push({ thing, notifiedAtMs, timeoutMs });
		await new Promise((done) => setTimeout(done, Math.floor(random() * 6)));
		const { afterMs, status, started = true, startedAfterMs = 0 } = script(thing, Number(thing.slice(1)));
		return { startedAfterMs: started ? startedAfterMs : undefined, status, afterMs, detail: null };
	};
	return { runner, calls };
}

const rules = (rollout?: RolloutConfig, abortCriteria?: AbortCriterion[], inProgressTimeoutInMinutes?: number): RolloutRules => ({ rollout, abortCriteria, inProgressTimeoutInMinutes });
const criterion = (failureType: AbortCriterion["failureType"], thresholdPercentage: number, minNumberOfExecutedThings: number): AbortCriterion =>
	({ failureType, action: "CANCEL", thresholdPercentage, minNumberOfExecutedThings });

test("the rate: AWS's default without a rollout, maximumPerMinute, and the developer guide's exponential example", () => {
	assert.is(ratePerMinute(undefined, 0, 0), 1000);
	assert.is(ratePerMinute({ maximumPerMinute: 7 }, 500, 500), 7);
	// baseRatePerMinute 50, incrementFactor 2, numberOfNotifiedThings 1000: 50, 100, 200, 400 at 0, 1000, 2000, 3000.
	const guide: RolloutConfig = { maximumPerMinute: 1000, exponentialRate: { baseRatePerMinute: 50, incrementFactor: 2, rateIncreaseCriteria: { numberOfNotifiedThings: 1000 } } };
	assert.equal([0, 999, 1000, 2000, 3000, 3999, 4000, 5000].map((notified) => ratePerMinute(guide, notified, 0)), [50, 50, 100, 200, 400, 400, 800, 1000]);
	const either: RolloutConfig = { maximumPerMinute: 100, exponentialRate: { baseRatePerMinute: 10, incrementFactor: 1.5, rateIncreaseCriteria: { numberOfNotifiedThings: 40, numberOfSucceededThings: 10 } } };
	assert.equal([ratePerMinute(either, 10, 0), ratePerMinute(either, 10, 10), ratePerMinute(either, 40, 0), ratePerMinute(either, 10, 25)], [10, 15, 15, 22]);
});

test("a constant rate notifies maximumPerMinute things at each minute; every board's status lands at notification + duration", async () => {
	const { runner, calls } = scripted(() => ({ afterMs: 10_000, status: "SUCCEEDED" }));
	const result = await runRollout(things(250), rules({ maximumPerMinute: 100 }), runner);
	assert.equal(result.batches, [{ atMs: 0, ratePerMinute: 100, notified: 100 }, { atMs: 60_000, ratePerMinute: 100, notified: 100 }, { atMs: 120_000, ratePerMinute: 100, notified: 50 }]);
	assert.ok(result.executions.every((execution) => execution.status === "SUCCEEDED" && execution.endedAtMs === execution.notifiedAtMs + 10_000));
	assert.is(result.endMs, 130_000);
	assert.equal(result.notNotified, []);
	assert.equal(calls.map((call) => call.thing), things(250), "notified in list order");
	assert.is(result.abort, undefined);
});

test("an exponential rate on notified things follows the developer guide's table to the maximum", async () => {
	const { runner } = scripted(() => ({ afterMs: 1_000, status: "SUCCEEDED" }));
	const guide: RolloutConfig = { maximumPerMinute: 1000, exponentialRate: { baseRatePerMinute: 50, incrementFactor: 2, rateIncreaseCriteria: { numberOfNotifiedThings: 1000 } } };
	const result = await runRollout(things(5000), rules(guide), runner);
	const changes = result.batches.filter((batch, index) => index === 0 || batch.ratePerMinute !== result.batches[index - 1].ratePerMinute).map((batch) => [batch.atMs / 60_000, batch.ratePerMinute]);
	assert.equal(changes, [[0, 50], [20, 100], [30, 200], [35, 400], [38, 800]]);
	assert.is(result.executions.length, 5000);
});

test("an exponential rate on succeeded things counts only what has succeeded by the tick", async () => {
	// Each board takes 90 s: the first batch's successes arrive between minutes 1 and 2.
	const { runner } = scripted(() => ({ afterMs: 90_000, status: "SUCCEEDED" }));
	const config: RolloutConfig = { maximumPerMinute: 100, exponentialRate: { baseRatePerMinute: 10, incrementFactor: 1.5, rateIncreaseCriteria: { numberOfSucceededThings: 10 } } };
	const result = await runRollout(things(60), rules(config), runner);
	// Succeeded by each tick: 0, 0, 10, 20, 35 → steps 0, 0, 1, 2, 3.
	assert.equal(result.batches.map((batch) => [batch.ratePerMinute, batch.notified]), [[10, 10], [10, 10], [15, 15], [22, 22], [33, 3]]);
});

test("abort: the job is canceled at the terminal status that meets the rule, even one from an earlier batch", async () => {
	// Two things a minute. t0 fails at 150 s; the others succeed: t1 at 10 s, t2 at 70 s, t3 at 130 s, t4 at 125 s, t5 at 200 s.
	const durations = [150_000, 10_000, 10_000, 70_000, 5_000, 80_000, 1_000, 1_000];
	const { runner, calls } = scripted((_, index) => ({ afterMs: durations[index], status: index === 0 ? "FAILED" : "SUCCEEDED" }));
	const canceled: string[][] = [];
	const result = await runRollout(things(8), rules({ maximumPerMinute: 2 }, [criterion("FAILED", 20, 3)]), runner, { canceled: (queued) => canceled.push(queued) });
	assert.equal(result.abort && { ...result.abort }, { atMs: 150_000, criterion: criterion("FAILED", 20, 3), completed: 5, failures: 1, percentage: 20 });
	assert.equal(calls.map((call) => call.notifiedAtMs), [0, 0, 60_000, 60_000, 120_000, 120_000], "nothing notified after the abort");
	assert.equal(result.notNotified, ["t6", "t7"]);
	const t5 = result.executions[5];
	assert.equal([t5.status, t5.endedAtMs], ["SUCCEEDED", 200_000], "an IN_PROGRESS execution runs on");
	assert.equal(canceled, [[]]);
	assert.is(result.endMs, 200_000);
});

test("abort on ALL: at least minNumberOfExecutedThings completed, then the first moment failures reach the threshold; QUEUED executions are canceled", async () => {
	// Everything notified at 0; t(i) ends at (i + 1) s; every fourth (t3, t7, t11, …) is REJECTED; t20 and t21 never
	// start; t22's board is off until 20 s.
	const { runner } = scripted((_, index) => index === 20 || index === 21
		? { started: false }
		: { afterMs: (index + 1) * 1000, status: index % 4 === 3 ? "REJECTED" : "SUCCEEDED", started: index % 4 !== 3, startedAfterMs: index === 22 ? 20_000 : 0 });
	const canceled: { things: string[]; atMs: number }[] = [];
	const result = await runRollout(things(30), rules(undefined, [criterion("FAILED", 1, 1), criterion("ALL", 25, 10)]), runner, {
		canceled: (queued, atMs) => canceled.push({ things: queued, atMs }),
	});
	// 10 completed at 10 s hold 2 rejections (20%); at 12 s, 3 of 12 (25%).
	assert.equal([result.abort?.atMs, result.abort?.criterion.failureType, result.abort?.completed, result.abort?.failures], [12_000, "ALL", 12, 3]);
	// Still QUEUED at 12 s: the later rejections (a rejection skips IN_PROGRESS), the two that never start, and t22.
	assert.equal(canceled, [{ things: ["t15", "t19", "t20", "t21", "t22", "t23", "t27"], atMs: 12_000 }]);
	assert.equal([result.executions[15].status, result.executions[15].endedAtMs], ["CANCELED", 12_000]);
	assert.equal([result.executions[22].status, result.executions[22].startedAtMs], ["CANCELED", undefined], "taken after the cancel: refused");
	assert.equal([result.executions[20].status, result.executions[20].endedAtMs], ["CANCELED", 12_000]);
	assert.equal([result.executions[29].status, result.executions[29].endedAtMs], ["SUCCEEDED", 30_000]);
	assert.equal(result.executions[3].startedAtMs, undefined, "a rejection without IN_PROGRESS never started");
});

test("in-progress timeout: late and silent executions end TIMED_OUT at the timer; one never started stays QUEUED; TIMED_OUT can abort", async () => {
	const script: Script[] = [
		{ afterMs: 15 * 60_000, status: "SUCCEEDED" }, // reports after the 10-minute timer
		{}, // started, never reports
		{ started: false }, // never picks the job up
		{ afterMs: 10 * 60_000, status: "TIMED_OUT" }, // the runner ended it at the deadline
		{ afterMs: 60_000, status: "SUCCEEDED" },
		{ afterMs: 2_000, status: "REJECTED", started: false },
		{ startedAfterMs: 8 * 60_000, afterMs: 17 * 60_000, status: "SUCCEEDED" }, // taken late: its timer starts then
	];
	const { runner, calls } = scripted((_, index) => script[index]);
	const result = await runRollout(things(7), rules(undefined, [criterion("TIMED_OUT", 50, 4)], 10), runner);
	assert.ok(calls.every((call) => call.timeoutMs === 600_000));
	const states = result.executions.map((execution) => [execution.status, execution.endedAtMs, execution.lateStatus]);
	assert.equal(states, [
		["TIMED_OUT", 600_000, "SUCCEEDED"], ["TIMED_OUT", 600_000, undefined], ["CANCELED", 600_000, undefined],
		["TIMED_OUT", 600_000, undefined], ["SUCCEEDED", 60_000, undefined], ["REJECTED", 2_000, undefined], ["SUCCEEDED", 17 * 60_000, undefined],
	]);
	assert.is(result.executions[6].startedAtMs, 8 * 60_000);
	// At 600 s the timeouts come in the order of their events: 2 of 4 completed (50%) after the second.
	assert.equal([result.abort?.atMs, result.abort?.completed, result.abort?.failures], [600_000, 4, 2]);
});

test("without a timeout a silent execution stays IN_PROGRESS and the job never completes", async () => {
	const { runner } = scripted((_, index) => (index === 1 ? {} : { afterMs: 5_000, status: "SUCCEEDED" }));
	const result = await runRollout(things(3), rules(), runner);
	assert.equal(result.executions.map((execution) => execution.status), ["SUCCEEDED", "IN_PROGRESS", "SUCCEEDED"]);
});

test("progress reports counts per status as the rollout advances", async () => {
	const { runner } = scripted(() => ({ afterMs: 30_000, status: "SUCCEEDED" }));
	const seen: { atMs: number; notNotified: number; running: number }[] = [];
	await runRollout(things(5), rules({ maximumPerMinute: 2 }), runner, {
		progress: (state) => seen.push({ atMs: state.atMs, notNotified: state.counts.NOT_NOTIFIED, running: state.boardsRunning }),
	});
	assert.equal(seen[0], { atMs: 0, notNotified: 3, running: 2 });
	assert.equal(seen[seen.length - 1], { atMs: 150_000, notNotified: 0, running: 0 });
	assert.ok(seen.some((state) => state.atMs === 60_000 && state.notNotified === 1));
});

test.run();
