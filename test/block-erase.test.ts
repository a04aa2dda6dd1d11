// 64 KiB block erases on the simulated board, over both transports and both engines: a resume inside a block
// and a cut during a block erase never erase a committed byte, and the update still ends with result 1.
// The inactive slot starts full of old bytes, so a missed or torn erase would corrupt the image.

import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BoardStorage } from "../host-sim/board/board-files";
import { PowerSupply } from "../host-sim/board/power";
import { fillSlotWithNoise, prepareFactoryBoard, type DeviceOptions, type DeviceReport, type EngineName } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { startUpdateServer } from "../host-sim/server/http-server";
import { RecordStore, type DownloadRecord } from "../src/agent/record";
import { run, tempDir } from "./support/sim";

const KiB = 1024, sector = 4 * KiB, block = 64 * KiB;
const image = makeAppImage({ size: 3 * block + 8 * sector + 1000, version: "2.0.0" });
const published = sha256Hex(image);
const work = tempDir("block-erase");
const pristine = path.join(work, "pristine");
prepareFactoryBoard(pristine);
fillSlotWithNoise(pristine, 1, 15);
fs.writeFileSync(path.join(work, "app.bin"), image);
let server: Awaited<ReturnType<typeof startUpdateServer>>, aws: AwsIot;
let boards = 0;

test.before(async () => {
	server = await startUpdateServer({ dir: work, port: 0 });
	aws = await startAwsIot({});
});

test.after(async () => {
	await aws.close();
	await server.close();
	fs.rmSync(work, { recursive: true, force: true });
});

type Erase = { start: number; end: number; op: number };
type Transport = "http" | "mqtt";

/** A fresh board and how to deliver the image to it (over MQTT, a new thing with its own job). */
function newBoard(transport: Transport, engine: EngineName): { dir: string; first: Partial<DeviceOptions>; again: Partial<DeviceOptions> } {
	const dir = path.join(work, `board-${++boards}`);
	fs.cpSync(pristine, dir, { recursive: true });
	const config = { checkpointBytes: 16 * KiB, blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
	if (transport === "http") return { dir, first: { engine, config, url: `${server.url}/app.bin` }, again: { engine, config } };
	const thing = `block-erase-${boards}`;
	aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	const options = { engine, config, mqtt: aws.url, thing };
	return { dir, first: options, again: options };
}

/** Erases of the inactive slot (ota_1 on a factory board) and the kind of the op a cut fell in. */
async function runWatched(dir: string, options: Partial<DeviceOptions>) {
	const erases: Erase[] = [];
	let cutKind: unknown;
	const outcome = await run({
		dir, ...options,
		onEvent: (event: DeviceReport) => {
			if (event.event === "erase" && event.partition === "ota_1") erases.push({ start: event.start as number, end: event.end as number, op: event.op as number });
			else if (event.event === "power-cut") cutKind = event.kind;
		},
	});
	return { outcome, erases, cutKind };
}

function storedRecord(dir: string): DownloadRecord {
	const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
	const record = new RecordStore({ get: (key) => nvs.get("xs-ota", key), set() {}, delete() {} }, () => {}).load();
	if (!record) throw new Error("no record after the cut");
	return record;
}

function slotBytes(dir: string): Uint8Array {
	return BoardStorage.open(dir, new PowerSupply()).appSlot(1).read(0, image.length);
}

/** Sectors of the slot whose bytes the record keeps: a prefix over HTTP, committed stream blocks over MQTT. */
function keptSectors(record: DownloadRecord): Set<number> {
	const kept = new Set<number>();
	if (record.jobId) {
		record.blocks?.forEach((bits, byte) => {
			for (let bit = 0; bit < 8; bit++) if (bits & (1 << bit)) kept.add(byte * 8 + bit);	// 4 KiB stream blocks: one sector each
		});
	}
	else for (let index = 0; (index + 1) * sector <= record.committed; index++) kept.add(index);
	return kept;
}

/** The resumed power-on: no erase touches a kept sector, the kept bytes are the image's, and the update completes. */
async function resumeAndCheck(dir: string, options: Partial<DeviceOptions>, kept: Set<number>) {
	const before = slotBytes(dir);
	for (const index of kept)
		assert.equal(before.subarray(index * sector, (index + 1) * sector), image.subarray(index * sector, (index + 1) * sector), `kept sector ${index} holds the image's bytes`);
	const resumed = await runWatched(dir, options);
	for (const erase of resumed.erases)
		for (let index = erase.start / sector; index < erase.end / sector; index++)
			assert.not.ok(kept.has(index), `sector ${index} was committed and got erased`);
	assert.equal(resumed.outcome.end, "idle");
	assert.equal(resumed.outcome.result, 1, "Update Result");
	assert.equal(resumed.outcome.running, { slot: 1, version: "2.0.0", sha256: published });
	assert.equal(slotBytes(dir), image);
	return resumed;
}

for (const transport of ["http", "mqtt"] as const) {
	for (const engine of ["node", "xs"] as const) {
		test(`${transport}, ${engine}: an uncut update erases whole blocks, and the short tail by sectors`, async () => {
			const board = newBoard(transport, engine);
			const { outcome, erases } = await runWatched(board.dir, board.first);
			assert.equal(outcome.result, 1);
			assert.equal(erases.map((erase) => erase.end - erase.start), [block, block, block, block]);
			assert.equal(erases.map((erase) => erase.start), [0, block, 2 * block, 3 * block]);
			assert.equal(slotBytes(board.dir), image);
		});

		test(`${transport}, ${engine}: a resume inside a block erases only the sectors past the checkpoint`, async () => {
			const probe = newBoard(transport, engine), board = newBoard(transport, engine);
			const whole = await runWatched(probe.dir, probe.first);
			// Cut well inside block 1, after a checkpoint or two there: about 32 KiB of writes after its erase.
			const blockOne = whole.erases.find((erase) => erase.start === block)!;
			const cut = await runWatched(board.dir, { ...board.first, cutAfterOps: blockOne.op + (transport === "http" ? 25 : 10) });
			assert.equal(cut.outcome.end, "power-cut");
			const record = storedRecord(board.dir);
			const kept = keptSectors(record);
			const inBlockOne = [...kept].filter((index) => index >= 16 && index < 32);
			assert.ok(inBlockOne.length > 0 && inBlockOne.length < 16, `committed sectors in block 1: ${inBlockOne}`);
			const resumed = await resumeAndCheck(board.dir, board.again, kept);
			const blockOneErases = resumed.erases.filter((erase) => erase.start >= block && erase.start < 2 * block);
			assert.ok(blockOneErases.length > 0 && blockOneErases.every((erase) => erase.end - erase.start === sector), "block 1: sector erases only");
			assert.ok(resumed.erases.some((erase) => erase.start === 2 * block && erase.end === 3 * block), "block 2 erased whole");
		});

		test(`${transport}, ${engine}: a cut during a block erase leaves it torn, and the next power-on erases it whole again`, async () => {
			const probe = newBoard(transport, engine), board = newBoard(transport, engine);
			const whole = await runWatched(probe.dir, probe.first);
			const blockTwo = whole.erases.find((erase) => erase.start === 2 * block)!;
			const cut = await runWatched(board.dir, { ...board.first, cutAfterOps: blockTwo.op });
			assert.equal(cut.cutKind, "flash-block-erase");
			const torn = slotBytes(board.dir).subarray(2 * block, 3 * block);
			assert.ok(torn[0] === 0xff && torn.some((byte) => byte !== 0xff), "block 2 is partly erased, partly old bytes");
			const kept = keptSectors(storedRecord(board.dir));
			assert.ok(kept.size > 0 && [...kept].every((index) => index < 32), `committed sectors before block 2: ${kept.size}`);
			const resumed = await resumeAndCheck(board.dir, board.again, kept);
			assert.ok(resumed.erases.some((erase) => erase.start === 2 * block && erase.end === 3 * block), "block 2 erased whole again");
		});
	}
}

test.run();
