/*
	ESP-IDF Secure Boot v2 signature blocks (ESP-IDF docs "secure-boot-v2", NOTES §6). The signed data is the
	app image padded with 0xFF to a 4 KiB sector boundary (ESP-IDF's own build pads further, to 64 KiB less the
	signature sector); the signature sector follows it and holds up to 3 blocks of 1216 bytes, the rest 0xFF.
	A block, little-endian, big numbers least significant byte first:

	  0 u8 magic 0xE7   1 u8 version (2 RSA-3072, 3 ECDSA)   2 u8 ECDSA hash (0 SHA-256)   4 image SHA-256 (32)
	  RSA:   36 n (384)   420 e (u32)   424 R (384)   808 M' (u32)   812 RSA-PSS signature (384)
	  ECDSA: 36 curve id (2 = P-256)   37 public key x ‖ y (64)   101 r ‖ s (64)
	  1196 u32 CRC-32 of bytes 0..1195   1200 16 zero bytes

	A block with a wrong magic, version or CRC is no block: it is skipped, as ESP-IDF skips it. The key digest
	(what ESP-IDF burns into eFuse and compares) is the SHA-256 of the key fields: bytes 36..811 for RSA (n, e,
	R, M'), 36..100 for ECDSA (curve id and point).
*/

import type { Digest, KeyVerifier } from "../platform/ports";
import { crc32 } from "../lib/crc32";
import { readU32 } from "./image";

export const sectorSize = 4096;
export const blockLength = 1216;
export const maxBlocks = 3;
export const blockMagic = 0xe7;
export const versionRsa = 0x02;
export const versionEcdsa = 0x03;
export const ecdsaSha256 = 0;
export const curveP256 = 2;
export const imageDigestOffset = 4;
export const keyOffset = 36;
export const rsaModulusLength = 384;
export const rsaExponentOffset = 420;
export const rsaKeyEnd = 812; // n, e, R, M'
export const rsaSignatureOffset = 812;
export const ecdsaPointOffset = 37;
export const ecdsaKeyEnd = 101; // curve id, x, y
export const ecdsaSignatureOffset = 101;
export const crcOffset = 1196;
export const keyDigestLength = 32;

export type BlockKind = "rsa" | "ecdsa";

/** Where the signature sector starts: the image padded to a whole sector. Everything before it is signed. */
export function signedLength(imageLength: number): number {
	return Math.ceil(imageLength / sectorSize) * sectorSize;
}

/** The kind of the block at `at` in `bytes`; undefined when it is no valid block (magic, version, CRC). */
export function blockKind(bytes: Uint8Array, at: number): BlockKind | undefined {
	if (at + blockLength > bytes.length || bytes[at] !== blockMagic) return undefined;
	const version = bytes[at + 1];
	if (version !== versionRsa && version !== versionEcdsa) return undefined;
	if (crc32(bytes, at, at + crcOffset) !== readU32(bytes, at + crcOffset)) return undefined;
	return version === versionRsa ? "rsa" : "ecdsa";
}

/** Writes into `into` the key digest of the (valid) block at `at`. */
export function keyDigest(bytes: Uint8Array, at: number, kind: BlockKind, digest: Digest, into: Uint8Array): void {
	digest.reset();
	digest.write(bytes.subarray(at + keyOffset, at + (kind === "rsa" ? rsaKeyEnd : ecdsaKeyEnd)));
	digest.finish(into);
}

/**
 * Whether the (valid) block at `at` signs `sha256`, the SHA-256 of the signed data: the digest it carries
 * matches and its signature verifies with its own key. Whether that key is trusted is the caller's question.
 */
export function blockSigns(bytes: Uint8Array, at: number, kind: BlockKind, sha256: Uint8Array, keys: KeyVerifier): boolean {
	for (let i = 0; i < 32; i++)
		if (bytes[at + imageDigestOffset + i] !== sha256[i]) return false;
	if (kind === "rsa") {
		const modulus = reversed(bytes, at + keyOffset, rsaModulusLength);
		const signature = reversed(bytes, at + rsaSignatureOffset, rsaModulusLength);
		return keys.rsaPss3072(sha256, modulus, readU32(bytes, at + rsaExponentOffset), signature);
	}
	if (bytes[at + 2] !== ecdsaSha256 || bytes[at + keyOffset] !== curveP256) return false;
	const point = new Uint8Array(65);
	point[0] = 4;
	point.set(reversed(bytes, at + ecdsaPointOffset, 32), 1);
	point.set(reversed(bytes, at + ecdsaPointOffset + 32, 32), 33);
	const r = reversed(bytes, at + ecdsaSignatureOffset, 32), s = reversed(bytes, at + ecdsaSignatureOffset + 32, 32);
	return keys.p256(sha256, point, derSignature(r, s));
}

/** `length` bytes from `at`, in the opposite order (little-endian to big-endian). */
function reversed(bytes: Uint8Array, at: number, length: number): Uint8Array {
	const out = new Uint8Array(length);
	for (let i = 0; i < length; i++) out[i] = bytes[at + length - 1 - i];
	return out;
}

/** ECDSA-Sig-Value (SEQUENCE of two INTEGERs) from big-endian r and s. */
export function derSignature(r: Uint8Array, s: Uint8Array): Uint8Array {
	const rInt = derInteger(r), sInt = derInteger(s);
	const der = new Uint8Array(2 + rInt.length + sInt.length);
	der[0] = 0x30;
	der[1] = rInt.length + sInt.length;
	der.set(rInt, 2);
	der.set(sInt, 2 + rInt.length);
	return der;
}

function derInteger(value: Uint8Array): Uint8Array {
	let start = 0;
	while (start < value.length - 1 && value[start] === 0) start++;
	const pad = value[start] & 0x80 ? 1 : 0;
	const out = new Uint8Array(2 + pad + value.length - start);
	out[0] = 0x02;
	out[1] = pad + value.length - start;
	out.set(value.subarray(start), 2 + pad);
	return out;
}
