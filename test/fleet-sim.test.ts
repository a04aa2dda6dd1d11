// `xs-ota fleet --target sim`: real simulated boards (Node engine) on the AWS IoT emulator, rolled out to by the
// controller: an exponential rollout through power cuts and slow links, the abort when too many new images fail
// their self-test (the test-size equivalent of the 1,000-board run in fleet-scale.test.ts), in-progress timeouts,
// stress rounds, signed images, and the report a user reads.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { packageVersion, signImage, type Package } from "../tools/fleet/aws-documents";
import { fleetCommand, failedRolloutExitCode, monitorCommand } from "../tools/fleet/command";
import { parseDeploymentConfig } from "../tools/fleet/deployment-config";
import { defaultFaults, type FaultProfile } from "../host-sim/fleet/faults";
import { simulateFleet } from "../host-sim/fleet/fleet-sim";
import { buildReport, type FleetReport, type RoundReport } from "../host-sim/fleet/report";
import { numberedThings } from "../tools/fleet/things";
import { makeAppImage } from "../host-sim/image";
import { tempDir } from "./support/sim";

const examples = fileURLToPath(new URL("../tools/fleet/examples/", import.meta.url));
const image = makeAppImage({ size: 64 * 1024, version: "2.0.0" });

/** A deployment configuration: the sections given, DEFAULT first. */
function deployment(sections: { [section: string]: { [key: string]: string | number } }): string {
	const base = { jobId: "fw-2", streamId: "fw-2-stream", ...sections.DEFAULT };
	return Object.entries({ ...sections, DEFAULT: base })
		.sort(([a], [b]) => (a === "DEFAULT" ? -1 : b === "DEFAULT" ? 1 : 0))
		.map(([name, keys]) => `[${name}]\n${Object.entries(keys).map(([key, value]) => `${key} = ${value}`).join("\n")}\n`).join("\n");
}

const exponential = {
	JOB_EXECUTE_ROLLOUT_CONFIG: { maximumPerMinute: 50, useExponentialRateCfg: "True" },
	EXP_RATE_CONFIG: { baseRatePerMinute: 4, incrementFactor: 2, useRateIncreaseCriteria: "True" },
	INCREASE_CRITERIA: { numberOfNotifiedThings: 4 },
};

function pkg(bytes = image, extra: Partial<Package> = {}): Package {
	return { bytes, fileName: "fw.bin", version: packageVersion(bytes, "fw.bin"), form: "fota", fileId: 1, signature: undefined, custom: {}, ...extra };
}

async function simulate(ini: string, boards: number, faults: Partial<FaultProfile> = {}, pack = pkg(), publicKey?: string): Promise<FleetReport> {
	const config = parseDeploymentConfig(ini, "dev.ini");
	const profile = { ...defaultFaults, ...faults };
	const started = performance.now();
	const boardsDir = tempDir("fleet-boards");
	try {
		const run = await simulateFleet({ config, things: numberedThings(boards), pkg: pack, publicKey, faults: profile, boardsDir, concurrency: 8 });
		return buildReport(run, { config, pkg: pack, boards, concurrency: 8, faults: profile, wallMs: performance.now() - started, peakRssBytes: 0 });
	}
	finally {
		fs.rmSync(boardsDir, { recursive: true, force: true });
	}
}

/** What `xs-ota fleet monitor --target sim --once` prints for the rehearsal in `out`. */
async function monitorOnce(dir: string, out: string): Promise<string> {
	const written: string[] = [];
	const write = process.stdout.write;
	process.stdout.write = ((text: string) => written.push(text) > 0) as typeof process.stdout.write;
	try {
		await monitorCommand({ config: path.join(dir, "dev.ini"), target: "sim", out, once: true });
	}
	finally {
		process.stdout.write = write;
	}
	return written.join("");
}

/** The abort came at the first moment its rule was met: never before, with the counts it reports. */
function assertAbortMoment(round: RoundReport): void {
	const abort = round.abort!;
	const met = (completed: number, failures: number) => completed >= abort.minNumberOfExecutedThings && failures * 100 >= abort.thresholdPercentage * completed;
	const failing = (status: string) => abort.failureType === "ALL" ? ["FAILED", "REJECTED", "TIMED_OUT"].includes(status) : status === abort.failureType;
	const ended = round.executions.filter((execution) => execution.status !== "CANCELED" && execution.endedAtSeconds !== undefined);
	for (const moment of new Set(ended.map((execution) => execution.endedAtSeconds!).filter((seconds) => seconds < abort.atSeconds))) {
		const before = ended.filter((execution) => execution.endedAtSeconds! <= moment);
		assert.not.ok(met(before.length, before.filter((execution) => failing(execution.status)).length), `the rule was already met at ${moment} s`);
	}
	assert.ok(met(abort.completed, abort.failures), "the reported counts meet the rule");
	assert.ok(ended.some((execution) => execution.endedAtSeconds === abort.atSeconds), "an execution ended at the abort");
	assert.ok(round.executions.every((execution) => execution.notifiedAtSeconds <= abort.atSeconds), "no thing notified after the abort");
}

test("an exponential rollout through power cuts and slow links completes: every board runs the new image", async () => {
	const report = await simulate(deployment({
		DEFAULT: { useJobExecutionsRolloutConfig: "True", useTimeoutConfig: "True" }, ...exponential, TIMEOUT_CONFIG: { inProgressTimeoutInMinutes: 60 },
	}), 24, { cutShare: 0.25, downtimeMinutes: 2, slowShare: 0.25, slowLinkKbps: 20 });
	const [round] = report.rounds;
	assert.is(round.outcome, "succeeded", round.why);
	assert.is(round.jobStatus, "COMPLETED");
	assert.is(round.counts.SUCCEEDED, 24);
	// 4 a minute until 4 are notified, then 8, then 16 (4 × 2^k, k = notified ÷ 4), capped by what is left.
	assert.equal(round.batches.map((batch) => [batch.minute, batch.ratePerMinute, batch.notified]), [[0, 4, 4], [1, 8, 8], [2, 32, 12]]);
	assert.ok(round.executions.every((execution) => execution.firmware === "2.0.0" && execution.result === "1"));
	assert.is(round.powerCuts, 6);
	const cut = round.executions.filter((execution) => execution.cuts);
	assert.ok(cut.every((execution) => execution.endedAtSeconds! - execution.notifiedAtSeconds >= 120), "a cut board was off for 2 minutes");
	const slow = round.executions.filter((execution) => execution.linkKbps === 20);
	assert.is(slow.length, 6);
	// 64 KiB as JSON stream messages is over 88,000 bytes: over 35 s at 20 kbit/s, under 1 s at 1 Mbit/s plus the board's own time.
	assert.ok(slow.every((execution) => execution.downloadSeconds! > 35));
	assert.ok(round.downloadSeconds!.p99 >= round.downloadSeconds!.p90 && round.downloadSeconds!.p90 >= round.downloadSeconds!.p50);
	assert.is(round.downloadSeconds!.samples, 24);
	assert.is(report.wall.virtualSeconds, round.durationSeconds);
});

test("15% of boards failing their self-test against a 10% abort threshold: canceled at the right moment, and the report says why", async () => {
	const dir = tempDir("fleet-abort");
	fs.writeFileSync(path.join(dir, "fw.bin"), image);
	fs.writeFileSync(path.join(dir, "dev.ini"), deployment({
		DEFAULT: { binName: "fw.bin", useJobExecutionsRolloutConfig: "True", useAbortConfig: "True", debug: "True" }, ...exponential,
		INCREASE_CRITERIA: { numberOfNotifiedThings: 8 },
		ABORT_CONFIG: { useFailedSubsection: "True" },
		ABORT_CONFIG_TYPE_FAILED: { failureType: "FAILED", thresholdPercentage: 10, minNumberOfExecutedThings: 20 },
		ALARM_CONFIG: { alarmList: "Slow" },
		ALARM_CONFIG_Slow: { namespace: "IoT:OTA:JobExecution", metricName: "downloadTime", stat: "p50", period: 60, threshold: 0.001, alarmType: "upper", evaluationPeriods: 2, datapointsToAlarm: 1 },
	}));
	const out = path.join(dir, "out");
	const log = console.log;
	const printed: string[] = [];
	console.log = (line: string) => printed.push(line);
	try {
		await fleetCommand({ config: path.join(dir, "dev.ini"), target: "sim", boards: "60", "self-test-fail": "0.15", out, concurrency: "8" });
	}
	finally {
		console.log = log;
	}
	assert.is(process.exitCode, failedRolloutExitCode);
	process.exitCode = 0;
	const report: FleetReport = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8"));
	const [round] = report.rounds;
	assert.is(round.outcome, "aborted");
	assert.is(round.jobStatus, "CANCELED");
	assertAbortMoment(round);
	assert.ok(round.abort!.completed >= 20 && round.abort!.percentage >= 10);
	assert.ok(round.counts.NOT_NOTIFIED > 0, "the abort stopped the rollout");
	assert.match(round.why, new RegExp(`^job fw-2 canceled at .*: abort rule FAILED ≥ 10% after at least 20 completed executions was met by ${round.abort!.failures} FAILED of ${round.abort!.completed} completed \\(\\d+\\.\\d%\\); ${round.counts.NOT_NOTIFIED} things were never notified$`));
	const failed = round.executions.filter((execution) => execution.status === "FAILED");
	assert.ok(failed.length >= 2);
	assert.ok(failed.every((execution) => execution.firmware === "1.0.0" && execution.result === "8" && execution.faults.includes("self-test fails")), "rolled back to the factory image");
	assert.ok(round.executions.filter((execution) => execution.status === "SUCCEEDED").every((execution) => !execution.faults.includes("self-test fails")));
	assert.match(report.outcome, /^round 1 of 1 aborted: job fw-2 canceled/);
	assert.match(printed.join("\n"), /round 1 of 1 aborted/);
	// The alarm watches what the boards reported: downloadTime in their statusDetails, on the round's job.
	assert.equal(report.alarms.map((alarm) => [alarm.rule.name, alarm.jobId, alarm.evaluated, alarm.state === "ALARM" || alarm.transitions.some((transition) => transition.state === "ALARM")]), [["Slow", "fw-2", true, true]]);
	const missing = round.executions.filter((execution) => execution.status === "SUCCEEDED" && !/^\d+\.\d{3}$/.test(execution.statusDetails.downloadTime));
	assert.equal(missing.map((execution) => [execution.thing, execution.statusDetails, execution.faults]), []);
	// What the rehearsal left for xs-ota fleet monitor --target sim: the round's job, its counts and abort, every thing.
	const monitored = await monitorOnce(dir, out);
	assert.is(process.exitCode, 3, "the job did not succeed");
	process.exitCode = 0;
	assert.match(monitored, new RegExp(`^job fw-2: CANCELED \\(aborted: abort rule FAILED ≥ 10%: ${round.abort!.failures} of ${round.abort!.completed} completed\\)\n`));
	assert.match(monitored, new RegExp(`executions: .*FAILED ${round.counts.FAILED}`));
	assert.match(monitored, /thing-0001 +SUCCEEDED +state=0 result=1 reason=accepted v2\.0\.0 updatedBy=2\.0\.0 downloadTime=\d+\.\d{3}\n/);
	const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
	assert.ok(html.includes("<svg") && html.includes(">abort</text>") && html.includes("canceled at"));
	assert.not.ok(/<script|src=|href=/.test(html), "self-contained");
	assert.match(fs.readFileSync(path.join(out, "fleet.log"), "utf8"), /fw-2 thing-0001 \{"event":"boot"/, "debug = True logs every board event");
	assert.not.ok(fs.existsSync(path.join(out, "boards")), "board folders removed without --keep-boards");
});

test("in-progress timeout: late and powerless boards end TIMED_OUT at the timer; a TIMED_OUT rule aborts; QUEUED executions are canceled", async () => {
	const report = await simulate(deployment({
		DEFAULT: { useAbortConfig: "True", useTimeoutConfig: "True" },
		ABORT_CONFIG: { useTimedOutSubsection: "True" },
		ABORT_CONFIG_TYPE_TIMED_OUT: { failureType: "TIMED_OUT", thresholdPercentage: 25, minNumberOfExecutedThings: 8 },
		TIMEOUT_CONFIG: { inProgressTimeoutInMinutes: 5 },
	}), 16, { slowShare: 0.25, slowLinkKbps: 1, deadShare: 0.125, cutShare: 0.125, downtimeMinutes: 10, offlineShare: 0.125, seed: 5 });
	const [round] = report.rounds;
	const executions = round.executions;
	const state = (execution: (typeof executions)[number]) => [execution.status, execution.endedAtSeconds, execution.lateStatus];
	// Six boards without faults succeed at once. At 1 kbit/s a board needs over ten minutes for its 88 KB of stream
	// messages: the four slow ones' SUCCEEDED comes too late, and at 300 s the second of their timeouts meets the rule.
	const succeeded = executions.filter((execution) => execution.status === "SUCCEEDED");
	assert.equal(succeeded.map((execution) => [execution.faults.length, execution.linkKbps, execution.endedAtSeconds! < 300]), Array(6).fill([0, 1000, true]));
	const slow = executions.filter((execution) => execution.linkKbps === 1);
	assert.is(slow.length, 4);
	for (const execution of slow) assert.equal(state(execution), ["TIMED_OUT", 300, "SUCCEEDED"], execution.thing);
	assert.is(round.outcome, "aborted");
	assertAbortMoment(round);
	assert.equal([round.abort!.atSeconds, round.abort!.failureType, round.abort!.completed, round.abort!.failures], [300, "TIMED_OUT", 8, 2]);
	// A board cut off for good, or for 10 minutes, times out if it had taken its job; if not, its execution was still
	// QUEUED at the abort, like the offline boards'.
	const powerless = executions.filter((execution) => ["dead", "1 cut", "offline"].includes(execution.faults[0]));
	assert.equal(powerless.map((execution) => execution.faults[0]).sort(), ["1 cut", "1 cut", "dead", "dead", "offline", "offline"]);
	for (const execution of powerless) {
		const took = execution.startedAtSeconds === 0;
		assert.equal(state(execution), [took ? "TIMED_OUT" : "CANCELED", 300, undefined], `${execution.thing}, ${execution.faults[0]}`);
	}
});

test("the monitor of a rehearsal whose cleanup deleted its jobs still lists every thing of every round", async () => {
	const dir = tempDir("fleet-monitored");
	fs.writeFileSync(path.join(dir, "fw.bin"), image);
	fs.writeFileSync(path.join(dir, "dev.ini"), deployment({ DEFAULT: { binName: "fw.bin", rounds: 2, cleanUpCfg: "True" } }));
	const out = path.join(dir, "out");
	const log = console.log;
	console.log = () => {};
	try {
		await fleetCommand({ config: path.join(dir, "dev.ini"), target: "sim", boards: "3", out, concurrency: "3" });
	}
	finally {
		console.log = log;
	}
	assert.is(process.exitCode ?? 0, 0);
	const state = JSON.parse(fs.readFileSync(path.join(out, "monitor.json"), "utf8")) as { finished: boolean; jobs: { jobId: string; executions: { thing: string; status: string }[] }[] };
	assert.equal(state.jobs.map((job) => [job.jobId, job.executions.map((execution) => `${execution.thing} ${execution.status}`)]),
		["fw-2-1", "fw-2-2"].map((jobId) => [jobId, ["thing-0001 SUCCEEDED", "thing-0002 SUCCEEDED", "thing-0003 SUCCEEDED"]]));
	const monitored = await monitorOnce(dir, out);
	assert.match(monitored, /thing-0003 +SUCCEEDED +state=0 result=1/);
});

test("rounds: a stress run deploys a job per round to the same boards; a failed round stops the rest", async () => {
	const stress = deployment({ DEFAULT: { rounds: 3, cleanUpCfg: "True", defaultDelay: 30 } });
	const report = await simulate(stress, 4);
	assert.equal(report.rounds.map((round) => [round.jobId, round.outcome, round.counts.SUCCEEDED]), [["fw-2-1", "succeeded", 4], ["fw-2-2", "succeeded", 4], ["fw-2-3", "succeeded", 4]]);
	const [first, second] = report.rounds;
	assert.ok(second.startSeconds >= first.startSeconds + first.durationSeconds + 30, "defaultDelay between rounds");
	assert.ok(report.rounds.every((round) => round.executions.every((execution) => execution.firmware === "2.0.0" && execution.boots >= 2)), "the same image installed again");
	assert.match(report.outcome, /^all 3 rounds succeeded/);

	const failing = await simulate(stress, 4, { selfTestFailShare: 0.25 });
	assert.equal(failing.rounds.map((round) => [round.round, round.outcome]), [[1, "failed"]]);
	assert.match(failing.outcome, /^round 1 of 3 failed: not every execution succeeded: 1 FAILED; rounds 2 to 3 were skipped$/);
});

test("a signed afr_ota package: the boards check the signature with their public key", async () => {
	const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
	const signing = signImage(image, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
	const signed = pkg(image, { form: "afr_ota", signature: signing.signature });
	const good = await simulate(deployment({}), 3, {}, signed, signing.publicKey);
	assert.equal(good.rounds[0].executions.map((execution) => execution.status), ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
	const other = signImage(image, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString());
	const forged = await simulate(deployment({}), 2, {}, signed, other.publicKey);
	assert.equal(forged.rounds[0].executions.map((execution) => [execution.status, execution.result, execution.firmware]), [["FAILED", "5", "1.0.0"], ["FAILED", "5", "1.0.0"]]);
});

test("message loss: lost blocks are asked again and counted as retries; what was picked up completes", async () => {
	const report = await simulate(deployment({}), 10, { messageLoss: 0.05, seed: 9 });
	const [round] = report.rounds;
	assert.ok(round.retries > 0, "some stream request was repeated");
	// A board whose $next/get answer was lost never learns of its job: its execution stays QUEUED.
	assert.ok(round.executions.every((execution) => execution.status === "SUCCEEDED" || execution.status === "QUEUED"), JSON.stringify(round.counts));
	assert.ok(round.counts.SUCCEEDED >= 5);
});

test("xs-ota fleet --target sim refuses what it cannot simulate, naming it", async () => {
	const dir = tempDir("fleet-refuse");
	fs.writeFileSync(path.join(dir, "fw.bin"), image);
	fs.writeFileSync(path.join(dir, "things.txt"), "arn:aws:iot:us-east-1:123456789012:thinggroup/all\n");
	const base = { config: path.join(examples, "rehearsal.ini"), target: "sim", image: path.join(dir, "fw.bin"), out: path.join(dir, "out") };
	for (const [flags, message] of [
		[{ ...base, things: path.join(dir, "things.txt") }, /things\.txt:1: thing group all cannot be simulated/],
		[{ ...base, boards: "0" }, /--boards takes a whole number from 1 to 100000/],
		[{ ...base, boards: "2", "cut-share": "1.5" }, /--cut-share takes a number from 0 to 1/],
		[{ ...base, boards: "2", loss: true }, /--loss needs a value/],
		[{ ...base, config: path.join(examples, "dev.ini") }, /dev\.ini:5: DEFAULT\.jobId: <yourJobId> is an unfilled placeholder/],
	] as const) {
		let error: Error | undefined;
		try {
			await fleetCommand({ ...flags });
		}
		catch (caught) {
			error = caught as Error;
		}
		assert.match(error?.message ?? "", message);
	}
});

test.run();
