// The LwM2M client's answers at the edges of its requests, on both engines (issue 20): resource-instance
// paths, writes in Block1 parts (gathered whole or refused, never applied in part), the Package in every
// format an Opaque resource may be written in, pmin across Registration Updates, the lifetime's one minimum,
// and an orderly shutdown that ends promptly and de-registers, also right after a burst of random and mutated
// datagrams. The board runs against the local server (host-sim/server/lwm2m-server.ts); single Block1 parts, a
// silent observer and the burst come from a bare UDP socket.

import { test } from "uvu";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as assert from "uvu/assert";
import { Lwm2mServer, type Registration } from "../host-sim/server/lwm2m-server";
import { runDevice, type DeviceCommand, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import { RawCoapPeer, block, option, uint, uintOf } from "./support/raw-coap-peer";
import { tempDir } from "./support/sim";
import { makeAppImage } from "../host-sim/image";
import { seeded } from "../host-sim/random";
import { generate } from "coap-packet";

const engines = ["node", "xs"] as const;
const root = fileURLToPath(new URL("..", import.meta.url));
let lwm2m: Lwm2mServer;
let peer: RawCoapPeer;
let boards = 0;

test.before(async () => {
	lwm2m = await Lwm2mServer.start();
	peer = await RawCoapPeer.open();
});

test.after(async () => {
	await lwm2m.close();
	await peer.close();
});

interface Run {
	outcome: DeviceOutcome;
	events: DeviceReport[];
	commands: DeviceCommand[];
}

/**
	Boots a board that registers with the server, runs `script` once it has, then shuts the board down (the
	script may do so itself through `commands`). Script failures are thrown after the run.
*/
async function withBoard(engine: "node" | "xs", script: (endpoint: string, registration: Registration, run: Run) => Promise<void>,
	config: Record<string, unknown> = {}): Promise<Run> {
	const endpoint = `requests-${engine}-${++boards}`;
	const run: Run = { outcome: undefined!, events: [], commands: [] };
	const scripted = lwm2m.waitForRegistration(endpoint, 60000).then((registration) => script(endpoint, registration, run))
		.finally(() => run.commands.push({ action: "shutdown" }));
	scripted.catch(() => {});
	run.outcome = await runDevice({
		dir: tempDir(`requests-${engine}`), engine, commands: run.commands, runFor: 600000,
		config: { lwm2m: lwm2m.url, endpoint, lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100, ...config },
		onEvent: (event) => event.event !== "progress" && run.events.push(event),
	});
	await scripted;
	return run;
}

/** Runs `trigger` and resolves once the endpoint's registration has been updated after it began. */
async function updated(endpoint: string, trigger: () => Promise<unknown>): Promise<void> {
	const before = lwm2m.registration(endpoint)!.updates;
	let seen!: () => void, timer: NodeJS.Timeout | undefined;
	const update = new Promise<void>((resolve, reject) => {
		seen = resolve;
		timer = setTimeout(() => reject(new Error(`${endpoint} did not update its registration`)), 30000);
	});
	const listener = (registration: Registration) => registration.endpoint === endpoint && registration.updates > before && seen();
	lwm2m.on("update", listener);
	try {
		await trigger();
		await update;
	}
	finally {
		clearTimeout(timer);
		lwm2m.off("update", listener);
	}
}

/**
	`xs-ota device` registered with the server, in its own process group as a shell gives a foreground command.
	stopsInOrder sends it a signal (to the whole group, or the process alone) and checks it shut down in order,
	promptly, and de-registered.
*/
function deviceCommand(engine: "node" | "xs") {
	const endpoint = `requests-cli-${engine}-${++boards}`;
	const registered = lwm2m.waitForRegistration(endpoint, 60000);
	registered.catch(() => {});
	const child = spawn(process.execPath, [`${root}host-sim/bin/xs-ota.js`, "device", "--dir", tempDir(`requests-cli-${engine}`), "--engine", engine,
		"--lwm2m", lwm2m.url, "--endpoint", endpoint, "--json"], { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	child.stdout!.on("data", (chunk) => (output += chunk));
	child.stderr!.on("data", (chunk) => (output += chunk));
	const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
	const kill = () => {
		if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
	};
	return {
		endpoint, registered, kill,
		async stopsInOrder(signal: NodeJS.Signals, group: boolean): Promise<void> {
			process.kill(group ? -child.pid! : child.pid!, signal);
			// Generous: the shutdown takes milliseconds; before, retransmissions held the run for over a minute.
			const timer = setTimeout(kill, 30000);
			const code = await exited;
			clearTimeout(timer);
			const events = output.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as DeviceReport);
			assert.is(code, 0, output.slice(-4000));
			assert.ok(events.some((event) => event.event === "shutdown"), output.slice(-4000));
			assert.ok(events.some((event) => event.event === "shut-down"), output.slice(-4000));
			assert.is(lwm2m.registration(endpoint), undefined, "de-registered");
		},
	};
}

/**
	`count` datagrams for a CoAP server, from `random`: a third random bytes, the rest valid LwM2M requests with
	one to three mutations (a bit flipped, a byte replaced, cut short, bytes appended or inserted, a bad option
	nibble).
*/
function fuzzBurst(random: () => number, count: number): Buffer[] {
	const pick = (n: number) => Math.floor(random() * n);
	const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => pick(256)));
	const query = (value: string) => ({ name: "Uri-Query", value: text(value) });
	const path = (value: string) => value.split("/").filter(Boolean).map((segment) => ({ name: "Uri-Path", value: text(segment) }));
	const valid = (): Buffer => {
		const token = bytes(pick(9)), messageId = pick(0x10000), confirmable = random() < 0.8;
		const base = [
			{ code: "GET", options: path("/3/0") },
			{ code: "GET", options: [...path("/3/0/0"), { name: "Accept", value: uint(0) }] },
			{ code: "GET", options: [{ name: "Observe", value: uint(0) }, ...path("/5/0/3")] },
			{ code: "PUT", options: [...path("/5/0/3"), query("pmin=1"), query("pmax=2")] },
			{ code: "GET", options: [...path("/5/0"), { name: "Accept", value: uint(40) }] },
			{ code: "GET", options: [...path("/3/0"), { name: "Block2", value: block(pick(4), false, 0) }] },
			{ code: "PUT", options: [...path("/1/0/2"), contentFormat(0)], payload: text(String(pick(10))) },
			{ code: "POST", options: [...path("/3/0/1")] },
		][pick(8)];
		return generate({ code: base.code, confirmable, messageId, token, options: base.options, payload: base.payload });
	};
	const mutate = (datagram: Buffer): Buffer => {
		const at = pick(datagram.length);
		switch (pick(6)) {
			case 0: datagram[at] ^= 1 << pick(8); return datagram;
			case 1: datagram[at] = pick(256); return datagram;
			case 2: return datagram.subarray(0, at);
			case 3: return Buffer.concat([datagram, bytes(1 + pick(16))]);
			case 4: return Buffer.concat([datagram.subarray(0, at), bytes(1 + pick(4)), datagram.subarray(at)]);
			default: datagram[Math.min(4 + (datagram[0] & 15), datagram.length - 1)] |= 0xf0 >> pick(2) * 4; return datagram;
		}
	};
	const burst: Buffer[] = [];
	for (let i = 0; i < count; i++) {
		if (random() < 1 / 3) burst.push(bytes(pick(64)));
		else {
			let datagram = valid();
			for (let mutations = 1 + pick(3); mutations > 0 && datagram.length; mutations--) datagram = mutate(datagram);
			burst.push(datagram);
		}
	}
	return burst;
}

const to = (registration: Registration) => ({ address: registration.address, port: registration.port });
const text = (value: string) => Buffer.from(value);
const contentFormat = (format: number) => ({ name: "Content-Format", value: uint(format) });

for (const engine of engines) {
	test(`${engine}: a resource-instance path exists only below a multiple resource; Execute there is refused`, async () => {
		const run = await withBoard(engine, async (endpoint) => {
			assert.is((await lwm2m.read(endpoint, "/3/0/0/9")).code, "4.04", "Manufacturer has no instance 9");
			assert.is((await lwm2m.read(endpoint, "/3/0/0/0")).code, "4.04", "nor instance 0");
			assert.equal(await lwm2m.read(endpoint, "/5/0/8/1", "text"), { code: "2.05", format: "text", value: 2 }, "Protocol Support's instance 1");
			assert.is((await lwm2m.read(endpoint, "/5/0/8/3")).code, "4.04", "Protocol Support has 3 instances");
			assert.is(await lwm2m.execute(endpoint, "/3/0/4/9"), "4.05", "Reboot's resource instance");
			assert.is(await lwm2m.execute(endpoint, "/3/0/4/0"), "4.05");
			assert.is(await lwm2m.execute(endpoint, "/5/0/8/0"), "4.05");
			assert.is(await lwm2m.write(endpoint, "/3/0/0/9", "x", { format: "text" }), "4.04");
		});
		assert.is(run.outcome.end, "shut-down");
		assert.is(run.outcome.boots, 1, "nothing rebooted the board");
	});

	test(`${engine}: an unsupported scheme is 9 even without a host; the lifetime has one minimum, configured or written`, async () => {
		const run = await withBoard(engine, async (endpoint, registration) => {
			assert.is(registration.lifetime, 60, "config.lifetime 20 registers with the minimum");
			for (const [uri, result] of [["file:///etc/passwd", 9], ["ftp://127.0.0.1/app.bin", 9], ["http:///app.bin", 7]] as const) {
				assert.is(await lwm2m.write(endpoint, "/5/0/1", uri), "2.04", uri);
				assert.equal(await lwm2m.read(endpoint, "/5/0/5", "text"), { code: "2.05", format: "text", value: result }, uri);
			}
			assert.is(await lwm2m.write(endpoint, "/1/0/1", 59, { format: "text" }), "4.00");
			assert.is(await lwm2m.write(endpoint, "/1/0/1", 60, { format: "text" }), "2.04");
		}, { lifetime: 20 });
		assert.ok(run.events.some((event) => event.event === "log" && event.message === "xs-ota: lwm2m lifetime 20 s raised to 60 s"));
	});

	test(`${engine}: a Registration Update honours pmin: an unchanged value is not notified again`, async () => {
		await withBoard(engine, async (endpoint) => {
			assert.is(await lwm2m.writeAttributes(endpoint, "/5/0/3", { pmin: 2, pmax: 60 }), "2.04");
			const observation = await lwm2m.observe(endpoint, "/5/0/3");
			assert.is(observation.code, "2.05");
			for (let update = 0; update < 3; update++) {
				await updated(endpoint, async () => assert.is(await lwm2m.execute(endpoint, "/1/0/8"), "2.04", "Registration Update Trigger"));
				// The board notified, if at all, as it took the update's 2.04: before it answers this read.
				assert.is((await lwm2m.read(endpoint, "/3/0/0")).code, "2.05");
			}
			assert.equal(observation.notifications.map((n) => n.value), [], "no notification of the unchanged State");
		});
	});

	test(`${engine}: a write in Block1 parts is applied whole or not at all (2.31, then 2.04; 4.13 past the limit; 4.08 out of sequence)`, async () => {
		await withBoard(engine, async (endpoint, registration) => {
			const put = (uri: string, num: number, more: boolean, extra: { name: string; value: Buffer }[] = []) => peer.request(to(registration), {
				code: "PUT", path: "/5/0/1", options: [contentFormat(0), { name: "Block1", value: block(num, more, 6) }, ...extra],
				payload: text(uri.slice(num * 1024, (num + 1) * 1024)),
			});
			const unchanged = async (what: string) => {
				assert.equal(await lwm2m.read(endpoint, "/5/0/3", "text"), { code: "2.05", format: "text", value: 0 }, `${what}: State 0`);
				assert.is((await lwm2m.read(endpoint, "/5/0/1", "text")).value ?? "", "", `${what}: no Package URI`);
			};
			// A 64 KiB URI, part after part without Size1: refused once it passes the limit, never applied.
			const huge = `http://127.0.0.1:9/app.bin?pad=${"x".repeat(65536)}`;
			const codes: string[] = [];
			for (let num = 0; num < 64; num++) {
				const answer = await put(huge, num, true);
				codes.push(answer.code);
				if (answer.code !== "2.31") {
					assert.is(uintOf(option(answer, "Size1")), 2304, "4.13 tells the limit in Size1");
					break;
				}
				assert.equal(option(answer, "Block1"), block(num, true, 6), "2.31 echoes Block1");
			}
			assert.equal(codes, ["2.31", "2.31", "4.13"]);
			await unchanged("64 KiB");
			assert.is((await put(huge, 0, true, [{ name: "Size1", value: uint(huge.length) }])).code, "4.13", "Size1 past the limit: refused at once");
			// A part out of sequence.
			const uri = `http://127.0.0.1:9/app.bin?pad=${"y".repeat(1500 - 31)}`;
			assert.is(uri.length, 1500);
			assert.is((await put(uri, 0, true)).code, "2.31");
			assert.is((await put(uri, 2, false)).code, "4.08");
			await unchanged("out of sequence");
			// In order: the whole URI is written.
			assert.is((await put(uri, 0, true)).code, "2.31");
			const last = await put(uri, 1, false);
			assert.is(last.code, "2.04");
			assert.equal(option(last, "Block1"), block(1, false, 6));
			assert.equal(await lwm2m.read(endpoint, "/5/0/1", "text"), { code: "2.05", format: "text", value: uri }, "the whole 1500-byte URI");
		});
	});

	test(`${engine}: a shutdown ends the run at once despite an observer that never ACKs, and de-registers; a reboot keeps the registration`, async () => {
		const silent = await RawCoapPeer.open();
		silent.acknowledge = false;
		let location = "";
		try {
			const run = await withBoard(engine, async (endpoint, registration) => {
				location = registration.location;
				// Execute Reboot: the next boot updates the same registration.
				await updated(endpoint, async () => assert.is(await lwm2m.execute(endpoint, "/3/0/4"), "2.04"));
				assert.is(lwm2m.registration(endpoint)!.location, location, "kept across the reboot");
				const attributes = await silent.request(to(registration), { code: "PUT", path: "/5/0/3", options: [{ name: "Uri-Query", value: text("pmax=1") }] });
				assert.is(attributes.code, "2.04");
				const observe = await silent.request(to(registration), { code: "GET", path: "/5/0/3", options: [{ name: "Observe", value: uint(0) }] });
				assert.is(observe.code, "2.05");
				// Notifications go unanswered: the board retransmits them.
				for (let i = 0; i < 6000 && silent.received.filter((packet) => packet.confirmable).length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
				assert.ok(silent.received.filter((packet) => packet.confirmable).length >= 2, "the silent observer was notified");
			});
			assert.is(run.outcome.end, "shut-down");
			assert.is(run.outcome.boots, 2);
			const shutdown = run.events.find((event) => event.event === "shutdown");
			assert.ok(shutdown, "an orderly shutdown");
			// Before, the un-ACKed notification kept the board running for its retransmissions (over a minute).
			assert.ok(run.outcome.wallTime - Number(shutdown!.at) < 5000, `the run ended ${run.outcome.wallTime - Number(shutdown!.at)} ms after the shutdown`);
			assert.is(lwm2m.registration(`requests-${engine}-${boards}`), undefined, "de-registered");
		}
		finally {
			await silent.close();
		}
	});

	test(`${engine}: Ctrl-C (SIGINT to the command's process group) shuts the board down in order, promptly, and de-registers`, async () => {
		const silent = await RawCoapPeer.open();
		silent.acknowledge = false;
		const cli = deviceCommand(engine);
		try {
			const registration = await cli.registered;
			assert.is((await silent.request(to(registration), { code: "PUT", path: "/5/0/3", options: [{ name: "Uri-Query", value: text("pmax=1") }] })).code, "2.04");
			assert.is((await silent.request(to(registration), { code: "GET", path: "/5/0/3", options: [{ name: "Observe", value: uint(0) }] })).code, "2.05");
			for (let i = 0; i < 6000 && !silent.received.some((packet) => packet.confirmable); i++) await new Promise((resolve) => setTimeout(resolve, 10));
			await cli.stopsInOrder("SIGINT", true);
		}
		finally {
			cli.kill();
			await silent.close();
		}
	});

	test(`${engine}: after a burst of random and mutated datagrams the board answers, stays registered, and SIGTERM ends the run in order`, async () => {
		const fuzzer = await RawCoapPeer.open();
		// A hostile peer: the observations its mutated requests start are never acknowledged.
		fuzzer.acknowledge = false;
		const cli = deviceCommand(engine);
		try {
			const registration = await cli.registered;
			const datagrams = fuzzBurst(seeded(20), 2000);
			for (let i = 0; i < datagrams.length; i++) {
				await fuzzer.send(to(registration), datagrams[i]);
				// A breath now and then, or the sockets' buffers drop most of the burst unread.
				if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5));
			}
			const read = await lwm2m.read(cli.endpoint, "/3/0", "tlv");
			assert.ok(fuzzer.received.length > 500, `the board answered the burst (${fuzzer.received.length} datagrams)`);
			assert.is(read.code, "2.05");
			assert.is((read.value as { [id: number]: unknown })[0], "xs-ota", "Manufacturer");
			assert.is(lwm2m.registration(cli.endpoint)?.location, registration.location, "still registered, at the same location");
			await cli.stopsInOrder("SIGTERM", false);
		}
		finally {
			cli.kill();
			await fuzzer.close();
		}
	});

	test(`${engine}: the Package pushed in TLV, SenML CBOR or SenML JSON is streamed to the slot and verified; a malformed one ends with 6`, async () => {
		await withBoard(engine, async (endpoint, registration) => {
			for (const format of ["tlv", "senml-cbor", "senml-json"] as const) {
				const image = makeAppImage({ size: 96 * 1024 + 3, version: `2.0.${format.length}` });
				assert.is(await lwm2m.push(endpoint, "/5/0/0", Buffer.from(image), { blockSize: 1024, format }), "2.04", format);
				assert.equal(await lwm2m.read(endpoint, "/5/0/3", "text"), { code: "2.05", format: "text", value: 2 }, `${format}: Downloaded, the image verified`);
				assert.equal((await lwm2m.read(endpoint, "/5/0/7", "text")).value, `2.0.${format.length}`, format);
			}
			// A TLV whose value is cut short: the last part is refused and the push ends with 6.
			const part = (num: number, more: boolean, payload: Buffer) => peer.request(to(registration), {
				code: "PUT", path: "/5/0/0", options: [contentFormat(11542), { name: "Block1", value: block(num, more, 6) }], payload,
			});
			assert.is((await part(0, true, Buffer.concat([Buffer.from("d8000800", "hex"), Buffer.alloc(1020)]))).code, "2.31");
			assert.is((await part(1, false, Buffer.alloc(100))).code, "4.00");
			assert.equal(await lwm2m.read(endpoint, "/5/0/5", "text"), { code: "2.05", format: "text", value: 6 });
			const asText = await peer.request(to(registration), { code: "PUT", path: "/5/0/0", options: [contentFormat(0)], payload: text("x") });
			assert.is(asText.code, "4.15", "text is no Package format");
		});
	});
}

test.run();
