// Hostile servers and jobs, round two: a raw HTTP server that sends what the agent must never echo or trust
// (a CR in an ETag or a Location, an overlong ETag, a 206 without its validator carrying another file's tail,
// an encoding nobody asked for, a Transfer-Encoding beside a wrong Content-Length, Retry-After), images
// without their SHA-256, and AWS jobs withdrawn while they download. Each case on both engines, with and
// without a power cut where a cut changes what the agent sees; every failure leaves the factory image running.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as net from "node:net";
import { createHash } from "node:crypto";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { assertNewFirmware, assertOldFirmware, publish, run, tempDir, traced, logged, type Traced } from "./support/sim";

const engines = ["node", "xs"] as const;
const size = 256 * 1024;
/** About 110 KiB into the download: past several checkpoints (as test/hostile-http.test.ts). */
const cutMidDownload = 120;
const image = makeAppImage({ size, version: "2.0.0" });
const other = makeAppImage({ size, version: "2.0.1" });

type Received = { head: string; path: string; headers: { [name: string]: string } };
type Responder = (request: Received, count: number) => Buffer;

/** A server that answers each request with the bytes `respond` makes: what no HTTP library would send. */
async function rawServer(respond: Responder): Promise<{ url: string; requests: Received[]; close(): Promise<void> }> {
	const requests: Received[] = [];
	const server = net.createServer((socket) => {
		let buffer = Buffer.alloc(0);
		socket.on("error", () => {});
		socket.on("data", (data) => {
			buffer = Buffer.concat([buffer, data]);
			const end = buffer.indexOf("\r\n\r\n");
			if (end < 0) return;
			const head = buffer.subarray(0, end).toString("latin1");
			const [requestLine, ...lines] = head.split("\r\n");
			const headers: Received["headers"] = {};
			for (const line of lines) headers[line.slice(0, line.indexOf(":")).toLowerCase()] = line.slice(line.indexOf(":") + 1).trim();
			const request = { head, path: requestLine.split(" ")[1], headers };
			requests.push(request);
			socket.end(respond(request, requests.length));
		});
	});
	await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
	const { port } = server.address() as net.AddressInfo;
	return { url: `http://127.0.0.1:${port}/app.bin`, requests, close: () => new Promise<void>((done) => server.close(() => done())) };
}

function response(status: string, headers: string[], body: Uint8Array = new Uint8Array(0)): Buffer {
	return Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\n${headers.map((line) => `${line}\r\n`).join("")}\r\n`, "latin1"), body]);
}

/** 200 with the whole file, or 206 from the Range asked (with `partial.etag`, null: none, and `partial.file`'s bytes). */
function serveFile(file: Uint8Array, etag?: string, partial: { etag?: string | null; file?: Uint8Array } = {}): Responder {
	const partialEtag = partial.etag === undefined ? etag : partial.etag ?? undefined, partialFile = partial.file ?? file;
	return (request) => {
		const tag = (value: string | undefined) => (value === undefined ? [] : [`ETag: ${value}`]);
		const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
		if (!range) return response("200 OK", [`Content-Length: ${file.length}`, ...tag(etag)], file);
		const from = Number(range[1]);
		return response("206 Partial Content", [`Content-Length: ${file.length - from}`, `Content-Range: bytes ${from}-${file.length - 1}/${file.length}`,
			...tag(partialEtag)], partialFile.subarray(from));
	};
}

function chunked(file: Uint8Array): Buffer {
	const parts: Buffer[] = [];
	for (let at = 0; at < file.length; at += 10000) {
		const chunk = file.subarray(at, at + 10000);
		parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), Buffer.from(chunk), Buffer.from("\r\n"));
	}
	parts.push(Buffer.from("0\r\n\r\n"));
	return Buffer.concat(parts);
}

const injection = /x-injected/i;

/** The GETs of the download (the new image's self-test asks a HEAD too). */
function gets(requests: Received[]): Received[] {
	return requests.filter((request) => request.head.startsWith("GET "));
}

type Case = {
	name: string;
	respond: Responder;
	/** A cut mid-download, then a resumed run, changes what the server is asked. */
	cut: boolean;
	check(outcome: Traced, requests: Received[], afterCut?: Traced): void;
};

const cases: Case[] = [
	{
		name: "an ETag holding a bare CR is never stored nor sent back; a cut download is fetched whole again",
		respond: serveFile(image, '"v1\rX-Injected: yes"'), cut: true,
		check(outcome, requests, afterCut) {
			assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "cr etag");
			for (const request of requests) {
				assert.not.match(request.head, injection);
				assert.is(request.headers["if-range"], undefined, "no validator to send");
				assert.is(request.headers.range, undefined, "no resume without a validator");
			}
			if (afterCut) assert.is(afterCut.bytesFetched, image.length, "whole again");
		},
	},
	{
		name: "an ETag longer than the record holds is no validator: the update completes, a cut fetches it whole",
		respond: serveFile(image, `"${"a".repeat(298)}"`), cut: true,
		check(outcome, requests, afterCut) {
			assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "long etag");
			assert.ok(requests.every((request) => request.headers.range === undefined));
			if (afterCut) assert.is(afterCut.bytesFetched, image.length);
		},
	},
	{
		name: "a 206 without an ETag, carrying another file's tail, is not resumed: the file is fetched whole",
		respond: serveFile(image, '"a1"', { etag: null, file: other }), cut: true,
		check(outcome, requests, afterCut) {
			assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "206 without etag");
			if (!afterCut) return;
			assert.ok(logged(outcome, "restart: partial content without etag"));
			const ranged = requests.filter((request) => request.headers.range !== undefined);
			assert.is(ranged.length, 1, "one resume attempt, refused");
			assert.is(ranged[0].headers["if-range"], '"a1"');
			assert.is(gets(requests).at(-1)!.headers.range, undefined, "then the whole file");
		},
	},
	{
		name: "a gzip Content-Encoding nobody asked for ends with 6 at once, nothing written",
		respond: () => response("200 OK", [`Content-Length: ${image.length}`, "Content-Encoding: gzip", 'ETag: "g"'], image), cut: false,
		check(outcome, requests) {
			assertOldFirmware(outcome, 6, "gzip");
			assert.is(requests.length, 1, "not retried");
			assert.is(requests[0].headers["accept-encoding"], "identity");
			assert.ok(logged(outcome, "content-encoding gzip"));
		},
	},
	{
		name: "a chunked body with a Content-Length that disagrees is read by its chunks, once",
		respond: () => response("200 OK", ["Transfer-Encoding: chunked", "Content-Length: 1000", 'ETag: "c"'], chunked(image)), cut: false,
		check(outcome, requests) {
			assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "chunked");
			assert.is(gets(requests).length, 1);
		},
	},
	{
		name: "Retry-After on a 503 is waited out, within the backoff's ceiling",
		respond: (request, count) => request.head.startsWith("HEAD ") ? response("200 OK", ["Content-Length: 0"])
			: count === 1 ? response("503 Service Unavailable", ["Retry-After: 20", "Content-Length: 0"])
			: count === 2 ? response("429 Too Many Requests", ["Retry-After: 86400", "Content-Length: 0"]) : serveFile(image, '"r"')(request, count),
		cut: false,
		check(outcome, requests) {
			assertNewFirmware(outcome, sha256Hex(image), "2.0.0", "retry-after");
			assert.is(gets(requests).length, 3);
			assert.ok(outcome.logs.some((line) => /status 503; retry in 2\d{4} ms/.test(line)), outcome.logs.join("\n"));
			assert.ok(logged(outcome, "status 429; retry in 60000 ms"), "a day is capped at the 60 s ceiling");
		},
	},
	{
		name: "a Location holding a bare CR ends with 7 and is never requested",
		respond: () => response("302 Found", ["Location: /next\rX-Injected: yes", "Content-Length: 0"]), cut: false,
		check(outcome, requests) {
			assertOldFirmware(outcome, 7, "cr location");
			assert.is(requests.length, 1);
		},
	},
];

for (const engine of engines) {
	for (const { name, respond, cut, check } of cases) {
		for (const withCut of cut ? [false, true] : [false]) {
			test(`${engine}${withCut ? ", cut" : ""}: ${name}`, async () => {
				const server = await rawServer(respond);
				try {
					const board = tempDir("board");
					let afterCut: Traced | undefined;
					if (withCut) {
						const first = await run({ dir: board, engine, url: server.url, cutAfterOps: cutMidDownload });
						assert.is(first.end, "power-cut");
						assert.is(first.state, 1, "cut while downloading");
					}
					const outcome = await traced({ dir: board, engine, url: withCut ? undefined : server.url });
					if (withCut) afterCut = outcome;
					check(outcome, server.requests, afterCut);
				}
				finally {
					await server.close();
				}
			});
		}
	}
}

// Images without their appended SHA-256: only an 8-bit checksum would vouch for them.

let www: string;
let http: UpdateServer;
test.before(async () => {
	www = tempDir("www");
	http = await startUpdateServer({ dir: www });
});
test.after(async () => {
	await http.close();
	fs.rmSync(www, { recursive: true, force: true });
});

for (const engine of engines) {
	test(`${engine}: an image without its appended SHA-256 is refused with 6, unless the request names its digest`, async () => {
		const bare = makeAppImage({ size: 64 * 1024, version: "2.2.0", hashAppended: false });
		fs.writeFileSync(`${www}/bare.bin`, bare);
		const refused = await traced({ dir: tempDir("board"), engine, url: `${http.url}/bare.bin` });
		assertOldFirmware(refused, 6, "no sha-256");
		assert.ok(logged(refused, "image has no appended sha-256"));
		const digest = createHash("sha256").update(bare).digest("hex");
		const accepted = await run({ dir: tempDir("board"), engine, url: `${http.url}/bare.bin`, sha256: digest });
		assertNewFirmware(accepted, digest, "2.2.0", "with the request's digest");
	});
}

test("the published image of an ordinary update still carries its SHA-256", () => {
	const published = publish(www, "hashed.bin", 64 * 1024, "2.3.0");
	assert.is(published.bytes[23], 1);
});

// AWS IoT jobs withdrawn while they download: the transfer stops, nothing is switched, result 10, and the
// cloud's CANCELED is never contradicted by a SUCCEEDED.

let aws: AwsIot;
let things = 0;
const quick = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
test.before(async () => { aws = await startAwsIot({}); });
test.after(async () => { await aws.close(); });

function assertWithdrawn(outcome: Traced, thing: string, jobId: string, what: string): void {
	assertOldFirmware(outcome, 10, what);
	const execution = aws.executions(thing).find((e) => e.jobId === jobId)!;
	assert.is(execution.status, "CANCELED", what);
	assert.is(execution.updates.filter((u) => u.outcome === "accepted" && ["SUCCEEDED", "FAILED", "REJECTED"].includes(String(u.status))).length, 0, what);
	assert.ok(logged(outcome, `job ${jobId} withdrawn by the jobs service`), what);
}

for (const engine of engines) {
	for (const notice of ["notify-next", "a refused progress status"] as const) {
		test(`${engine}: a job cancelled mid-download (${notice}) stops the transfer and ends with 10, never switched`, async () => {
			const thing = `withdrawn-${engine}-${++things}`;
			const job = aws.createJob(thing, { image: makeAppImage({ size: 512 * 1024, version: "2.4.0" }), form: "fota", version: "2.4.0" });
			// Without notify-next the agent learns it from the service refusing its next IN_PROGRESS status.
			if (notice !== "notify-next") Object.assign(aws.faults, { dropRate: 1, topics: /notify-next$/ });
			let cancelled = false;
			try {
				const outcome = await traced({
					dir: tempDir("board"), engine, mqtt: aws.url, thing, config: { ...quick, progressIntervalMs: 1 },
					onEvent: (event) => {
						if (event.event === "progress" && !cancelled && (event.received as number) >= 64 * 1024) {
							cancelled = true;
							aws.endJob(thing, job.jobId, "CANCELED");
						}
					},
				});
				assert.ok(cancelled, "cancelled while downloading");
				assertWithdrawn(outcome, thing, job.jobId, notice);
				// notify-next comes at once; a refused status only with the next checkpoint's, behind the blocks in flight.
				if (notice === "notify-next") assert.ok(outcome.blocksFetched < 512 / 4, `the transfer stopped (${outcome.blocksFetched} blocks)`);
			}
			finally {
				Object.assign(aws.faults, { dropRate: 0, topics: undefined });
			}
		});
	}

	test(`${engine}: a job cancelled while the board was cut off ends with 10 when it is back, never switched`, async () => {
		const thing = `withdrawn-cut-${engine}-${++things}`;
		const job = aws.createJob(thing, { image: makeAppImage({ size: 256 * 1024, version: "2.5.0" }), form: "fota", version: "2.5.0" });
		const board = tempDir("board");
		const first = await run({ dir: board, engine, mqtt: aws.url, thing, cutAfterOps: 60, config: quick });
		assert.is(first.end, "power-cut");
		assert.is(first.state, 1);
		aws.endJob(thing, job.jobId, "CANCELED");
		const second = await traced({ dir: board, engine, mqtt: aws.url, thing, config: quick });
		assertWithdrawn(second, thing, job.jobId, "across a cut");
	});
}

test.run();
