// Signature checks over our C helper (src/native/ota_control.c, Mbed TLS's PSA API): ECDSA P-256 of a SHA-256
// for AWS code signing, with the public key from config as 65 bytes of an uncompressed point in hex
// (P256Verifier), and the Secure Boot v2 block checks, with the key each block carries (NativeKeyVerifier).

import FFI from "mc/ffi";
import type { KeyVerifier, SignatureVerifier } from "./ports";

const rsaLength = 384;

export class NativeKeyVerifier implements KeyVerifier {
	#native = new FFI();

	p256(sha256: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean {
		if (sha256.length !== 32 || publicKey.length !== 65 || signature.length > 72) return false;
		// The FFI glue checks each buffer's declared size: copy into exactly that.
		const der = new Uint8Array(72);
		der.set(signature);
		return this.#native.xs_ota_verify_p256(sha256.slice().buffer, der.buffer, signature.length, publicKey.slice().buffer) === 1;
	}

	rsaPss3072(sha256: Uint8Array, modulus: Uint8Array, exponent: number, signature: Uint8Array): boolean {
		if (sha256.length !== 32 || modulus.length !== rsaLength || signature.length !== rsaLength) return false;
		if (!(exponent > 0 && exponent <= 0x7fffffff)) return false;
		return this.#native.xs_ota_verify_rsa3072_pss(sha256.slice().buffer, modulus.slice().buffer, exponent, signature.slice().buffer) === 1;
	}
}

export class P256Verifier implements SignatureVerifier {
	#keys = new NativeKeyVerifier();
	#key = new Uint8Array(65);

	constructor(publicKeyHex: string) {
		if (!/^04[0-9a-fA-F]{128}$/.test(publicKeyHex)) throw new Error("public key must be 65 bytes of hex (04…)");
		for (let i = 0; i < 65; i++) this.#key[i] = parseInt(publicKeyHex.slice(i * 2, i * 2 + 2), 16);
	}

	verify(sha256: Uint8Array, signature: Uint8Array): boolean {
		return this.#keys.p256(sha256, this.#key, signature);
	}
}
