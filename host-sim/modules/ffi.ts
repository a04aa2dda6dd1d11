// "mc/ffi" bound to our OTA control helper: the simulated board implements the same functions as
// src/native/ota_control.c does on ESP32.
import { eraseRangeError } from "../board/flash-range";
import { call, callWithData } from "./host";

export default class FFI {
	/** The inactive slot's size, asked at the first erase. */
	#nextBytes: number | undefined;

	xs_ota_running_slot(): number {
		return call("ota.runningSlot");
	}
	xs_ota_running_state(): number {
		return call("ota.runningState");
	}
	xs_ota_running_version(into: ArrayBuffer): number {
		const version: ArrayBuffer = call("ota.runningVersion");
		new Uint8Array(into).set(new Uint8Array(version).subarray(0, into.byteLength));
		return Math.min(version.byteLength, into.byteLength);
	}
	xs_ota_set_boot_next(): number {
		return call("ota.setBootNext");
	}
	xs_ota_erase_next(offset: number, byteLength: number): number {
		// Checked here as the board checks them: a good erase can then fail only by a power cut, and the xs engine
		// sends it along with the next call that needs an answer.
		this.#nextBytes ??= call("ota.nextBytes") as number;
		const error = eraseRangeError(offset, byteLength, this.#nextBytes);
		if (error) return error;
		call("ota.eraseNext", offset, byteLength);
		return 0;
	}
	xs_ota_mark_valid(): number {
		return call("ota.markValid");
	}
	xs_ota_restart(): void {
		call("ota.restart");
	}
	xs_ota_verify_p256(sha256: ArrayBuffer, signature: ArrayBuffer, signatureLength: number, publicKey: ArrayBuffer): number {
		const bytes = new Uint8Array(32 + signatureLength + 65);
		bytes.set(new Uint8Array(sha256, 0, 32));
		bytes.set(new Uint8Array(signature, 0, signatureLength), 32);
		bytes.set(new Uint8Array(publicKey, 0, 65), 32 + signatureLength);
		return callWithData("signature.verifyP256", bytes, signatureLength);
	}
	xs_ota_verify_rsa3072_pss(sha256: ArrayBuffer, modulus: ArrayBuffer, exponent: number, signature: ArrayBuffer): number {
		const bytes = new Uint8Array(32 + 384 + 384);
		bytes.set(new Uint8Array(sha256, 0, 32));
		bytes.set(new Uint8Array(modulus, 0, 384), 32);
		bytes.set(new Uint8Array(signature, 0, 384), 416);
		return callWithData("signature.verifyRsaPss", bytes, exponent);
	}
}
