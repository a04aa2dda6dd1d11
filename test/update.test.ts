// Whole updates on simulated boards, on both engines: the happy path, power cuts at random persistent
// writes across the life cycle, a file replaced between cuts, and every bad input with its LwM2M result.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { factoryVersion } from "../host-sim/device";
import { PreferenceStore } from "../host-sim/board/nvs";
import { PowerSupply } from "../host-sim/board/power";
import { defaultFragmentBytes } from "../host-sim/board/network";
import { publish, remainingOps, run, seeded, tempDir } from "./support/sim";

const engines = ["node", "xs"] as const;
// One checkpoint interval plus the fragment in flight per cut: see host-sim/torture.ts.
const refetchPerCut = 16384 + defaultFragmentBytes;
let www: string;
let server: UpdateServer;

test.before(async () => {
	www = tempDir("www");
	server = await startUpdateServer({ dir: www, port: 0 });
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

for (const engine of engines) {
	test(`${engine}: a clean update ends with the new image running and result 1`, async () => {
		const image = publish(www, `clean-${engine}.bin`, 300 * 1024, "2.0.0");
		const board = tempDir("board");
		const outcome = await run({ dir: board, engine, url: `${server.url}/clean-${engine}.bin`, sha256: image.sha256 });
		assert.is(outcome.end, "idle");
		assert.is(outcome.result, 1);
		assert.is(outcome.running.version, "2.0.0");
		assert.is(outcome.running.sha256, image.sha256);
		assert.is(outcome.running.slot, 1);
		assert.is(outcome.bytesFetched, image.bytes.length);
		// After the update the record survives more reboots, still saying success.
		const again = await run({ dir: board, engine });
		assert.is(again.result, 1);
		assert.is(again.running.version, "2.0.0");
	});

	test(`${engine}: ten power cuts at random persistent writes, then success with bounded re-fetching`, async () => {
		const image = publish(www, `cuts-${engine}.bin`, 512 * 1024, "3.0.0");
		const board = tempDir("board");
		const random = seeded(engine === "xs" ? 7 : 3);
		let fetched = 0, cuts = 0;
		let url: string | undefined = `${server.url}/cuts-${engine}.bin`;
		const phases = new Set<number>();
		while (cuts < 10) {
			// Measure what is left on a copy, then cut within it: every third cut among the last dozen writes
			// (verify, switch, first boot, confirm), the others anywhere.
			const left = url ? 300 : await remainingOps(board, engine);
			if (left === 0) break;
			const span = cuts % 3 === 1 ? Math.min(left, 12) : left;
			const cutAfterOps = left - Math.floor(random() * span);
			const outcome = await run({ dir: board, engine, url, cutAfterOps });
			url = undefined;
			fetched += outcome.bytesFetched;
			phases.add(outcome.state);
			assert.is(outcome.end, "power-cut", `cut ${cuts + 1} at ${cutAfterOps} of ${left} did not land`);
			cuts++;
		}
		const final = await run({ dir: board, engine });
		fetched += final.bytesFetched;
		assert.is(final.result, 1);
		assert.is(final.running.sha256, image.sha256);
		assert.is(cuts, 10);
		assert.ok(fetched <= image.bytes.length + cuts * refetchPerCut, `fetched ${fetched} for ${image.bytes.length} with ${cuts} cuts`);
		assert.ok(phases.size >= 2, `cuts hit states ${[...phases]}`);
	});

	test(`${engine}: a file replaced between cuts ends with the new file, never a mix`, async () => {
		const name = `replaced-${engine}.bin`;
		publish(www, name, 400 * 1024, "4.0.0");
		const board = tempDir("board");
		const first = await run({ dir: board, engine, url: `${server.url}/${name}`, cutAfterOps: 150 });
		assert.is(first.end, "power-cut");
		const replacement = publish(www, name, 400 * 1024, "4.0.1");
		const final = await run({ dir: board, engine });
		assert.is(final.result, 1);
		assert.is(final.running.version, "4.0.1");
		assert.is(final.running.sha256, replacement.sha256);
	});
}

const bad: { name: string; result: number; setUp: () => { url: string; sha256?: string } }[] = [
	{ name: "missing file (404)", result: 7, setUp: () => ({ url: `${server.url}/nothing-here.bin` }) },
	{ name: "malformed URI", result: 7, setUp: () => ({ url: "http//no-scheme/app.bin" }) },
	{ name: "unsupported scheme", result: 9, setUp: () => ({ url: "ftp://127.0.0.1/app.bin" }) },
	{ name: "image for another chip", result: 6, setUp: () => (publish(www, "s3.bin", 64 * 1024, "2.0.0", "esp32s3"), { url: `${server.url}/s3.bin` }) },
	{ name: "not an image", result: 6, setUp: () => (fs.writeFileSync(path.join(www, "junk.bin"), new Uint8Array(50000).fill(0x5a)), { url: `${server.url}/junk.bin` }) },
	{ name: "image too large for the slot", result: 2, setUp: () => (publish(www, "huge.bin", 2 * 1024 * 1024, "2.0.0"), { url: `${server.url}/huge.bin` }) },
	{ name: "SHA-256 mismatch", result: 5, setUp: () => (publish(www, "ok.bin", 64 * 1024, "2.0.0"), { url: `${server.url}/ok.bin`, sha256: "00".repeat(32) }) },
	{ name: "server down", result: 4, setUp: () => ({ url: "http://127.0.0.1:9/app.bin" }) },
];

for (const engine of engines) {
	for (const { name, result, setUp } of bad) {
		test(`${engine}: ${name} ends with result ${result} and the old firmware running`, async () => {
			const board = tempDir("board");
			const { url, sha256 } = setUp();
			const outcome = await run({ dir: board, engine, url, sha256 });
			assert.is(outcome.end, "idle");
			assert.is(outcome.state, 0);
			assert.is(outcome.result, result);
			assert.is(outcome.running.version, factoryVersion);
			assert.is(outcome.running.slot, 0);
			assert.is(outcome.boots, 1);
		});
	}

	test(`${engine}: a corrupt preference record is discarded, never trusted`, async () => {
		const image = publish(www, `after-corrupt-${engine}.bin`, 64 * 1024, "2.1.0");
		const board = tempDir("board");
		await run({ dir: board, engine });
		const nvs = PreferenceStore.open(board, new PowerSupply());
		nvs.set("xs-ota", "fw.a", new Uint8Array(80).fill(0xa5).buffer);
		nvs.set("xs-ota", "fw.b", "not a record");
		const logs: string[] = [];
		const outcome = await run({ dir: board, engine, url: `${server.url}/after-corrupt-${engine}.bin`, onEvent: (e) => { if (e.event === "log") logs.push(String(e.message)); } });
		assert.is(outcome.result, 1);
		assert.is(outcome.running.sha256, image.sha256);
		assert.ok(logs.some((line) => line.includes("fw.a discarded: crc mismatch")), logs.join("\n"));
	});
}

test.run();
