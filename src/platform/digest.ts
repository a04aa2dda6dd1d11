// Digest over Moddable's native SHA-256 ("crypt").

import { Digest as NativeDigest } from "crypt";
import type { Digest } from "./ports";

export class Sha256 implements Digest {
	#native = new NativeDigest("SHA256");

	reset(): void {
		this.#native.reset();
	}

	write(bytes: Uint8Array): void {
		this.#native.write(bytes);
	}

	finish(into: Uint8Array): void {
		into.set(new Uint8Array(this.#native.close()));
	}
}
