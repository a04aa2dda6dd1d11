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
