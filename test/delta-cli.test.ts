// Patches made by `xs-ota patch` (our TypeScript maker, not detools) pulled over HTTP by the simulated board,
// both engines: a framed heatshrink patch, a raw crle one and a compressed full image (heatshrink window 2^12)
// each install the new image byte for byte (Update Result 1); a framed patch made for another base ends with 6
// and writes nothing. Bad flag values exit 2 with a sentence.

import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { sha256Hex } from "../host-sim/image";
import { assertNewFirmware, assertOldFirmware, run } from "./support/sim";
import { DeltaBoards, patchTarget as target, slotBytes, servedOverHttp } from "./support/delta-boards";

const root = fileURLToPath(new URL("..", import.meta.url));
const fixtures = path.join(root, "test/fixtures/delta");
const xsOta = (...args: string[]) => spawnSync(process.execPath, [`${root}host-sim/bin/xs-ota.js`, "patch", ...args], { cwd: root, encoding: "utf8" });
const boards = new DeltaBoards("delta-cli");
const base = path.join(fixtures, "base.bin"), next = path.join(fixtures, "new.bin");

/** Makes a patch with the CLI into the served folder; its name there. */
function made(name: string, ...args: string[]): string {
	const result = xsOta("--out", path.join(boards.work, name), ...args);
	assert.is(result.status, 0, result.stderr);
	assert.match(result.stdout, new RegExp(`${name}: \\d+ bytes`));
	return name;
}

const patches = {
	"framed heatshrink": made("framed.patch", "--from", base, "--to", next, "--esp-delta-ota"),
	"raw crle": made("crle.patch", "--from", base, "--to", next, "--compression", "crle"),
	"compressed full image (window 2^12, lookahead 2^4)": made("full.patch", "--to", next, "--heatshrink-window", "12", "--heatshrink-lookahead", "4"),
};
const otherBase = made("other-base.patch", "--from", next, "--to", base, "--esp-delta-ota");
const config = { checkpointBytes: 16384 };
const server = servedOverHttp(boards);

for (const engine of ["node", "xs"] as const) {
	for (const [what, name] of Object.entries(patches)) {
		test(`${engine}: xs-ota patch's ${what} over HTTP installs the new image byte for byte`, async () => {
			const dir = boards.next();
			const outcome = await run({ dir, engine, config, url: `${server.url}/${name}` });
			assertNewFirmware(outcome, sha256Hex(target), "1.0.1", what);
			assert.equal(slotBytes(dir), target);
			assert.is(outcome.bytesFetched, fs.statSync(path.join(boards.work, name)).size);
		});
	}

	test(`${engine}: xs-ota patch --esp-delta-ota for another base ends with 6 and writes nothing`, async () => {
		const dir = boards.next();
		const before = slotBytes(dir);
		assertOldFirmware(await run({ dir, engine, config, url: `${server.url}/${otherBase}` }), 6, "other base");
		assert.equal(slotBytes(dir), before);
	});
}

test("xs-ota patch: bad flag values exit 2 with a sentence, a base without its SHA-256 exits 1", () => {
	const out = path.join(boards.work, "refused.patch");
	for (const [args, pattern] of [
		[["--compression", "lzma"], /--compression is none, crle, heatshrink/],
		[["--heatshrink-window", "13"], /window is 4 to 12 bits/],
		[["--heatshrink-window", "8", "--heatshrink-lookahead", "8"], /lookahead is 3 to 7 bits/],
		[["--heatshrink-window", "x"], /--heatshrink-window must be a whole number/],
		[["--compression", "crle", "--heatshrink-window", "8"], /go with --compression heatshrink/],
		[["--esp-delta-ota"], /--esp-delta-ota names the base image: it needs --from/],
	] as const) {
		const result = xsOta("--to", next, "--out", out, ...args);
		assert.is(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
		assert.match(result.stderr, pattern);
	}
	const unhashed = xsOta("--from", path.join(fixtures, "none.patch"), "--to", next, "--out", out, "--esp-delta-ota");
	assert.is(unhashed.status, 1);
	assert.match(unhashed.stderr, /the base image carries none/);
	const missing = xsOta("--from", path.join(boards.work, "missing.bin"), "--to", next, "--out", out);
	assert.is(missing.status, 1);
	assert.match(missing.stderr, /missing\.bin does not exist/);
	assert.not.ok(fs.existsSync(out), "nothing written");
});

test.run();
