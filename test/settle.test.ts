// Boards that settle with the AWS IoT emulator in this process (runDevice's settle, as the fleet rehearsal runs
// them): how slowly the host answers is no device time, so a board's run on its virtual clock is the same
// whatever the host's speed, and the rehearsal's boards run on worker threads with the same outcome.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAwsIot } from "../host-sim/server/aws-iot";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { BoardThreads } from "../host-sim/fleet/board-threads";
import { type DeviceOutcome, runDevice } from "../host-sim/device";
import { assertNewFirmware, tempDir } from "./support/sim";

/** Re-requests after 300 virtual ms: shorter than the latency the slow host adds to the blocks below. */
const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
const image = makeAppImage({ size: 48 * 1024, version: "2.0.0" });
const startTime = Date.UTC(2026, 0, 1);

/**
	The outcome but its MQTT byte count, which differs by a few bytes between two identical runs (seen: 68,434 to
	68,441; something in the jobs service's replies, not traced): blocks and requests are compared instead.
*/
function withoutJobBytes(outcome: DeviceOutcome): Omit<DeviceOutcome, "mqttBytesReceived"> {
	const { mqttBytesReceived: _ignored, ...rest } = outcome;
	return rest;
}

/** A tenth of what `blocks` blocks 400 ms late would add: far above what leaks, far below the latency. */
function blocksLate(blocks: number): number {
	return (blocks * 400) / 10;
}

async function download(delayMs: number, runner: "here" | "thread") {
	// Only the stream's messages are late: the jobs' replies keep their timing against the board's reboot.
	const aws = await startAwsIot({ faults: { delayMs, topics: /\/streams\// } });
	const threads = runner === "thread" ? new BoardThreads(1) : undefined;
	try {
		const thing = "settle";
		aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
		const options = { dir: tempDir("settle"), engine: "node" as const, mqtt: aws.url, settle: true, thing, startTime, config: quick };
		const outcome = threads ? await threads.run(options) : await runDevice(options);
		return { outcome, requests: aws.stats.requests, execution: aws.executions(thing)[0] };
	}
	finally {
		await threads?.close();
		await aws.close();
	}
}

test("a host that sends every block 400 ms late costs the board no re-request and none of that latency in virtual time", async () => {
	const prompt = await download(0, "here");
	const slow = await download(400, "here");
	for (const each of [prompt, slow]) {
		assertNewFirmware(each.outcome, sha256Hex(image), "2.0.0", "settled");
		assert.is(each.execution.status, "SUCCEEDED");
	}
	assert.is(slow.requests, prompt.requests, "no block asked twice");
	assert.is(slow.outcome.blocksFetched, prompt.outcome.blocksFetched);
	// Unsettled, every late block would cost 400 virtual ms (and a re-request after 300). On a loaded machine a few
	// real milliseconds still reach the virtual clock outside the stream (seen: 7 ms at load 14), so not exact.
	const lateness = blocksLate(prompt.outcome.blocksFetched);
	assert.ok(Math.abs(slow.outcome.wallTime - prompt.outcome.wallTime) < lateness, `${slow.outcome.wallTime - prompt.outcome.wallTime} ms more virtual time`);
	const downloadMs = (each: typeof slow) => Number(each.execution.statusDetails.downloadTime) * 1000;
	assert.ok(Math.abs(downloadMs(slow) - downloadMs(prompt)) < lateness, "the reported download time");
});

test("a board run on a worker thread ends as the same run on the main thread", async () => {
	const here = await download(0, "here");
	const threaded = await download(0, "thread");
	assertNewFirmware(threaded.outcome, sha256Hex(image), "2.0.0", "on a thread");
	assert.equal(withoutJobBytes(threaded.outcome), withoutJobBytes(here.outcome));
	assert.equal(threaded.execution.statusDetails, here.execution.statusDetails);
});

test.run();
