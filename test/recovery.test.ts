// Recovery after a power cut, on both engines: the four recovery policies applied to a download cut
// halfway, and the new image's first boot (a failed self-test rolls back for good; a cut during the first
// boot rolls back and the agent switches again). Each test checks what the user sees: the Update Result,
// the image running (bytes hashed from flash), what was fetched again, and what is left in flash and NVS.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { type DeviceOptions, type DeviceOutcome, type DeviceReport } from "../host-sim/device";
import { PreferenceStore } from "../host-sim/board/nvs";
import { decodeRecord, type DownloadRecord } from "../src/agent/record";
import { PowerSupply } from "../host-sim/board/power";
import { main as cli } from "../host-sim/cli";
import { assertNewFirmware as assertImage, assertOldFirmware, partitionBytes, publish, run, tempDir, traced } from "./support/sim";

const engines = ["node", "xs"] as const;
const checkpointBytes = 16384;
const size = 256 * 1024;
// About 110 KiB into a 256 KiB download (sector erases, fragment writes and checkpoint saves all count).
const cutMidDownload = 120;
const imageMagic = 0xe9;
let www: string;
let server: UpdateServer;
let image: { bytes: Uint8Array; sha256: string };
let url: string;

test.before(async () => {
	www = tempDir("www");
	image = publish(www, "app.bin", size, "2.0.0");
	server = await startUpdateServer({ dir: www });
	url = `${server.url}/app.bin`;
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

function record(board: string): { a: unknown; b: unknown } {
	const nvs = PreferenceStore.open(board, new PowerSupply());
	return { a: nvs.get("xs-ota", "fw.a"), b: nvs.get("xs-ota", "fw.b") };
}

function assertNewFirmware(outcome: DeviceOutcome, what: string): void {
	assertImage(outcome, image.sha256, "2.0.0", what);
}

const inactiveSlotStart = (board: string) => partitionBytes(board, "ota_1", 4096);

/** A fresh board asked to update under `policy`, with the power cut halfway through the download. */
async function cutDuringDownload(engine: (typeof engines)[number], policy: DeviceOptions["policy"]): Promise<{ board: string; first: DeviceOutcome }> {
	const board = tempDir("board");
	const first = await run({ dir: board, engine, url, policy, cutAfterOps: cutMidDownload });
	assert.is(first.end, "power-cut");
	assert.is(first.state, 1, "the cut landed while downloading");
	assert.ok(first.bytesFetched > 2 * checkpointBytes && first.bytesFetched < size - checkpointBytes, `fetched ${first.bytesFetched} before the cut`);
	assert.is(inactiveSlotStart(board)[0], imageMagic, "part of the new image is on flash");
	const stored = record(board);
	assert.ok(stored.a !== undefined || stored.b !== undefined, "a record says the download is under way");
	return { board, first };
}

// --- recovery policies, after a cut mid-download ---

for (const engine of engines) {
	test(`${engine}: save point resumes from the last checkpoint after a cut`, async () => {
		const { board, first } = await cutDuringDownload(engine, "save-point");
		const second = await run({ dir: board, engine });
		assertNewFirmware(second, "save point");
		assert.ok(second.bytesFetched < size - 2 * checkpointBytes, `fetched ${second.bytesFetched} of ${size} again`);
		assert.ok(first.bytesFetched + second.bytesFetched <= size + checkpointBytes, `fetched ${first.bytesFetched} + ${second.bytesFetched}`);
	});

	test(`${engine}: restart fetches the whole file again after a cut, and succeeds`, async () => {
		const { board } = await cutDuringDownload(engine, "restart");
		const second = await traced({ dir: board, engine });
		assertNewFirmware(second, "restart");
		assert.is(second.bytesFetched, size);
		assert.ok(second.logs.some((line) => line.includes("recovering download (restart)")), second.logs.join("\n"));
	});

	test(`${engine}: abort ends idle with 8, the old firmware running and every byte of the partial image erased`, async () => {
		const { board, first } = await cutDuringDownload(engine, "abort");
		const second = await run({ dir: board, engine });
		assertOldFirmware(second, 8, "abort");
		assert.is(second.boots, 1);
		assert.is(second.bytesFetched, 0);
		const written = partitionBytes(board, "ota_1", size);
		assert.ok(first.bytesFetched > 100 * 1024 && written.every((byte) => byte === 0xff), "nothing of the abandoned image stays in the slot");
		// The abort is final: the next power-on reports it again and fetches nothing.
		const third = await run({ dir: board, engine });
		assertOldFirmware(third, 8, "after abort");
		assert.is(third.bytesFetched, 0);
	});

	test(`${engine}: none forgets the download silently: idle, result 0, no download left in the record`, async () => {
		const { board } = await cutDuringDownload(engine, "none");
		const second = await run({ dir: board, engine });
		assertOldFirmware(second, 0, "none");
		assert.is(second.boots, 1);
		assert.is(second.bytesFetched, 0);
		// The record stays only to keep counting update ids (the server's key for result reports).
		const copies = Object.values(record(board)).filter((value): value is ArrayBuffer => value instanceof ArrayBuffer)
			.map((value) => decodeRecord(new Uint8Array(value))).filter((value): value is DownloadRecord => typeof value !== "string");
		const newest = copies.sort((x, y) => y.sequence - x.sequence)[0];
		assert.equal([newest.state, newest.result, newest.committed, newest.etag, newest.updateId], [0, 0, 0, "", 1]);
		// Nothing left to pick up on the next power-on either.
		const third = await run({ dir: board, engine });
		assertOldFirmware(third, 0, "after none");
		assert.is(third.bytesFetched, 0);
	});
}

test("node: the policy belongs to a request: after an abort, a request without one resumes from its save point", async () => {
	const { board } = await cutDuringDownload("node", "abort");
	assertOldFirmware(await run({ dir: board, engine: "node" }), 8, "abort");
	const first = await run({ dir: board, engine: "node", url, cutAfterOps: cutMidDownload });
	assert.is(first.end, "power-cut");
	assert.is(first.state, 1);
	const second = await run({ dir: board, engine: "node" });
	assertNewFirmware(second, "default policy");
	assert.ok(second.bytesFetched < size - 2 * checkpointBytes, `fetched ${second.bytesFetched} again`);
});

// --- the command line's --policy ---

async function runCli(args: string[]): Promise<{ out: DeviceReport[]; errors: string[]; exitCode: number | undefined }> {
	const out: DeviceReport[] = [], errors: string[] = [];
	const { log, error } = console;
	const exitCode = process.exitCode;
	process.exitCode = undefined;
	console.log = (line: string) => out.push(JSON.parse(line) as DeviceReport);
	console.error = (line: string) => errors.push(line);
	try {
		await cli(args);
		return { out, errors, exitCode: process.exitCode as number | undefined };
	}
	finally {
		Object.assign(console, { log, error });
		process.exitCode = exitCode;
	}
}

test("cli: device --policy restart is kept across a cut; a bad policy name is refused", async () => {
	const board = tempDir("board");
	const first = await runCli(["device", "--dir", board, "--url", url, "--policy", "restart", "--cut-after-ops", String(cutMidDownload), "--json"]);
	assert.is(first.exitCode, undefined, first.errors.join("\n"));
	assert.is(first.out.at(-1)!.event, "power-cut");
	const second = await runCli(["device", "--dir", board, "--json"]);
	const idle = second.out.at(-1)!;
	assert.is(idle.event, "idle");
	assert.is(idle.result, 1);
	assert.is((idle.running as { sha256: string }).sha256, image.sha256);
	assert.is(idle.bytesFetched, size, "restart fetched everything again");

	const bad = await runCli(["device", "--dir", tempDir("board"), "--url", url, "--policy", "sometimes", "--json"]);
	assert.is(bad.exitCode, 2, "a bad flag value is a usage mistake");
	assert.match(bad.errors.join("\n"), "--policy is save-point, restart, abort, none");
	assert.equal(bad.out, []);
});

// --- the new image's first boot ---

/** The persistent writes of an update up to its entering Updating, measured on a throwaway board. */
async function opsUntilUpdating(engine: (typeof engines)[number], from: string): Promise<number> {
	const probe = tempDir("probe");
	try {
		let op: number | undefined;
		const outcome = await run({ dir: probe, engine, url: from, onEvent: (event) => {
			if (event.event === "state" && event.state === 3 && op === undefined) op = event.op as number;
		} });
		assert.is(outcome.result, 1);
		return op!;
	}
	finally {
		fs.rmSync(probe, { recursive: true, force: true });
	}
}

// The writes after the record (and the job list) say Updating: the switch (otadata erase, write), then on the
// new image's power-on the bootloader's NEW → PENDING_VERIFY rewrite (erase, write), then the agent's
// mark-valid (erase, write).
const opsAfterUpdating = { switchWrite: 2, bootloaderRewrite: 3, markValid: 5 };

for (const engine of engines) {
	test(`${engine}: a failed self-test rolls back with 8, the old firmware running, and the update is not tried again`, async () => {
		const own = await startUpdateServer({ dir: www });
		const ownUrl = `${own.url}/app.bin`;
		const updating = await opsUntilUpdating(engine, ownUrl);
		const board = tempDir("board");
		const first = await traced({ dir: board, engine, url: ownUrl, cutAfterOps: updating + opsAfterUpdating.switchWrite });
		assert.is(first.end, "power-cut");
		assert.is(first.state, 3, "the cut landed while updating");
		assert.ok(first.bootEvents.every((event) => event.slot === 0), "the new image has not run yet");

		// The server goes away before the new image's first boot: its default self-test cannot reach it.
		await own.close();
		const second = await traced({ dir: board, engine });
		assertOldFirmware(second, 8, "self-test failed");
		assert.equal(second.bootEvents.map((event) => [event.slot, event.rolledBack]), [[0, false], [1, false], [0, true]]);
		assert.ok(second.logs.some((line) => line.includes("self-test failed: server unreachable")), second.logs.join("\n"));

		// Even with the server back at the same address, the old image does not switch or fetch again.
		const back = await startUpdateServer({ dir: www, port: own.port });
		try {
			const third = await run({ dir: board, engine });
			assertOldFirmware(third, 8, "after the rollback");
			assert.is(third.boots, 1);
			assert.is(third.bytesFetched, 0);
			assert.is(back.stats.requests, 0);
		}
		finally {
			await back.close();
		}
	});

	for (const [where, after] of [["in the bootloader's first-boot rewrite", opsAfterUpdating.bootloaderRewrite], ["while the new image confirms itself", opsAfterUpdating.markValid]] as const) {
		test(`${engine}: a cut ${where} rolls back, and the agent switches again to success`, async () => {
			const updating = await opsUntilUpdating(engine, url);
			const board = tempDir("board");
			const first = await run({ dir: board, engine, url, cutAfterOps: updating + after });
			assert.is(first.end, "power-cut");
			assert.is(first.state, 3, "the cut landed while updating");
			const second = await traced({ dir: board, engine });
			assertNewFirmware(second, `cut ${where}`);
			// The old image booted, found the record still updating, re-verified the other slot and switched.
			assert.equal(second.bootEvents.map((event) => event.slot), [0, 1]);
			assert.is(second.boots, 2);
			assert.is(second.bytesFetched, 0, "the image on flash was re-verified, not fetched again");
			assert.ok(second.logs.some((line) => line.includes("did not stick")), second.logs.join("\n"));
		});
	}
}

test.run();
