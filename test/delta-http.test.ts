// Patches over an HTTP pull on the simulated board, both engines: a detools patch in esp_delta_ota framing
// installs the new image byte for byte, a cut mid-patch resumes from the last checkpoint (also when the same
// URI is requested again), the restart policy applies it afresh, and a patch for another base ends with 6
// before anything is written, the factory image still running. A raw patch (no framing) installs; a raw one
// for another base ends with 5 and leaves no patch state, so the next request installs a plain image; so do a
// truncated patch and a corrupted one.

import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { sha256Hex } from "../host-sim/image";
import { assertNewFirmware, assertOldFirmware, run } from "./support/sim";
import { DeltaBoards, deltaFixture, patchTarget as target, slotBytes, storedRecord, servedOverHttp } from "./support/delta-boards";

const framed = deltaFixture("esp-delta-ota.patch");
const boards = new DeltaBoards("delta-http");
fs.writeFileSync(path.join(boards.work, "app.patch"), framed);
const otherBase = framed.slice();
otherBase[10] ^= 1;
fs.writeFileSync(path.join(boards.work, "other-base.patch"), otherBase);
const raw = deltaFixture("heatshrink.patch");
fs.writeFileSync(path.join(boards.work, "raw.patch"), raw);
fs.writeFileSync(path.join(boards.work, "raw-other-base.patch"), deltaFixture("reverse-heatshrink.patch"));
fs.writeFileSync(path.join(boards.work, "app.bin"), target);
// A patch cut short (a server that stopped serving it part-way, with a length to match) and one whose compressed
// data was damaged in the middle: neither may install, and neither may leave state that a next request builds on.
fs.writeFileSync(path.join(boards.work, "truncated.patch"), framed.subarray(0, Math.floor(framed.length * 0.6)));
const corrupted = framed.slice();
for (let i = 3000; i < 3064; i++) corrupted[i] ^= 0x5a;
fs.writeFileSync(path.join(boards.work, "corrupted.patch"), corrupted);
const config = { checkpointBytes: 16384 };
const server = servedOverHttp(boards);

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an esp_delta_ota patch over HTTP installs the new image byte for byte`, async () => {
		const dir = boards.next();
		const outcome = await run({ dir, engine, config, url: `${server.url}/app.patch` });
		assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "patched");
		assert.equal(slotBytes(dir), target);
	});

	test(`${engine}: a cut in the middle of the patch resumes from its last checkpoint`, async () => {
		const dir = boards.next();
		// 80 persistent writes (record saves and flash writes) reach a few checkpoints into the patch.
		const first = await run({ dir, engine, config, url: `${server.url}/app.patch`, cutAfterOps: 80 });
		assert.is(first.end, "power-cut");
		const record = storedRecord(dir);
		assert.ok(record?.patch && record.committed > 0, "the cut left a patch checkpoint");
		const again = await run({ dir, engine, config });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "resumed");
		assert.equal(slotBytes(dir), target);
		// The resumed power-on fetches the patch from the checkpoint on, nothing before it.
		assert.is(again.bytesFetched, framed.length - record!.committed);
	});

	test(`${engine}: a cut mid-patch, then the same URI requested again, resumes from the checkpoint`, async () => {
		const dir = boards.next(), url = `${server.url}/app.patch`;
		assert.is((await run({ dir, engine, config, url, cutAfterOps: 80 })).end, "power-cut");
		const record = storedRecord(dir)!;
		// As an LwM2M server writes the Package URI again: the request resumes the patch, not an image.
		const again = await run({ dir, engine, config, url });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "requested again");
		assert.is(again.bytesFetched, framed.length - record.committed);
	});

	test(`${engine}: the restart policy applies a cut patch afresh, from its first byte`, async () => {
		const dir = boards.next();
		assert.is((await run({ dir, engine, config, url: `${server.url}/app.patch`, policy: "restart", cutAfterOps: 80 })).end, "power-cut");
		assert.ok(storedRecord(dir)?.patch, "the cut left a patch checkpoint");
		const again = await run({ dir, engine, config });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "restarted");
		assert.is(again.bytesFetched, framed.length);
	});

	test(`${engine}: a raw detools patch (no framing) installs the new image byte for byte`, async () => {
		const dir = boards.next();
		const outcome = await run({ dir, engine, config, url: `${server.url}/raw.patch` });
		assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "raw patch");
		assert.equal(slotBytes(dir), target);
	});

	test(`${engine}: a raw patch for another base ends with 5 and no patch state; a plain image installs next`, async () => {
		const dir = boards.next();
		const failed = await run({ dir, engine, config, url: `${server.url}/raw-other-base.patch` });
		assertOldFirmware(failed, 5, "raw patch for another base");
		assert.is(storedRecord(dir)?.patch, undefined, "the failed patch left no apply state");
		const plain = await run({ dir, engine, config, url: `${server.url}/app.bin` });
		assertNewFirmware(plain, sha256Hex(target), "1.0.1", "plain image after a failed patch");
		assert.is(plain.bytesFetched, target.length);
	});

	for (const [name, what] of [["truncated", "a truncated patch"], ["corrupted", "a patch damaged in its data"]]) {
		test(`${engine}: ${what} ends with 5, the factory image running, and leaves no patch state; the whole patch installs next`, async () => {
			const dir = boards.next();
			const failed = await run({ dir, engine, config, url: `${server.url}/${name}.patch` });
			assertOldFirmware(failed, 5, what);
			assert.is(storedRecord(dir)?.patch, undefined, "the failed patch left no apply state");
			const whole = await run({ dir, engine, config, url: `${server.url}/app.patch` });
			assertNewFirmware(whole, sha256Hex(target), "1.0.1", `the whole patch after ${what}`);
			assert.is(whole.bytesFetched, framed.length, "fetched from its first byte");
		});
	}

	test(`${engine}: a patch for another base ends with 6 and writes nothing`, async () => {
		const dir = boards.next();
		const before = slotBytes(dir);
		const outcome = await run({ dir, engine, config, url: `${server.url}/other-base.patch` });
		assertOldFirmware(outcome, 6, "other base");
		assert.equal(slotBytes(dir), before);
	});
}

test.run();
