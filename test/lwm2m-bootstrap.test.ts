// Client-initiated bootstrap on both engines: the board, configured with a Bootstrap-Server only, asks it for
// its LwM2M server account (host-sim/server/lwm2m-bootstrap.ts), registers with the server it provisioned
// (host-sim/server/lwm2m-server.ts) and is updated through it — with power cut between two Bootstrap-Writes,
// during the commit at Bootstrap-Finish, right after it and during the download. A Finish on an inconsistent
// configuration is refused with 4.06 and the provisioning committed before stays; a corrupt stored provisioning
// is ignored and the board bootstraps again.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as dgram from "node:dgram";
import { createServer, type Server } from "coap";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mBootstrapServer, provisionSteps, type BootstrapStep, type StepAnswer } from "../host-sim/server/lwm2m-bootstrap";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { prepareFactoryBoard, runDevice, type DeviceCommand, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import type { Board } from "../host-sim/board/board";
import { BoardStorage } from "../host-sim/board/board-files";
import { PowerSupply } from "../host-sim/board/power";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { assertNewFirmware, tempDir } from "./support/sim";

const engines = ["node", "xs"] as const;
const recordKeys = ["lw.prov.0", "lw.prov.1"];
let lwm2m: Lwm2mServer, bs: Lwm2mBootstrapServer, http: UpdateServer, refuser: Server, refuserSocket: dgram.Socket, refuserUrl: string;
let imageSha: string;
let endpoints = 0;
const answers: StepAnswer[] = [];

test.before(async () => {
	lwm2m = await Lwm2mServer.start();
	bs = await Lwm2mBootstrapServer.start({ serverUri: lwm2m.url });
	bs.on("step", (answer: StepAnswer) => answers.push(answer));
	const www = tempDir("lwm2m-bs-www"), image = makeAppImage({ size: 96 * 1024, version: "2.0.0" });
	imageSha = sha256Hex(image);
	fs.writeFileSync(path.join(www, "app.bin"), image);
	http = await startUpdateServer({ dir: www });
	// An LwM2M server that refuses every registration.
	const socket = (refuserSocket = dgram.createSocket("udp4"));
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
	refuser = createServer((_request, response) => {
		response.code = "4.03";
		response.end();
	});
	refuser.listen(socket);
	refuserUrl = `coap://127.0.0.1:${socket.address().port}`;
});

test.after(async () => {
	await lwm2m.close();
	await bs.close();
	await http.close();
	refuser.close();
	await new Promise<void>((resolve) => refuserSocket.close(() => resolve()));
});

/** Writes the Package URI once the board registers with the provisioned server; ends the run on a final result. */
class Operator extends Lwm2mUpdate {
	readonly commands: DeviceCommand[] = [];

	constructor(endpoint: string, start: (operator: Lwm2mUpdate) => Promise<unknown> = (op) => lwm2m.write(op.endpoint, "/5/0/1", http.url + "/app.bin")) {
		super(lwm2m, endpoint, start, () => this.commands.push({ action: "shutdown" }));
	}
}

interface Session {
	outcome: DeviceOutcome;
	events: DeviceReport[];
	/** Persistent writes of the run when the board logged "lwm2m bootstrap finished" (its commit the last of them). */
	opsAtFinish: number | undefined;
}

async function boardRun(dir: string, engine: "node" | "xs", operator: Operator, cutAfterOps?: number, onBoard?: (board: Board) => void): Promise<Session> {
	const events: DeviceReport[] = [];
	let board: Board | undefined, opsBefore = 0, opsAtFinish: number | undefined;
	// UDP has no settle mode: while the device waits for the next Bootstrap request, the board's clock follows the
	// host's, so the silence guard must outlast a loaded host's stall (1.5 s failed once on CI: a first bootstrap
	// given up between two requests). One run of the power-cut test waits it out, on each engine.
	const outcome = await runDevice({
		dir, engine, cutAfterOps, runFor: 120000, commands: operator.commands,
		config: { bootstrap: bs.url, endpoint: operator.endpoint, lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100, bootstrapTimeoutMs: 4000 },
		onBoard: (next) => {
			if (board) opsBefore += board.power.ops;
			board = next;
			onBoard?.(next);
		},
		onEvent: (event) => {
			if (event.event === "log" && String(event.message).includes("lwm2m bootstrap finished")) opsAtFinish = opsBefore + board!.power.ops;
			if (event.event !== "progress") events.push(event);
		},
	});
	return { outcome, events, opsAtFinish };
}

type StoredRecord = { n: number; s: { uri?: string; bootstrap?: boolean; ssid?: number; mode?: number }[]; c: { ssid?: number; lifetime?: number }[] };

/** The provisioning records in the board's preference store, as JSON (unparsable ones left out). */
function records(dir: string): StoredRecord[] {
	const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
	return recordKeys.map((key) => nvs.get("xs-ota", key)).flatMap((value) => {
		try {
			return typeof value === "string" ? [JSON.parse(value) as StoredRecord] : [];
		}
		catch {
			return [];
		}
	});
}

/** The server URI of the newest stored record. */
function provisionedUri(dir: string): string | undefined {
	const newest = records(dir).sort((a, b) => b.n - a.n)[0];
	return newest?.s.find((account) => !account.bootstrap)?.uri;
}

function assertUpdated(operator: Operator, outcome: DeviceOutcome, what: string): void {
	assertNewFirmware(outcome, imageSha, "2.0.0", what);
	assert.is(operator.results[operator.results.length - 1], 1, `${what}: the provisioned server heard result 1`);
}

const stepsOf = (endpoint: string, attempt: number) => answers.filter((answer) => answer.endpoint === endpoint && answer.attempt === attempt);

for (const engine of engines) {
	test(`${engine}: bootstrap (Discover, refused reads, deletes and modes), then registration with the provisioned server and an update`, async () => {
		const dir = tempDir(`lwm2m-bs-${engine}`);
		const operator = new Operator(`bs-${engine}-${++endpoints}`, async (op) => {
			assert.is((await lwm2m.read(op.endpoint, "/0/0")).code, "4.01", "the Security object stays the client's own");
			assert.is(lwm2m.registration(op.endpoint)!.lifetime, 180, "the lifetime the Bootstrap-Server wrote");
			return lwm2m.write(op.endpoint, "/5/0/1", http.url + "/app.bin");
		});
		const provisioning = provisionSteps(lwm2m.url, { lifetime: 180 });
		const psk: BootstrapStep = { method: "PUT", path: "/0/1", value: { 0: lwm2m.url, 1: false, 2: 0, 3: Buffer.from("id"), 5: Buffer.from("key"), 10: 1 }, expect: "4.00" };
		bs.plan = () => [
			{ method: "GET", path: "/", accept: 40 },
			{ method: "GET", path: "/0", expect: "4.01" },
			{ method: "DELETE", path: "/0/0", expect: "4.00" },
			{ method: "DELETE", path: "/3", expect: "4.00" },
			psk,
			...provisioning.slice(0, 3),
			{ method: "GET", path: "/1/1" },
			provisioning[3],
		];
		try {
			const { outcome } = await boardRun(dir, engine, operator);
			assertUpdated(operator, outcome, engine);
			const steps = stepsOf(operator.endpoint, 1);
			assert.equal(steps.map((step) => step.code), ["2.05", "4.01", "4.00", "4.00", "4.00", "2.02", "2.04", "2.04", "2.05", "2.04"], "each step's code");
			assert.match(steps[8].payload, /"v":180/, "Bootstrap-Read of /1/1 in SenML JSON: the lifetime written");
			assert.match(steps[0].payload, /^<\/>;lwm2m="1.1",<\/0\/0>,<\/1>,<\/3\/0>,<\/5\/0>$/, "Discover: the Bootstrap-Server account alone in Object 0");
			assert.match(steps[4].payload, /security mode 0: nosec \(3\) only/, "PSK is refused with its reason");
			assert.is(bs.requests.get(operator.endpoint), 1);
			assert.is(provisionedUri(dir), lwm2m.url, "the provisioning is stored");
		}
		finally {
			operator.close();
		}
	});

	test(`${engine}: power cut between Bootstrap-Writes, during the commit, after it and in the download: old or new provisioning, and the update completes`, async () => {
		/** A run cut at op `cut` (or by `cutting`, given each board of the run), then one to the end. */
		const update = async (cut?: number, cutting?: (board: Board, endpoint: string) => void) => {
			const dir = tempDir(`lwm2m-bs-${engine}`), operator = new Operator(`bs-${engine}-${++endpoints}`);
			const runs: Session[] = [];
			try {
				runs.push(await boardRun(dir, engine, operator, cut, cutting && ((board) => cutting(board, operator.endpoint))));
				const storedAfterCut = records(dir);
				if (cut === undefined && !cutting) return { dir, operator, runs, storedAfterCut };
				assert.is(runs[0].outcome.end, "power-cut", `${engine}: the cut happened`);
				runs.push(await boardRun(dir, engine, operator));
				return { dir, operator, runs, storedAfterCut };
			}
			finally {
				operator.close();
			}
		};
		bs.plan = () => provisionSteps(lwm2m.url);

		// A probe: where the commit and the download fall.
		const probe = await update();
		assertUpdated(probe.operator, probe.runs[0].outcome, `${engine} probe`);
		const commit = probe.runs[0].opsAtFinish!;
		const downloading = probe.runs[0].events.filter((e) => e.event === "state").map((e) => Number(e.op));
		assert.ok(commit > 0 && downloading.length >= 2);

		// Between two Bootstrap-Writes nothing is stored: the power goes once /0/1 is written.
		const between = await update(undefined, (board, endpoint) => bs.on("step", function cut(answer: StepAnswer) {
			if (answer.endpoint !== endpoint || answer.step.path !== "/0/1") return;
			bs.off("step", cut);
			board.power.cut("test");
		}));
		assert.is(between.runs[0].outcome.end, "power-cut");
		assert.is(between.storedAfterCut.length, 0, "no half provisioning stored");
		assert.is(bs.requests.get(between.operator.endpoint), 2, "bootstrapped again");
		assertUpdated(between.operator, between.runs[1].outcome, `${engine} cut between writes`);

		// A cut that tears the commit (its erase or its write) leaves no record: the board bootstraps again.
		for (const cut of [commit - 1, commit]) {
			const torn = await update(cut);
			assert.is(torn.storedAfterCut.length, 0, `cut at ${cut}: no record`);
			assert.is(bs.requests.get(torn.operator.endpoint), 2, `cut at ${cut}: bootstrapped again`);
			assertUpdated(torn.operator, torn.runs[1].outcome, `${engine} cut at ${cut} (commit)`);
		}

		// Right after the commit: the next boot registers with the provisioned server at once.
		const after = await update(commit + 1);
		assert.is(after.storedAfterCut[0]?.s.find((account) => !account.bootstrap)?.uri, lwm2m.url, "the commit landed whole");
		assert.is(bs.requests.get(after.operator.endpoint), 1, "no second bootstrap after the commit");
		assertUpdated(after.operator, after.runs[1].outcome, `${engine} cut after the commit`);

		// In the download: the provisioned server sees the update through.
		const download = await update(Math.round((downloading[0] + downloading[1]) / 2));
		assert.is(bs.requests.get(download.operator.endpoint), 1, "no second bootstrap after a cut in the download");
		assertUpdated(download.operator, download.runs[1].outcome, `${engine} cut in the download`);
	});

	test(`${engine}: registration failures lead back to bootstrap; an inconsistent Finish gets 4.06 and the old provisioning stays`, async () => {
		const dir = tempDir(`lwm2m-bs-${engine}`), operator = new Operator(`bs-${engine}-${++endpoints}`);
		let storedAtThird: string | undefined;
		const refused = provisionSteps(refuserUrl);
		(refused[2] as { value: { [id: number]: unknown } }).value[17] = 2;
		const inconsistent = provisionSteps(lwm2m.url);
		(inconsistent[2] as { value: { [id: number]: unknown } }).value[0] = 2;
		inconsistent[3].expect = "4.06";
		bs.plan = (_endpoint, attempt) => (attempt === 1 ? refused : attempt === 2 ? inconsistent : provisionSteps(lwm2m.url));
		const third = ({ endpoint, attempt }: { endpoint: string; attempt: number }) => {
			if (endpoint === operator.endpoint && attempt === 3) storedAtThird = provisionedUri(dir);
		};
		bs.on("request", third);
		try {
			const { outcome, events } = await boardRun(dir, engine, operator);
			assertUpdated(operator, outcome, engine);
			const finishes = [1, 2, 3].map((attempt) => stepsOf(operator.endpoint, attempt).find((step) => step.step.path === "/bs"));
			assert.equal(finishes.map((finish) => finish?.code), ["2.04", "4.06", "2.04"]);
			assert.match(finishes[1]!.payload, "/1/1 names short server id 2");
			assert.ok(events.some((e) => e.event === "log" && String(e.message).includes("2 failures: giving the server up")), "two refused registrations, then bootstrap");
			assert.is(storedAtThird, refuserUrl, "after the refused Finish the committed provisioning was the old one");
			assert.is(provisionedUri(dir), lwm2m.url);
		}
		finally {
			bs.off("request", third);
			operator.close();
		}
	});

	test(`${engine}: a corrupt stored provisioning is ignored: the board bootstraps again`, async () => {
		const dir = tempDir(`lwm2m-bs-${engine}`), operator = new Operator(`bs-${engine}-${++endpoints}`);
		prepareFactoryBoard(dir);
		const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
		nvs.set("xs-ota", "lw.prov.0", '{"n":3,"s":[{"id":1,"uri":"coap://');
		// Well-formed, but inconsistent: a PSK account this client cannot use.
		nvs.set("xs-ota", "lw.prov.1", JSON.stringify({ n: 9, s: [{ id: 1, uri: refuserUrl, mode: 0, ssid: 1 }], c: [{ id: 1, ssid: 1 }] }));
		bs.plan = () => provisionSteps(lwm2m.url);
		try {
			const { outcome, events } = await boardRun(dir, engine, operator);
			assertUpdated(operator, outcome, engine);
			assert.is(bs.requests.get(operator.endpoint), 1);
			const logs = events.filter((e) => e.event === "log").map((e) => String(e.message));
			assert.ok(logs.some((line) => line.includes("lw.prov.0 ignored: not json")), logs.join("\n"));
			assert.ok(logs.some((line) => line.includes("lw.prov.1 ignored: security mode 0")), logs.join("\n"));
			assert.ok(records(dir).some((record) => record.n === 1 && record.s.some((account) => account.uri === lwm2m.url)), "the new provisioning is stored");
		}
		finally {
			operator.close();
		}
	});
}

test.run();
