// Signed updates over AWS IoT jobs and MQTT file streams, on both engines (issue 23): Secure Boot v2 blocks are
// verified before the boot switch as on every other path; an afr_ota job's own signature must hold as well; each
// refusal ends the job FAILED with its result and reason, the factory image still running.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import { startAwsIot, type AwsIot, type CreateJobOptions } from "../host-sim/server/aws-iot";
import { factoryVersion } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { keyDigestOf, signImage } from "../host-sim/signing";
import { assertNewFirmware, assertOldFirmware, logged, tempDir, traced, type Traced } from "./support/sim";
import { ecKey, hex, otherKey, rsaKey } from "./support/signed";

const engines = ["node", "xs"] as const;

/** The factory image signed with the RSA key: its block makes that key the trusted one. */
const signedFactory = signImage(makeAppImage({ size: 128 * 1024, version: factoryVersion, secureVersion: 2 }), [rsaKey]);
const newImage = makeAppImage({ size: 120_000, version: "2.0.0", secureVersion: 2 });

// afr_ota's own code-signing signature (sig-sha256-ecdsa): ECDSA P-256 over the whole file, the job's key in
// config.publicKey. The other test key plays the code-signing certificate's.
const jobKey = createPrivateKey(otherKey);
const jwk = createPublicKey(jobKey).export({ format: "jwk" });
const publicKey = `04${Buffer.from(jwk.x!, "base64url").toString("hex")}${Buffer.from(jwk.y!, "base64url").toString("hex")}`;
const jobSignature = (bytes: Uint8Array) => sign("sha256", bytes, { key: jobKey, dsaEncoding: "der" }).toString("base64");

/** Fast re-requests and status retries, and the board's signature policy. */
const config = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100, requireSignature: true, publicKey };
let aws: AwsIot;
let things = 0;

test.before(async () => {
	aws = await startAwsIot({});
});
test.after(async () => {
	await aws.close();
});

/** Queues one job for a fresh board, runs the board until idle; the outcome and the job's terminal status. */
async function update(engine: "node" | "xs", job: CreateJobOptions, extra: Record<string, unknown> = {}): Promise<{ outcome: Traced; status: string; details: { [key: string]: string } }> {
	const thing = `signed-${engine}-${++things}`;
	const { jobId } = aws.createJob(thing, job);
	const outcome = await traced({ engine, dir: tempDir("board"), mqtt: aws.url, thing, factoryImage: signedFactory, config: { ...config, ...extra } });
	const execution = aws.executions(thing).find((e) => e.jobId === jobId)!;
	return { outcome, status: execution.status, details: execution.statusDetails };
}

for (const engine of engines) {
	test(`${engine}: fota over MQTT: an RSA-signed image installs under requireSignature, SUCCEEDED`, async () => {
		const { outcome, status } = await update(engine, { image: signImage(newImage, [rsaKey]), form: "fota" });
		assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 0 (rsa) verified"), outcome.logs.join("\n"));
		assert.is(status, "SUCCEEDED");
	});

	test(`${engine}: fota over MQTT: an ECDSA P-256 image by a provisioned key installs, SUCCEEDED`, async () => {
		const { outcome, status } = await update(engine, { image: signImage(newImage, [ecKey]), form: "fota" }, { trustedKeys: hex(keyDigestOf(ecKey)) });
		assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 0 (ecdsa) verified"), outcome.logs.join("\n"));
		assert.is(status, "SUCCEEDED");
	});

	test(`${engine}: afr_ota with its own signature and a signed image: both hold, SUCCEEDED`, async () => {
		const signed = signImage(newImage, [rsaKey]);
		const { outcome, status } = await update(engine, { image: signed, form: "afr_ota", signature: jobSignature(signed) });
		assertNewFirmware(outcome, sha256Hex(newImage), "2.0.0", engine);
		assert.ok(logged(outcome, "signature block 0 (rsa) verified"), outcome.logs.join("\n"));
		assert.is(status, "SUCCEEDED");
	});

	const refusals: { name: string; job: () => CreateJobOptions; result: number; reason: string }[] = [
		{ name: "afr_ota: a good job signature does not vouch for an unsigned image", result: 5, reason: "image not signed",
			job: () => ({ image: newImage, form: "afr_ota", signature: jobSignature(newImage) }) },
		{ name: "afr_ota: a good image signature does not vouch for a bad job signature", result: 5, reason: "job signature mismatch",
			job: () => ({ image: signImage(newImage, [rsaKey]), form: "afr_ota", signature: jobSignature(newImage) }) },
		{ name: "fota: an unsigned image", result: 5, reason: "image not signed",
			job: () => ({ image: newImage, form: "fota" }) },
		{ name: "fota: an image signed by an untrusted key", result: 5, reason: "not signed by a trusted key",
			job: () => ({ image: signImage(newImage, [otherKey]), form: "fota" }) },
		{ name: "fota: a newer version with a lower secure_version", result: 8, reason: "secure version 1 is below the running 2",
			job: () => ({ image: signImage(makeAppImage({ size: 120_000, version: "2.0.0", secureVersion: 1 }), [rsaKey]), form: "fota" }) },
	];
	for (const { name, job, result, reason } of refusals) {
		test(`${engine}: ${name} is refused: FAILED with ${result} and "${reason}", the factory image running`, async () => {
			const { outcome, status, details } = await update(engine, job());
			assertOldFirmware(outcome, result, `${engine} ${name}`);
			assert.is(status, "FAILED");
			assert.equal([details.result, details.reason], [String(result), reason]);
		});
	}
}

// A cut on either side of the write that records the refusal: the job list (with the reason) saved and the record
// not yet, or the record saved and the report not yet acknowledged. The job still ends FAILED exactly once, with
// the reason, as without a cut.
test("node: cuts beside the refusal's decision write: the job still ends FAILED once with its reason", async () => {
	const run = (thing: string, dir: string, cutAfterOps?: number) => traced({ engine: "node", dir, mqtt: aws.url, thing, factoryImage: signedFactory, config, cutAfterOps });
	const reference = `signed-cut-${++things}`;
	aws.createJob(reference, { image: newImage, form: "fota" });
	let decision = 0;
	const counted = await run(reference, tempDir("board"));
	assertOldFirmware(counted, 5, "without a cut");
	for (const event of counted.events) if (event.event === "state" && event.state === 0 && event.result === 5 && !decision) decision = event.op as number;
	assert.ok(decision > 0);
	for (const op of [decision - 1, decision + 1]) {
		const thing = `signed-cut-${++things}`;
		const { jobId } = aws.createJob(thing, { image: newImage, form: "fota" });
		const dir = tempDir("board");
		assert.is((await run(thing, dir, op)).end, "power-cut", `cut at write ${op}`);
		assertOldFirmware(await run(thing, dir), 5, `after a cut at write ${op}`);
		const execution = aws.executions(thing).find((e) => e.jobId === jobId)!;
		const terminal = execution.updates.filter((u) => u.outcome === "accepted" && u.status === "FAILED");
		assert.is(terminal.length, 1, `cut at write ${op}`);
		assert.equal([execution.status, execution.statusDetails.result, execution.statusDetails.reason], ["FAILED", "5", "image not signed"], `cut at write ${op}`);
	}
});

test.run();
