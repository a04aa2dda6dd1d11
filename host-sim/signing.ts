// Secure Boot v2 signing for the simulator, the tests and `xs-ota image --sign`: pads an image with 0xFF to a
// 4 KiB sector and appends the signature sector (src/agent/signature-block.ts has the layout), as
// `espsecure.py sign_data --version 2` does. Keys: RSA-3072 (RSA-PSS, SHA-256, MGF1, 32-byte salt) or P-256.

import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import { crc32 } from "../src/lib/crc32";
import {
	blockLength, blockMagic, crcOffset, curveP256, ecdsaPointOffset, ecdsaSha256, ecdsaSignatureOffset, imageDigestOffset,
	keyOffset, maxBlocks, rsaExponentOffset, rsaModulusLength, rsaSignatureOffset, sectorSize, signedLength, versionEcdsa, versionRsa,
} from "../src/agent/signature-block";

const rsaROffset = 424, rsaMPrimeOffset = 808, rsaKeyEnd = 812, ecdsaKeyEnd = 101;

/** One signing key: a PEM private key (RSA-3072 or P-256), or a KeyObject. */
export type SigningKey = string | Buffer | KeyObject;

function privateKey(key: SigningKey): KeyObject {
	const object = typeof key === "object" && "asymmetricKeyType" in key ? key : createPrivateKey(key as string | Buffer);
	const type = object.asymmetricKeyType, details = object.asymmetricKeyDetails;
	if (type === "rsa" && details?.modulusLength === 3072) return object;
	if (type === "ec" && details?.namedCurve === "prime256v1") return object;
	throw new Error("the key must be RSA-3072 or ECDSA P-256");
}

/** `image` padded to a sector plus its signature sector with one block per key (at most 3). */
export function signImage(image: Uint8Array, keys: SigningKey[]): Uint8Array {
	if (!keys.length || keys.length > maxBlocks) throw new Error(`1 to ${maxBlocks} keys`);
	const signed = signedLength(image.length);
	const out = new Uint8Array(signed + sectorSize).fill(0xff);
	out.set(image);
	const data = out.subarray(0, signed);
	const sha256 = createHash("sha256").update(data).digest();
	keys.forEach((key, index) => out.set(signatureBlock(data, sha256, privateKey(key)), signed + index * blockLength));
	return out;
}

function signatureBlock(data: Uint8Array, sha256: Uint8Array, key: KeyObject): Uint8Array {
	const block = new Uint8Array(blockLength);
	const view = new DataView(block.buffer);
	block[0] = blockMagic;
	block.set(sha256, imageDigestOffset);
	if (key.asymmetricKeyType === "rsa") {
		block[1] = versionRsa;
		const jwk = createPublicKey(key).export({ format: "jwk" });
		const n = fromBase64Url(jwk.n!), e = Number(fromBase64Url(jwk.e!));
		block.set(littleEndian(n, rsaModulusLength), keyOffset);
		view.setUint32(rsaExponentOffset, e, true);
		// The ESP32 RSA peripheral's Montgomery constants: R² mod n and −n⁻¹ mod 2³².
		block.set(littleEndian((1n << BigInt(2 * 3072)) % n, rsaModulusLength), rsaROffset);
		view.setUint32(rsaMPrimeOffset, Number((1n << 32n) - inverse(n % (1n << 32n), 1n << 32n)) >>> 0, true);
		const signature = sign("sha256", data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 });
		block.set(Uint8Array.from(signature).reverse(), rsaSignatureOffset);
	}
	else {
		block[1] = versionEcdsa;
		block[2] = ecdsaSha256;
		block[keyOffset] = curveP256;
		const jwk = createPublicKey(key).export({ format: "jwk" });
		block.set(littleEndian(fromBase64Url(jwk.x!), 32), ecdsaPointOffset);
		block.set(littleEndian(fromBase64Url(jwk.y!), 32), ecdsaPointOffset + 32);
		const rs = sign("sha256", data, { key, dsaEncoding: "ieee-p1363" });
		block.set(Uint8Array.from(rs.subarray(0, 32)).reverse(), ecdsaSignatureOffset);
		block.set(Uint8Array.from(rs.subarray(32)).reverse(), ecdsaSignatureOffset + 32);
	}
	view.setUint32(crcOffset, crc32(block, 0, crcOffset), true);
	return block;
}

/** The key digest ESP-IDF compares (espsecure digest_sbv2_public_key): SHA-256 of a block's key fields. */
export function keyDigestOf(key: SigningKey): Uint8Array {
	const block = signatureBlock(new Uint8Array(0), new Uint8Array(32), privateKey(key));
	const end = block[1] === versionRsa ? rsaKeyEnd : ecdsaKeyEnd;
	return new Uint8Array(createHash("sha256").update(block.subarray(keyOffset, end)).digest());
}

function fromBase64Url(text: string): bigint {
	return BigInt(`0x${Buffer.from(text, "base64url").toString("hex") || "0"}`);
}

function littleEndian(value: bigint, length: number): Uint8Array {
	const bytes = new Uint8Array(length);
	for (let i = 0; i < length; i++, value >>= 8n) bytes[i] = Number(value & 0xffn);
	return bytes;
}

function inverse(x: bigint, m: bigint): bigint {
	let [r0, r1, s0, s1] = [x, m, 1n, 0n];
	while (r1) {
		const q = r0 / r1;
		[r0, r1] = [r1, r0 - q * r1];
		[s0, s1] = [s1, s0 - q * s1];
	}
	return ((s0 % m) + m) % m;
}
