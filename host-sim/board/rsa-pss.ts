// RSA-PSS verification of a precomputed SHA-256 (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2 with MGF1-SHA-256),
// what PSA's psa_verify_hash(PSA_ALG_RSA_PSS(PSA_ALG_SHA_256)) does for the ESP32 helper. Node's crypto only
// verifies messages it hashes itself, so the simulated board does the arithmetic here, with BigInt.

import { createHash } from "node:crypto";

const hashLength = 32;

const toBig = (bytes: Uint8Array) => (bytes.length ? BigInt(`0x${Buffer.from(bytes).toString("hex")}`) : 0n);

function power(base: bigint, exponent: bigint, modulus: bigint): bigint {
	let result = 1n;
	for (base %= modulus; exponent > 0n; exponent >>= 1n, base = (base * base) % modulus)
		if (exponent & 1n) result = (result * base) % modulus;
	return result;
}

function mgf1(seed: Uint8Array, length: number): Uint8Array {
	const mask = new Uint8Array(length);
	for (let counter = 0, at = 0; at < length; counter++, at += hashLength) {
		const block = createHash("sha256").update(seed).update(Uint8Array.of(counter >>> 24, counter >>> 16, counter >>> 8, counter)).digest();
		mask.set(block.subarray(0, Math.min(hashLength, length - at)), at);
	}
	return mask;
}

/** `modulus` and `signature` big-endian; `saltLength` as the signer chose (32 for Secure Boot v2). */
export function verifyRsaPss(sha256: Uint8Array, modulus: Uint8Array, exponent: number, signature: Uint8Array, saltLength = 32): boolean {
	const n = toBig(modulus), s = toBig(signature);
	if (n === 0n || s >= n || sha256.length !== hashLength) return false;
	const modBits = n.toString(2).length, emBits = modBits - 1, emLength = Math.ceil(emBits / 8);
	const m = power(s, BigInt(exponent), n);
	const em = new Uint8Array(emLength);
	const hex = m.toString(16).padStart(emLength * 2, "0");
	if (hex.length > emLength * 2) return false;
	for (let i = 0; i < emLength; i++) em[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
	if (emLength < hashLength + saltLength + 2 || em[emLength - 1] !== 0xbc) return false;
	const maskedDb = em.subarray(0, emLength - hashLength - 1), h = em.subarray(emLength - hashLength - 1, emLength - 1);
	const topBits = 8 * emLength - emBits;
	if (maskedDb[0] >> (8 - topBits)) return false;
	const db = mgf1(h, maskedDb.length).map((byte, i) => byte ^ maskedDb[i]);
	db[0] &= 0xff >> topBits;
	const separator = emLength - hashLength - saltLength - 2;
	for (let i = 0; i < separator; i++) if (db[i] !== 0) return false;
	if (db[separator] !== 1) return false;
	const salt = db.subarray(db.length - saltLength);
	const expected = createHash("sha256").update(new Uint8Array(8)).update(sha256).update(salt).digest();
	return Buffer.compare(expected, Buffer.from(h)) === 0;
}
