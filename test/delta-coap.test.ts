// Patches over a coap:// pull on the simulated board, both engines: an esp_delta_ota patch installs the new image
// byte for byte, and a cut mid-patch resumes on the same ETag from the block that holds the last checkpoint
// (a patch offset inside a block: the bytes before it are dropped, not applied twice).

import { test } from "uvu";
import * as assert from "uvu/assert";
import { sha256Hex } from "../host-sim/image";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { assertNewFirmware, run } from "./support/sim";
import { DeltaBoards, deltaFixture, patchTarget as target, slotBytes, storedRecord } from "./support/delta-boards";

const framed = deltaFixture("esp-delta-ota.patch");
const boards = new DeltaBoards("delta-coap");
const config = { checkpointBytes: 16384 };
const blockBytes = 1024;
let files: CoapFileServer;

test.before(async () => {
	files = await CoapFileServer.start();
	files.serve("/fw/app.patch", framed);
});

test.after(async () => {
	await files.close();
	boards.close();
});

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an esp_delta_ota patch over coap:// installs the new image byte for byte`, async () => {
		const dir = boards.next(), before = files.stats.bytes;
		const outcome = await run({ dir, engine, config, url: files.url("/fw/app.patch") });
		assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "patched over coap");
		assert.equal(slotBytes(dir), target);
		assert.is(files.stats.bytes - before, framed.length, "the patch was fetched once, not the image");
	});

	test(`${engine}: a cut in the middle of a coap:// patch resumes from the block holding its checkpoint`, async () => {
		const dir = boards.next();
		// 60 persistent writes reach a few checkpoints into the patch (its 7 blocks make 64 sectors).
		const first = await run({ dir, engine, config, url: files.url("/fw/app.patch"), cutAfterOps: 60 });
		assert.is(first.end, "power-cut");
		const record = storedRecord(dir);
		assert.ok(record?.patch && record.committed > 0, "the cut left a patch checkpoint");
		assert.ok(record!.committed % blockBytes !== 0, `the checkpoint (${record!.committed}) falls inside a block`);
		const before = files.stats.bytes;
		const again = await run({ dir, engine, config });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "resumed over coap");
		assert.equal(slotBytes(dir), target);
		// From the block that holds the checkpoint on, nothing before it.
		const from = record!.committed - (record!.committed % blockBytes);
		assert.is(files.stats.bytes - before, framed.length - from);
	});
}

test.run();
