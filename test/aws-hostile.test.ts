// Hostile AWS IoT stream blocks and thing names, end to end on simulated boards against the in-process emulator.
// Blocks the device must not take (wrong file id, index or length, bad base64, broken JSON or CBOR) arrive just
// before each genuine block: the update still succeeds with the exact published image. A well-formed block
// with the wrong bytes that arrives first is kept (a held block is never replaced), so verification fails:
// FAILED with result 5 and the old firmware running. A stream that refuses ends FAILED 7, one that never
// answers FAILED 4. A thing name that could escape its MQTT topics leaves the agent off the network entirely.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import type { BlockMessage, StreamFormat } from "../host-sim/server/aws-streams";
import { encodeCbor, type CborValue } from "../host-sim/server/cbor";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import type { DeviceOutcome, EngineName } from "../host-sim/device";
import { defaultStreamOptions } from "../src/transport/aws-stream";
import { TestClient, topicMatches } from "./support/mqtt-client";
import { FakeClock } from "./support/fake-clock";
import { JobsClient, defaultJobsOptions, type JobExecution } from "../src/transport/aws-jobs";
import type { MqttHandler } from "../src/platform/ports";
import { assertNewFirmware, assertOldFirmware, run, seeded, tempDir } from "./support/sim";

const blockSize = 4096;
/** Re-requests after 200 ms of silence: a stream that never answers fails in about 8 × 200 ms of real time. */
const quick = { blockTimeoutMs: 200, statusRetryMs: 300, reconnectBaseMs: 100 };
/** 16 full blocks and a short last one of 1008 bytes, so "the right length" differs between blocks. */
const image = makeAppImage({ size: 16 * blockSize + 1008, version: "2.0.0" });
const blockCount = Math.ceil(image.length / blockSize);
let aws: AwsIot;
let things = 0;

test.before(async () => {
	aws = await startAwsIot({});
});
test.after(async () => {
	aws.faults.corruptBlocks = undefined;
	await aws.close();
});

type Run = { outcome: DeviceOutcome; logs: string[] };

async function device(thing: string, config: Record<string, unknown> = {}, engine: EngineName = "node"): Promise<Run> {
	const logs: string[] = [];
	const outcome = await run({
		dir: tempDir("board"), engine, mqtt: aws.url, thing, config: { ...quick, ...config },
		onEvent: (event) => { if (event.event === "log") logs.push(String(event.message)); },
	});
	return { outcome, logs };
}

/** The job's execution and its accepted terminal updates: exactly one is what the service should hold. */
function ended(thing: string, jobId: string) {
	const execution = aws.executions(thing).find((e) => e.jobId === jobId)!;
	const terminal = execution.updates.filter((u) => u.outcome === "accepted" && ["SUCCEEDED", "FAILED", "REJECTED"].includes(String(u.status)));
	return { execution, terminal };
}

function assertFailedJob(thing: string, jobId: string, outcome: DeviceOutcome, result: number, what: string): void {
	assertOldFirmware(outcome, result, what);
	const { execution, terminal } = ended(thing, jobId);
	assert.is(execution.status, "FAILED", what);
	assert.is(terminal.length, 1, what);
	assert.is(execution.statusDetails.result, String(result), what);
}

/** A data message as the service would encode it; `p` as bytes becomes base64 in JSON, text stays as given. */
function data(format: StreamFormat, body: { [key: string]: CborValue }): Uint8Array {
	if (format === "cbor") return encodeCbor(body);
	const json = Object.fromEntries(Object.entries(body).map(([key, value]) => [key, value instanceof Uint8Array ? Buffer.from(value).toString("base64") : value]));
	return Buffer.from(JSON.stringify(json));
}

/** Same length, every byte different. */
function wrongBytes(bytes: Uint8Array): Uint8Array {
	return bytes.map((byte) => byte ^ 0xa5);
}

/** A block message with the right shape and the wrong content. */
function impostor(block: BlockMessage): Uint8Array {
	const p = wrongBytes(block.bytes);
	return data(block.format, { f: block.fileId, l: p.length, i: block.index, p });
}

type Hostile = { name: string; formats: StreamFormat[]; messages: (block: BlockMessage) => Uint8Array[] };

const both: StreamFormat[] = ["json", "cbor"];
const random = seeded(29);
const noise = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
/** A hostile copy of the block's message with some fields changed; its bytes are always wrong ones. */
const altered = (block: BlockMessage, fields: { [key: string]: CborValue }) => {
	const p = wrongBytes(block.bytes);
	return data(block.format, { f: block.fileId, l: p.length, i: block.index, p, ...fields });
};
const base64Of = (block: BlockMessage) => Buffer.from(wrongBytes(block.bytes)).toString("base64");

const badlyShaped: Hostile[] = [
	{ name: "another file id", formats: both, messages: (b) => [altered(b, { f: b.fileId + 1 }), altered(b, { f: 256 }), altered(b, { f: -1 })] },
	{ name: "a file id as text", formats: both, messages: (b) => [altered(b, { f: String(b.fileId) })] },
	{ name: "an index past the end", formats: both, messages: (b) => [altered(b, { i: blockCount }), altered(b, { i: blockCount + b.index }), altered(b, { i: Number.MAX_SAFE_INTEGER })] },
	{ name: "a negative index", formats: both, messages: (b) => [altered(b, { i: -1 }), altered(b, { i: -1 - b.index })] },
	{ name: "a fractional index", formats: both, messages: (b) => [altered(b, { i: b.index + 0.5 }), altered(b, { i: b.index - 0.25 })] },
	{ name: "an index as text or missing", formats: both, messages: (b) => [altered(b, { i: String(b.index) }), altered(b, { i: null }), data(b.format, { f: b.fileId, l: b.bytes.length, p: wrongBytes(b.bytes) })] },
	{ name: "a payload of the wrong length", formats: both, messages: (b) => {
		const wrong = wrongBytes(b.bytes);
		const longer = new Uint8Array(wrong.length + 1);
		longer.set(wrong);
		return [
			altered(b, { p: wrong.subarray(0, wrong.length - 1) }), altered(b, { p: longer }), altered(b, { p: new Uint8Array(0) }),
			altered(b, { p: noise(2 * blockSize), l: 2 * blockSize }),
			// The length of every other block, at the short last block's index.
			...(b.bytes.length < blockSize ? [altered(b, { p: noise(blockSize), l: blockSize })] : []),
		];
	} },
	{ name: "a payload of the wrong type", formats: both, messages: (b) => [altered(b, { p: null }), altered(b, { p: 1234 }), altered(b, { p: [1, 2, 3] }), data(b.format, { f: b.fileId, l: b.bytes.length, i: b.index })] },
	{ name: "invalid base64", formats: ["json"], messages: (b) => {
		const text = base64Of(b);
		return [
			altered(b, { p: `${text.slice(0, 100)}!${text.slice(101)}` }), // a character outside the alphabet
			altered(b, { p: text.replace(/(.{76})/g, "$1\n") }), // MIME line breaks
			altered(b, { p: `${text.slice(0, 8)}=${text.slice(9)}` }), // padding in the middle
			altered(b, { p: `${text}A` }), // a length no base64 text has
			altered(b, { p: Buffer.from(wrongBytes(b.bytes)).toString("base64url") }),
			altered(b, { p: text.replace(/A/g, "\u00c4") }),
		];
	} },
	{ name: "malformed JSON", formats: ["json"], messages: (b) => [
		b.message.subarray(0, b.message.length >> 1), b.message.subarray(0, b.message.length - 1),
		Buffer.from("null"), Buffer.from("[]"), Buffer.from(`"${base64Of(b)}"`), Buffer.from("{}"), new Uint8Array(0),
		Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), b.message]), noise(300),
		Buffer.from(`${"[".repeat(5000)}${"]".repeat(5000)}`),
		Buffer.from(`{"f":${b.fileId},"i":${b.index},"i":${blockCount},"p":"${base64Of(b)}"}`), // the last "i" wins in JSON.parse
	] },
	{ name: "truncated or garbage CBOR", formats: ["cbor"], messages: (b) => {
		const duplicateKey = Buffer.concat([impostor(b), encodeCbor("i"), encodeCbor(b.index)]);
		duplicateKey[0] = 0xa5; // five pairs, "i" twice
		return [
			b.message.subarray(0, b.message.length - 1), b.message.subarray(0, 20), new Uint8Array(0), noise(300),
			Buffer.concat([b.message, Buffer.from([0x00])]), // trailing bytes
			encodeCbor([b.fileId, b.bytes.length, b.index, wrongBytes(b.bytes)]), // an array, not a map
			Buffer.from([0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // a map of 2^64 - 1 pairs
			Buffer.from([0xbf, 0x61, 0x69, 0x00]), // an indefinite map that never ends
			Buffer.concat([Buffer.from([0xd8, 0x18]), impostor(b)]), // a tag around the message
			Buffer.from(`${"\x81".repeat(1000)}\x00`, "latin1"), // arrays a thousand deep
			duplicateKey,
			encodeCbor({ f: b.fileId, l: b.bytes.length, i: b.index, p: base64Of(b) }), // p as JSON would send it
		];
	} },
];

for (const { name, formats, messages } of badlyShaped) {
	for (const format of formats) {
		test(`${format}: blocks with ${name} are ignored; the update succeeds with the exact image`, async () => {
			const thing = `shape-${format}-${++things}`;
			const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: format });
			let injected = 0;
			aws.faults.corruptBlocks = (block) => {
				if (!topicMatches(`$aws/things/${thing}/streams/+/data/+`, block.topic)) return undefined;
				const hostile = messages(block);
				injected += hostile.length;
				return [...hostile, block.message];
			};
			try {
				const { outcome } = await device(thing, { streamFormat: format });
				assertNewFirmware(outcome, sha256Hex(image), "2.0.0", name);
				const { execution, terminal } = ended(thing, job.jobId);
				assert.is(execution.status, "SUCCEEDED");
				assert.is(terminal.length, 1);
				// The hostile messages did reach the device: it read past every one of them.
				assert.ok(injected >= blockCount, `${injected} hostile messages`);
				assert.ok(outcome.blocksFetched >= blockCount + injected, `${outcome.blocksFetched} messages delivered, ${injected} hostile`);
			}
			finally {
				aws.faults.corruptBlocks = undefined;
			}
		});
	}
}

/** Runs one update while `hostile` rewrites the blocks of `thing`'s stream, once per block index. */
async function withBlocks(thing: string, format: StreamFormat, hostile: (block: BlockMessage) => Uint8Array[] | undefined, engine: EngineName = "node"): Promise<Run> {
	const seen = new Set<number>();
	aws.faults.corruptBlocks = (block) => {
		if (!topicMatches(`$aws/things/${thing}/streams/+/data/+`, block.topic) || seen.has(block.index)) return undefined;
		seen.add(block.index);
		return hostile(block);
	};
	try {
		return await device(thing, { streamFormat: format }, engine);
	}
	finally {
		aws.faults.corruptBlocks = undefined;
	}
}

for (const format of both) {
	for (const [where, index] of [["a middle block", 5], ["the short last block", blockCount - 1]] as const) {
		test(`${format}: ${where} with the wrong bytes, first, is kept: FAILED 5, the old firmware running`, async () => {
			const thing = `impostor-${format}-${++things}`;
			const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: format });
			let sent = false;
			const { outcome } = await withBlocks(thing, format, (block) => {
				if (block.index !== index) return undefined;
				sent = true;
				return [impostor(block), block.message];
			});
			assert.ok(sent, "the impostor went out");
			assertFailedJob(thing, job.jobId, outcome, 5, `${where}, ${format}`);
		});
	}

	test(`${format}: a block with the wrong bytes after the right one is ignored; the update succeeds`, async () => {
		const thing = `late-impostor-${format}-${++things}`;
		const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: format });
		const { outcome } = await withBlocks(thing, format, (block) => [block.message, impostor(block)]);
		assertNewFirmware(outcome, sha256Hex(image), "2.0.0", format);
		assert.is(ended(thing, job.jobId).execution.status, "SUCCEEDED");
		// Every impostor but the last one reached the device while it was still downloading.
		assert.ok(outcome.blocksFetched >= 2 * blockCount - 1, `${outcome.blocksFetched} messages delivered`);
	});
}

test("xs: the hostile shapes are ignored by the XS engine too (json and cbor), and an impostor still ends FAILED 5", async () => {
	for (const format of both) {
		const thing = `xs-shape-${format}-${++things}`;
		const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: format });
		// XS reads a message in milliseconds, not microseconds: every hostile shape, before three of the blocks.
		let injected = 0;
		const { outcome } = await withBlocks(thing, format, (block) => {
			if (![0, 8, blockCount - 1].includes(block.index)) return undefined;
			const hostile = badlyShaped.filter((h) => h.formats.includes(format)).flatMap((h) => h.messages(block));
			injected += hostile.length;
			return [...hostile, block.message];
		}, "xs");
		assertNewFirmware(outcome, sha256Hex(image), "2.0.0", `xs ${format}`);
		assert.is(ended(thing, job.jobId).execution.status, "SUCCEEDED");
		assert.ok(outcome.blocksFetched >= blockCount + injected, `${outcome.blocksFetched} messages delivered, ${injected} hostile`);

		const victim = `xs-impostor-${format}-${++things}`;
		const failing = aws.createJob(victim, { image, form: "fota", version: "2.0.0", streamFormat: format });
		const impostored = await withBlocks(victim, format, (block) => block.index === 3 ? [impostor(block), block.message] : undefined, "xs");
		assertFailedJob(victim, failing.jobId, impostored.outcome, 5, `xs impostor ${format}`);
	}
});

test("a stream deleted before the device asks rejects every request: FAILED 7, the old firmware running", async () => {
	const thing = `no-stream-${++things}`;
	const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	aws.streams.streams.delete(job.streamId);
	const rejected = aws.stats.rejected;
	const { outcome, logs } = await device(thing);
	assertFailedJob(thing, job.jobId, outcome, 7, "no stream");
	assert.ok(aws.stats.rejected > rejected);
	assert.ok(logs.some((line) => line.includes("rejected: ResourceNotFound")), logs.join("\n"));
	assert.is(outcome.blocksFetched, 0);
});

test("a stream without the job's file rejects the request: FAILED 7 (cbor)", async () => {
	const thing = `no-file-${++things}`;
	const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0", streamFormat: "cbor" });
	aws.streams.put(job.streamId, new Map([[job.fileId + 1, image]]));
	const { outcome } = await device(thing, { streamFormat: "cbor" });
	assertFailedJob(thing, job.jobId, outcome, 7, "no file");
	assert.is(outcome.blocksFetched, 0);
});

test("a stream deleted halfway through refuses the re-request: FAILED 7, the old firmware running", async () => {
	const thing = `gone-${++things}`;
	const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	let delivered = 0;
	aws.faults.corruptBlocks = (block) => {
		if (!block.topic.startsWith(`$aws/things/${thing}/`)) return undefined;
		if (block.index < 8) return delivered++, undefined;
		aws.streams.streams.delete(job.streamId); // the rest never comes, and asking again is refused
		return [];
	};
	try {
		const { outcome } = await device(thing);
		assertFailedJob(thing, job.jobId, outcome, 7, "deleted halfway");
		assert.is(delivered, 8);
		assert.is(outcome.blocksFetched, 8);
	}
	finally {
		aws.faults.corruptBlocks = undefined;
	}
});

test(`a stream that never answers: FAILED 4 after ${defaultStreamOptions.maxSilentRequests} unanswered requests, the old firmware running`, async () => {
	const thing = `silent-${++things}`;
	const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	const requests = aws.stats.requests, dropped = aws.stats.dropped;
	aws.faults.topics = new RegExp(`^\\$aws/things/${thing}/streams/[^/]+/data/`);
	aws.faults.dropRate = 1;
	try {
		const started = Date.now();
		const { outcome, logs } = await device(thing);
		assertFailedJob(thing, job.jobId, outcome, 4, "silent stream");
		assert.is(outcome.blocksFetched, 0);
		// maxSilentRequests is not a config setting: the default applies. Each request is one window of blocks.
		assert.is(aws.stats.requests - requests, defaultStreamOptions.maxSilentRequests);
		assert.is(aws.stats.dropped - dropped, defaultStreamOptions.maxSilentRequests * blockCount);
		assert.ok(logs.some((line) => line.includes(`no blocks after ${defaultStreamOptions.maxSilentRequests} requests`)), logs.join("\n"));
		// blockTimeoutMs from config is honoured: eight 200 ms silences, not eight 5 s ones (the board's clock, which
		// started at the host's time: a loaded host makes it no later).
		assert.ok(outcome.wallTime - started < 6000, `${outcome.wallTime - started} ms`);
	}
	finally {
		aws.faults.dropRate = 0;
		aws.faults.topics = undefined;
	}
});

// Thing names go into every topic the agent uses: one that is not an AWS thing name must keep it off MQTT.
const hostileThings: [string, string][] = [
	["a/b", "a level separator"],
	["a#", "a multi-level wildcard"],
	["#", "a bare multi-level wildcard"],
	["+", "a single-level wildcard"],
	["a/+/jobs", "a wildcard level"],
	["", "an empty name"],
	["x".repeat(129), "129 characters"],
	["a b", "a space"],
	["a\u0000b", "a NUL"],
	["caf\u00e9", "a non-ASCII letter"],
	["$aws", "a dollar sign"],
];

let watcher: TestClient | undefined;

async function watch(): Promise<TestClient> {
	if (!watcher) {
		watcher = await TestClient.connect(aws.url);
		// "#" does not match topics that start with "$": AWS's own topics need their own filter.
		await watcher.subscribe("#", "$aws/#");
	}
	return watcher;
}
test.after(async () => {
	await watcher?.close();
});

for (const [thing, what] of hostileThings) {
	test(`a thing name with ${what} (${JSON.stringify(thing.length > 20 ? `${thing.slice(0, 8)}…` : thing)}) keeps the agent off MQTT: idle, old firmware, logged`, async () => {
		// Another thing's job that a wildcard name would reach.
		const victim = `victim-${++things}`;
		const job = aws.createJob(victim, { image, form: "fota", version: "2.0.0" });
		await aws.settled();
		const client = await watch();
		await client.drain("#", 100, 100);
		await client.drain("$aws/#", 50, 50);
		const before = { seen: client.messages.length, requests: aws.stats.requests, describes: aws.stats.describes, updates: aws.jobs.updateLog.length, published: aws.stats.published };
		const { outcome, logs } = await device(thing);
		await new Promise((done) => setTimeout(done, 100)); // anything the device sent would be back by now
		await aws.settled();
		assertOldFirmware(outcome, 0, what);
		assert.is(outcome.mqttBytesReceived, 0, "nothing reached the device over MQTT");
		assert.ok(logs.some((line) => line.includes("aws jobs off")), logs.join("\n"));
		assert.equal(client.messages.slice(before.seen).map((m) => m.topic), [], "nothing was published while the device ran");
		assert.is(aws.stats.requests, before.requests);
		assert.is(aws.stats.describes, before.describes);
		assert.is(aws.jobs.updateLog.length, before.updates);
		assert.is(aws.stats.published, before.published, "the service answered nothing");
		const execution = ended(victim, job.jobId).execution;
		assert.is(execution.status, "QUEUED");
		assert.is(execution.updates.length, 0);
	});
}

test("the longest valid thing name (128 characters, with ':', '_' and '-') follows its job; the watcher sees it", async () => {
	const thing = `Thing:_-${++things}-`.padEnd(128, "z");
	assert.is(thing.length, 128);
	const job = aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	await aws.settled();
	const client = await watch();
	const seen = client.messages.length;
	const { outcome } = await device(thing);
	assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "128 characters");
	assert.is(ended(thing, job.jobId).execution.status, "SUCCEEDED");
	const topics = client.messages.slice(seen).map((m) => m.topic);
	assert.ok(topics.includes(`$aws/things/${thing}/jobs/start-next`) || topics.includes(`$aws/things/${thing}/jobs/$next/get`), topics.slice(0, 5).join("\n"));
	assert.ok(topics.every((topic) => topic.startsWith(`$aws/things/${thing}/`)), "every topic is under the thing's own");
});

test("a lost $next/get answer is asked again every retryMs, 5 times at most; an answer stops the asking", () => {
	const clock = new FakeClock(Date.parse("2026-06-10T10:00:00Z"));
	const published: string[] = [];
	let handler: MqttHandler | undefined;
	const connector = {
		connect(_options: unknown, given: MqttHandler) {
			handler = given;
			return { publish: (topic: string) => void published.push(topic), subscribe() {}, close() {} };
		},
	};
	const nexts: (JobExecution | undefined)[] = [];
	const client = new JobsClient(connector, clock, () => {}, { ...defaultJobsOptions, host: "h", port: 1, thing: "t", random: () => 0.5, tokenPrefix: "p" },
		{ connected() {}, next: (execution) => void nexts.push(execution), statusHeld() {}, message: () => false, failed() {}, withdrawn() {} });
	const asked = () => published.filter((topic) => topic === "$aws/things/t/jobs/$next/get").length;
	client.start();
	handler!.ready();
	assert.is(asked(), 1);
	clock.advance(defaultJobsOptions.retryMs);
	assert.is(asked(), 2, "no answer: asked again");
	clock.advance(10 * defaultJobsOptions.retryMs);
	assert.is(asked(), 5, "then notify-next is relied on");
	client.requestNext();
	clock.advance(defaultJobsOptions.retryMs - 1);
	handler!.message("$aws/things/t/jobs/$next/get/accepted", new TextEncoder().encode("{}").buffer);
	clock.advance(10 * defaultJobsOptions.retryMs);
	assert.is(asked(), 6, "answered: asked once");
	assert.equal(nexts, [undefined]);
});

/** A jobs client on a fake connection: what it publishes and what it tells its listener. */
function jobsClientOnFakeConnection() {
	const clock = new FakeClock(Date.parse("2026-06-10T10:00:00Z"));
	const published: { topic: string; payload: string }[] = [];
	const handlers: MqttHandler[] = [];
	const connector = {
		connect(_options: unknown, given: MqttHandler) {
			handlers.push(given);
			return { publish: (topic: string, payload: string | ArrayBuffer) => void published.push({ topic, payload: String(payload) }), subscribe() {}, close() {} };
		},
	};
	const told: string[] = [];
	const client = new JobsClient(connector, clock, () => {}, { ...defaultJobsOptions, host: "h", port: 1, thing: "t", random: () => 0.5, tokenPrefix: "p" }, {
		connected() {}, next: (execution) => void told.push(`next ${execution?.jobId}`), statusHeld: (jobId, status) => void told.push(`held ${jobId} ${status}`),
		message: () => false, failed: (reason) => void told.push(`failed ${reason}`), withdrawn: (jobId) => void told.push(`withdrawn ${jobId}`),
	});
	const send = (topic: string, body: unknown) => handlers.at(-1)!.message(`$aws/things/t/jobs/${topic}`, new TextEncoder().encode(JSON.stringify(body)).buffer);
	return { clock, published, handlers, client, told, send };
}

test("job ids that are not AWS job ids reach no topic and no record: the execution is left queued", () => {
	const { handlers, client, told, send, published } = jobsClientOnFakeConnection();
	client.start();
	handlers[0].ready();
	for (const jobId of ["a/b", "#", "+", "a b", "x".repeat(65), ""]) send("notify-next", { execution: { jobId, versionNumber: 1, status: "QUEUED" } });
	assert.equal(told, []);
	assert.ok(published.every((message) => !/jobs\/(a\/b|#|\+|a b|x{65})\//.test(message.topic)));
	send("notify-next", { execution: { jobId: "ok_job-1", versionNumber: 1, status: "QUEUED" } });
	assert.equal(told, ["next ok_job-1"]);
});

test("a progress status refused as no longer pending withdraws the job, even when an older status is refused", () => {
	const { handlers, client, told, send, published } = jobsClientOnFakeConnection();
	client.start();
	handlers[0].ready();
	client.updateStatus("j1", "IN_PROGRESS", { receive: "1/4" });
	const older = JSON.parse(published.at(-1)!.payload).clientToken;
	client.updateStatus("j1", "IN_PROGRESS", { receive: "2/4" });
	send("j1/update/rejected", { clientToken: older, code: "InvalidStateTransition", executionState: { status: "CANCELED" } });
	assert.equal(told, ["withdrawn j1"]);
	// A terminal status refused because the job is already terminal is held, as before.
	client.updateStatus("j2", "SUCCEEDED", {});
	send("j2/update/rejected", { clientToken: JSON.parse(published.at(-1)!.payload).clientToken, code: "InvalidStateTransition", executionState: { status: "SUCCEEDED" } });
	assert.equal(told, ["withdrawn j1", "held j2 SUCCEEDED"]);
});

test("a secure connection refused for a tls: reason three times in a row stops the client for good", () => {
	const { handlers, client, told, clock } = jobsClientOnFakeConnection();
	client.start();
	handlers[0].closed("tls: client certificate refused");
	clock.advance(defaultJobsOptions.reconnectMaxMs);
	handlers[1].closed("connection closed by peer");
	clock.advance(defaultJobsOptions.reconnectMaxMs);
	handlers[2].closed("tls: client certificate refused");
	clock.advance(defaultJobsOptions.reconnectMaxMs);
	handlers[3].closed("tls: client certificate refused");
	clock.advance(defaultJobsOptions.reconnectMaxMs);
	assert.equal(told, [], "a plain failure between resets the count");
	handlers[4].closed("tls: client certificate refused");
	assert.equal(told, ["failed tls: client certificate refused"]);
	clock.advance(10 * defaultJobsOptions.reconnectMaxMs);
	assert.is(handlers.length, 5, "no reconnection after that");
});

test.run();
