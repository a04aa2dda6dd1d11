// AES-128 single-block encryption over Node's crypto (ECB of one block is the raw block cipher): what the
// board's "crypt" BlockCipher computes, and what unit tests hand src/dtls directly.

import { createCipheriv, createHash, randomFillSync } from "node:crypto";
import type { BlockCipher, Digest, DtlsCrypto } from "../../src/platform/ports";

export function aes128(key: Uint8Array): BlockCipher {
	const cipher = createCipheriv("aes-128-ecb", key, null).setAutoPadding(false);
	return {
		encrypt(block, into) {
			into.set(cipher.update(block));
		},
	};
}

function sha256(): Digest {
	let hash = createHash("sha256");
	return {
		reset: () => void (hash = createHash("sha256")),
		write: (bytes) => void hash.update(bytes),
		finish: (into) => {
			into.set(hash.digest());
			hash = createHash("sha256");
		},
	};
}

/** DtlsCrypto straight on Node, for tests of src/dtls outside the simulated board. */
export const nodeDtlsCrypto: DtlsCrypto = {
	aes128,
	sha256,
	random: (into) => void randomFillSync(into),
};
