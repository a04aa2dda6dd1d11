// SignatureVerifier over our C helper (src/native/ota_control.c, Mbed TLS's PSA API): ECDSA P-256 of a SHA-256,
// with the public key from config as 65 bytes of an uncompressed point in hex.

import FFI from "mc/ffi";
import type { SignatureVerifier } from "./ports";

export class P256Verifier implements SignatureVerifier {
	#native = new FFI();
	#key = new Uint8Array(65);

	constructor(publicKeyHex: string) {
		if (!/^04[0-9a-fA-F]{128}$/.test(publicKeyHex)) throw new Error("public key must be 65 bytes of hex (04…)");
		for (let i = 0; i < 65; i++) this.#key[i] = parseInt(publicKeyHex.slice(i * 2, i * 2 + 2), 16);
	}

	verify(sha256: Uint8Array, signature: Uint8Array): boolean {
		if (sha256.length !== 32 || signature.length > 72) return false;
		const der = new Uint8Array(72);
		der.set(signature);
		return this.#native.xs_ota_verify_p256(sha256.slice().buffer, der.buffer, signature.length, this.#key.slice().buffer) === 1;
	}
}
