// Digests over Moddable's native "crypt": SHA-256 for images, MD5 for AWS "fota" job documents.

import { Digest as NativeDigest } from "crypt";
import type { Digest } from "./ports";

class NativeDigestPort implements Digest {
	#native: NativeDigest;

	constructor(kind: "SHA256" | "MD5") {
		this.#native = new NativeDigest(kind);
	}

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

export class Sha256 extends NativeDigestPort {
	constructor() {
		super("SHA256");
	}
}

export class Md5 extends NativeDigestPort {
	constructor() {
		super("MD5");
	}
}
