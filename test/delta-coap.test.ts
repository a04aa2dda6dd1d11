// Patches over CoAP on the simulated board, both engines. A coap:// pull: an esp_delta_ota patch installs the
// new image byte for byte, and a cut mid-patch resumes on the same ETag from the block that holds the last
// checkpoint (a patch offset inside a block: the bytes before it are dropped, not applied twice). A Block1 push
// of the patch to /5/0/0 installs the same way; a cut in the push ends it with 4 (a push cannot resume).

import { test } from "uvu";
import * as assert from "uvu/assert";
import { sha256Hex } from "../host-sim/image";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import type { DeviceCommand } from "../host-sim/device";
import { assertNewFirmware, assertOldFirmware, run } from "./support/sim";
import { DeltaBoards, deltaFixture, patchTarget as target, slotBytes, storedRecord } from "./support/delta-boards";

const framed = deltaFixture("esp-delta-ota.patch");
const boards = new DeltaBoards("delta-coap");
const config = { checkpointBytes: 16384 };
const blockBytes = 1024;
let files: CoapFileServer, lwm2m: Lwm2mServer;
let endpoints = 0;

test.before(async () => {
	files = await CoapFileServer.start();
	files.serve("/fw/app.patch", framed);
	lwm2m = await Lwm2mServer.start();
});

test.after(async () => {
	await files.close();
	await lwm2m.close();
	boards.close();
});

/** An LwM2M server's side of a push: it pushes the patch once, executes Update, and ends the run on a final result. */
class Pusher extends Lwm2mUpdate {
	readonly commands: DeviceCommand[] = [];
	answer = "";

	constructor(engine: string) {
		super(lwm2m, `delta-${engine}-${++endpoints}`, async (update) => {
			this.answer = await lwm2m.push(update.endpoint, "/5/0/0", Buffer.from(framed), { blockSize: 1024 }).catch((error) => String(error));
		}, () => this.commands.push({ action: "shutdown" }));
	}

	run(dir: string, engine: "node" | "xs", cutAfterOps?: number) {
		return run({ dir, engine, cutAfterOps, runFor: 120000, commands: this.commands, config: { ...config, lwm2m: lwm2m.url, endpoint: this.endpoint, lifetime: 120, registrationRetryMs: 300 } });
	}
}

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

	test(`${engine}: a patch pushed by Block1 installs the new image byte for byte`, async () => {
		const dir = boards.next(), pusher = new Pusher(engine);
		try {
			const outcome = await pusher.run(dir, engine);
			assert.is(pusher.answer, "2.04");
			assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "patch pushed");
			assert.equal(slotBytes(dir), target);
		}
		finally {
			pusher.close();
		}
	});

	test(`${engine}: a cut in a pushed patch ends it with 4, the factory image running`, async () => {
		const dir = boards.next(), pusher = new Pusher(engine);
		try {
			const first = await pusher.run(dir, engine, 30);
			assert.is(first.end, "power-cut");
			// The cut fell while the patch was being applied: the record says Downloading, the new image has begun.
			assert.is(storedRecord(dir)?.state, 1);
			assert.equal(slotBytes(dir).subarray(0, 4096), target.subarray(0, 4096));
			const again = await pusher.run(dir, engine);
			assertOldFirmware(again, 4, "cut push");
			assert.is(pusher.results[pusher.results.length - 1], 4);
		}
		finally {
			pusher.close();
		}
	});
}

test.run();
