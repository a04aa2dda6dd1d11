// Secure Boot v2 signature blocks and the trust policy, on in-memory flash: what passes, what is refused with
// which LwM2M result, and why. Whole updates on both engines are in signed-update.test.ts.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { MemorySlot, NodeDigest } from "./support/memory-slot";
import { makeAppImage } from "../host-sim/image";
import { keyDigestOf, signImage } from "../host-sim/signing";
import { verifyP256 } from "../host-sim/board/p256";
import { verifyRsaPss } from "../host-sim/board/rsa-pss";
import { checkImage, chipIds } from "../src/agent/image";
import { ImageTrust, type TrustPolicy, parseKeyDigests } from "../src/agent/image-trust";
import { blockLength, crcOffset, signedLength } from "../src/agent/signature-block";
import type { KeyVerifier } from "../src/platform/ports";
import { crc32 } from "../src/lib/crc32";

const fixtures = path.join(import.meta.dirname, "fixtures", "signed");
const rsaKey = fs.readFileSync(path.join(fixtures, "rsa3072-test-key.pem"));
const ecKey = fs.readFileSync(path.join(fixtures, "p256-test-key.pem"));
const otherKey = fs.readFileSync(path.join(fixtures, "p256-other-test-key.pem"));
const keys: KeyVerifier = { p256: (sha256, point, der) => verifyP256(sha256, der, point), rsaPss3072: (sha256, modulus, exponent, signature) => verifyRsaPss(sha256, modulus, exponent, signature) };

const slotBytes = 512 * 1024;

function slotWith(bytes: Uint8Array): MemorySlot {
	const slot = new MemorySlot(slotBytes);
	slot.write(0, bytes.length, bytes.slice().buffer);
	return slot;
}

/** Verifies `file` as the agent does after a download of its whole length (or `downloaded` bytes). */
function verify(file: Uint8Array, policy: Partial<TrustPolicy>, running = makeAppImage({ size: 40_000, version: "1.0.0" }), downloaded = file.length) {
	const logs: string[] = [];
	const trust = new ImageTrust({ running: slotWith(running), keys, digest: new NodeDigest(), log: (line) => logs.push(line) },
		{ requireSignature: false, trustedKeys: [], revokedKeys: [], ...policy }, chipIds.esp32);
	const slot = slotWith(file);
	const scratch = new Uint8Array(4096);
	const check = checkImage(slot, new NodeDigest(), chipIds.esp32, scratch, trust.signedData);
	if (!check.ok) throw new Error(check.reason);
	return { refusal: trust.refuses(slot, check, downloaded, scratch), logs };
}

const image = makeAppImage({ size: 100_000, version: "2.0.0" });

// A byte inside each kind's signature field.
for (const [name, key, signatureByte] of [["rsa-3072", rsaKey, 1000], ["ecdsa p-256", ecKey, 120]] as const) {
	test(`${name}: a block by a provisioned key verifies; the same image unsigned is refused under requireSignature`, () => {
		const signed = signImage(image, [key]);
		assert.is(signed.length, signedLength(image.length) + 4096);
		const passed = verify(signed, { requireSignature: true, trustedKeys: [keyDigestOf(key)] });
		assert.is(passed.refusal, undefined);
		assert.ok(passed.logs.some((line) => line.includes("signature block 0")), passed.logs.join("\n"));
		assert.equal(verify(image, { requireSignature: true, trustedKeys: [keyDigestOf(key)] }).refusal, { result: 5, reason: "image not signed" });
	});

	test(`${name}: a byte changed in the signed padding or in the signature is a mismatch, result 5`, () => {
		const signed = signImage(image, [key]);
		const padding = signed.slice();
		padding[image.length + 10] = 0;
		assert.equal(verify(padding, { trustedKeys: [keyDigestOf(key)] }).refusal, { result: 5, reason: "signature mismatch" });
		const signature = signed.slice();
		const at = signedLength(image.length) + signatureByte;
		signature[at] ^= 1;
		// The CRC would catch it: make it right again, as an attacker would.
		fixCrc(signature, signedLength(image.length));
		assert.equal(verify(signature, { trustedKeys: [keyDigestOf(key)] }).refusal, { result: 5, reason: "signature mismatch" });
	});
}

test("a key nobody trusts, a revoked key, and no trusted key at all", () => {
	const signed = signImage(image, [otherKey]);
	assert.equal(verify(signed, { trustedKeys: [keyDigestOf(ecKey)] }).refusal, { result: 5, reason: "not signed by a trusted key" });
	assert.equal(verify(signed, { trustedKeys: [keyDigestOf(otherKey)], revokedKeys: [keyDigestOf(otherKey)] }).refusal, { result: 5, reason: "signed by a revoked key" });
	assert.equal(verify(signed, { requireSignature: true }).refusal, { result: 5, reason: "no trusted key" });
	const open = verify(signed, {});
	assert.is(open.refusal, undefined, "without requireSignature and without keys the blocks are not checked");
	assert.ok(open.logs.includes("signature blocks unchecked: no trusted key"));
});

test("the running image's own block makes its key trusted (signed apps without secure boot)", () => {
	const running = signImage(makeAppImage({ size: 40_000, version: "1.0.0" }), [rsaKey]);
	assert.is(verify(signImage(image, [rsaKey]), { requireSignature: true }, running).refusal, undefined);
	assert.equal(verify(signImage(image, [ecKey]), { requireSignature: true }, running).refusal, { result: 5, reason: "not signed by a trusted key" });
	// Revoking the running image's key withdraws that trust.
	assert.equal(verify(signImage(image, [rsaKey]), { requireSignature: true, revokedKeys: [keyDigestOf(rsaKey)] }, running).refusal, { result: 5, reason: "signed by a revoked key" });
});

test("several blocks: any one trusted block passes; a block with a bad CRC is skipped, not trusted", () => {
	const both = signImage(image, [otherKey, rsaKey]);
	assert.is(verify(both, { requireSignature: true, trustedKeys: [keyDigestOf(rsaKey)] }).refusal, undefined);
	const badFirst = both.slice();
	badFirst[signedLength(image.length) + crcOffset] ^= 1;
	assert.is(verify(badFirst, { requireSignature: true, trustedKeys: [keyDigestOf(rsaKey)] }).refusal, undefined);
	const badOnly = signImage(image, [rsaKey]);
	badOnly[signedLength(image.length) + crcOffset] ^= 1;
	assert.equal(verify(badOnly, { requireSignature: true, trustedKeys: [keyDigestOf(rsaKey)] }).refusal, { result: 5, reason: "image not signed" });
});

test("a block cut off by the end of the download is no block", () => {
	const signed = signImage(image, [ecKey]);
	const cut = signedLength(image.length) + blockLength - 1;
	assert.equal(verify(signed, { requireSignature: true, trustedKeys: [keyDigestOf(ecKey)] }, undefined, cut).refusal, { result: 5, reason: "image not signed" });
});

test("anti-rollback: a secure version below the running one is refused with 8, equal or higher passes", () => {
	const running = makeAppImage({ size: 40_000, version: "1.0.0", secureVersion: 3 });
	assert.equal(verify(makeAppImage({ size: 100_000, version: "2.0.0", secureVersion: 2 }), {}, running).refusal, { result: 8, reason: "secure version 2 is below the running 3" });
	assert.is(verify(makeAppImage({ size: 100_000, version: "2.0.0", secureVersion: 3 }), {}, running).refusal, undefined);
	assert.is(verify(makeAppImage({ size: 100_000, version: "2.0.0", secureVersion: 4 }), {}, running).refusal, undefined);
});

for (const [name, file, key] of [["rsa-3072", "espsecure-rsa3072.bin", rsaKey], ["p-256", "espsecure-p256.bin", ecKey]] as const) {
	test(`espsecure's own ${name} signing (esptool v5.1.0) verifies; its key digest is ours; a changed byte fails`, () => {
		const signed = new Uint8Array(fs.readFileSync(path.join(fixtures, file)));
		const digest = new Uint8Array(fs.readFileSync(path.join(fixtures, file.replace("espsecure-", "").replace(".bin", "-test-key.digest"))));
		assert.equal(keyDigestOf(key), digest);
		assert.is(verify(signed, { requireSignature: true, trustedKeys: [digest] }).refusal, undefined);
		const changed = signed.slice();
		changed[40_001] ^= 1; // the 0xFF padding espsecure added
		assert.equal(verify(changed, { requireSignature: true, trustedKeys: [digest] }).refusal, { result: 5, reason: "signature mismatch" });
	});
}

test("xs-ota image --sign: both keys' digests printed as espsecure computes them, the file verifies; a 2048-bit key is refused", () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-sign-"));
	const out = path.join(dir, "app.bin");
	const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(import.meta.dirname, "..", "host-sim", "bin", "xs-ota.js"), "image", "--out", out, "--size", "50000", "--version", "2.0.0", ...args], { encoding: "utf8" });
	const keyFiles = [path.join(fixtures, "rsa3072-test-key.pem"), path.join(fixtures, "p256-test-key.pem")];
	const signed = cli("--secure-version", "4", "--sign", keyFiles.join(","));
	assert.is(signed.status, 0, signed.stderr);
	const digests = ["rsa3072-test-key.digest", "p256-test-key.digest"].map((file) => fs.readFileSync(path.join(fixtures, file)).toString("hex"));
	assert.equal(signed.stdout.trim().split("\n"), digests.map((digest, i) => `key digest ${digest}  ${keyFiles[i]}`));
	const bytes = new Uint8Array(fs.readFileSync(out));
	assert.is(bytes.length, signedLength(50_000) + 4096);
	const trustedKeys = parseKeyDigests(digests[1]);
	assert.is(verify(bytes, { requireSignature: true, trustedKeys }).refusal, undefined);
	fs.writeFileSync(path.join(dir, "rsa2048.pem"), generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }));
	const refused = cli("--sign", path.join(dir, "rsa2048.pem"));
	assert.is(refused.status, 1);
	assert.match(refused.stderr, /the key must be RSA-3072 or ECDSA P-256/);
	fs.rmSync(dir, { recursive: true, force: true });
});

test("key digests from config: hex, separated by commas or spaces; anything else is an error", () => {
	const digest = keyDigestOf(ecKey);
	const hex = Buffer.from(digest).toString("hex");
	assert.equal(parseKeyDigests(` ${hex},${hex.toUpperCase()} `), [digest, digest]);
	assert.equal(parseKeyDigests(""), []);
	assert.throws(() => parseKeyDigests("abc"), /bad key digest abc/);
});

function fixCrc(bytes: Uint8Array, at: number): void {
	new DataView(bytes.buffer, bytes.byteOffset).setUint32(at + crcOffset, crc32(bytes, at, at + crcOffset), true);
}

test.run();
