// DtlsCrypto over Moddable's "crypt": BlockCipher("AES") for CCM, Digest("SHA256") for HMAC and the
// handshake hash, and "rng" (the random source Moddable's TLS uses, from $(MODULES)/crypt/tls.json) for the randoms.

import { BlockCipher as NativeCipher } from "crypt";
import RNG from "rng";
import { Sha256 } from "./digest";
import type { BlockCipher, Digest, DtlsCrypto } from "./ports";

class Aes128 implements BlockCipher {
	#native: NativeCipher;
	#in = new Uint8Array(16);
	#out = new Uint8Array(16);

	constructor(key: Uint8Array) {
		this.#native = new NativeCipher("AES", key.slice().buffer);
	}

	encrypt(block: Uint8Array, into: Uint8Array): void {
		this.#in.set(block);
		this.#native.encrypt(this.#in.buffer, this.#out.buffer);
		into.set(this.#out);
	}
}

export const dtlsCrypto: DtlsCrypto = {
	aes128: (key) => new Aes128(key),
	sha256: (): Digest => new Sha256(),
	random(into) {
		into.set(new Uint8Array(RNG.get(into.length)));
	},
};
