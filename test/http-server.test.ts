// The built-in update server and a real nginx must answer resumable downloads alike; the built-in server's
// fault switches must misbehave exactly as described.
import { suite, type Test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { startNginx } from "../host-sim/server/nginx";

// In the host program src/types/moddable.d.ts's device module "http" merges into Node's typings and spoils
// http.RequestOptions; the call itself is plain Node.
const rawRequest = httpRequest as unknown as (options: object, callback: (incoming: IncomingMessage) => void) => ClientRequest;

type Reply = { status: number; headers: IncomingHttpHeaders; body: Buffer; complete: boolean };

// One fresh connection per request, the way the device's http Request works; a body cut short shows as
// complete === false with the bytes that did arrive.
function get(url: string, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Reply> {
	return new Promise((done, fail) => {
		// The path goes out as written (a URL would resolve "/../" before sending).
		const { hostname, port } = new URL(url);
		const outgoing = rawRequest({ hostname, port, path, method, headers, agent: false }, (incoming) => {
			const chunks: Buffer[] = [];
			incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
			incoming.on("error", () => {});
			incoming.on("close", () => done({
				status: incoming.statusCode ?? 0,
				headers: incoming.headers,
				body: Buffer.concat(chunks),
				complete: incoming.complete,
			}));
		});
		outgoing.on("error", fail);
		// Not a timing assertion: a server that stalls mid-body would otherwise hang the run instead of failing.
		outgoing.setTimeout(10_000, () => outgoing.destroy(new Error(`no data for 10 s on ${path}`)));
		outgoing.end();
	});
}

// Deterministic bytes with no short period, so an offset error shows.
function firmwareBytes(size: number, seed: string): Buffer {
	const blocks: Buffer[] = [];
	for (let i = 0; blocks.length * 32 < size; i++) blocks.push(createHash("sha256").update(`${seed}:${i}`).digest());
	return Buffer.concat(blocks).subarray(0, size);
}

const size = 5000;
const firmware = firmwareBytes(size, "fw");

function makeFirmwareDir(): string {
	const dir = mkdtempSync(join(tmpdir(), "xs-ota-http-test-"));
	writeFileSync(join(dir, "fw.bin"), firmware);
	return dir;
}

type Running = { url: string; close(): Promise<void> };
type Context = { dir: string; server: Running };

// The same cases run against each server.
function conformanceCases(name: string, start: (dir: string) => Promise<Running>): Test<Context> {
	const cases = suite<Context>(name, { dir: "", server: undefined as unknown as Running });
	cases.before(async (context) => {
		context.dir = makeFirmwareDir();
		context.server = await start(context.dir);
	});
	cases.after(async (context) => {
		await context.server?.close();
		rmSync(context.dir, { recursive: true, force: true });
	});

	const etagOf = async ({ server }: Context, path = "/fw.bin") => (await get(server.url, path, {}, "HEAD")).headers.etag!;

	cases("full GET is 200 with a strong ETag and the whole file", async ({ server }) => {
		const reply = await get(server.url, "/fw.bin");
		assert.is(reply.status, 200);
		assert.ok(reply.body.equals(firmware), "body is the file");
		assert.is(reply.headers["content-length"], String(size));
		assert.is(reply.headers["accept-ranges"], "bytes");
		assert.ok(reply.headers["last-modified"], "has Last-Modified");
		assert.match(reply.headers.etag ?? "", /^"[^"]+"$/);
	});

	cases("Range bytes=N- is 206 with the exact Content-Range and bytes", async ({ server }) => {
		const reply = await get(server.url, "/fw.bin", { Range: "bytes=1234-" });
		assert.is(reply.status, 206);
		assert.is(reply.headers["content-range"], `bytes 1234-${size - 1}/${size}`);
		assert.is(reply.headers["content-length"], String(size - 1234));
		assert.ok(reply.body.equals(firmware.subarray(1234)), "body is the tail from 1234");
	});

	cases("Range bytes=N-M and bytes=-K are 206 with the right slice", async ({ server }) => {
		const middle = await get(server.url, "/fw.bin", { Range: "bytes=100-199" });
		assert.is(middle.status, 206);
		assert.is(middle.headers["content-range"], `bytes 100-199/${size}`);
		assert.ok(middle.body.equals(firmware.subarray(100, 200)), "body is bytes 100..199");
		const suffix = await get(server.url, "/fw.bin", { Range: "bytes=-10" });
		assert.is(suffix.status, 206);
		assert.is(suffix.headers["content-range"], `bytes ${size - 10}-${size - 1}/${size}`);
		assert.ok(suffix.body.equals(firmware.subarray(size - 10)), "body is the last 10 bytes");
		const pastEnd = await get(server.url, "/fw.bin", { Range: `bytes=4990-${size + 100}` });
		assert.is(pastEnd.headers["content-range"], `bytes 4990-${size - 1}/${size}`);
	});

	cases("If-Range with the current ETag is 206, a stale one gets the full 200", async (context) => {
		const etag = await etagOf(context);
		const resumed = await get(context.server.url, "/fw.bin", { Range: "bytes=4000-", "If-Range": etag });
		assert.is(resumed.status, 206);
		assert.ok(resumed.body.equals(firmware.subarray(4000)), "resumed body");
		const stale = await get(context.server.url, "/fw.bin", { Range: "bytes=4000-", "If-Range": '"stale-etag"' });
		assert.is(stale.status, 200);
		assert.is(stale.headers["content-range"], undefined);
		assert.ok(stale.body.equals(firmware), "full body");
	});

	cases("If-Match with a stale ETag is 412, with the current one 206", async (context) => {
		const etag = await etagOf(context);
		const stale = await get(context.server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": '"stale-etag"' });
		assert.is(stale.status, 412);
		const weak = await get(context.server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": "W/" + etag });
		assert.is(weak.status, 412, "a weak tag never matches");
		const current = await get(context.server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": etag });
		assert.is(current.status, 206);
		assert.ok(current.body.equals(firmware.subarray(10)), "body from 10");
	});

	cases("If-Match is checked before the range: stale tag with a bad range is 412", async ({ server }) => {
		const reply = await get(server.url, "/fw.bin", { Range: `bytes=${size}-`, "If-Match": '"stale-etag"' });
		assert.is(reply.status, 412);
	});

	cases("Range starting at the size is 416 with bytes */size", async ({ server }) => {
		const reply = await get(server.url, "/fw.bin", { Range: `bytes=${size}-` });
		assert.is(reply.status, 416);
		assert.is(reply.headers["content-range"], `bytes */${size}`);
	});

	cases("HEAD gives the headers and no body", async ({ server }) => {
		const reply = await get(server.url, "/fw.bin", {}, "HEAD");
		assert.is(reply.status, 200);
		assert.is(reply.headers["content-length"], String(size));
		assert.match(reply.headers.etag ?? "", /^"[^"]+"$/);
		assert.is(reply.headers["accept-ranges"], "bytes");
		assert.is(reply.body.length, 0);
	});

	cases("replacing the file's content changes the ETag and stops resumes", async (context) => {
		const path = join(context.dir, "replaced.bin");
		writeFileSync(path, firmwareBytes(size, "old"));
		utimesSync(path, 1_700_000_000, 1_700_000_000);
		const oldEtag = await etagOf(context, "/replaced.bin");
		const newContent = firmwareBytes(size, "new");
		writeFileSync(path, newContent);
		utimesSync(path, 1_700_000_010, 1_700_000_010); // nginx's ETag only sees mtime and size
		const newEtag = await etagOf(context, "/replaced.bin");
		assert.is.not(newEtag, oldEtag);
		const resume = await get(context.server.url, "/replaced.bin", { Range: "bytes=100-", "If-Range": oldEtag });
		assert.is(resume.status, 200);
		assert.ok(resume.body.equals(newContent), "full new content");
		const guarded = await get(context.server.url, "/replaced.bin", { Range: "bytes=100-", "If-Match": oldEtag });
		assert.is(guarded.status, 412);
	});

	cases("a missing file is 404", async ({ server }) => {
		assert.is((await get(server.url, "/missing.bin")).status, 404);
		assert.is((await get(server.url, "/sub/missing.bin")).status, 404);
	});

	return cases;
}

conformanceCases("built-in server", (dir) => startUpdateServer({ dir })).run();
conformanceCases("nginx", (dir) => startNginx({ dir })).run();

// What only one of the two does.
const nginxOnly = suite<Context>("nginx specifics", { dir: "", server: undefined as unknown as Running });
nginxOnly.before(async (context) => {
	context.dir = makeFirmwareDir();
	context.server = await startNginx({ dir: context.dir });
});
nginxOnly.after(async (context) => {
	await context.server?.close();
	rmSync(context.dir, { recursive: true, force: true });
});
nginxOnly("new content with the same size and mtime keeps nginx's ETag: it isn't content-derived", async (context) => {
	const path = join(context.dir, "same-stat.bin");
	writeFileSync(path, firmwareBytes(size, "a"));
	utimesSync(path, 1_700_000_000, 1_700_000_000);
	const before = (await get(context.server.url, "/same-stat.bin", {}, "HEAD")).headers.etag;
	writeFileSync(path, firmwareBytes(size, "b"));
	utimesSync(path, 1_700_000_000, 1_700_000_000);
	const after = (await get(context.server.url, "/same-stat.bin", {}, "HEAD")).headers.etag;
	assert.is(after, before);
});
nginxOnly("close() stops nginx and frees the port", async () => {
	const dir = makeFirmwareDir();
	const server = await startNginx({ dir });
	assert.is((await get(server.url, "/fw.bin", {}, "HEAD")).status, 200);
	await server.close();
	await server.close(); // a second close is harmless
	let refused = false;
	await get(server.url, "/fw.bin").catch(() => { refused = true; });
	assert.ok(refused, "nothing listens any more");
	rmSync(dir, { recursive: true, force: true });
});
nginxOnly.run();

// The built-in server on its own: path rules, range edge cases, stats and fault switches.
type BuiltInContext = { dir: string; server: UpdateServer };
const builtIn = suite<BuiltInContext>("built-in server specifics", { dir: "", server: undefined as unknown as UpdateServer });
builtIn.before(async (context) => {
	context.dir = makeFirmwareDir();
	writeFileSync(join(context.dir, "..secret-sibling"), "x");
	mkdirSync(join(context.dir, "images"));
	writeFileSync(join(context.dir, "images", "app.bin"), firmware.subarray(0, 64));
	context.server = await startUpdateServer({ dir: context.dir });
});
builtIn.after(async (context) => {
	await context.server?.close();
	rmSync(context.dir, { recursive: true, force: true });
});
builtIn.before.each((context) => {
	// Each case starts from a well-behaved server; the faults object is the one the server reads.
	for (const key of Object.keys(context.server.faults)) delete context.server.faults[key as keyof typeof context.server.faults];
	context.server.stats.requests = 0;
	context.server.stats.bodyBytes = 0;
});

builtIn("serves files in subfolders, nothing outside the folder", async ({ server, dir }) => {
	const outside = mkdtempSync(join(tmpdir(), "xs-ota-outside-"));
	writeFileSync(join(outside, "secret.bin"), "secret");
	symlinkSync(join(outside, "secret.bin"), join(dir, "link-out.bin"));
	try {
		assert.is((await get(server.url, "/images/app.bin")).status, 200);
		for (const path of ["/../fw.bin", "/images/../../etc/passwd", "/%2e%2e/etc/passwd", "/images/%2E%2E/fw.bin"]) {
			const reply = await get(server.url, path);
			assert.ok(reply.status === 400 || reply.status === 404, `${path} refused, got ${reply.status}`);
		}
		assert.is((await get(server.url, "/link-out.bin")).status, 404, "symlink leading outside");
		assert.is((await get(server.url, "/images")).status, 404, "a folder is no file");
		assert.is((await get(server.url, "/..secret-sibling")).status, 200, "dots inside a name are fine");
	} finally {
		rmSync(outside, { recursive: true, force: true });
	}
});

builtIn("several ranges or a malformed Range get the full 200", async ({ server }) => {
	for (const range of ["bytes=0-1,5-6", "bytes=abc", "bytes=9-3", "items=0-5", "bytes=-"]) {
		const reply = await get(server.url, "/fw.bin", { Range: range });
		assert.is(reply.status, 200, range);
		assert.ok(reply.body.equals(firmware), `${range}: full body`);
	}
});

builtIn("bytes=-0 is 416, an empty file can't satisfy a range", async ({ server, dir }) => {
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=-0" })).status, 416);
	writeFileSync(join(dir, "empty.bin"), "");
	const empty = await get(server.url, "/empty.bin", { Range: "bytes=-5" });
	assert.is(empty.status, 416);
	assert.is(empty.headers["content-range"], "bytes */0");
	const whole = await get(server.url, "/empty.bin");
	assert.is(whole.status, 200);
	assert.is(whole.body.length, 0);
});

builtIn("If-Range with the exact Last-Modified date resumes, another date doesn't", async ({ server }) => {
	const lastModified = (await get(server.url, "/fw.bin", {}, "HEAD")).headers["last-modified"]!;
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Range": lastModified })).status, 206);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT" })).status, 200);
});

builtIn("If-Match * matches any existing file", async ({ server }) => {
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": "*" })).status, 206);
});

builtIn("the ETag follows the content even when size and mtime are put back", async ({ server, dir }) => {
	const path = join(dir, "sneaky.bin");
	writeFileSync(path, firmwareBytes(size, "a"));
	utimesSync(path, 1_700_000_000, 1_700_000_000);
	const before = (await get(server.url, "/sneaky.bin", {}, "HEAD")).headers.etag;
	writeFileSync(path, firmwareBytes(size, "b"));
	utimesSync(path, 1_700_000_000, 1_700_000_000);
	const after = (await get(server.url, "/sneaky.bin", {}, "HEAD")).headers.etag;
	assert.is.not(after, before);
	writeFileSync(join(dir, "twin.bin"), firmware);
	assert.is((await get(server.url, "/twin.bin", {}, "HEAD")).headers.etag, (await get(server.url, "/fw.bin", {}, "HEAD")).headers.etag, "same bytes, same tag");
});

builtIn("stats count requests and the body bytes written", async ({ server }) => {
	await get(server.url, "/fw.bin");
	await get(server.url, "/fw.bin", { Range: "bytes=4000-" });
	await get(server.url, "/fw.bin", {}, "HEAD");
	assert.is(server.stats.requests, 3);
	assert.is(server.stats.bodyBytes, size + 1000);
});

builtIn("other methods are 405", async ({ server }) => {
	const reply = await get(server.url, "/fw.bin", {}, "PUT");
	assert.is(reply.status, 405);
	assert.is(reply.headers.allow, "GET, HEAD");
});

builtIn("fault noEtag: no ETag, so If-Match fails and If-Range never resumes", async ({ server }) => {
	const strong = (await get(server.url, "/fw.bin", {}, "HEAD")).headers.etag!;
	server.faults.noEtag = true;
	const plain = await get(server.url, "/fw.bin");
	assert.is(plain.headers.etag, undefined);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": strong })).status, 412);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Range": strong })).status, 200);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-" })).status, 206, "a bare range still works");
});

builtIn("fault weakEtag: W/ tag that neither If-Range nor If-Match accepts", async ({ server }) => {
	server.faults.weakEtag = true;
	const weak = (await get(server.url, "/fw.bin", {}, "HEAD")).headers.etag!;
	assert.match(weak, /^W\/"[^"]+"$/);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Range": weak })).status, 200);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": weak })).status, 412);
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-", "If-Match": weak.slice(2) })).status, 412);
});

builtIn("fault ignoreRange: always the full 200 without Accept-Ranges", async ({ server }) => {
	server.faults.ignoreRange = true;
	const etag = (await get(server.url, "/fw.bin", {}, "HEAD")).headers.etag!;
	const cases: Record<string, string>[] = [{ Range: "bytes=10-" }, { Range: `bytes=${size}-` }, { Range: "bytes=10-", "If-Range": etag }];
	for (const headers of cases) {
		const reply = await get(server.url, "/fw.bin", headers);
		assert.is(reply.status, 200);
		assert.is(reply.headers["accept-ranges"], undefined);
		assert.is(reply.headers["content-range"], undefined);
		assert.ok(reply.body.equals(firmware), "full body");
	}
});

builtIn("fault dropAfterBytes: the connection ends after exactly that many body bytes", async ({ server, dir }) => {
	server.faults.dropAfterBytes = 1000;
	const full = await get(server.url, "/fw.bin");
	assert.is(full.status, 200);
	assert.is(full.headers["content-length"], String(size), "promises the whole file");
	assert.not.ok(full.complete, "body cut short");
	assert.ok(full.body.equals(firmware.subarray(0, 1000)), "the first 1000 bytes arrived");

	const ranged = await get(server.url, "/fw.bin", { Range: "bytes=3000-" });
	assert.is(ranged.status, 206);
	assert.not.ok(ranged.complete);
	assert.ok(ranged.body.equals(firmware.subarray(3000, 4000)), "1000 bytes from 3000");
	assert.is(server.stats.bodyBytes, 2000);

	const short = await get(server.url, "/fw.bin", { Range: "bytes=4500-" });
	assert.ok(short.complete, "a body within the limit is whole");
	assert.is(short.body.length, 500);

	// Several read chunks (64 KiB each) before the cut.
	const big = firmwareBytes(300_000, "big");
	writeFileSync(join(dir, "big.bin"), big);
	server.faults.dropAfterBytes = 200_001;
	const bigReply = await get(server.url, "/big.bin");
	assert.not.ok(bigReply.complete);
	assert.ok(bigReply.body.equals(big.subarray(0, 200_001)), "200001 bytes arrived");

	server.faults.dropAfterBytes = 0;
	const none = await get(server.url, "/fw.bin");
	assert.is(none.status, 200, "headers still arrive");
	assert.not.ok(none.complete);
	assert.is(none.body.length, 0);
});

builtIn("fault redirect: to itself is an endless loop; count limits it", async ({ server }) => {
	server.faults.redirect = { from: "/loop.bin", to: "/loop.bin" };
	for (let hop = 0; hop < 5; hop++) {
		const reply = await get(server.url, "/loop.bin");
		assert.is(reply.status, 302);
		assert.is(reply.headers.location, "/loop.bin");
	}
	let followed: unknown;
	await fetch(server.url + "/loop.bin").then(() => { followed = "settled"; }, (error) => { followed = error; });
	assert.instance(followed, Error, "a redirect-following client gives up");

	server.faults.redirect = { from: "/old.bin", to: server.url + "/fw.bin", count: 1 };
	const moved = await get(server.url, "/old.bin");
	assert.is(moved.status, 302);
	assert.is(moved.headers.location, server.url + "/fw.bin");
	assert.is((await fetch(server.url + "/old.bin")).status, 404, "after count redirects the path is served as is");
	server.faults.redirect = { from: "/old.bin", to: "/fw.bin", count: 1 };
	const viaFetch = await fetch(server.url + "/old.bin");
	assert.is(viaFetch.status, 200);
	assert.ok(Buffer.from(await viaFetch.arrayBuffer()).equals(firmware), "followed to the file");
});

builtIn("fault statusFor: forced status per path, changeable while running", async ({ server }) => {
	server.faults.statusFor = { "/fw.bin": 503 };
	assert.is((await get(server.url, "/fw.bin")).status, 503);
	assert.is((await get(server.url, "/images/app.bin")).status, 200, "other paths untouched");
	server.faults.statusFor["/fw.bin"] = 500;
	assert.is((await get(server.url, "/fw.bin", { Range: "bytes=10-" })).status, 500);
	delete server.faults.statusFor["/fw.bin"];
	assert.is((await get(server.url, "/fw.bin")).status, 200);
});

builtIn("fault lieContentRange: Content-Range start is wrong, the bytes are not", async ({ server }) => {
	server.faults.lieContentRange = true;
	const reply = await get(server.url, "/fw.bin", { Range: "bytes=1234-" });
	assert.is(reply.status, 206);
	const [, start, end] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(reply.headers["content-range"] ?? "") ?? [];
	assert.ok(start !== undefined, "a well-formed Content-Range");
	assert.is.not(Number(start), 1234);
	assert.is(Number(end) - Number(start) + 1, size - 1234, "length consistent with the body");
	assert.ok(reply.body.equals(firmware.subarray(1234)), "actual bytes from 1234");
	const fromZero = await get(server.url, "/fw.bin", { Range: "bytes=0-99" });
	assert.not.match(fromZero.headers["content-range"] ?? "", /^bytes 0-/);
	assert.is((await get(server.url, "/fw.bin")).headers["content-range"], undefined, "a 200 has none");
});

builtIn.run();
