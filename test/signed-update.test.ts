// Signed updates on simulated boards, on both engines (issue 23): Secure Boot v2 signature blocks verified before
// the boot switch over HTTP, a coap:// pull and a Block1 push; every refusal ends in Idle with its LwM2M result
// and reason, the factory image still running from slot 0.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { factoryVersion, runDevice, type DeviceCommand, type DeviceOutcome } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { keyDigestOf, signImage } from "../host-sim/signing";
import { crcOffset, signedLength } from "../src/agent/signature-block";
import { assertNewFirmware, assertOldFirmware, logged, tempDir, traced } from "./support/sim";

const engines = ["node", "xs"] as const;
const fixtures = path.join(import.meta.dirname, "fixtures", "signed");
const rsaKey = fs.readFileSync(path.join(fixtures, "rsa3072-test-key.pem"));
const ecKey = fs.readFileSync(path.join(fixtures, "p256-test-key.pem"));
const otherKey = fs.readFileSync(path.join(fixtures, "p256-other-test-key.pem"));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** The factory image signed with the RSA key: its block makes that key the trusted one. */
const signedFactory = signImage(makeAppImage({ size: 128 * 1024, version: factoryVersion }), [rsaKey]);
// Not a whole number of sectors: the signed data ends in 0xFF padding.
const newImage = makeAppImage({ size: 120_000, version: "2.0.0" });

let www: string;
let server: UpdateServer;

test.before(async () => {
	www = tempDir("signed-www");
	server = await startUpdateServer({ dir: www, port: 0 });
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

function publish(name: string, bytes: Uint8Array): string {
	fs.writeFileSync(path.join(www, name), bytes);
	return `${server.url}/${name}`;
}

const requireSignature = { requireSignature: true };

for (const engine of engines) {
	test(`${engine}: http: an image signed with the running image's RSA key installs under requireSignature`, async () => {
		const signed = signImage(newImage, [rsaKey]);
		const outcome = await traced({ dir: tempDir("board"), engine, url: publish(`rsa-${engine}.bin`, signed), factoryImage: signedFactory, config: requireSignature });
		assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 0 (rsa) verified"));
	});

	test(`${engine}: http: an ECDSA P-256 image by a provisioned key installs; a CRC-bad block before it is skipped`, async () => {
		const signed = signImage(newImage, [otherKey, ecKey]);
		signed[signedLength(newImage.length) + crcOffset] ^= 1;
		const outcome = await traced({ dir: tempDir("board"), engine, url: publish(`ec-${engine}.bin`, signed), config: { ...requireSignature, trustedKeys: hex(keyDigestOf(ecKey)) } });
		assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 1 (ecdsa) verified"));
	});

	for (const [name, bytes, reason] of [
		["an unsigned image", newImage, "image not signed"],
		["an image signed by another key", signImage(newImage, [otherKey]), "not signed by a trusted key"],
		["a tampered signed image", tamper(signImage(newImage, [rsaKey])), "signature mismatch"],
	] as const) {
		test(`${engine}: http: ${name} is refused with 5 ("${reason}"), the factory image running`, async () => {
			const outcome = await traced({ dir: tempDir("board"), engine, url: publish(`refused-${engine}.bin`, bytes), factoryImage: signedFactory, config: requireSignature });
			assertOldFirmware(outcome, 5, `${engine} ${name}`);
			assert.ok(logged(outcome, `download failed: ${reason}`), outcome.logs.join("\n"));
		});
	}

	test(`${engine}: http: an image signed by Espressif's espsecure (fixture) installs with its key digest provisioned`, async () => {
		const signed = new Uint8Array(fs.readFileSync(path.join(fixtures, "espsecure-p256.bin")));
		const digest = fs.readFileSync(path.join(fixtures, "p256-test-key.digest"));
		const outcome = await traced({ dir: tempDir("board"), engine, url: publish(`espsecure-${engine}.bin`, signed), config: { ...requireSignature, trustedKeys: hex(digest) } });
		assertNewFirmware(outcome, sha256Hex(fs.readFileSync(path.join(fixtures, "app-2.0.0.bin"))), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 0 (ecdsa) verified"));
	});

	test(`${engine}: http: a lower secure_version is refused with 8, also when the download was cut and resumed`, async () => {
		const factory = makeAppImage({ size: 128 * 1024, version: factoryVersion, secureVersion: 2 });
		const older = makeAppImage({ size: 300 * 1024, version: "2.0.0", secureVersion: 1 });
		const url = publish(`rollback-${engine}.bin`, older);
		const plain = await traced({ dir: tempDir("board"), engine, url, factoryImage: factory });
		assertOldFirmware(plain, 8, engine);
		assert.ok(logged(plain, "download failed: secure version 1 is below the running 2"));

		const board = tempDir("board");
		const cut = await runDevice({ dir: board, engine, url, factoryImage: factory, cutAfterOps: 20, config: { backoffBaseMs: 100, stallMs: 2000 } });
		assert.is(cut.end, "power-cut");
		assert.is(cut.state, 1, "cut during the download");
		const resumed = await traced({ dir: board, engine });
		assertOldFirmware(resumed, 8, `${engine} after the cut`);
		assert.ok(cut.bytesFetched > 0 && resumed.bytesFetched > 0, "the download began before the cut and went on after it");
	});
}

/** A byte of the signed padding changed: the image itself still passes its own checks. */
function tamper(signed: Uint8Array): Uint8Array {
	assert.ok(newImage.length + 1 < signedLength(newImage.length));
	signed[newImage.length + 1] ^= 0xff;
	return signed;
}

// The same verification on the LwM2M paths: a coap:// pull and a Block1 push.
let lwm2m: Lwm2mServer, files: CoapFileServer;
let endpoints = 0;

test.before(async () => {
	lwm2m = await Lwm2mServer.start();
	files = await CoapFileServer.start();
});
test.after(async () => {
	await lwm2m.close();
	await files.close();
});

async function lwm2mUpdate(engine: "node" | "xs", start: (operator: Lwm2mUpdate) => Promise<unknown>): Promise<{ outcome: DeviceOutcome; results: number[]; logs: string[] }> {
	const commands: DeviceCommand[] = [];
	const endpoint = `signed-${engine}-${++endpoints}`;
	const operator = new Lwm2mUpdate(lwm2m, endpoint, start, () => commands.push({ action: "shutdown" }));
	const logs: string[] = [];
	try {
		const outcome = await runDevice({
			dir: tempDir("signed-lwm2m"), engine, commands, runFor: 120000, factoryImage: signedFactory,
			config: { lwm2m: lwm2m.url, endpoint, lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100, ...requireSignature },
			onEvent: (event) => event.event === "log" && logs.push(String(event.message)),
		});
		return { outcome, results: operator.results, logs };
	}
	finally {
		operator.close();
	}
}

for (const engine of engines) {
	test(`${engine}: coap:// pull: an RSA-signed image installs, an ECDSA one by an untrusted key is refused with 5`, async () => {
		const signed = signImage(newImage, [rsaKey]);
		files.serve(`/fw/signed-${engine}.bin`, signed);
		const good = await lwm2mUpdate(engine, (op) => lwm2m.write(op.endpoint, "/5/0/1", files.url(`/fw/signed-${engine}.bin`)));
		assertNewFirmware(good.outcome, sha256Hex(newImage), "2.0.0", `${engine} coap`);
		files.serve(`/fw/other-${engine}.bin`, signImage(newImage, [otherKey]));
		const bad = await lwm2mUpdate(engine, (op) => lwm2m.write(op.endpoint, "/5/0/1", files.url(`/fw/other-${engine}.bin`)));
		assertOldFirmware(bad.outcome, 5, `${engine} coap other key`);
		assert.is(bad.results[bad.results.length - 1], 5, "the server heard 5");
		assert.ok(bad.logs.some((line) => line.includes("not signed by a trusted key")));
	});

	test(`${engine}: Block1 push: a signed image installs, an unsigned one is refused with 5`, async () => {
		const signed = signImage(newImage, [rsaKey]);
		const good = await lwm2mUpdate(engine, (op) => lwm2m.push(op.endpoint, "/5/0/0", Buffer.from(signed), { blockSize: 1024 }));
		assertNewFirmware(good.outcome, sha256Hex(newImage), "2.0.0", `${engine} push`);
		const bad = await lwm2mUpdate(engine, (op) => lwm2m.push(op.endpoint, "/5/0/0", Buffer.from(newImage), { blockSize: 1024 }));
		assertOldFirmware(bad.outcome, 5, `${engine} push unsigned`);
		assert.is(bad.results[bad.results.length - 1], 5, "the server heard 5");
		assert.ok(bad.logs.some((line) => line.includes("image not signed")));
	});
}

test.run();
