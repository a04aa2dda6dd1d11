// The Moddable "crypt" Digest, computed by the host (ESP32 does it in native code too).
import { call, callWithData } from "./host";

export class Digest {
	#id: number;

	constructor(type: string) {
		this.#id = call("digest.create", type);
	}

	write(message: ArrayBuffer | ArrayBufferView): void {
		callWithData("digest.write", message, this.#id);
	}

	close(): ArrayBuffer {
		return call("digest.close", this.#id);
	}

	reset(): void {
		call("digest.reset", this.#id);
	}
}

/** Moddable's BlockCipher ("AES"): one 16-byte block per call, computed by the host. */
export class BlockCipher {
	#id: number;

	constructor(cipher: string, key: ArrayBuffer) {
		this.#id = callWithData("cipher.create", key, cipher);
	}

	encrypt(data: ArrayBuffer, result?: ArrayBuffer): ArrayBuffer {
		const block: ArrayBuffer = callWithData("cipher.encrypt", data, this.#id);
		if (!result) return block;
		new Uint8Array(result).set(new Uint8Array(block));
		return result;
	}
}
