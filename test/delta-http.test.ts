// Patches over an HTTP pull on the simulated board, both engines: a detools patch in esp_delta_ota framing
// installs the new image byte for byte, a cut mid-patch resumes from the last checkpoint, and a patch for
// another base ends with 6 before anything is written, the factory image still running.

import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BoardStorage } from "../host-sim/board/board-files";
import { PowerSupply } from "../host-sim/board/power";
import { fillSlotWithNoise, prepareFactoryBoard } from "../host-sim/device";
import { RecordStore } from "../src/agent/record";
import { sha256Hex } from "../host-sim/image";
import { startUpdateServer } from "../host-sim/server/http-server";
import { assertNewFirmware, assertOldFirmware, run, tempDir } from "./support/sim";

const fixtures = new URL("./fixtures/delta/", import.meta.url);
const target = new Uint8Array(fs.readFileSync(new URL("new.bin", fixtures)));
const framed = fs.readFileSync(new URL("esp-delta-ota.patch", fixtures));
const work = tempDir("delta-http");
const pristine = path.join(work, "pristine");
prepareFactoryBoard(pristine);
fillSlotWithNoise(pristine, 1, 22);
fs.writeFileSync(path.join(work, "app.patch"), framed);
const otherBase = Buffer.from(framed);
otherBase[10] ^= 1;
fs.writeFileSync(path.join(work, "other-base.patch"), otherBase);
const config = { checkpointBytes: 16384 };
let server: Awaited<ReturnType<typeof startUpdateServer>>;
let boards = 0;

test.before(async () => {
	server = await startUpdateServer({ dir: work, port: 0 });
});

test.after(async () => {
	await server.close();
	fs.rmSync(work, { recursive: true, force: true });
});

function newBoard(): string {
	const dir = path.join(work, `board-${++boards}`);
	fs.cpSync(pristine, dir, { recursive: true });
	return dir;
}

const slotBytes = (dir: string) => BoardStorage.open(dir, new PowerSupply()).appSlot(1).read(0, target.length);

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an esp_delta_ota patch over HTTP installs the new image byte for byte`, async () => {
		const dir = newBoard();
		const outcome = await run({ dir, engine, config, url: `${server.url}/app.patch` });
		assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "patched");
		assert.equal(slotBytes(dir), target);
	});

	test(`${engine}: a cut in the middle of the patch resumes from its last checkpoint`, async () => {
		const dir = newBoard();
		// 80 persistent writes (record saves and flash writes) reach a few checkpoints into the patch.
		const first = await run({ dir, engine, config, url: `${server.url}/app.patch`, cutAfterOps: 80 });
		assert.is(first.end, "power-cut");
		const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
		const record = new RecordStore({ get: (key) => nvs.get("xs-ota", key), set() {}, delete() {} }, () => {}).load();
		assert.ok(record?.patch && record.committed > 0, "the cut left a patch checkpoint");
		const again = await run({ dir, engine, config });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "resumed");
		assert.equal(slotBytes(dir), target);
		// The resumed power-on fetches the patch from the checkpoint on, nothing before it.
		assert.is(again.bytesFetched, framed.length - record!.committed);
	});

	test(`${engine}: a patch for another base ends with 6 and writes nothing`, async () => {
		const dir = newBoard();
		const before = slotBytes(dir);
		const outcome = await run({ dir, engine, config, url: `${server.url}/other-base.patch` });
		assertOldFirmware(outcome, 6, "other base");
		assert.equal(slotBytes(dir), before);
	});
}

test.run();
