// An LwM2M server drives the simulated board, on both engines: it registers the board, observes State
// (/5/0/3) and Update Result (/5/0/5), writes Package URI (http and coap) or pushes the Package by Block1,
// executes Update when the board reports Downloaded, and must see 1 → 2 → 3 → 0 with result 1 — also when
// power is cut during the download, the switch or the final notification. Cancel ends with 10. The server
// (host-sim/server/lwm2m-server.ts) is built on the npm coap library, independent of the device's CoAP code.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { factoryVersion, runDevice, type DeviceCommand, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import type { UdpFaults } from "../host-sim/board/udp-network";
import { assertNewFirmware, tempDir } from "./support/sim";

const engines = ["node", "xs"] as const;
let lwm2m: Lwm2mServer, files: CoapFileServer, http: UpdateServer, www: string;
let image: Uint8Array, imageSha: string;
let endpoints = 0;

test.before(async () => {
	lwm2m = await Lwm2mServer.start();
	files = await CoapFileServer.start();
	www = tempDir("lwm2m-www");
	image = makeAppImage({ size: 160 * 1024, version: "2.0.0" });
	imageSha = sha256Hex(image);
	fs.writeFileSync(path.join(www, "app.bin"), image);
	files.serve("/fw/app.bin", image);
	http = await startUpdateServer({ dir: www });
});

test.after(async () => {
	await lwm2m.close();
	await files.close();
	await http.close();
});

/** The server's side of an update (host-sim/server/lwm2m-update.ts), ending the board's run once it hears a final result. */
class Operator extends Lwm2mUpdate {
	readonly commands: DeviceCommand[] = [];

	constructor(endpoint: string, start: (operator: Lwm2mUpdate) => Promise<unknown>) {
		super(lwm2m, endpoint, start, () => this.commands.push({ action: "shutdown" }));
	}
}

interface Session {
	outcome: DeviceOutcome;
	events: DeviceReport[];
}

let udpFaults: UdpFaults | undefined;
let coapAckTimeoutMs = 2000;

async function boardRun(dir: string, engine: "node" | "xs", operator: Operator, cutAfterOps?: number, runFor = 120000): Promise<Session> {
	const events: DeviceReport[] = [];
	const outcome = await runDevice({
		dir, engine, cutAfterOps, runFor, commands: operator.commands, udpFaults,
		config: { lwm2m: lwm2m.url, endpoint: operator.endpoint, lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100, coapAckTimeoutMs },
		onEvent: (event) => event.event !== "progress" && events.push(event),
	});
	return { outcome, events };
}

/** Runs the board until the operator has heard a final result, across power cuts at `cuts` (op counts, first run). */
async function update(engine: "node" | "xs", start: (operator: Lwm2mUpdate) => Promise<unknown>, cuts: number[] = []): Promise<{ operator: Operator; last: Session; all: Session[] }> {
	const dir = tempDir(`lwm2m-${engine}`);
	const operator = new Operator(`board-${engine}-${++endpoints}`, start);
	const all: Session[] = [];
	try {
		for (const cut of cuts) {
			const session = await boardRun(dir, engine, operator, cut);
			all.push(session);
			assert.is(session.outcome.end, "power-cut", `cut at ${cut} happened`);
		}
		const last = await boardRun(dir, engine, operator);
		all.push(last);
		return { operator, last, all };
	}
	finally {
		operator.close();
	}
}

/**
	The new image runs and the server's last word is State 0 with result 1, never a failure. Without cuts it heard
	every State in order; a cut may take the session with it, and a server that observes afresh hears only where
	the update stands (a State passed meanwhile is not notified).
*/
function assertUpdated(operator: Operator, outcome: DeviceOutcome, what: string, cut = false): void {
	assertNewFirmware(outcome, imageSha, "2.0.0", what);
	const path = operator.path;
	const order = (cut ? [1, 0] : [1, 2, 3, 0]).map((state) => path.lastIndexOf(state));
	assert.ok(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1])), `${what}: the server heard 1, 2, 3, 0 in order (heard ${path.join(",")})`);
	assert.is(operator.results[operator.results.length - 1], 1, `${what}: final result 1`);
	if (!cut) assert.equal(operator.executed, ["2.04"], `${what}: Execute Update answered before the reboot`);
	assert.ok(operator.results.every((result) => result === 0 || result === 1), `${what}: no failure was ever reported (${operator.results.join(",")})`);
}

const writeUri = (uri: () => string) => (operator: Lwm2mUpdate) => lwm2m.write(operator.endpoint, "/5/0/1", uri());

const timed = (name: string, body: () => Promise<void>) => test(name, async () => {
	const started = Date.now();
	await body();
	console.log(`  ${name}: ${Date.now() - started} ms`);
});

for (const engine of engines) {
	timed(`${engine}: registration, reads in every format, discover, write-attributes, and a Package URI (http) update`, async () => {
		let checked = false;
		const { operator, last } = await update(engine, async (op) => {
			const registration = lwm2m.registration(op.endpoint)!;
			assert.is(registration.lwm2mVersion, "1.1");
			assert.is(registration.binding, "U");
			assert.match(registration.objectLinks, /<\/5>;ver=1\.1/);
			assert.match(registration.objectLinks, /<\/5\/0>/);
			assert.not.match(registration.objectLinks, /<\/0/, "the Security object is not announced");
			for (const format of ["tlv", "senml-json", "senml-cbor"] as const) {
				const device = await lwm2m.read(op.endpoint, "/3/0", format);
				assert.is(device.code, "2.05", format);
				const value = device.value as { [id: number]: unknown };
				assert.is(value[3], factoryVersion, `${format}: firmware version`);
				assert.is(value[16], "U", format);
			}
			assert.equal(await lwm2m.read(op.endpoint, "/5/0/9", "text"), { code: "2.05", format: "text", value: 2 });
			assert.is((await lwm2m.read(op.endpoint, "/0/0")).code, "4.01");
			assert.is((await lwm2m.read(op.endpoint, "/4/0")).code, "4.04");
			assert.is((await lwm2m.read(op.endpoint, "/5/0/2")).code, "4.05", "Update is executable, not readable");
			assert.match((await lwm2m.discover(op.endpoint, "/5/0")).links, "</5/0/8>;dim=3");
			assert.is(await lwm2m.writeAttributes(op.endpoint, "/5/0/3", { pmin: 0, pmax: 300 }), "2.04");
			assert.match((await lwm2m.discover(op.endpoint, "/5/0/3")).links, "pmax=300");
			assert.is(await lwm2m.write(op.endpoint, "/5/0/3", 1, { format: "text" }), "4.05", "State is read-only");
			checked = true;
			return lwm2m.write(op.endpoint, "/5/0/1", http.url + "/app.bin");
		});
		assert.ok(checked);
		assertUpdated(operator, last.outcome, engine);
	});

	timed(`${engine}: a coap:// Package URI, with a cut in the download, resumes on the same ETag`, async () => {
		const before = files.stats.bytes;
		const probe = await update(engine, writeUri(() => files.url("/fw/app.bin")));
		assertUpdated(probe.operator, probe.last.outcome, `${engine} probe`);
		const downloadOps = probe.all[0].events.filter((e) => e.event === "state").map((e) => Number(e.op));
		const cut = Math.round((downloadOps[0] + downloadOps[1]) / 2);
		const served = files.stats.bytes;
		const { operator, last } = await update(engine, writeUri(() => files.url("/fw/app.bin")), [cut]);
		assertUpdated(operator, last.outcome, `${engine} cut at ${cut}`, true);
		const refetched = files.stats.bytes - served - image.length;
		assert.ok(refetched >= 0 && refetched <= 16384 + 4096, `${engine}: re-fetched ${refetched} bytes, at most a checkpoint and a sector`);
		assert.ok(served - before >= image.length);
	});

	timed(`${engine}: a coap:// package replaced during a cut is fetched again from its start, never spliced`, async () => {
		const first = makeAppImage({ size: 160 * 1024, version: "2.0.0" }), second = makeAppImage({ size: 150 * 1024, version: "2.0.0" });
		const name = `/fw/changing-${engine}.bin`;
		files.serve(name, first);
		const dir = tempDir(`lwm2m-${engine}`);
		const operator = new Operator(`board-${engine}-${++endpoints}`, writeUri(() => files.url(name)));
		try {
			const cut = await boardRun(dir, engine, operator, 60);
			assert.is(cut.outcome.end, "power-cut");
			files.replace(name, second);
			const last = await boardRun(dir, engine, operator);
			assert.is(last.outcome.result, 1);
			assert.is(last.outcome.running.sha256, sha256Hex(second), "the replacement runs, whole");
			assert.ok(cut.events.some((e) => e.event === "state" && e.state === 1));
			assert.not.ok(operator.results.some((result) => result > 1), operator.results.join());
		}
		finally {
			operator.close();
		}
	});

	timed(`${engine}: power cuts during the switch and during the final notification end the same way`, async () => {
		const probe = await update(engine, writeUri(() => http.url + "/app.bin"));
		const ops = probe.all.flatMap((session) => session.events).filter((e) => e.event === "state");
		const updating = ops.find((e) => e.state === 3)!, success = ops.find((e) => e.state === 0 && e.result === 1)!;
		// Cuts count from the run's first boot: the success comes after the reboot of the switch.
		for (const cut of [Number(updating.op) + 2, Number(success.op) + 1]) {
			const { operator, last } = await update(engine, writeUri(() => http.url + "/app.bin"), [cut]);
			assertUpdated(operator, last.outcome, `${engine} cut at ${cut}`, true);
		}
	});

	timed(`${engine}: a Package pushed by Block1 is written as it arrives and installs`, async () => {
		let pushed = "";
		const { operator, last } = await update(engine, async (op) => {
			pushed = await lwm2m.push(op.endpoint, "/5/0/0", Buffer.from(image), { blockSize: 1024 });
		});
		assert.is(pushed, "2.04");
		assertUpdated(operator, last.outcome, `${engine} push`);
	});

	timed(`${engine}: a coap:// update through lost, duplicated and reordered datagrams`, async () => {
		udpFaults = { loss: 0.05, duplicate: 0.1, reorder: 0.1, seed: engine === "node" ? 7 : 8 };
		coapAckTimeoutMs = 300;
		try {
			const { operator, last } = await update(engine, writeUri(() => files.url("/fw/app.bin")));
			assertUpdated(operator, last.outcome, `${engine} with faults`);
		}
		finally {
			udpFaults = undefined;
			coapAckTimeoutMs = 2000;
		}
	});

	timed(`${engine}: a coap:// update where the device reads only 1024 bytes of a datagram (Moddable's Linux simulator)`, async () => {
		udpFaults = { receiveBytes: 1024 };
		try {
			const { operator, last, all } = await update(engine, writeUri(() => files.url("/fw/app.bin")));
			assertUpdated(operator, last.outcome, `${engine} short datagrams`);
			assert.ok(all.some((s) => s.events.some((e) => e.event === "log" && String(e.message).includes("short block"))), "the pull asked for smaller blocks");
		}
		finally {
			udpFaults = undefined;
		}
	});

	timed(`${engine}: Cancel during the download ends with 10 and the factory image keeps running`, async () => {
		files.serve("/fw/big.bin", makeAppImage({ size: 1536 * 1024, version: "3.0.0" }));
		let cancelled = "";
		const { operator, last } = await update(engine, async (op) => {
			await lwm2m.write(op.endpoint, "/5/0/1", files.url("/fw/big.bin"));
			for (let i = 0; i < 200 && !op.states.includes(1); i++) await new Promise((resolve) => setTimeout(resolve, 10));
			cancelled = await lwm2m.execute(op.endpoint, "/5/0/10");
		});
		assert.is(cancelled, "2.04");
		assert.is(last.outcome.result, 10);
		assert.is(last.outcome.running.version, factoryVersion);
		assert.is(operator.results[operator.results.length - 1], 10);
	});
}

test.run();
