// Unit tests of the AWS IoT job document parser: both forms normalized exactly, and hostile documents each
// refused with a defined Update Result and reason, without touching any prototype.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { Result } from "../src/agent/firmware-object";
import { type UpdateJob, maxDocumentBytes, parseJobDocument, validStreamId, validThingName } from "../src/agent/job-document";

const signature = new Uint8Array(70).map((_, i) => (i * 37 + 0x30) & 0xff);
const signatureText = Buffer.from(signature).toString("base64");

function mqttFile(): { [key: string]: unknown } {
	return { filepath: "/device/ota/image.bin", filesize: 181584, fileid: 0, certfile: "/device/ota/cert.pem", "sig-sha256-ecdsa": signatureText, attr: 3, fileType: 0 };
}

function afrOta(ota: { [key: string]: unknown } = {}, file: { [key: string]: unknown } = {}): { afr_ota: { [key: string]: unknown } } {
	return { afr_ota: { protocols: ["MQTT"], streamname: "AFR_OTA-9ddfa5ab-c36e-4c58-a88c-0d5d16ae6c48", files: [{ ...mqttFile(), ...file }], ...ota } };
}

function httpOta(file: { [key: string]: unknown } = {}): { afr_ota: { [key: string]: unknown } } {
	return { afr_ota: { protocols: ["HTTP"], files: [{ filepath: "image.bin", filesize: 1048576, fileid: 0, update_data_url: "https://bucket.s3.amazonaws.com/image.bin?X-Amz-Signature=ab%2Fcd", auth_scheme: "aws.s3.presigned", ...file }] } };
}

function fota(fields: { [key: string]: unknown } = {}): { [key: string]: unknown } {
	return { command: "fota", streamId: "fw_stream-1", fileId: 1, fileSize: 1048576, imageVer: "2.0.0", md5sum: "D41D8CD98F00B204E9800998ECF8427E", ...fields };
}

function omit(object: { [key: string]: unknown }, key: string): { [key: string]: unknown } {
	const copy = { ...object };
	delete copy[key];
	return copy;
}

function inherits(prototype: object, own: object = {}): object {
	return Object.assign(Object.create(prototype), own);
}

test("afr_ota over MQTT: normalized exactly, the signature decoded, extra fields and files ignored", () => {
	const document = afrOta({ extra: { nested: true }, files: [mqttFile(), { filepath: 5 }] });
	const expected: UpdateJob = {
		form: "afr_ota", protocol: "MQTT", streamId: "AFR_OTA-9ddfa5ab-c36e-4c58-a88c-0d5d16ae6c48", fileId: 0, fileSize: 181584,
		version: "", url: "", md5: undefined, signature, filePath: "/device/ota/image.bin", options: {},
	};
	assert.equal(parseJobDocument(document), expected);
	assert.equal(parseJobDocument(JSON.stringify(document)), expected, "the same as JSON text");
	assert.equal(parseJobDocument(afrOta({}, { "sig-sha256-ecdsa": undefined })), { ...expected, signature: undefined }, "no signature");
	assert.equal(parseJobDocument(afrOta({}, { "sig-sha256-ecdsa": signatureText.replace(/=+$/, "") })), expected, "unpadded");
});

test("afr_ota over HTTP: the presigned URL kept verbatim", () => {
	assert.equal(parseJobDocument(httpOta()), {
		form: "afr_ota", protocol: "HTTP", streamId: "", fileId: 0, fileSize: 1048576, version: "",
		url: "https://bucket.s3.amazonaws.com/image.bin?X-Amz-Signature=ab%2Fcd", md5: undefined, signature: undefined, filePath: "image.bin", options: {},
	});
	assert.equal((parseJobDocument(httpOta({ update_data_url: "http://10.0.0.2:8080/a.bin" })) as UpdateJob).url, "http://10.0.0.2:8080/a.bin");
});

test("handling fields: recovery policy, severity and maximum defer period are read; a bad one is refused with 6", () => {
	const handled = parseJobDocument({ ...fota(), recoveryPolicy: "abort", severity: "critical", maxDeferSeconds: 3600 }) as UpdateJob;
	assert.equal(handled.options, { policy: 2, severity: "critical", maxDeferSeconds: 3600 });
	assert.equal((parseJobDocument({ ...afrOta(), recoveryPolicy: "save-point" }) as UpdateJob).options, { policy: 0 });
	for (const [field, value] of [["recoveryPolicy", "sometimes"], ["recoveryPolicy", 1], ["severity", "urgent"], ["maxDeferSeconds", -1], ["maxDeferSeconds", 1.5], ["maxDeferSeconds", 31536001]] as const)
		assert.equal(parseJobDocument({ ...fota(), [field]: value }), { error: `bad ${field}`, result: 6 }, `${field} ${value}`);
	const inherited = Object.create({ recoveryPolicy: "none" });
	Object.assign(inherited, fota());
	assert.equal((parseJobDocument(inherited) as UpdateJob).options, {}, "only the document's own fields count");
});

test("afr_ota with both protocols: MQTT when there is a stream name, else HTTP; HTTP can be turned off", () => {
	const both = (streamname: unknown) => ({ afr_ota: { protocols: ["HTTP", "MQTT"], ...(streamname === undefined ? {} : { streamname }), files: [{ ...mqttFile(), update_data_url: "https://host/x" }] } });
	const pick = (document: unknown, http?: boolean) => {
		const job = parseJobDocument(document, http === undefined ? undefined : { http }) as UpdateJob;
		return `${job.protocol} ${job.streamId} ${job.url}`;
	};
	assert.is(pick(both("s1")), "MQTT s1 ");
	assert.is(pick(both(undefined)), "HTTP  https://host/x");
	assert.is(pick(both("")), "HTTP  https://host/x");
	assert.is(pick(both("s1"), false), "MQTT s1 ");
	assert.equal(parseJobDocument(both(undefined), { http: false }), { error: "bad stream name", result: Result.invalidUri });
	assert.equal(parseJobDocument(both("a/b")), { error: "bad stream name", result: Result.invalidUri }, "a hostile name is not passed over for HTTP");
	assert.is(pick({ afr_ota: { ...afrOta().afr_ota, protocols: ["FTP", "MQTT"] } }), "MQTT AFR_OTA-9ddfa5ab-c36e-4c58-a88c-0d5d16ae6c48 ", "unknown protocols beside MQTT");
});

test("fota: normalized exactly, the MD5 decoded, bounds accepted", () => {
	const md5 = new Uint8Array([0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e]);
	const expected: UpdateJob = { form: "fota", protocol: "MQTT", streamId: "fw_stream-1", fileId: 1, fileSize: 1048576, version: "2.0.0", url: "", md5, signature: undefined, filePath: "", options: {} };
	assert.equal(parseJobDocument(fota({ unknown: [1, 2] })), expected);
	assert.equal(parseJobDocument(JSON.stringify(fota())), expected);
	const edges = parseJobDocument(fota({ streamId: "x".repeat(128), fileId: 255, fileSize: 2 ** 31, imageVer: "v 1.0~rc1 (2026-11-22) build#77", md5sum: "d41d8cd98f00b204e9800998ecf8427e" })) as UpdateJob;
	assert.equal([edges.fileId, edges.fileSize, edges.version.length], [255, 2 ** 31, 31]);
	assert.equal((parseJobDocument(fota({ fileId: 0, fileSize: 1 })) as UpdateJob).fileSize, 1);
});

test("size limit: 8 KiB of UTF-8 accepted, a byte more refused, whatever the character count", () => {
	const padded = (bytes: number, unit: string) => {
		const base = JSON.stringify({ ...fota(), pad: "" });
		const units = (bytes - Buffer.byteLength(base)) / Buffer.byteLength(unit);
		return JSON.stringify({ ...fota(), pad: unit.repeat(units) });
	};
	assert.is(Buffer.byteLength(padded(maxDocumentBytes, "a")), 8192);
	assert.is((parseJobDocument(padded(maxDocumentBytes, "a")) as UpdateJob).form, "fota");
	assert.equal(parseJobDocument(padded(maxDocumentBytes + 1, "a")), { error: "document too large", result: Result.unsupportedPackage });
	const wide = padded(maxDocumentBytes + 2, "ü");
	assert.ok(wide.length < maxDocumentBytes);
	assert.equal(parseJobDocument(wide), { error: "document too large", result: Result.unsupportedPackage });
});

const { unsupportedPackage: package6, invalidUri: uri7, unsupportedProtocol: protocol9 } = Result;

// [what, document, expected result, expected reason, options]
const hostile: [string, unknown, number, string, { http?: boolean }?][] = [
	["null", null, package6, "not a job document"],
	["an array", [fota()], package6, "not a job document"],
	["a number", 42, package6, "not a job document"],
	["undefined", undefined, package6, "not a job document"],
	["JSON null", "null", package6, "not a job document"],
	["JSON array", JSON.stringify([afrOta()]), package6, "not a job document"],
	["not JSON", "{\"command\":\"fota\",", package6, "bad json"],
	["9 KiB of JSON", JSON.stringify({ ...fota(), pad: "x".repeat(9 * 1024) }), package6, "document too large"],
	["nested 17 deep", `{"command":"fota","x":${"[".repeat(16)}${"]".repeat(16)}}`, package6, "document too deep"],
	["nested 4000 deep", "[".repeat(4000) + "]".repeat(4000), package6, "document too deep"],
	["empty object", {}, package6, "unknown job"],
	["unknown command", { command: "reboot" }, package6, "unknown job"],
	["command in upper case", fota({ command: "FOTA" }), package6, "unknown job"],
	["afr_ota not an object", { afr_ota: "MQTT" }, package6, "bad afr_ota"],
	["afr_ota null", { afr_ota: null }, package6, "bad afr_ota"],
	["protocols missing", { afr_ota: omit(afrOta().afr_ota, "protocols") }, package6, "bad protocols"],
	["protocols a string", afrOta({ protocols: "MQTT" }), package6, "bad protocols"],
	["protocols holding a number", afrOta({ protocols: ["MQTT", 7] }), package6, "bad protocols"],
	["protocols FTP", afrOta({ protocols: ["FTP"] }), protocol9, "unsupported protocol"],
	["protocols empty", afrOta({ protocols: [] }), protocol9, "unsupported protocol"],
	["protocols in lower case", afrOta({ protocols: ["mqtt"] }), protocol9, "unsupported protocol"],
	["HTTP only, HTTP off", httpOta(), protocol9, "unsupported protocol", { http: false }],
	["files empty", afrOta({ files: [] }), package6, "no files"],
	["files missing", { afr_ota: omit(afrOta().afr_ota, "files") }, package6, "no files"],
	["files an object", afrOta({ files: { 0: mqttFile() } }), package6, "no files"],
	["first file null", afrOta({ files: [null, mqttFile()] }), package6, "bad file"],
	["first file an array", afrOta({ files: [[mqttFile()]] }), package6, "bad file"],
	["filepath missing", afrOta({ files: [omit(mqttFile(), "filepath")] }), package6, "bad file path"],
	["filepath 256 bytes", afrOta({}, { filepath: "é".repeat(128) }), package6, "bad file path"],
	["filesize 0", afrOta({}, { filesize: 0 }), package6, "bad file size"],
	["filesize 2^31 + 1", afrOta({}, { filesize: 2 ** 31 + 1 }), package6, "bad file size"],
	["filesize 1e309", JSON.stringify(afrOta()).replace("181584", "1e309"), package6, "bad file size"],
	["filesize NaN", afrOta({}, { filesize: NaN }), package6, "bad file size"],
	["filesize a string", afrOta({}, { filesize: "181584" }), package6, "bad file size"],
	["filesize a float", afrOta({}, { filesize: 1024.5 }), package6, "bad file size"],
	["filesize negative", afrOta({}, { filesize: -1 }), package6, "bad file size"],
	["fileid 256", afrOta({}, { fileid: 256 }), uri7, "bad file id"],
	["fileid 1.5", afrOta({}, { fileid: 1.5 }), uri7, "bad file id"],
	["fileid -1", afrOta({}, { fileid: -1 }), uri7, "bad file id"],
	["fileid a string", afrOta({}, { fileid: "0" }), uri7, "bad file id"],
	["fileid missing", afrOta({ files: [omit(mqttFile(), "fileid")] }), uri7, "bad file id"],
	["signature not base64", afrOta({}, { "sig-sha256-ecdsa": "MEUC!IQD" }), package6, "bad signature"],
	["signature with a newline", afrOta({}, { "sig-sha256-ecdsa": signatureText.slice(0, 40) + "\n" + signatureText.slice(40) }), package6, "bad signature"],
	["signature of 6 bytes", afrOta({}, { "sig-sha256-ecdsa": "AAAAAAAA" }), package6, "bad signature"],
	["signature of 73 bytes", afrOta({}, { "sig-sha256-ecdsa": Buffer.alloc(73).toString("base64") }), package6, "bad signature"],
	["signature a bad length", afrOta({}, { "sig-sha256-ecdsa": "AAAAA" }), package6, "bad signature"],
	["signature a number", afrOta({}, { "sig-sha256-ecdsa": 12 }), package6, "bad signature"],
	["stream name a/b", afrOta({ streamname: "a/b" }), uri7, "bad stream name"],
	["stream name a+#", afrOta({ streamname: "a+#" }), uri7, "bad stream name"],
	["stream name with NUL", afrOta({ streamname: "abc\u0000" }), uri7, "bad stream name"],
	["stream name with a space", afrOta({ streamname: "a b" }), uri7, "bad stream name"],
	["stream name with a newline", afrOta({ streamname: "abc\n" }), uri7, "bad stream name"],
	["stream name 129 characters", afrOta({ streamname: "s".repeat(129) }), uri7, "bad stream name"],
	["stream name a number", afrOta({ streamname: 5 }), uri7, "bad stream name"],
	["stream name missing", { afr_ota: omit(afrOta().afr_ota, "streamname") }, uri7, "bad stream name"],
	["HTTP without a URL", httpOta({ update_data_url: undefined }), uri7, "missing url"],
	["HTTP with an empty URL", httpOta({ update_data_url: "" }), uri7, "missing url"],
	["HTTP with a URL object", httpOta({ update_data_url: { href: "https://x/" } }), uri7, "missing url"],
	["HTTP with no URL at all", httpOta({ update_data_url: "image.bin" }), uri7, "malformed uri"],
	["HTTP with a URL without host", httpOta({ update_data_url: "https:///x" }), uri7, "missing host"],
	["HTTP with a 2049-byte URL", httpOta({ update_data_url: `https://h/${"a".repeat(2039)}` }), uri7, "url too long"],
	["HTTP over ftp", httpOta({ update_data_url: "ftp://host/image.bin" }), protocol9, "scheme ftp"],
	["HTTP with the scheme constructor", httpOta({ update_data_url: "constructor://host/image.bin" }), protocol9, "scheme constructor"],
	["fota stream id ../x", fota({ streamId: "../x" }), uri7, "bad stream name"],
	["fota stream id with #", fota({ streamId: "s#" }), uri7, "bad stream name"],
	["fota stream id empty", fota({ streamId: "" }), uri7, "bad stream name"],
	["fota fileId 256", fota({ fileId: 256 }), uri7, "bad file id"],
	["fota fileId a float", fota({ fileId: 0.5 }), uri7, "bad file id"],
	["fota fileSize huge", fota({ fileSize: Number.MAX_SAFE_INTEGER }), package6, "bad file size"],
	["fota fileSize a string", fota({ fileSize: "1048576" }), package6, "bad file size"],
	["fota fileSize Infinity", fota({ fileSize: Infinity }), package6, "bad file size"],
	["fota imageVer 32 bytes", fota({ imageVer: "1".repeat(32) }), package6, "bad version"],
	["fota imageVer empty", fota({ imageVer: "" }), package6, "bad version"],
	["fota imageVer with a newline", fota({ imageVer: "2.0\n" }), package6, "bad version"],
	["fota imageVer not ASCII", fota({ imageVer: "2.0ü" }), package6, "bad version"],
	["fota imageVer a number", fota({ imageVer: 2 }), package6, "bad version"],
	["fota md5 31 hex", fota({ md5sum: "d41d8cd98f00b204e9800998ecf8427" }), package6, "bad md5"],
	["fota md5 33 hex", fota({ md5sum: "d41d8cd98f00b204e9800998ecf8427e0" }), package6, "bad md5"],
	["fota md5 not hex", fota({ md5sum: "g41d8cd98f00b204e9800998ecf8427e" }), package6, "bad md5"],
	["fota md5 missing", omit(fota(), "md5sum"), package6, "bad md5"],
	["__proto__ holding a fota job, as JSON", `{"__proto__": ${JSON.stringify(fota())}}`, package6, "unknown job"],
	["inherited fota fields", inherits(fota()), package6, "unknown job"],
	["fota command own, other fields inherited", inherits(fota(), { command: "fota" }), uri7, "bad stream name"],
	["afr_ota with inherited protocols, as JSON", JSON.stringify(afrOta()).replace('"protocols"', '"__proto__":{"protocols":["MQTT"]},"x"'), package6, "bad protocols"],
	["a file with inherited fields", afrOta({ files: [inherits(mqttFile())] }), package6, "bad file path"],
	["command constructor", { command: "constructor" }, package6, "unknown job"],
];

test(`${hostile.length} hostile documents: each refused with its result and reason`, () => {
	assert.ok(hostile.length >= 25);
	for (const [what, document, result, error, options] of hostile)
		assert.equal(parseJobDocument(document, options), { error, result }, what);
	for (const key of ["command", "streamId", "protocols", "afr_ota", "files"])
		assert.is((({}) as { [key: string]: unknown })[key], undefined, `Object.prototype.${key}`);
});

test("thing names allow colons; stream ids only [a-zA-Z0-9_-]; both 1..128 and topic-safe", () => {
	for (const name of ["thing", "my:thing_1-A", "x".repeat(128), "0"])
		assert.ok(validThingName(name), name);
	for (const name of ["", "a/b", "a+b", "a#", "a b", "a\u0000", "a\n", "x".repeat(129), "ü", "$aws"])
		assert.not.ok(validThingName(name), JSON.stringify(name));
	assert.ok(validStreamId("AFR_OTA-9ddfa5ab"));
	for (const id of ["a:b", "", "a/b", "a.b", 5, null, "x".repeat(129)])
		assert.not.ok(validStreamId(id), JSON.stringify(id));
});

test.run();
