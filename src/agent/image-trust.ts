/*
	Which downloaded image may boot: its Secure Boot v2 signature (signature-block.ts) against trusted keys, and
	its anti-rollback counter. Runs on the bytes in the slot, after checkImage and before the boot slot switch,
	whatever the transport brought them.

	Trusted keys: the key digests provisioned in config, plus those of the running image's own valid blocks
	(ESP-IDF's CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT: the running app's key vouches for the next). A revoked
	digest is never trusted: its blocks are skipped, as the bootloader skips a key revoked in eFuse. Several
	blocks: the image passes when any one block with a trusted key signs it.

	  no valid block (none, a bad CRC, cut off by the download's end)
	      requireSignature → 5 "image not signed";  else it passes unsigned
	  a block with a trusted key signs the image                      → it passes
	  a block with a trusted key does not sign it (image or block changed)  → 5 "signature mismatch"
	  else a block with a revoked key                                  → 5 "signed by a revoked key"
	  else, with trusted keys                                          → 5 "not signed by a trusted key"
	  else (unsigned running image, nothing provisioned)  requireSignature → 5 "no trusted key";
	      else it passes, its blocks unchecked
	The refusals other than "no trusted key" hold whether or not a signature is required.
	  secure version below the running image's → 8 "secure version N is below the running M"

	Memory: the signed data's SHA-256 rides checkImage's pass (a second digest context); the trusted digests
	(32 bytes each) and one block's key and signature in big-endian (under 800 bytes) live during the check.
*/

import type { Digest, FlashSlot, RunningImage, KeyVerifier, Logger } from "../platform/ports";
import { Result, type ResultCode } from "./firmware-object";
import { type ExtraDigest, readImageLayout } from "./image";
import { type BlockKind, blockKind, blockLength, blockSigns, keyDigest, keyDigestLength, maxBlocks, signedLength } from "./signature-block";

export interface TrustPolicy {
	/** Refuse images without a valid signature by a trusted key. */
	requireSignature: boolean;
	/** Provisioned key digests (SHA-256 of a block's key fields, espsecure digest_sbv2_public_key). */
	trustedKeys: Uint8Array[];
	revokedKeys: Uint8Array[];
}

export interface TrustPorts {
	/** The running app's partition, for its signature blocks and secure version. */
	running: RunningImage;
	keys: KeyVerifier;
	/** SHA-256, a context of its own: it runs beside checkImage's. */
	digest: Digest;
	log: Logger;
}

export type TrustRefusal = { result: ResultCode; reason: string };

export class ImageTrust {
	#ports: TrustPorts;
	#policy: TrustPolicy;
	#chipId: number;
	#signedSha256 = new Uint8Array(32);
	/** Give this to checkImage: the SHA-256 of the signed data, computed in the same pass. */
	readonly signedData: ExtraDigest;

	constructor(ports: TrustPorts, policy: TrustPolicy, chipId: number) {
		this.#ports = ports;
		this.#policy = policy;
		this.#chipId = chipId;
		this.signedData = { digest: ports.digest, length: signedLength, into: this.#signedSha256 };
	}

	/**
	 * Why the image checkImage just passed (with `signedData`) may not boot, or undefined when it may.
	 * `downloaded` bounds what counts as the package: blocks past it are not part of it.
	 */
	refuses(slot: FlashSlot, image: { imageLength: number; secureVersion: number }, downloaded: number, scratch: Uint8Array): TrustRefusal | undefined {
		const running = readImageLayout(this.#ports.running, this.#chipId, scratch);
		const runningSecureVersion = running.ok ? running.secureVersion : 0;
		if (image.secureVersion < runningSecureVersion)
			return { result: Result.updateFailed, reason: `secure version ${image.secureVersion} is below the running ${runningSecureVersion}` };

		const trusted = this.#policy.trustedKeys.slice();
		if (running.ok) this.#readKeys(this.#ports.running, running.imageLength, this.#ports.running.byteLength, scratch, trusted);
		return this.#checkSignature(slot, image.imageLength, downloaded, scratch, trusted);
	}

	#checkSignature(slot: FlashSlot, imageLength: number, downloaded: number, scratch: Uint8Array, trusted: Uint8Array[]): TrustRefusal | undefined {
		const { requireSignature } = this.#policy;
		const at = signedLength(imageLength);
		const blocks = readSector(slot, at, downloaded, scratch);
		const kinds: (BlockKind | undefined)[] = [];
		for (let index = 0; index < blocks; index++) kinds.push(blockKind(scratch, index * blockLength));
		if (!kinds.some((kind) => kind)) return requireSignature ? refusal("image not signed") : undefined;
		const digest = new Uint8Array(keyDigestLength);
		let revoked = false, mismatch = false;
		for (let index = 0; index < blocks; index++) {
			const kind = kinds[index];
			if (!kind) continue;
			keyDigest(scratch, index * blockLength, kind, this.#ports.digest, digest);
			if (includes(this.#policy.revokedKeys, digest)) revoked = true;
			else if (includes(trusted, digest)) {
				if (blockSigns(scratch, index * blockLength, kind, this.#signedSha256, this.#ports.keys)) {
					this.#ports.log(`signature block ${index} (${kind}) verified`);
					return undefined;
				}
				mismatch = true;
			}
		}
		if (mismatch) return refusal("signature mismatch");
		if (revoked) return refusal("signed by a revoked key");
		if (trusted.length) return refusal("not signed by a trusted key");
		if (requireSignature) return refusal("no trusted key");
		this.#ports.log("signature blocks unchecked: no trusted key");
		return undefined;
	}

	/** Adds to `into` the digests of the valid, unrevoked keys in the signature sector of an image of `imageLength`. */
	#readKeys(reader: RunningImage, imageLength: number, end: number, scratch: Uint8Array, into: Uint8Array[]): void {
		const blocks = readSector(reader, signedLength(imageLength), end, scratch);
		for (let index = 0; index < blocks; index++) {
			const kind = blockKind(scratch, index * blockLength);
			if (!kind) continue;
			const digest = new Uint8Array(keyDigestLength);
			keyDigest(scratch, index * blockLength, kind, this.#ports.digest, digest);
			if (!includes(this.#policy.revokedKeys, digest)) into.push(digest);
		}
	}
}

/** Reads into `scratch` the whole blocks of the signature sector at `at` that end by `end`; returns how many. */
function readSector(reader: RunningImage, at: number, end: number, scratch: Uint8Array): number {
	const blocks = Math.max(0, Math.min(maxBlocks, Math.floor((Math.min(end, reader.byteLength) - at) / blockLength)));
	if (blocks) reader.readInto(at, blocks * blockLength, scratch);
	return blocks;
}

function includes(digests: Uint8Array[], digest: Uint8Array): boolean {
	return digests.some((candidate) => candidate.length === digest.length && candidate.every((byte, i) => byte === digest[i]));
}

function refusal(reason: string): TrustRefusal {
	return { result: Result.integrityFailure, reason };
}

/** Key digests from config: a list of 64-hex-digit digests separated by commas or spaces. */
export function parseKeyDigests(text: string): Uint8Array[] {
	const digests: Uint8Array[] = [];
	for (const item of text.split(/[\s,]+/)) {
		if (!item) continue;
		if (!/^[0-9a-fA-F]{64}$/.test(item)) throw new Error(`bad key digest ${item}`);
		const digest = new Uint8Array(keyDigestLength);
		for (let i = 0; i < keyDigestLength; i++) digest[i] = parseInt(item.slice(2 * i, 2 * i + 2), 16);
		digests.push(digest);
	}
	return digests;
}
