// Unit tests of the agent's pure logic: the Object 5 model, the persisted record and the resume decision.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { FirmwareObject, Result, State, canTransition } from "../src/agent/firmware-object";
import { RecordStore, decodeRecord, emptyRecord, encodeRecord, encodedLength, recordKeys, type DownloadRecord } from "../src/agent/record";
import { decide, isStrongEtag, parseContentRange, requestHeaders } from "../src/agent/resume";
import { retryAfterMs } from "../src/transport/http-pull";
import { isRsaKey } from "../src/lib/pkcs8";
import { parseUrl, resolveLocation } from "../src/agent/url";
import { MemoryStore } from "./support/memory-store";

function sample(): DownloadRecord {
	return { ...emptyRecord(), state: State.downloading, committed: 65536, totalSize: 1048576, uri: "http://host/ü/app.bin", etag: '"abc"', version: "2.0.0", sha256: new Uint8Array(32).fill(7), automatic: true };
}

test("object 5: the allowed transitions and nothing else", () => {
	assert.ok(canTransition(State.idle, State.downloading, Result.initial));
	assert.ok(canTransition(State.downloading, State.idle, Result.connectionLost));
	assert.ok(canTransition(State.updating, State.idle, Result.success));
	assert.ok(canTransition(State.updating, State.downloaded, Result.updateFailed));
	assert.not.ok(canTransition(State.idle, State.updating, Result.initial));
	assert.not.ok(canTransition(State.downloading, State.idle, Result.success));
	assert.not.ok(canTransition(State.updating, State.idle, Result.cancelled), "cancel is refused while updating");
	const seen: number[] = [];
	const object = new FirmwareObject({ state: State.idle, result: Result.initial }, (s) => seen.push(s.state));
	object.move(State.downloading, Result.initial);
	assert.throws(() => object.move(State.updating, Result.initial), /bad transition/);
	assert.equal(seen, [State.downloading]);
});

test("record: encodes and decodes every field, UTF-8 included", () => {
	const record = sample();
	const bytes = new Uint8Array(encodedLength(record));
	encodeRecord(record, bytes);
	const decoded = decodeRecord(bytes);
	assert.type(decoded, "object");
	const back = decoded as DownloadRecord;
	assert.is(back.uri, record.uri);
	assert.is(back.etag, record.etag);
	assert.is(back.committed, 65536);
	assert.is(back.automatic, true);
	assert.equal([...back.sha256!], [...record.sha256!]);
});

test("record: a flipped bit, a truncation or an unknown format is refused with a reason", () => {
	const record = sample();
	const bytes = new Uint8Array(encodedLength(record));
	encodeRecord(record, bytes);
	for (let i = 0; i < bytes.length; i += 7) {
		const copy = bytes.slice();
		copy[i] ^= 0x10;
		assert.type(decodeRecord(copy), "string", `bit flip at ${i} accepted`);
	}
	assert.is(decodeRecord(bytes.slice(0, 20)), "too short");
	assert.is(decodeRecord(bytes.slice(0, bytes.length - 1)), "crc mismatch");
});

test("record store: alternates keys, keeps the newest, survives losing either copy", () => {
	const store = new MemoryStore();
	const log: string[] = [];
	const records = new RecordStore(store, (m) => log.push(m));
	const record = sample();
	record.committed = 1; records.save(record);
	record.committed = 2; records.save(record);
	record.committed = 3; records.save(record);
	assert.ok(store.values.has(recordKeys[0]) && store.values.has(recordKeys[1]));
	assert.is(new RecordStore(store, () => {}).load()!.committed, 3);
	// A torn set (the key erased) loses only the copy being written: the other one is the previous save.
	const newest = recordKeys.find((key) => (decodeRecord(new Uint8Array(store.values.get(key) as ArrayBuffer)) as DownloadRecord).committed === 3)!;
	store.delete(newest);
	const reloaded = new RecordStore(store, () => {});
	assert.is(reloaded.load()!.committed, 2);
	record.committed = 4; reloaded.save(record);
	assert.is(new RecordStore(store, () => {}).load()!.committed, 4);
	// Garbage under a key is discarded and logged, never trusted.
	store.set(recordKeys[0], new Uint8Array(90).fill(0xee).buffer);
	store.set(recordKeys[1], "text");
	assert.is(records.load(), undefined);
	assert.ok(log.some((line) => line.includes("crc mismatch")) && log.some((line) => line.includes("not a buffer")));
});

test("resume: asks a range only with a strong validator, and always the identity encoding", () => {
	const identity = ["Accept-Encoding", "identity"];
	assert.equal(requestHeaders({ committed: 4096, etag: '"x"', totalSize: 9000 }), [...identity, "Range", "bytes=4096-", "If-Range", '"x"']);
	assert.equal(requestHeaders({ committed: 4096, etag: 'W/"x"', totalSize: 9000 }), identity);
	assert.equal(requestHeaders({ committed: 4096, etag: "", totalSize: 9000 }), identity);
	assert.equal(requestHeaders({ committed: 0, etag: '"x"', totalSize: 9000 }), identity);
});

test("resume: only an RFC 9110 entity-tag of at most 255 bytes is a validator, so nothing else is echoed", () => {
	for (const good of ['"x"', '""', '"a-b_c.1"', `"${"e".repeat(253)}"`]) assert.ok(isStrongEtag(good), good);
	const bad = ['"x\rX-Injected: 1"', '"x\n"', '"x\u0000"', '"a b"', '"a"b"', "x", '"x', 'W/"x"', `"${"e".repeat(254)}"`, '"\u007f"'];
	for (const etag of bad) {
		assert.not.ok(isStrongEtag(etag), JSON.stringify(etag));
		assert.equal(requestHeaders({ committed: 4096, etag, totalSize: 9000 }), ["Accept-Encoding", "identity"], JSON.stringify(etag));
	}
});

test("resume: Retry-After as seconds or as a date once the clock is set", () => {
	const now = Date.parse("2026-06-01T00:00:00Z");
	assert.is(retryAfterMs("120", now), 120000);
	assert.is(retryAfterMs("Mon, 01 Jun 2026 00:00:30 GMT", now), 30000);
	assert.is(retryAfterMs("Mon, 01 Jun 2026 00:00:30 GMT", 5000), 0, "clock never set");
	assert.is(retryAfterMs("soon", now), 0);
});

test("resume: the decision table", () => {
	const checkpoint = { committed: 4096, etag: '"x"', totalSize: 9000 };
	const answer = (status: number, more: object = {}) => ({ status, etag: undefined, contentEncoding: undefined, contentRange: undefined, contentLength: undefined, location: undefined, ...more });
	assert.equal(decide(checkpoint, answer(206, { contentRange: "bytes 4096-8999/9000", etag: '"x"', contentLength: 4904 })), { kind: "resume", from: 4096, totalSize: 9000 });
	assert.is(decide(checkpoint, answer(206, { contentRange: "bytes 4097-8999/9000" })).kind, "restart");
	assert.is(decide(checkpoint, answer(206, { contentRange: "bytes 4096-9999/10000" })).kind, "restart");
	assert.is(decide(checkpoint, answer(206, { contentRange: "bytes 4096-8999/9000", etag: '"y"' })).kind, "restart");
	assert.is(decide({ ...checkpoint, etag: "" }, answer(206, { contentRange: "bytes 4096-8999/9000" })).kind, "restart");
	assert.equal(decide(checkpoint, answer(206, { contentRange: "bytes 4096-8999/9000" })), { kind: "restart", reason: "partial content without etag" });
	assert.equal(decide(checkpoint, answer(200, { contentEncoding: "gzip" })), { kind: "fail", result: Result.unsupportedPackage, reason: "content-encoding gzip" });
	assert.is(decide(checkpoint, answer(206, { contentRange: "bytes 4096-8999/9000", etag: '"x"', contentEncoding: "br" })).kind, "fail");
	assert.is(decide(checkpoint, answer(200, { contentLength: 9000, contentEncoding: "identity" })).kind, "fresh");
	assert.equal(decide(checkpoint, answer(200, { contentLength: 9000 })), { kind: "fresh", totalSize: 9000 });
	assert.is(decide(checkpoint, answer(412)).kind, "restart");
	assert.is(decide({ ...checkpoint, committed: 9000 }, answer(416, { contentRange: "bytes */9000" })).kind, "complete");
	assert.is(decide(checkpoint, answer(416, { contentRange: "bytes */9000" })).kind, "restart");
	assert.equal(decide(checkpoint, answer(302, { location: "/b" })), { kind: "redirect", location: "/b" });
	assert.is(decide(checkpoint, answer(503)).kind, "retry");
	assert.equal(decide(checkpoint, answer(404)), { kind: "fail", result: Result.invalidUri, reason: "status 404" });
});

test("content-range parsing rejects what it cannot trust", () => {
	assert.equal(parseContentRange("bytes 0-9/10"), { first: 0, last: 9, size: 10 });
	assert.equal(parseContentRange("bytes */10"), { first: -1, last: -1, size: 10 });
	assert.is(parseContentRange("bytes 5-3/10"), undefined);
	assert.is(parseContentRange("bytes 0-10/10"), undefined);
	assert.is(parseContentRange("bytes 0-9007199254740993/9007199254740994"), undefined);
	assert.is(parseContentRange("items 0-9/10"), undefined);
});

test("urls: parse, refuse, and resolve redirects", () => {
	assert.equal(parseUrl("http://h:8080/a/b?c"), { scheme: "http", host: "h", port: 8080, path: "/a/b?c" });
	assert.equal(parseUrl("https://h"), { scheme: "https", host: "h", port: 443, path: "/" });
	assert.is(typeof parseUrl("http//h/a"), "string");
	assert.is(typeof parseUrl("http://h:99999/"), "string");
	assert.is(typeof parseUrl("http:///a"), "string");
	assert.is((parseUrl("coap://h/a") as { scheme: string }).scheme, "coap");
	const base = parseUrl("http://h:81/dir/app.bin") as ReturnType<typeof parseUrl> & object;
	assert.is((resolveLocation(base as never, "next.bin") as { path: string }).path, "/dir/next.bin");
	assert.is((resolveLocation(base as never, "//other/x") as { host: string }).host, "other");
	assert.is((resolveLocation(base as never, "http://z/y") as { host: string }).host, "z");
	for (const unsafe of ["/a\r\nX-Injected: 1", "/a b", "/a\u0000", "http://z/\n"]) {
		assert.is(typeof resolveLocation(base as never, unsafe), "string", JSON.stringify(unsafe));
		assert.is(typeof parseUrl(`http://h${unsafe.startsWith("/") ? unsafe : "/x"}\t`), "string");
	}
});

test("pkcs8: an RSA key is told from an EC one", async () => {
	const { generateKeyPairSync } = await import("node:crypto");
	const der = (key: import("node:crypto").KeyObject) => new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
	assert.ok(isRsaKey(der(generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey)));
	assert.not.ok(isRsaKey(der(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)));
	assert.not.ok(isRsaKey(der(generateKeyPairSync("ed25519").privateKey)));
	assert.not.ok(isRsaKey(new Uint8Array([0x30, 0x03, 0x02, 0x01])));
	assert.not.ok(isRsaKey(new Uint8Array(0)));
});

test.run();
