// LwM2M 1.1 Queue Mode, on both engines (issue 20): the board registers with Q, stops listening once it has
// been quiet for config.queueWait, and wakes for its Registration Updates and its notifications; the local
// server (host-sim/server/lwm2m-server.ts) queues the requests of a sleeping client and sends them when it
// hears from it again. An update whose Write and Execute both wait in that queue completes, and an idle
// board listens a small part of the time. Listening is the board's own count of virtual time with a UDP
// socket open (outcome.listeningMs): asleep, the virtual clock jumps to the board's next timer.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Lwm2mServer, type Registration } from "../host-sim/server/lwm2m-server";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { runDevice, type DeviceCommand, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { RawCoapPeer } from "./support/raw-coap-peer";
import { assertNewFirmware, tempDir } from "./support/sim";

const engines = ["node", "xs"] as const;
/** The board listens 1 s after each exchange; the server counts it asleep sooner, so that it queues a request sent while the board still listens. */
const queueWait = 1;
const awakeTimeMs = 300;
let lwm2m: Lwm2mServer, http: UpdateServer, files: CoapFileServer, image: Uint8Array;
let boards = 0;

test.before(async () => {
	lwm2m = await Lwm2mServer.start({ awakeTimeMs });
	const www = tempDir("lwm2m-queue-www");
	image = makeAppImage({ size: 160 * 1024, version: "2.0.0" });
	fs.writeFileSync(path.join(www, "app.bin"), image);
	http = await startUpdateServer({ dir: www });
	files = await CoapFileServer.start();
	files.serve("/fw/app.bin", image);
});

test.after(async () => {
	await lwm2m.close();
	await http.close();
	await files.close();
});

interface Run {
	endpoint: string;
	events: DeviceReport[];
	commands: DeviceCommand[];
	outcome: Promise<DeviceOutcome>;
}

function boardRun(engine: "node" | "xs", config: Record<string, unknown>, runFor = 4 * 3600000): Run {
	const endpoint = `queue-${engine}-${++boards}`;
	const events: DeviceReport[] = [], commands: DeviceCommand[] = [];
	const outcome = runDevice({
		dir: tempDir(`lwm2m-queue-${engine}`), engine, commands, runFor, startTime: Date.UTC(2026, 0, 1),
		config: { lwm2m: lwm2m.url, endpoint, lifetime: 60, registrationRetryMs: 300, queueMode: true, queueWait, ...config },
		onEvent: (event) => event.event !== "progress" && events.push(event),
	});
	return { endpoint, events, commands, outcome };
}

/** Resolves with the server's next `name` event ("sleep", "awake", "update", "notify") for `endpoint`. */
function next<T extends { endpoint: string }>(name: string, endpoint: string, timeoutMs = 60000, matches: (event: T) => boolean = () => true): Promise<T> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			lwm2m.off(name, listener);
			reject(new Error(`no ${name} of ${endpoint} within ${timeoutMs} ms`));
		}, timeoutMs);
		const listener = (event: T) => {
			if (event.endpoint !== endpoint || !matches(event)) return;
			clearTimeout(timer);
			lwm2m.off(name, listener);
			resolve(event);
		};
		lwm2m.on(name, listener);
	});
}

const asleepLogged = (events: DeviceReport[]) => events.filter((event) => event.event === "log" && /lwm2m asleep/.test(String(event.message))).length;

for (const engine of engines) {
	test(`${engine}: registers with Q, stops listening after the wait; a request queued meanwhile goes out at the next Registration Update`, async () => {
		const run = boardRun(engine, {});
		const peer = await RawCoapPeer.open();
		try {
			const registration = await lwm2m.waitForRegistration(run.endpoint, 60000);
			assert.ok(registration.queueMode, "the Register carries Q");
			assert.is(registration.binding, "U");
			assert.is(registration.lwm2mVersion, "1.1");
			const first = { address: registration.address, port: registration.port };
			await next<Registration>("sleep", run.endpoint);
			const read = lwm2m.read(run.endpoint, "/3/0/0", "text");
			assert.is(lwm2m.queued(run.endpoint), 1, "held for the sleeping client");
			const updatesBefore = registration.updates;
			assert.equal(await read, { code: "2.05", format: "text", value: "xs-ota" });
			assert.ok(registration.updates > updatesBefore, "delivered once the client updated its registration");
			assert.ok(asleepLogged(run.events) >= 1, "the board stopped listening before");
			assert.is.not(registration.port, first.port, "it woke on another socket");
			// The socket it registered from is gone: nothing answers there.
			await peer.request(first, { code: "GET", path: "/3/0/0" }, 2000).then(() => assert.unreachable("an answer from the closed socket"), (error: Error) => assert.match(error.message, /no answer/));
		}
		finally {
			run.commands.push({ action: "shutdown" });
			await peer.close();
		}
		assert.is((await run.outcome).end, "shut-down");
	});

	for (const scheme of ["http", "coap"] as const) test(`${engine}: an update (${scheme}:// pull) whose Write Package URI and Execute Update both wait in the server's queue completes, the board asleep most of the time`, async () => {
		const run = boardRun(engine, {});
		const registration = await lwm2m.waitForRegistration(run.endpoint, 60000);
		const states: number[] = [], results: number[] = [];
		const state = await lwm2m.observe(run.endpoint, "/5/0/3", "text");
		const result = await lwm2m.observe(run.endpoint, "/5/0/5", "text");
		assert.is(state.code, "2.05");
		assert.is(result.code, "2.05");
		const heard = (path: string, value: number) => next<{ endpoint: string; path: string; value: unknown }>("notify", run.endpoint, 120000, (event) => event.path === path && event.value === value);
		const record = (event: { endpoint: string; path: string; value: unknown }) => {
			if (event.endpoint === run.endpoint) (event.path === "/5/0/3" ? states : results).push(Number(event.value));
		};
		lwm2m.on("notify", record);
		const queuedAt: number[] = [];
		try {
			await next("sleep", run.endpoint);
			const downloaded = heard("/5/0/3", 2);
			const write = lwm2m.write(run.endpoint, "/5/0/1", scheme === "http" ? `${http.url}/app.bin` : files.url("/fw/app.bin"));
			queuedAt.push(lwm2m.queued(run.endpoint));
			assert.is(await write, "2.04");
			await downloaded;
			await next("sleep", run.endpoint);
			const finished = heard("/5/0/5", 1);
			const execute = lwm2m.execute(run.endpoint, "/5/0/2");
			queuedAt.push(lwm2m.queued(run.endpoint));
			assert.is(await execute, "2.04");
			await finished;
		}
		finally {
			lwm2m.off("notify", record);
			run.commands.push({ action: "shutdown" });
		}
		const outcome = await run.outcome;
		assertNewFirmware(outcome, sha256Hex(image), "2.0.0", `${engine} queue mode`);
		assert.equal(queuedAt, [1, 1], "Write and Execute were both queued for the sleeping board");
		assert.ok(registration.updates >= 2, `woken by Registration Updates (${registration.updates})`);
		assert.equal(states.filter((s, i) => i === 0 || s !== states[i - 1]).slice(-4), [1, 2, 3, 0], `notified 1, 2, 3, 0 (heard ${states})`);
		assert.is(results[results.length - 1], 1);
		assert.ok(asleepLogged(run.events) >= 2, "asleep before the Write and before the Execute");
		const span = outcome.wallTime - Date.UTC(2026, 0, 1);
		assert.ok(outcome.listeningMs < span / 2, `listening ${outcome.listeningMs} of ${span} ms`);
	});

	test(`${engine}: idle with lifetime 300 s, the board listens for a small part of the time`, async () => {
		const runFor = 20 * 60000;
		const run = boardRun(engine, { lifetime: 300 }, runFor);
		const outcome = await run.outcome;
		assert.is(outcome.end, "time-up");
		const updates = lwm2m.registration(run.endpoint)!.updates;
		// 0.9 of the lifetime apart: updates at 270, 540, 810 and 1080 s.
		assert.is(updates, 4);
		assert.ok(outcome.listeningMs >= (updates + 1) * queueWait * 1000, `${outcome.listeningMs} ms: the wait after each exchange`);
		assert.ok(outcome.listeningMs < 0.02 * runFor, `listening ${outcome.listeningMs} ms of ${runFor}`);
		assert.is(asleepLogged(run.events), updates + 1);
	});
}

test.run();
