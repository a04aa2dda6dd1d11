// The AWS IoT Jobs + MQTT file streams emulator, spoken to as a device would: the same conversation against
// the in-process aedes broker and against Debian's mosquitto (the emulator then joins it as a client).

import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { startAwsIot, requestJob, type AwsIot } from "../host-sim/server/aws-iot";
import { startMosquitto, type MosquittoServer } from "../host-sim/server/mosquitto";
import { decodeCbor, encodeCbor } from "../host-sim/server/cbor";
import { makeAppImage } from "../host-sim/image";
import { TestClient } from "./support/mqtt-client";

type Context = { iot: AwsIot; client: TestClient; things: number };

let thingCount = 0;

/** A fresh thing per test, its whole topic tree subscribed. */
async function thing(context: Context): Promise<{ name: string; jobs: string; streams: string }> {
	const name = `thing-${++thingCount}`;
	await context.client.subscribe(`$aws/things/${name}/#`);
	return { name, jobs: `$aws/things/${name}/jobs`, streams: `$aws/things/${name}/streams` };
}

function bitmap(blocks: number[], offset: number): Uint8Array {
	const bytes = new Uint8Array(Math.ceil((Math.max(...blocks) - offset + 1) / 8));
	for (const block of blocks) bytes[(block - offset) >> 3] |= 1 << ((block - offset) & 7);
	return bytes;
}

function cbor(payload: Buffer): any {
	return decodeCbor(payload);
}

function conversation(name: string, start: () => Promise<{ iot: AwsIot; stop(): Promise<void> }>) {
	const test = suite<Context & { stop(): Promise<void> }>(name);

	test.before(async (context) => {
		const { iot, stop } = await start();
		context.iot = iot;
		context.stop = stop;
		context.client = await TestClient.connect(iot.url);
	});
	test.after(async (context) => {
		await context.client.close();
		await context.stop();
	});

	test("a new job is announced on notify-next and notify, and $next/get returns it", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		const image = makeAppImage({ size: 4096, version: "2.0.0" });
		const job = iot.createJob(t.name, { image, form: "fota", jobId: "fw-1" });
		const notice = await client.json(`${t.jobs}/notify-next`);
		assert.is(notice.execution.jobId, "fw-1");
		assert.is(notice.execution.status, "QUEUED");
		assert.is(notice.execution.versionNumber, 1);
		assert.is(notice.execution.executionNumber, 1);
		assert.ok(Number.isInteger(notice.timestamp) && notice.timestamp < 1e11, "seconds since the epoch");
		assert.equal(notice.execution.jobDocument, {
			command: "fota", streamId: job.streamId, fileId: 0, fileSize: image.length, imageVer: "2.0.0",
			md5sum: createHash("md5").update(image).digest("hex"),
		});
		const list = await client.json(`${t.jobs}/notify`);
		assert.equal(list.jobs.QUEUED.map((summary: any) => summary.jobId), ["fw-1"]);

		client.publish(`${t.jobs}/$next/get`, { clientToken: "next-1" });
		const answer = await client.json(`${t.jobs}/$next/get/accepted`);
		assert.is(answer.clientToken, "next-1");
		assert.is(answer.execution.jobId, "fw-1");
		assert.is(answer.execution.thingName, t.name);
		for (const field of ["queuedAt", "lastUpdatedAt", "versionNumber", "executionNumber"]) assert.type(answer.execution[field], "number", field);
		assert.equal(answer.execution.jobDocument, job.document);
	});

	test("$next/get without a pending job answers without an execution", async (context) => {
		const t = await thing(context);
		context.client.publish(`${t.jobs}/$next/get`, {});
		const answer = await context.client.json(`${t.jobs}/$next/get/accepted`);
		assert.not.ok("execution" in answer);
		assert.type(answer.timestamp, "number");
	});

	test("an update with a stale expectedVersion is rejected with the current state", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "afr_ota", jobId: "fw-2" });
		client.publish(`${t.jobs}/fw-2/update`, { status: "IN_PROGRESS", expectedVersion: 1, clientToken: "a", includeJobExecutionState: true });
		const accepted = await client.json(`${t.jobs}/fw-2/update/accepted`);
		assert.is(accepted.clientToken, "a");
		assert.equal(accepted.executionState, { status: "IN_PROGRESS", statusDetails: {}, versionNumber: 2 });
		client.publish(`${t.jobs}/fw-2/update`, { status: "IN_PROGRESS", statusDetails: { step: "download" }, expectedVersion: 1, clientToken: "b" });
		const rejected = await client.json(`${t.jobs}/fw-2/update/rejected`);
		assert.is(rejected.code, "VersionMismatch");
		assert.is(rejected.clientToken, "b");
		assert.equal(rejected.executionState, { status: "IN_PROGRESS", statusDetails: {}, versionNumber: 2 });
		client.publish(`${t.jobs}/fw-2/update`, { status: "IN_PROGRESS", statusDetails: { step: "download" }, expectedVersion: 2, clientToken: "c" });
		const plain = await client.json(`${t.jobs}/fw-2/update/accepted`);
		assert.not.ok("executionState" in plain, "executionState only when asked for");
		assert.equal(iot.executions(t.name)[0].statusDetails, { step: "download" });
		assert.is(iot.executions(t.name)[0].versionNumber, 3);
	});

	test("terminal states are final, and the next job takes over", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "fota", jobId: "fw-3" });
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "fota", jobId: "fw-4" });
		assert.is((await client.json(`${t.jobs}/notify-next`)).execution.jobId, "fw-3");
		client.publish(`${t.jobs}/fw-3/update`, { status: "SUCCEEDED", statusDetails: { reason: "ok" }, clientToken: "s" });
		await client.json(`${t.jobs}/fw-3/update/accepted`);
		assert.is((await client.json(`${t.jobs}/notify-next`)).execution.jobId, "fw-4");
		for (const status of ["FAILED", "SUCCEEDED", "IN_PROGRESS"]) {
			client.publish(`${t.jobs}/fw-3/update`, { status, clientToken: status });
			const rejected = await client.json(`${t.jobs}/fw-3/update/rejected`);
			assert.is(rejected.code, "InvalidStateTransition", status);
			assert.is(rejected.executionState.status, "SUCCEEDED");
		}
		const log = iot.executions(t.name)[0].updates;
		assert.equal(log.filter((update) => update.outcome === "accepted").map((update) => update.status), ["SUCCEEDED"]);
		assert.is(log.length, 4);
		client.publish(`${t.jobs}/fw-3/get`, { clientToken: "g" });
		assert.is((await client.json(`${t.jobs}/fw-3/get/rejected`)).code, "TerminalStateReached");
		client.publish(`${t.jobs}/fw-4/update`, { status: "REJECTED", clientToken: "r" });
		await client.json(`${t.jobs}/fw-4/update/accepted`);
		assert.not.ok("execution" in await client.json(`${t.jobs}/notify-next`), "nothing left to do");
	});

	test("malformed updates are refused", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "fota", jobId: "fw-5" });
		const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, "v"]));
		const cases: [unknown, string][] = [
			[{ status: "QUEUED" }, "InvalidRequest"],
			[{}, "InvalidRequest"],
			[{ status: "IN_PROGRESS", statusDetails: eleven }, "InvalidRequest"],
			[{ status: "IN_PROGRESS", statusDetails: { nested: { a: "b" } } }, "InvalidRequest"],
			[{ status: "IN_PROGRESS", statusDetails: { "bad key": "v" } }, "InvalidRequest"],
		];
		for (const [body, code] of cases) {
			client.publish(`${t.jobs}/fw-5/update`, body as object);
			assert.is((await client.json(`${t.jobs}/fw-5/update/rejected`)).code, code, JSON.stringify(body));
		}
		client.publish(`${t.jobs}/fw-5/update`, "{not json");
		assert.is((await client.json(`${t.jobs}/fw-5/update/rejected`)).code, "InvalidJson");
		client.publish(`${t.jobs}/nope/update`, { status: "SUCCEEDED" });
		assert.is((await client.json(`${t.jobs}/nope/update/rejected`)).code, "ResourceNotFound");
		client.publish(`${t.jobs}/fw-5/update`, { status: "IN_PROGRESS", statusDetails: Object.fromEntries(Object.entries(eleven).slice(1)) });
		await client.json(`${t.jobs}/fw-5/update/accepted`);
		assert.is(iot.executions(t.name)[0].versionNumber, 2, "only the valid update counted");
	});

	test("start-next moves the next job to IN_PROGRESS, and jobs/get lists the pending ones", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "fota", jobId: "fw-6" });
		iot.createJob(t.name, { image: new Uint8Array(1000), form: "fota", jobId: "fw-7" });
		client.publish(`${t.jobs}/start-next`, { statusDetails: { step: "start" } });
		const started = await client.json(`${t.jobs}/start-next/accepted`);
		assert.is(started.execution.jobId, "fw-6");
		assert.is(started.execution.status, "IN_PROGRESS");
		assert.is(started.execution.versionNumber, 2);
		client.publish(`${t.jobs}/get`, { clientToken: "list" });
		const list = await client.json(`${t.jobs}/get/accepted`);
		assert.equal(list.inProgressJobs.map((job: any) => job.jobId), ["fw-6"]);
		assert.equal(list.queuedJobs.map((job: any) => job.jobId), ["fw-7"]);
	});

	for (const format of ["json", "cbor"] as const) {
		const encodeRequest = (request: Record<string, unknown>) => format === "json" ? JSON.stringify(request) : encodeCbor(request as any);
		const decodeAnswer = (payload: Buffer) => format === "json" ? JSON.parse(payload.toString("utf8")) : cbor(payload);
		const blockBytes = (block: any) => format === "json" ? new Uint8Array(Buffer.from(block.p, "base64")) : block.p as Uint8Array;

		test(`${format}: blocks carry exactly the image's bytes, by count and by bitmap`, async (context) => {
			const { iot, client } = context;
			const t = await thing(context);
			const image = makeAppImage({ size: 10_000, version: "3.0.0" });
			const job = iot.createJob(t.name, { image, form: "afr_ota" });
			const base = `${t.streams}/${job.streamId}`;
			const blockSize = 1024, lastBlock = Math.ceil(image.length / blockSize) - 1;
			const slice = (i: number) => image.subarray(i * blockSize, Math.min(image.length, (i + 1) * blockSize));

			client.publish(`${base}/get/${format}`, encodeRequest({ c: "n", f: 0, l: blockSize, o: 7, n: 5 }));
			const counted = (await client.drain(`${base}/data/${format}`)).map((message) => decodeAnswer(message.payload));
			const expected = Array.from({ length: Math.min(5, lastBlock - 6) }, (_, k) => 7 + k);
			assert.equal(counted.map((block) => block.i), expected);
			assert.ok(expected.includes(lastBlock), "the short last block is among them");
			for (const block of counted) {
				assert.is(block.c, "n");
				assert.is(block.f, 0);
				assert.is(block.l, slice(block.i).length);
				assert.equal(blockBytes(block), slice(block.i), `block ${block.i}`);
			}

			const wanted = [2, 3, 6, lastBlock];
			const b = bitmap(wanted, 1);
			const request: Record<string, unknown> = { f: 0, l: blockSize, o: 1, b: format === "json" ? Buffer.from(b).toString("hex") : b };
			client.publish(`${base}/get/${format}`, encodeRequest(request));
			const picked = (await client.drain(`${base}/data/${format}`)).map((message) => decodeAnswer(message.payload));
			assert.equal(picked.map((block) => block.i), wanted);
			for (const block of picked) assert.equal(blockBytes(block), slice(block.i), `block ${block.i}`);
			assert.not.ok("c" in picked[0], "no token asked, none sent");

			// The documentation's own example spells the bitmap with 0x; n caps a bitmap request.
			if (format === "json") {
				client.publish(`${base}/get/json`, JSON.stringify({ f: 0, l: 256, o: 20, n: 2, b: "0x130080" }));
				assert.equal((await client.drain(`${base}/data/json`)).map((message) => JSON.parse(message.payload.toString()).i), [20, 21]);
			}
		});

		test(`${format}: a whole image reassembles from blocks`, async (context) => {
			const { iot, client } = context;
			const t = await thing(context);
			const image = makeAppImage({ size: 200_000, version: "3.1.0" });
			const job = iot.createJob(t.name, { image, form: "fota" });
			const base = `${t.streams}/${job.streamId}`;
			const blockSize = 4096, blocks = Math.ceil(image.length / blockSize);
			const copy = new Uint8Array(image.length);
			for (let o = 0; o < blocks; o += 32) {
				client.publish(`${base}/get/${format}`, encodeRequest({ f: 0, l: blockSize, o, n: 32 }));
				for (const message of await client.drain(`${base}/data/${format}`)) {
					const block = decodeAnswer(message.payload);
					copy.set(blockBytes(block), block.i * blockSize);
				}
			}
			assert.equal(createHash("sha256").update(copy).digest("hex"), createHash("sha256").update(image).digest("hex"));
		});

		test(`${format}: bad requests are rejected with the documented codes`, async (context) => {
			const { iot, client } = context;
			iot.streams.errorFields = "short";
			const t = await thing(context);
			const job = iot.createJob(t.name, { image: new Uint8Array(5000).fill(9), form: "fota" });
			const base = `${t.streams}/${job.streamId}`;
			const cases: [Record<string, unknown>, string][] = [
				[{ c: "l-small", f: 0, l: 255 }, "BlockSizeOutOfBounds"],
				[{ c: "l-big", f: 0, l: 131073 }, "BlockSizeOutOfBounds"],
				[{ c: "no-l", f: 0 }, "BlockSizeOutOfBounds"],
				[{ c: "no-f", l: 256 }, "InvalidRequest"],
				[{ c: "f-range", f: 256, l: 256 }, "InvalidRequest"],
				[{ c: "f-missing", f: 3, l: 256 }, "ResourceNotFound"],
				[{ c: "s", s: 2, f: 0, l: 256 }, "VersionMismatch"],
				[{ c: "o-range", f: 0, l: 256, o: 98305 }, "OffsetOutOfBounds"],
				[{ c: "o-past", f: 0, l: 256, o: 20 }, "InvalidRequest"],
				[{ c: "n-range", f: 0, l: 256, n: 98305 }, "BlockCountLimitExceeded"],
				[{ c: "b-big", f: 0, l: 256, b: format === "json" ? "00".repeat(12288) : new Uint8Array(12288) }, "BlockBitmapLimitExceeded"],
			];
			for (const [request, code] of cases) {
				client.publish(`${base}/get/${format}`, encodeRequest(request));
				const rejected = decodeAnswer((await client.next(`${base}/rejected/${format}`)).payload);
				assert.is(rejected.o, code, String(request.c));
				assert.is(rejected.c, request.c);
				assert.type(rejected.m, "string");
			}
			client.publish(`${base}/get/${format}`, format === "json" ? "{" : Uint8Array.of(0xa1));
			assert.is(decodeAnswer((await client.next(`${base}/rejected/${format}`)).payload).o, format === "json" ? "InvalidJson" : "InvalidCbor");
			client.publish(`${base}/get/${format}`, encodeRequest({ c: "x".repeat(65), f: 0, l: 256 }));
			const long = decodeAnswer((await client.next(`${base}/rejected/${format}`)).payload);
			assert.is(long.o, "InvalidRequest");
			assert.not.ok("c" in long, "an invalid token is not echoed");
			client.publish(`${t.streams}/no-such-stream/get/${format}`, encodeRequest({ f: 0, l: 256 }));
			assert.is(decodeAnswer((await client.next(`${t.streams}/no-such-stream/rejected/${format}`)).payload).o, "ResourceNotFound");

			iot.streams.errorFields = "long";
			client.publish(`${base}/get/${format}`, encodeRequest({ c: "old", f: 0, l: 1 }));
			const older = decodeAnswer((await client.next(`${base}/rejected/${format}`)).payload);
			assert.equal([older.code, older.clientToken], ["BlockSizeOutOfBounds", "old"]);
			iot.streams.errorFields = "short";
			assert.is((await client.drain(`${base}/data/${format}`, 100, 100)).length, 0, "no block for a refused request");
		});

		test(`${format}: one request yields at most 128 KB`, async (context) => {
			const { iot, client } = context;
			const t = await thing(context);
			const image = new Uint8Array(300_000).map((_, i) => i * 7);
			const job = iot.createJob(t.name, { image, form: "fota" });
			const base = `${t.streams}/${job.streamId}`;
			const before = iot.stats.blocksServed;
			client.publish(`${base}/get/${format}`, encodeRequest({ f: 0, l: 32768, o: 0, n: 8 }));
			const blocks = (await client.drain(`${base}/data/${format}`)).map((message) => decodeAnswer(message.payload));
			assert.equal(blocks.map((block) => block.i), [0, 1, 2, 3]);
			assert.is(iot.stats.blocksServed - before, 4);
			const all = new Uint8Array(100).fill(0xff);
			client.publish(`${base}/get/${format}`, encodeRequest({ f: 0, l: 256, o: 0, b: format === "json" ? Buffer.from(all).toString("hex") : all }));
			assert.is((await client.take(`${base}/data/${format}`, 512)).length, 512);
			assert.is((await client.drain(`${base}/data/${format}`, 200, 200)).length, 0, "a bitmap of 800 blocks still stops at 128 KB");
		});
	}

	test("describe/json lists the stream's files and version", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		const job = iot.createJob(t.name, { image: new Uint8Array(4321), form: "fota" });
		client.publish(`${t.streams}/${job.streamId}/describe/json`, { c: "d" });
		const description = await client.json(`${t.streams}/${job.streamId}/description/json`);
		assert.equal({ c: description.c, s: description.s, r: description.r }, { c: "d", s: 1, r: [{ f: 0, z: 4321 }] });
		iot.streams.put(job.streamId, new Map([[0, new Uint8Array(10)], [1, new Uint8Array(20)]]));
		client.publish(`${t.streams}/${job.streamId}/describe/cbor`, encodeCbor({}));
		const updated = cbor((await client.next(`${t.streams}/${job.streamId}/description/cbor`)).payload);
		assert.equal([updated.s, updated.r], [2, [{ f: 0, z: 10 }, { f: 1, z: 20 }]]);
	});

	test("afr_ota documents name the stream, the file and its signature", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		const job = iot.createJob(t.name, { image: new Uint8Array(777), form: "afr_ota", fileId: 3, signature: "MEUCIQ==", filePath: "/app.bin" });
		const notice = await client.json(`${t.jobs}/notify-next`);
		assert.equal(notice.execution.jobDocument, {
			afr_ota: {
				protocols: ["MQTT"], streamname: job.streamId,
				files: [{ filepath: "/app.bin", filesize: 777, fileid: 3, certfile: "ota-signer.crt", "sig-sha256-ecdsa": "MEUCIQ==" }],
			},
		});
		client.publish(`${t.streams}/${job.streamId}/get/json`, { f: 3, l: 512, n: 2 });
		assert.is((await client.drain(`${t.streams}/${job.streamId}/data/json`)).length, 2);
	});

	test("jobs can be created through the control topic", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		const image = makeAppImage({ size: 3000, version: "4.0.0" });
		const created = await requestJob(iot.url, { thing: t.name, form: "fota", image, jobId: "remote-1", streamFormat: "cbor" });
		assert.is(created.jobId, "remote-1");
		assert.is((created.document as any).streamFormat, "cbor");
		assert.is((await client.json(`${t.jobs}/notify-next`)).execution.jobId, "remote-1");
		try {
			await requestJob(iot.url, { thing: t.name, form: "fota", image, jobId: "remote-1" });
			assert.unreachable("a second pending remote-1");
		}
		catch (error) {
			assert.match((error as Error).message, /already pending/);
		}
	});

	test("faults drop and duplicate at their rates, the same way for the same seed", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		const image = new Uint8Array(512 * 256).map((_, i) => i);
		const job = iot.createJob(t.name, { image, form: "fota" });
		const base = `${t.streams}/${job.streamId}`;
		const run = async (faults: object) => {
			Object.assign(iot.faults, { dropRate: 0, duplicateRate: 0, reorder: 0, topics: undefined, ...faults });
			const before = { ...iot.stats };
			client.publish(`${base}/get/json`, { f: 0, l: 256, o: 0, n: 512 });
			const indices = (await client.drain(`${base}/data/json`)).map((message) => JSON.parse(message.payload.toString()).i as number);
			await iot.settled();
			return { indices, dropped: iot.stats.dropped - before.dropped, duplicated: iot.stats.duplicated - before.duplicated, served: iot.stats.blocksServed - before.blocksServed };
		};
		try {
			const dropped = await run({ dropRate: 0.25, seed: 7 });
			assert.is(dropped.served, 512);
			assert.is(dropped.indices.length, 512 - dropped.dropped);
			assert.ok(dropped.dropped > 90 && dropped.dropped < 170, `dropped ${dropped.dropped} of 512 at 25%`);
			assert.equal(dropped.indices, [...new Set(dropped.indices)].sort((a, b) => a - b), "the rest in order, once each");
			const again = await run({ dropRate: 0.25, seed: 8 });
			const same = await run({ dropRate: 0.25, seed: 7 });
			assert.equal(same.indices, dropped.indices, "same seed, same losses");
			assert.not.equal(again.indices, dropped.indices);

			const doubled = await run({ duplicateRate: 0.2, seed: 3 });
			assert.is(doubled.indices.length, 512 + doubled.duplicated);
			assert.ok(doubled.duplicated > 60 && doubled.duplicated < 150, `duplicated ${doubled.duplicated} of 512 at 20%`);
			assert.is(new Set(doubled.indices).size, 512);

			const shuffled = await run({ reorder: 0.3, seed: 5 });
			assert.is(shuffled.indices.length, 512);
			assert.not.equal(shuffled.indices, [...shuffled.indices].sort((a, b) => a - b), "some arrive out of order");
			assert.equal([...shuffled.indices].sort((a, b) => a - b), Array.from({ length: 512 }, (_, i) => i));

			const onlyData = await run({ dropRate: 1, topics: /\/data\// });
			assert.is(onlyData.indices.length, 0);
			client.publish(`${t.jobs}/$next/get`, { clientToken: "still-there" });
			assert.is((await client.json(`${t.jobs}/$next/get/accepted`)).clientToken, "still-there", "jobs topics spared");
		}
		finally {
			Object.assign(iot.faults, { dropRate: 0, duplicateRate: 0, reorder: 0, delayMs: 0, topics: undefined });
		}
	});

	test("delayMs holds every message back", async (context) => {
		const { iot, client } = context;
		const t = await thing(context);
		iot.faults.delayMs = 150;
		try {
			const started = Date.now();
			client.publish(`${t.jobs}/$next/get`, {});
			await client.json(`${t.jobs}/$next/get/accepted`);
			assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
		}
		finally {
			iot.faults.delayMs = 0;
		}
	});

	return test;
}

const aedes = conversation("aedes", async () => {
	const iot = await startAwsIot();
	return { iot, stop: () => iot.close() };
});

aedes("restartBroker drops every client and serves again on the same port", async (context) => {
	const { iot } = context;
	const device = await TestClient.connect(iot.url);
	await device.subscribe("$aws/things/restart-thing/jobs/#");
	await iot.restartBroker();
	await device.closed;
	context.client = await TestClient.connect(iot.url);
	const again = await TestClient.connect(iot.url);
	await again.subscribe("$aws/things/restart-thing/jobs/#");
	again.publish("$aws/things/restart-thing/jobs/$next/get", { clientToken: "after" });
	assert.is((await again.json("$aws/things/restart-thing/jobs/$next/get/accepted")).clientToken, "after");
	await again.close();
});

let mosquitto: MosquittoServer | undefined;
const viaMosquitto = conversation("mosquitto", async () => {
	mosquitto = await startMosquitto();
	const iot = await startAwsIot({ broker: { url: mosquitto.url } });
	return { iot, stop: async () => { await iot.close(); await mosquitto?.close(); } };
});

viaMosquitto("restartBroker needs aedes", async (context) => {
	try {
		await context.iot.restartBroker();
		assert.unreachable();
	}
	catch (error) {
		assert.match((error as Error).message, /aedes/);
	}
});

aedes.run();
viaMosquitto.run();
