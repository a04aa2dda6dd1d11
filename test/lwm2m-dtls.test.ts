// LwM2M over DTLS with a pre-shared key (Security Mode 0): host-sim's own DTLS server (host-sim/server/
// dtls-server.ts) in front of the LwM2M server and of a coaps:// package server, checked first against libcoap's
// coap-client (OpenSSL), then driving whole updates of the simulated board on both engines — registration,
// observe, a coaps:// pull cut twice (once mid-transfer, once mid-handshake) — and refusing an unknown identity.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { runDevice, type DeviceCommand, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { assertNewFirmware, logged, tempDir, traced } from "./support/sim";
import { securityObject } from "../src/lwm2m/device-objects";
import { parseServerUri } from "../src/lwm2m/registration";

const psk = { identity: "board-psk", key: new TextEncoder().encode("lwm2m-dtls-key16") };
const credentials = { "psk-identity": new TextEncoder().encode(psk.identity), "psk-key": psk.key };
let lwm2m: Lwm2mServer, files: CoapFileServer;
/** A server that never finishes the handshake: a UDP socket that reads every datagram and answers none. */
let silent: dgram.Socket, heard = 0;
const image = makeAppImage({ size: 96 * 1024, version: "2.0.0" });

test.before(async () => {
	lwm2m = await Lwm2mServer.start({ psk });
	files = await CoapFileServer.start({ psk });
	files.serve("/fw/app.bin", image);
	silent = dgram.createSocket("udp4").on("message", () => heard++);
	await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
});

test.after(async () => {
	await lwm2m.close();
	await files.close();
	silent.close();
});

test("Security object: Mode 0 with the provisioned identity (3) and key (5) for coaps://, NoSec and nothing for coap://; default ports", () => {
	const settings = { serverUri: "coaps://lwm2m.example:5684", shortServerId: 1, lifetime: 300, minPeriod: 0, maxPeriod: 0 };
	const security = securityObject(settings, () => ({ identity: credentials["psk-identity"], key: psk.key }));
	assert.is(security.read(0, 2), 0);
	assert.equal(security.read(0, 3), credentials["psk-identity"]);
	assert.equal(security.read(0, 5), psk.key);
	settings.serverUri = "coap://lwm2m.example";
	assert.is(security.read(0, 2), 3);
	assert.equal(security.read(0, 5), new Uint8Array(0));
	assert.equal(parseServerUri("coaps://lwm2m.example"), { host: "lwm2m.example", port: 5684, secure: true });
	assert.equal(parseServerUri("coap://lwm2m.example"), { host: "lwm2m.example", port: 5683, secure: false });
});

const coapClient = ["/usr/bin/coap-client-openssl", "/usr/bin/coap-client"].find((file) => fs.existsSync(file));
if (!coapClient) console.log("lwm2m-dtls.test.ts: coap-client not found (apt-get install libcoap3-bin): its checks of our DTLS server skipped");

/** libcoap's coap-client with a PSK (asynchronously: our server answers from this process). It logs to stdout, after what it received. */
async function coapClientRun(args: string[], identity: string, key: string): Promise<{ code: number; stdout: Buffer; stderr: string }> {
	const run = promisify(execFile);
	try {
		const { stdout, stderr } = await run(coapClient!, ["-u", identity, "-k", key, "-B", "10", ...args], { encoding: "buffer", timeout: 30000 });
		return { code: 0, stdout, stderr: stderr.toString() };
	}
	catch (error) {
		const failed = error as { code: number; stdout: Buffer; stderr: Buffer };
		return { code: failed.code, stdout: failed.stdout, stderr: String(failed.stderr) };
	}
}

if (coapClient) {
	test("coap-client (OpenSSL) registers with our LwM2M server over DTLS and GETs a file from our coaps:// server", async () => {
		const key = Buffer.from(psk.key).toString("latin1");
		const handshakes = lwm2m.dtls!.stats.handshakes;
		const registered = await coapClientRun(["-m", "post", `${lwm2m.url}/rd?ep=coap-client&lt=60`], psk.identity, key);
		assert.is(registered.code, 0, registered.stderr);
		assert.ok(lwm2m.registration("coap-client"), "registered");
		assert.is(lwm2m.dtls!.stats.handshakes, handshakes + 1);
		const fetched = await coapClientRun(["-m", "get", "-b", "1024", files.url("/fw/app.bin")], psk.identity, key);
		// coap-client ends what it prints with a newline.
		assert.is(sha256Hex(fetched.stdout.subarray(0, image.length)), sha256Hex(image), fetched.stderr);
		assert.is(fetched.stdout.length, image.length + 1);
	});

	test("coap-client: an unknown identity is refused with unknown_psk_identity, a wrong key never connects", async () => {
		const refused = lwm2m.dtls!.stats.refused, handshakes = lwm2m.dtls!.stats.handshakes;
		const unknown = await coapClientRun(["-m", "post", `${lwm2m.url}/rd?ep=stranger&lt=60`], "stranger", "whatever");
		assert.match(unknown.stdout.toString(), /alert read:fatal:unknown PSK identity/, unknown.stdout.toString());
		assert.is(lwm2m.dtls!.stats.refused, refused + 1);
		const wrong = await coapClientRun(["-m", "post", `${lwm2m.url}/rd?ep=wrong-key&lt=60`], psk.identity, "not the key");
		assert.not.ok(lwm2m.registration("stranger") || lwm2m.registration("wrong-key"));
		assert.is(lwm2m.dtls!.stats.handshakes, handshakes, wrong.stderr);
	});
}

class Operator extends Lwm2mUpdate {
	readonly commands: DeviceCommand[] = [];

	constructor(endpoint: string, start: (operator: Lwm2mUpdate) => Promise<unknown>) {
		super(lwm2m, endpoint, start, () => this.commands.push({ action: "shutdown" }));
	}
}

async function boardRun(dir: string, engine: "node" | "xs", operator: Operator, run: { cutAfterOps?: number; runFor?: number } = {}): Promise<{ outcome: DeviceOutcome; events: DeviceReport[] }> {
	const events: DeviceReport[] = [];
	const outcome = await runDevice({
		dir, engine, cutAfterOps: run.cutAfterOps, runFor: run.runFor ?? 120000, commands: operator.commands, credentials, provisioned: true,
		config: { lwm2m: lwm2m.url, endpoint: operator.endpoint, lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100, coapAckTimeoutMs: 2000 },
		onEvent: (event) => event.event !== "progress" && events.push(event),
	});
	return { outcome, events };
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an update driven over DTLS — registration, observe, a coaps:// pull cut mid-transfer and mid-handshake — ends byte-identical`, async () => {
		const dir = tempDir(`lwm2m-dtls-${engine}`);
		let securityRead = "";
		const operator = new Operator(`dtls-${engine}`, async (op) => {
			securityRead = (await lwm2m.read(op.endpoint, "/0/0")).code;
			return lwm2m.write(op.endpoint, "/5/0/1", files.url("/fw/app.bin"));
		});
		const served = files.stats.bytes;
		try {
			const first = await boardRun(dir, engine, operator, { cutAfterOps: 40 });
			assert.is(first.outcome.end, "power-cut");
			assert.ok(first.events.some((e) => e.event === "state" && e.state === 1), "the cut came after the download started");
			assert.not.ok(first.events.some((e) => e.event === "state" && e.state === 2), "and before it ended");
			const registration = lwm2m.registration(operator.endpoint)!;
			assert.match(registration.objectLinks, /<\/5\/0>/);
			assert.is(securityRead, "4.01", "the Security object (with the PSK) is not the server's to read");

			// The package server hears the ClientHellos and answers none: the power goes while the handshake waits.
			files.dtls!.silent = true;
			const hellos = files.dtls!.stats.clientHellos;
			const second = await boardRun(dir, engine, operator, { runFor: 4000 }).finally(() => (files.dtls!.silent = false));
			assert.is(second.outcome.end, "time-up");
			assert.ok(files.dtls!.stats.clientHellos > hellos, "a handshake was under way");

			const last = await boardRun(dir, engine, operator);
			assertNewFirmware(last.outcome, sha256Hex(image), "2.0.0", engine);
			assert.is(operator.results[operator.results.length - 1], 1);
			assert.ok(operator.states.includes(2) && operator.states.includes(3), `observed States ${operator.path.join(",")}`);
			const refetched = files.stats.bytes - served - image.length;
			assert.ok(refetched >= 0 && refetched <= 16384 + 4096, `${engine}: re-fetched ${refetched} bytes, at most a checkpoint and a sector`);
		}
		finally {
			operator.close();
		}
	});

	test(`${engine}: a coaps:// pull from a server that does not know the identity ends with 7 and "dtls: unknown psk identity"`, async () => {
		const outcome = await traced({
			dir: tempDir(`dtls-unknown-${engine}`), engine, url: files.url("/fw/app.bin"), provisioned: true,
			credentials: { ...credentials, "psk-identity": new TextEncoder().encode("someone-else") },
		});
		assert.is(outcome.result, 7, outcome.logs.join("\n"));
		assert.ok(logged(outcome, "download failed: dtls: unknown psk identity"), outcome.logs.join("\n"));
		assert.is(outcome.running.slot, 0);
	});

	test(`${engine}: a coaps:// pull from a server that never answers the handshake ends with 4 and "dtls: handshake timeout"`, async () => {
		// dtlsTimeoutMs shortens RFC 6347's first wait (1 s): the board waits in real time while its socket can
		// still hear from the server, so each of the 8 attempts would otherwise take 31 s.
		const before = heard;
		const outcome = await traced({
			dir: tempDir(`dtls-silent-${engine}`), engine, url: `coaps://127.0.0.1:${silent.address().port}/fw/app.bin`, provisioned: true, credentials,
			runFor: 60000, config: { dtlsTimeoutMs: 10, backoffBaseMs: 100 },
		});
		assert.is(outcome.result, 4, outcome.logs.join("\n"));
		assert.ok(logged(outcome, "download failed: dtls: handshake timeout"), outcome.logs.join("\n"));
		assert.is(outcome.running.slot, 0);
		assert.ok(heard - before >= 8 * 5, `${engine}: the silent server heard ${heard - before} ClientHellos, 5 per attempt expected`);
	});
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an LwM2M coaps:// server that never answers: "dtls: handshake timeout" logged again and again, the factory image runs`, async () => {
		const events: DeviceReport[] = [];
		const outcome = await runDevice({
			dir: tempDir(`lwm2m-dtls-silent-${engine}`), engine, runFor: 3000, provisioned: true, credentials,
			config: { lwm2m: `coaps://127.0.0.1:${silent.address().port}`, endpoint: "dtls-silent", registrationRetryMs: 300, dtlsTimeoutMs: 10 },
			onEvent: (event) => events.push(event),
		});
		const lines = events.filter((e) => e.event === "log").map((e) => String(e.message));
		assert.ok(lines.filter((line) => line.includes("dtls: handshake timeout")).length >= 2, lines.join("\n"));
		assert.is(outcome.running.slot, 0);
	});
}

test("node: a wrong key against our server (which drops the Finished it cannot read, as OpenSSL does) ends with 7 and \"dtls: bad psk\"", async () => {
	const outcome = await traced({
		dir: tempDir("dtls-wrong-ours"), engine: "node", url: files.url("/fw/app.bin"), provisioned: true,
		credentials: { ...credentials, "psk-key": new TextEncoder().encode("another-key-0000") },
	});
	assert.is(outcome.result, 7, outcome.logs.join("\n"));
	assert.ok(logged(outcome, "download failed: dtls: bad psk"), outcome.logs.join("\n"));
});

test("node: an LwM2M server that refuses the identity gets no registration; the device says why and keeps trying", async () => {
	const operator = new Operator("dtls-stranger", async () => {});
	try {
		const events: DeviceReport[] = [];
		await runDevice({
			dir: tempDir("lwm2m-dtls-stranger"), engine: "node", runFor: 3000, provisioned: true,
			credentials: { ...credentials, "psk-identity": new TextEncoder().encode("stranger") },
			config: { lwm2m: lwm2m.url, endpoint: operator.endpoint, registrationRetryMs: 300 },
			onEvent: (event) => events.push(event),
		});
		const lines = events.filter((e) => e.event === "log").map((e) => String(e.message));
		assert.not.ok(lwm2m.registration(operator.endpoint));
		assert.ok(lines.filter((line) => line.includes("dtls: unknown psk identity")).length >= 2, lines.join("\n"));
	}
	finally {
		operator.close();
	}
});

test.run();
