// Hostile state on the board itself: flash that lost a bit under a checkpoint, and preference records that
// are foreign, from the future, or torn. Each ends in a defined result with the running firmware intact.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { PreferenceStore } from "../host-sim/board/nvs";
import { PowerSupply } from "../host-sim/board/power";
import { crc32 } from "../src/lib/crc32";
import { emptyRecord, encodeRecord, encodedLength, recordKeys } from "../src/agent/record";
import { assertNewFirmware, assertOldFirmware, publish, run, tempDir } from "./support/sim";

let www: string;
let server: UpdateServer;
let image: { bytes: Uint8Array; sha256: string };

test.before(async () => {
	www = tempDir("www");
	image = publish(www, "app.bin", 200 * 1024, "2.0.0");
	server = await startUpdateServer({ dir: www, port: 0 });
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

const domain = "xs-ota";
const nvsOf = (board: string) => PreferenceStore.open(board, new PowerSupply());

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: a bit flipped under the checkpoint fails verification with 5; the next request starts clean`, async () => {
		const board = tempDir("board");
		const url = `${server.url}/app.bin`;
		assert.is((await run({ dir: board, engine, url, cutAfterOps: 120 })).end, "power-cut");
		const slotFile = path.join(board, "ota_1.bin");
		const slot = fs.readFileSync(slotFile);
		slot[5000] ^= 0x04;
		fs.writeFileSync(slotFile, slot);
		const resumed = await run({ dir: board, engine });
		assertOldFirmware(resumed, 5, "corrupted under the checkpoint");
		assert.ok(resumed.bytesFetched < image.bytes.length, "it resumed, so the bad bit came from flash, not the server");
		const again = await run({ dir: board, engine, url });
		assertNewFirmware(again, image.sha256, "2.0.0", "a new request never resumes onto bytes that failed verification");
		assert.is(again.bytesFetched, image.bytes.length);
	});

	test(`${engine}: a record from a newer format, with a valid CRC, is discarded, not misread`, async () => {
		const board = tempDir("board");
		await run({ dir: board, engine });
		const record = { ...emptyRecord(), state: 1 as const, committed: 65536, totalSize: image.bytes.length, uri: `${server.url}/app.bin`, etag: '"x"' };
		const bytes = new Uint8Array(encodedLength(record));
		encodeRecord(record, bytes);
		bytes[0] = 2;
		new DataView(bytes.buffer).setUint32(bytes.length - 4, crc32(bytes, 0, bytes.length - 4), true);
		nvsOf(board).set(domain, recordKeys[0], bytes.buffer);
		const logs: string[] = [];
		const outcome = await run({ dir: board, engine, onEvent: (e) => { if (e.event === "log") logs.push(String(e.message)); } });
		assertOldFirmware(outcome, 0, "nothing to resume");
		assert.is(outcome.bytesFetched, 0);
		assert.ok(logs.some((line) => line.includes("unknown format 2")), logs.join("\n"));
	});

	test(`${engine}: a record that claims more bytes than its file is refused; other apps' preferences are left alone`, async () => {
		const board = tempDir("board");
		await run({ dir: board, engine });
		const record = { ...emptyRecord(), state: 1 as const, committed: 999999, totalSize: 4096, uri: `${server.url}/app.bin`, etag: '"x"' };
		const bytes = new Uint8Array(encodedLength(record));
		encodeRecord(record, bytes);
		const nvs = nvsOf(board);
		nvs.set(domain, recordKeys[1], bytes.buffer);
		nvs.set("wifi", "ssid", "home");
		const outcome = await run({ dir: board, engine, url: `${server.url}/app.bin` });
		assertNewFirmware(outcome, image.sha256, "2.0.0", "a fresh download");
		assert.is(outcome.bytesFetched, image.bytes.length);
		assert.is(nvsOf(board).get("wifi", "ssid"), "home");
	});
}

test.run();
