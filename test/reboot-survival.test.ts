// Reboot survival: the job list a user can read after updates, jobs the server forgot dropped after a
// reboot (HTTP and AWS), the reboot warning file and the orderly shutdown mid-download (state persisted to
// the byte, resumed after restart), reboot persistence off, the policy taken from the job, and every
// recovery policy under a cut in each phase of an update.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { type DeviceOptions, type EngineName, type PolicyName } from "../host-sim/device";
import { PreferenceStore } from "../host-sim/board/nvs";
import { PowerSupply } from "../host-sim/board/power";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { type Job, JobList } from "../src/agent/job-list";
import { decodeRecord, type DownloadRecord } from "../src/agent/record";
import type { StoredValue } from "../src/platform/ports";
import { assertNewFirmware, assertOldFirmware, logged, publish, run, tempDir, traced } from "./support/sim";
import { TestClient } from "./support/mqtt-client";

const size = 256 * 1024;
let www: string;
let server: UpdateServer;
let slow: UpdateServer;
let aws: AwsIot;
let image: { bytes: Uint8Array; sha256: string };

test.before(async () => {
	www = tempDir("www");
	image = publish(www, "app.bin", size, "2.0.0");
	publish(www, "other.bin", 128 * 1024, "3.0.0");
	server = await startUpdateServer({ dir: www });
	// 1 MB/s: a 256 KiB download takes a quarter of a second, long enough to be interrupted on purpose.
	slow = await startUpdateServer({ dir: www, faults: { bytesPerSecond: 1_000_000 } });
	aws = await startAwsIot({});
});
test.after(async () => {
	await server.close();
	await slow.close();
	await aws.close();
	fs.rmSync(www, { recursive: true, force: true });
});

function storedJobs(board: string): readonly Job[] {
	const nvs = PreferenceStore.open(board, new PowerSupply());
	const store = {
		get: (key: string) => nvs.get("xs-ota", key) as StoredValue | undefined,
		set() { throw new Error("read only"); },
		delete() { throw new Error("read only"); },
	};
	return new JobList(store, () => {}, true).load();
}

function storedRecord(board: string): DownloadRecord | undefined {
	const nvs = PreferenceStore.open(board, new PowerSupply());
	const copies = ["fw.a", "fw.b"].map((key) => nvs.get("xs-ota", key)).filter((value): value is ArrayBuffer => value instanceof ArrayBuffer)
		.map((value) => decodeRecord(new Uint8Array(value))).filter((record): record is DownloadRecord => typeof record !== "string");
	return copies.sort((a, b) => b.sequence - a.sequence)[0];
}

test("the job list after an update: the job succeeded, with its download and install times, kept across boots", async () => {
	const board = tempDir("board");
	const start = Date.parse("2026-06-10T10:00:00Z");
	const outcome = await run({ dir: board, url: `${server.url}/app.bin`, startTime: start });
	assertNewFirmware(outcome, image.sha256, "2.0.0", "update");
	const jobs = storedJobs(board);
	assert.is(jobs.length, 1);
	const [job] = jobs;
	assert.equal([job.id, job.source, job.uri, job.state, job.previousState, job.result], ["app-1", "app", `${server.url}/app.bin`, "succeeded", "installing", 1]);
	assert.ok(job.downloadTime >= start && job.installTime >= job.downloadTime && job.lastActivity >= job.installTime, JSON.stringify(job));
	assert.equal(job.parameters, { policy: "save point", automatic: true, severity: "major", maxDeferSeconds: 604800 });
	// A second update adds a job; the first stays as history.
	const second = await run({ dir: board, url: `${server.url}/other.bin` });
	assert.is(second.running.version, "3.0.0");
	assert.equal(storedJobs(board).map((entry) => [entry.id, entry.state]), [["app-1", "succeeded"], ["app-2", "succeeded"]]);
});

test("a job the package server forgot (404) is dropped after the reboot; the client is not locked", async () => {
	const board = tempDir("board");
	publish(www, "withdrawn.bin", size, "2.5.0");
	const first = await run({ dir: board, url: `${server.url}/withdrawn.bin`, cutAfterOps: 120 });
	assert.is(first.end, "power-cut");
	assert.is(first.state, 1);
	fs.rmSync(path.join(www, "withdrawn.bin"));
	const second = await traced({ dir: board });
	assertOldFirmware(second, 0, "dropped");
	assert.is(second.bytesFetched, 0, "a HEAD asked; no body fetched");
	assert.ok(logged(second, "job app-1 dropped: the server no longer knows it"), second.logs.join("\n"));
	assert.equal(storedJobs(board), []);
	assert.not.ok(second.events.some((event) => event.event === "result"), "nothing to report for a job the server forgot");
	const third = await run({ dir: board, url: `${server.url}/app.bin` });
	assertNewFirmware(third, image.sha256, "2.0.0", "the next job runs");
});

test("an unreachable package server does not hold a restored job forever: it resumes and reports 4 like any download", async () => {
	const board = tempDir("board");
	const down = await startUpdateServer({ dir: www });
	const url = `${down.url}/app.bin`;
	const first = await run({ dir: board, url, cutAfterOps: 120 });
	assert.is(first.end, "power-cut");
	await down.close();
	const second = await traced({ dir: board });
	assertOldFirmware(second, 4, "connection lost");
	assert.ok(logged(second, "resuming without its word"), second.logs.join("\n"));
});

test("an AWS job cancelled while the board was off ends cancelled (10) after it connects, unreported; the next job runs", async () => {
	const thing = "forgotten-1";
	const board = tempDir("board");
	const job = aws.createJob(thing, { image: makeAppImage({ size, version: "2.0.0" }), form: "fota", version: "2.0.0" });
	const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
	const first = await run({ dir: board, mqtt: aws.url, thing, cutAfterOps: 60, config: quick });
	assert.is(first.end, "power-cut");
	assert.is(first.state, 1);
	aws.endJob(thing, job.jobId, "CANCELED");
	const next = makeAppImage({ size: 128 * 1024, version: "3.0.0" });
	const nextJob = aws.createJob(thing, { image: next, form: "fota", version: "3.0.0" });
	const second = await traced({ dir: board, mqtt: aws.url, thing, config: quick });
	assert.ok(logged(second, `job ${job.jobId} withdrawn by the jobs service: cancelled`), second.logs.join("\n"));
	assert.ok(second.events.some((event) => event.event === "state" && event.result === 10), "result 10 before the next job");
	assertNewFirmware(second, sha256Hex(next), "3.0.0", "the next job");
	const statuses = aws.executions(thing).map((execution) => [execution.jobId, execution.status]);
	assert.equal(statuses, [[job.jobId, "CANCELED"], [nextJob.jobId, "SUCCEEDED"]]);
	assert.equal(storedJobs(board).map((entry) => [entry.id, entry.state]), [[job.jobId, "cancelled"], [nextJob.jobId, "succeeded"]]);
});

/** Interrupts a slow download once `afterBytes` have arrived, by `interrupt`; returns the run and the board. */
async function interrupted(interrupt: (commands: NonNullable<DeviceOptions["commands"]>, warning: string) => void, afterBytes: number, engine: EngineName = "node") {
	const board = tempDir("board");
	const warning = path.join(board, "reboot-warning");
	const commands: NonNullable<DeviceOptions["commands"]> = [];
	let fired = false, receivedAtInterrupt = 0;
	const outcome = await traced({
		dir: board, engine, url: `${slow.url}/app.bin`, rebootWarning: warning, commands, config: { warningPollMs: 20 },
		onEvent: (event) => {
			if (event.event !== "progress" || fired || (event.received as number) < afterBytes) return;
			fired = true;
			receivedAtInterrupt = event.received as number;
			interrupt(commands, warning);
		},
	});
	return { board, warning, outcome, receivedAtInterrupt };
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: a warning file mid-download: the agent persists to the byte, disconnects, deletes the file; the download resumes after restart`, async () => {
		const { board, warning, outcome, receivedAtInterrupt } = await interrupted((_, file) => fs.writeFileSync(file, ""), 64 * 1024, engine);
		assert.is(outcome.end, "shut-down");
		assert.is(outcome.state, 1, "still downloading: the job keeps its state");
		assert.ok(logged(outcome, "reboot warning: persisting and disconnecting"), outcome.logs.join("\n"));
		assert.not.ok(fs.existsSync(warning), "the warning is deleted once the state is safe");
		assert.ok(outcome.events.some((event) => event.event === "shutdown"));
		const record = storedRecord(board)!;
		assert.ok(record.committed >= receivedAtInterrupt && record.committed < size, `committed ${record.committed}, warned at ${receivedAtInterrupt}`);
		assert.is(record.committed, outcome.bytesFetched, "saved where it stopped: every byte fetched is kept");
		const job = storedJobs(board)[0];
		assert.equal([job.state, job.id], ["downloading", "app-1"]);
		const after = await run({ dir: board, engine });
		assertNewFirmware(after, image.sha256, "2.0.0", "resumed");
		assert.ok(after.bytesFetched <= size - record.committed + 4096, `fetched ${after.bytesFetched} after the warning, ${record.committed} were kept`);
	});
}

test("orderly shutdown mid-download: persisted to the byte, new requests refused, resumed by the next boot", async () => {
	const { board, outcome } = await interrupted((commands) => {
		commands.push({ action: "shutdown" });
		commands.push({ action: "update", uri: `${server.url}/other.bin` });
	}, 100 * 1024);
	assert.is(outcome.end, "shut-down");
	assert.is(outcome.state, 1);
	assert.ok(logged(outcome, "shut down in downloading at "), outcome.logs.join("\n"));
	assert.ok(logged(outcome, "exception: Error: shutting down"), "the request after the shutdown is refused");
	const record = storedRecord(board)!;
	assert.is(record.committed, outcome.bytesFetched);
	assert.is(record.uri, `${slow.url}/app.bin`, "the refused request changed nothing");
	const after = await run({ dir: board });
	assertNewFirmware(after, image.sha256, "2.0.0", "resumed");
	assert.ok(after.bytesFetched <= size - record.committed + 4096);
});

test("the MQTT reboot warning command mid-stream: blocks persisted, disconnected; the stream resumes after restart", async () => {
	const thing = "warned-1";
	const board = tempDir("board");
	const job = aws.createJob(thing, { image: makeAppImage({ size, version: "2.0.0" }), form: "fota", version: "2.0.0" });
	const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
	const operator = await TestClient.connect(aws.url);
	let warned = false;
	const first = await traced({
		dir: board, mqtt: aws.url, thing, config: quick,
		onEvent: (event) => {
			if (event.event !== "progress" || warned || (event.received as number) < 64 * 1024) return;
			warned = true;
			operator.publish(`xs-ota/${thing}/reboot-warning`, "");
		},
	});
	await operator.close();
	assert.is(first.end, "shut-down", "disconnected: nothing left to wait for");
	assert.is(first.state, 1);
	assert.ok(logged(first, "reboot warning command"), first.logs.join("\n"));
	assert.ok(logged(first, "shut down in downloading"), first.logs.join("\n"));
	const kept = storedRecord(board)!.blocks!.reduce((count, byte) => count + byte.toString(2).replace(/0/g, "").length, 0);
	assert.ok(kept * 4096 >= 64 * 1024, `${kept} blocks kept`);
	const second = await run({ dir: board, mqtt: aws.url, thing, config: quick });
	assert.is(second.running.version, "2.0.0");
	assert.ok(second.blocksFetched <= size / 4096 - kept + 4, `fetched ${second.blocksFetched} blocks after keeping ${kept}`);
	assert.is(aws.executions(thing).find((entry) => entry.jobId === job.jobId)!.status, "SUCCEEDED");
});

test("reboot persistence off: an interrupted job is dropped at boot and nothing of the list is stored", async () => {
	const board = tempDir("board");
	const config = { rebootPersistence: false };
	const first = await run({ dir: board, url: `${server.url}/app.bin`, cutAfterOps: 120, config });
	assert.is(first.end, "power-cut");
	const second = await traced({ dir: board, config });
	assertOldFirmware(second, 0, "dropped");
	assert.is(second.bytesFetched, 0);
	assert.ok(logged(second, "job app-1 dropped: reboot persistence is off"), second.logs.join("\n"));
	const keys = PreferenceStore.open(board, new PowerSupply()).keys("xs-ota");
	assert.equal(keys.filter((key) => key.startsWith("jl.")), []);
});

test("the policy comes from the job: a URI parameter (?recovery=restart) and an AWS job document field (abort)", async () => {
	const board = tempDir("board");
	const first = await run({ dir: board, url: `${server.url}/app.bin?recovery=restart`, cutAfterOps: 120 });
	assert.is(first.end, "power-cut");
	const second = await traced({ dir: board });
	assertNewFirmware(second, image.sha256, "2.0.0", "restart");
	assert.is(second.bytesFetched, size, "fetched from zero");
	assert.ok(logged(second, "recovering download (restart)"));
	assert.is(storedJobs(board)[0].parameters.policy, "restart");

	const thing = "abort-by-document";
	const awsBoard = tempDir("board");
	const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
	const job = aws.createJob(thing, { image: makeAppImage({ size, version: "2.0.0" }), form: "fota", version: "2.0.0", handling: { recoveryPolicy: "abort" } });
	const cut = await run({ dir: awsBoard, mqtt: aws.url, thing, cutAfterOps: 60, config: quick });
	assert.is(cut.end, "power-cut");
	const after = await run({ dir: awsBoard, mqtt: aws.url, thing, config: quick });
	assertOldFirmware(after, 8, "aborted");
	const execution = aws.executions(thing).find((entry) => entry.jobId === job.jobId)!;
	assert.equal([execution.status, execution.statusDetails?.result], ["FAILED", "8"]);
});

// --- every policy, under a cut in each phase of an update ---

const policies: PolicyName[] = ["save-point", "restart", "abort", "none"];

/** The op after which each phase begins, read from a clean run's state events (op = persistent writes so far). */
async function phaseOps(): Promise<{ downloaded: number; updating: number; firstBoot: number }> {
	const clean = await traced({ dir: tempDir("board"), url: `${server.url}/app.bin` });
	const states = clean.events.filter((event) => event.event === "state");
	const first = (state: number) => states.find((event) => event.state === state)!.op as number;
	// The new image's first boot reports Updating again before its self-test.
	const updating = states.filter((event) => event.state === 3);
	return { downloaded: first(2), updating: first(3), firstBoot: updating[updating.length - 1].op as number };
}

test("each policy under a cut in each phase: only a cut mid-download consults the policy; a verified image always installs", async () => {
	const ops = await phaseOps();
	for (const policy of policies) {
		for (const [phase, op] of Object.entries(ops)) {
			const board = tempDir("board");
			const first = await run({ dir: board, url: `${server.url}/app.bin`, policy, cutAfterOps: op + 1 });
			assert.is(first.end, "power-cut", `${policy}, ${phase}`);
			const second = await run({ dir: board });
			assertNewFirmware(second, image.sha256, "2.0.0", `${policy}, cut after ${phase} (op ${op + 1})`);
			assert.is(second.bytesFetched, 0, `${policy}, ${phase}: nothing fetched again`);
			fs.rmSync(board, { recursive: true, force: true });
		}
	}
});

test.run();
