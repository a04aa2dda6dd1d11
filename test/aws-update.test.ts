// AWS IoT jobs over MQTT file streams, end to end on simulated boards: power cuts mid-stream over Debian's
// mosquitto (JSON and CBOR, both engines), a lossy broker, and every bad job ending FAILED or REJECTED with
// the LwM2M code in statusDetails while the old firmware keeps running.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { startMosquitto, type MosquittoServer } from "../host-sim/server/mosquitto";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import type { DeviceOptions, DeviceOutcome } from "../host-sim/device";
import { assertNewFirmware, assertOldFirmware, run, seeded, tempDir, traced } from "./support/sim";

const blockSize = 4096;
const checkpointBlocks = 16384 / blockSize;
/** Fast re-requests and status retries: a lost message costs this much real time. */
const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
let mosquitto: MosquittoServer;
let overMosquitto: AwsIot;
let overAedes: AwsIot;
let things = 0;

test.before(async () => {
	mosquitto = await startMosquitto();
	overMosquitto = await startAwsIot({ broker: { url: mosquitto.url } });
	overAedes = await startAwsIot({});
});
test.after(async () => {
	await overMosquitto.close();
	await mosquitto.close();
	await overAedes.close();
});

function device(aws: AwsIot, thing: string, options: Partial<DeviceOptions> & { dir: string }, config: Record<string, unknown> = {}): Promise<DeviceOutcome> {
	return run({ engine: "node", ...options, mqtt: aws.url, thing, config: { ...quick, ...config } });
}

function terminalUpdates(aws: AwsIot, thing: string, jobId: string) {
	const execution = aws.executions(thing).find((e) => e.jobId === jobId)!;
	return { execution, accepted: execution.updates.filter((u) => u.outcome === "accepted" && ["SUCCEEDED", "FAILED", "REJECTED"].includes(String(u.status))) };
}

for (const engine of ["node", "xs"] as const) {
	for (const format of ["json", "cbor"] as const) {
		test(`${engine}, ${format}: 1 MiB over mosquitto survives ten cuts; SUCCEEDED exactly once; bounded re-fetching`, async () => {
			const thing = `cuts-${engine}-${format}-${++things}`;
			const image = makeAppImage({ size: 1024 * 1024, version: "2.0.0" });
			const job = overMosquitto.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: format });
			const board = tempDir("board");
			const random = seeded(format === "cbor" ? 17 : 13);
			let blocks = 0;
			for (let cut = 0; cut < 10; cut++) {
				const outcome = await device(overMosquitto, thing, { dir: board, engine, cutAfterOps: 1 + Math.floor(random() * 80) }, { streamFormat: format });
				assert.is(outcome.end, "power-cut", `cut ${cut + 1}`);
				blocks += outcome.blocksFetched;
			}
			const final = await device(overMosquitto, thing, { dir: board, engine }, { streamFormat: format });
			blocks += final.blocksFetched;
			assertNewFirmware(final, sha256Hex(image), "2.0.0", "after ten cuts");
			const { execution, accepted } = terminalUpdates(overMosquitto, thing, job.jobId);
			assert.is(execution.status, "SUCCEEDED");
			assert.is(accepted.length, 1);
			// The time spent receiving, summed over the eleven power-ons, reaches the terminal status as a string.
			const downloadTime = execution.statusDetails.downloadTime;
			assert.match(downloadTime, /^\d+\.\d{3}$/);
			const progressTimes = execution.updates.flatMap((update) => update.outcome === "accepted" ? [Number((update.statusDetails as { downloadTime?: string })?.downloadTime ?? 0)] : []);
			assert.ok(Number(downloadTime) > 0 && Number(downloadTime) >= Math.max(...progressTimes), `${downloadTime} s after ${progressTimes.join(", ")}`);
			const total = Math.ceil(image.length / blockSize);
			assert.ok(blocks <= total + 10 * (checkpointBlocks + 1), `${blocks} blocks for ${total}`);
		});
	}
}

test("cuts in the switch, the first boot, the confirmation and the report still end SUCCEEDED exactly once", async () => {
	const image = makeAppImage({ size: 64 * 1024, version: "2.0.0" });
	const reference = `reference-${++things}`;
	overAedes.createJob(reference, { image, form: "fota", version: "2.0.0" });
	const total = (await device(overAedes, reference, { dir: tempDir("board") })).ops;
	// Counted back from the end: report acknowledged, success record, mark-valid, bootloader rewrite, switch.
	for (const fromEnd of [1, 3, 5, 7, 9]) {
		const thing = `late-cut-${fromEnd}-${++things}`;
		const job = overAedes.createJob(thing, { image, form: "fota", version: "2.0.0" });
		const board = tempDir("board");
		const cut = await device(overAedes, thing, { dir: board, cutAfterOps: total - fromEnd + 1 });
		assert.is(cut.end, "power-cut", `cut ${fromEnd} from the end`);
		const final = await device(overAedes, thing, { dir: board });
		assertNewFirmware(final, sha256Hex(image), "2.0.0", `cut ${fromEnd} from the end`);
		const { execution, accepted } = terminalUpdates(overAedes, thing, job.jobId);
		assert.is(execution.status, "SUCCEEDED", `cut ${fromEnd} from the end`);
		assert.is(accepted.length, 1, `cut ${fromEnd} from the end`);
	}
});

test("a broker that drops 5% and duplicates 5% of messages still delivers the update", async () => {
	const thing = `lossy-${++things}`;
	const image = makeAppImage({ size: 256 * 1024, version: "2.0.0" });
	overAedes.faults.dropRate = 0.05;
	overAedes.faults.duplicateRate = 0.05;
	try {
		const job = overAedes.createJob(thing, { image, form: "fota", version: "2.0.0" });
		const final = await device(overAedes, thing, { dir: tempDir("board") });
		assertNewFirmware(final, sha256Hex(image), "2.0.0", "lossy broker");
		assert.is(terminalUpdates(overAedes, thing, job.jobId).accepted.length, 1);
		assert.ok(overAedes.stats.dropped > 0 && overAedes.stats.duplicated > 0);
	}
	finally {
		overAedes.faults.dropRate = 0;
		overAedes.faults.duplicateRate = 0;
	}
});

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: on-boot maintenance checks for jobs once connected: COMPLETE, no failed check`, async () => {
		const thing = `boot-check-${engine}-${++things}`;
		const outcome = await traced({ engine, dir: tempDir("board"), mqtt: overAedes.url, thing, config: quick });
		const onBoot = outcome.events.filter((event) => event.event === "maintenance" && event.kind === "on-boot").map((event) => event.status);
		assert.equal(onBoot, ["STARTED", "COMPLETE"]);
		assert.not.ok(outcome.logs.some((line) => /task check/.test(line)), outcome.logs.join("\n"));
		assert.ok(outcome.logs.includes("xs-ota: jobs connected"), "connecting asked the service for the next job");
	});

	test(`${engine}: a broker that never answers: the check gives up after the network wait, ERROR, old firmware`, async () => {
		const outcome = await traced({ engine, dir: tempDir("board"), mqtt: "mqtt://127.0.0.1:9", thing: "nobody", runFor: 10 * 60000, config: { ...quick, networkRetryMs: 1000 } });
		const onBoot = outcome.events.filter((event) => event.event === "maintenance" && event.kind === "on-boot").map((event) => event.status);
		assert.equal(onBoot, ["STARTED", "ERROR"]);
		assert.ok(outcome.logs.includes("xs-ota: maintenance task check: failed"), outcome.logs.join("\n"));
		assert.is(outcome.end, "time-up", "the device keeps trying to connect");
		assert.equal([outcome.state, outcome.result, outcome.running.slot, outcome.running.version], [0, 0, 0, "1.0.0"]);
	});
}

const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = keys.publicKey.export({ format: "jwk" }) as { x: string; y: string };
const publicKey = `04${Buffer.from(jwk.x, "base64url").toString("hex")}${Buffer.from(jwk.y, "base64url").toString("hex")}`;
const signatureOf = (bytes: Uint8Array) => sign("sha256", bytes, { key: keys.privateKey, dsaEncoding: "der" }).toString("base64");

test("a correctly signed afr_ota job succeeds", async () => {
	const thing = `signed-${++things}`;
	const image = makeAppImage({ size: 128 * 1024, version: "2.0.0" });
	const job = overAedes.createJob(thing, { image, form: "afr_ota", signature: signatureOf(image) });
	const final = await device(overAedes, thing, { dir: tempDir("board") }, { publicKey });
	assertNewFirmware(final, sha256Hex(image), "2.0.0", "signed");
	assert.is(terminalUpdates(overAedes, thing, job.jobId).execution.status, "SUCCEEDED");
});

const badJobs: { name: string; status: string; result: number; create: (thing: string) => string }[] = [
	{ name: "a bad signature", status: "FAILED", result: 5, create: (thing) => {
		const image = makeAppImage({ size: 64 * 1024, version: "2.0.0" });
		return overAedes.createJob(thing, { image, form: "afr_ota", signature: signatureOf(makeAppImage({ size: 64 * 1024, version: "6.6.6" })) }).jobId;
	} },
	{ name: "a wrong md5sum", status: "FAILED", result: 5, create: (thing) => {
		const job = overAedes.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "2.0.0" }), form: "fota", version: "2.0.0" });
		(job.execution.jobDocument as { md5sum: string }).md5sum = createHash("md5").update("something else").digest("hex");
		return job.jobId;
	} },
	{ name: "an oversized file", status: "FAILED", result: 2, create: (thing) =>
		overAedes.createJob(thing, { image: makeAppImage({ size: 2 * 1024 * 1024, version: "2.0.0" }), form: "fota", version: "2.0.0" }).jobId },
	{ name: "an image for another chip", status: "FAILED", result: 6, create: (thing) =>
		overAedes.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "2.0.0", chip: "esp32c3" }), form: "fota", version: "2.0.0" }).jobId },
	{ name: "an older version", status: "REJECTED", result: 8, create: (thing) =>
		overAedes.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "0.9.0" }), form: "fota", version: "0.9.0" }).jobId },
	{ name: "a malformed document", status: "REJECTED", result: 6, create: (thing) => {
		const job = overAedes.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "2.0.0" }), form: "fota", version: "2.0.0" });
		job.execution.jobDocument = { ...(job.execution.jobDocument as object), fileSize: "big" };
		return job.jobId;
	} },
	{ name: "topic injection in the stream name", status: "REJECTED", result: 7, create: (thing) => {
		const job = overAedes.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "2.0.0" }), form: "fota", version: "2.0.0" });
		(job.execution.jobDocument as { streamId: string }).streamId = "x/../#";
		return job.jobId;
	} },
];

for (const { name, status, result, create } of badJobs) {
	test(`${name} ends ${status} with result ${result} and the old firmware running`, async () => {
		const thing = `bad-${++things}`;
		const jobId = create(thing);
		const outcome = await device(overAedes, thing, { dir: tempDir("board") }, { publicKey });
		assertOldFirmware(outcome, status === "REJECTED" ? 0 : result, name);
		const { execution, accepted } = terminalUpdates(overAedes, thing, jobId);
		assert.is(execution.status, status);
		assert.is(accepted.length, 1);
		assert.is(execution.statusDetails.result, String(result));
	});
}

test.run();
