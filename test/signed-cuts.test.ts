// Power cuts during signature verification (issue 23). For each refusal kind and a good signed image, a run
// without a cut counts the board's persistent writes; then a cut at each write from the download's last flash
// write through the decision (the record saying Idle with the result, or Downloaded) and, for the good image,
// through the boot switch, followed by a power-on without a cut, ends exactly as the run without a cut did:
// the same result and reason with the factory image running, or the new image running. Every write in that
// range on the node engine; a sample on xs.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { factoryVersion, type DeviceOptions } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { keyDigestOf, signImage } from "../host-sim/signing";
import { signedLength } from "../src/agent/signature-block";
import { assertNewFirmware, assertOldFirmware, tempDir, traced, type Traced } from "./support/sim";
import { hex, otherKey, rsaKey } from "./support/signed";


const newImage = makeAppImage({ size: 120_000, version: "2.0.0", secureVersion: 2 });
const signed = signImage(newImage, [rsaKey]);
/** The running image's RSA block makes that key the trusted one; its secure_version is 2. */
const factoryImage = signImage(makeAppImage({ size: 128 * 1024, version: factoryVersion, secureVersion: 2 }), [rsaKey]);

type Case = { name: string; file: Uint8Array; config?: Record<string, unknown>; result: number; reason?: string };
const cases: Case[] = [
	{ name: "a good signed image", file: signed, result: 1 },
	{ name: "an unsigned image", file: newImage, result: 5, reason: "image not signed" },
	{ name: "an image signed by another key", file: signImage(newImage, [otherKey]), result: 5, reason: "not signed by a trusted key" },
	{ name: "an image signed by a revoked key", file: signed, config: { revokedKeys: hex(keyDigestOf(rsaKey)) }, result: 5, reason: "signed by a revoked key" },
	{ name: "a file ending inside its signature block", file: signed.slice(0, signedLength(newImage.length) + 600), result: 5, reason: "image not signed" },
	{ name: "a lower secure_version", file: signImage(makeAppImage({ size: 120_000, version: "2.0.0", secureVersion: 1 }), [rsaKey]), result: 8, reason: "secure version 1 is below the running 2" },
];

let www: string;
let server: UpdateServer;

test.before(async () => {
	www = tempDir("signed-cuts-www");
	server = await startUpdateServer({ dir: www, port: 0 });
	cases.forEach((c, index) => fs.writeFileSync(path.join(www, `case-${index}.bin`), c.file));
});
test.after(async () => {
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

function options(engine: "node" | "xs", c: Case): DeviceOptions {
	return { dir: tempDir("board"), engine, url: `${server.url}/case-${cases.indexOf(c)}.bin`, factoryImage, config: { requireSignature: true, ...c.config } };
}

/** The board ended as `c` says, and the last result it reported (over `runs`, in order) carries the reason. */
function assertEnded(runs: Traced[], c: Case, what: string): void {
	const outcome = runs[runs.length - 1];
	if (c.result === 1) assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", what);
	else assertOldFirmware(outcome, c.result, what);
	const reported = runs.flatMap((run) => run.events.filter((event) => event.event === "result")).pop();
	assert.equal([reported?.result, reported?.reason], [c.result, c.reason], `${what}: reported ${JSON.stringify(reported)}`);
}

/**
 * The run without a cut, its writes counted (1-based, over all boots, as cutAfterOps counts them): the last
 * flash write of the download, the write that records the decision, and the boot switch's otadata write.
 */
async function writesOf(engine: "node" | "xs", c: Case): Promise<{ lastData: number; decision: number; switched: number | undefined; total: number }> {
	const kinds: string[] = [];
	const states: { state: number; op: number }[] = [];
	const outcome = await traced({
		...options(engine, c),
		onBoard: (board) => {
			const power = board.power, begin = power.beginOp.bind(power);
			power.beginOp = (kind) => (kinds.push(kind), begin(kind));
		},
		onEvent: (event) => event.event === "state" && states.push({ state: event.state as number, op: event.op as number }),
	});
	assertEnded([outcome], c, `${engine} ${c.name} without a cut`);
	assert.is(kinds.length, outcome.ops);
	const downloading = states.findIndex((s) => s.state === 1);
	const decision = states[downloading + 1];
	assert.is(decision.state, c.result === 1 ? 2 : 0, "the download ends in the decision");
	// While downloading, the only flash writes are the image's.
	const lastData = kinds.lastIndexOf("flash-write", decision.op - 1) + 1;
	assert.ok(lastData > states[downloading].op && lastData < decision.op);
	const updating = states.find((s) => s.state === 3)?.op;
	const switched = updating === undefined ? undefined : kinds.indexOf("flash-write", updating) + 1;
	return { lastData, decision: decision.op, switched, total: outcome.ops };
}

async function cutAndResume(engine: "node" | "xs", c: Case, op: number): Promise<void> {
	const board = options(engine, c);
	const cut = await traced({ ...board, cutAfterOps: op });
	assert.is(cut.end, "power-cut", `${engine} ${c.name}: cut at write ${op}`);
	const resumed = await traced({ dir: board.dir, engine, factoryImage, config: board.config });
	assertEnded([cut, resumed], c, `${engine} ${c.name}: after a cut at write ${op}`);
	fs.rmSync(board.dir, { recursive: true, force: true });
}

for (const c of cases) {
	test(`node: ${c.name}: a cut at every write from the download's end through the ${c.result === 1 ? "boot switch" : "refusal"} ends as without a cut`, async () => {
		const { lastData, decision, switched, total } = await writesOf("node", c);
		const last = c.result === 1 ? switched! : total;
		assert.ok(last >= decision);
		for (let op = lastData; op <= last; op++) await cutAndResume("node", c, op);
	});
}

// On xs, the cuts on either side of the record's decision write: the job list (and a refusal's reason) saved,
// the record not yet; the record saved, its report not yet acknowledged. The good image: the boot switch too.
for (const c of cases) {
	test(`xs: ${c.name}: cuts beside the decision's write${c.result === 1 ? " and in the boot switch" : ""} end as without a cut`, async () => {
		const { decision, switched } = await writesOf("xs", c);
		for (const op of [decision - 1, decision + 1, ...(switched ? [switched] : [])]) await cutAndResume("xs", c, op);
	});
}

test.run();
