// Patches over AWS IoT jobs with MQTT file streams on the simulated board, both engines. The job document does
// not say the file is a patch: the stream asks for block 0 alone and its first byte decides. A patch's blocks
// then reach the applier in order although the broker duplicates and reorders them, and a cut mid-stream
// resumes from the block that holds the last checkpoint.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { sha256Hex } from "../host-sim/image";
import type { DeviceOptions } from "../host-sim/device";
import { assertNewFirmware, run } from "./support/sim";
import { DeltaBoards, deltaFixture, patchTarget as target, slotBytes, storedRecord } from "./support/delta-boards";

const framed = deltaFixture("esp-delta-ota.patch");
const boards = new DeltaBoards("delta-aws");
/** Small blocks, so the 7 KiB patch is 28 of them and their order matters. */
const blockSize = 256;
const config = { checkpointBytes: 16384, blockSize, blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
let aws: AwsIot;
let things = 0;

test.before(async () => {
	aws = await startAwsIot({});
});

test.after(async () => {
	await aws.close();
	boards.close();
});

function device(thing: string, options: Partial<DeviceOptions> & { dir: string }) {
	// Settled with the emulator in this process: a loaded host cannot turn slow replies into blocks fetched again.
	return run({ ...options, mqtt: aws.url, thing, config, settle: true });
}

function succeeded(thing: string, jobId: string): boolean {
	return aws.executions(thing).find((execution) => execution.jobId === jobId)?.status === "SUCCEEDED";
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: a patch over a stream whose blocks come duplicated and out of order installs byte for byte`, async () => {
		const thing = `delta-${engine}-${++things}`, dir = boards.next();
		const job = aws.createJob(thing, { image: framed, form: "afr_ota" });
		aws.faults.topics = new RegExp(`^\\$aws/things/${thing}/streams/[^/]+/data/`);
		aws.faults.reorder = 0.3;
		aws.faults.duplicateRate = 0.1;
		try {
			const outcome = await device(thing, { dir, engine });
			assertNewFirmware(outcome, sha256Hex(target), "1.0.1", "patched over a stream");
			assert.equal(slotBytes(dir), target);
			assert.ok(succeeded(thing, job.jobId));
			assert.ok(aws.stats.reordered > 0, "some blocks came out of order");
		}
		finally {
			aws.faults.reorder = aws.faults.duplicateRate = 0;
			aws.faults.topics = undefined;
		}
	});

	test(`${engine}: a cut in a streamed patch resumes from the block holding its checkpoint`, async () => {
		const thing = `delta-cut-${engine}-${++things}`, dir = boards.next();
		const job = aws.createJob(thing, { image: framed, form: "afr_ota" });
		const first = await device(thing, { dir, engine, cutAfterOps: 60 });
		assert.is(first.end, "power-cut");
		const record = storedRecord(dir);
		assert.ok(record?.patch && record.committed > 0, "the cut left a patch checkpoint");
		const again = await device(thing, { dir, engine });
		assertNewFirmware(again, sha256Hex(target), "1.0.1", "resumed over a stream");
		assert.equal(slotBytes(dir), target);
		assert.ok(succeeded(thing, job.jobId));
		const blocks = Math.ceil(framed.length / blockSize), from = Math.floor(record!.committed / blockSize);
		assert.ok(again.blocksFetched >= blocks - from && again.blocksFetched < blocks, `${again.blocksFetched} blocks fetched after the cut, ${blocks - from} from the checkpoint on`);
	});
}

test.run();
