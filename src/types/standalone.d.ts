// Declarations only the repository's own tsc needs. mcconfig leaves this file out: there the XS typings
// declare trace, and "mc/ffi" is typed from the manifest (generated from the "ffi" section on esp32, the
// host-sim/moddable-sim/ffi.ts module on lin); declaring either here as well would clash.

// Our C helper (src/native/ota_control.c), bound by the manifest's "ffi" section.
declare module "mc/ffi" {
	interface OtaControl {
		xs_ota_running_slot(): number;
		xs_ota_running_state(): number;
		xs_ota_running_version(into: ArrayBuffer): number;
		xs_ota_set_boot_next(): number;
		xs_ota_erase_next(offset: number, byteLength: number): number;
		xs_ota_mark_valid(): number;
		xs_ota_restart(): void;
		xs_ota_verify_p256(sha256: ArrayBuffer, signature: ArrayBuffer, signatureLength: number, publicKey: ArrayBuffer): number;
		xs_ota_verify_rsa3072_pss(sha256: ArrayBuffer, modulus: ArrayBuffer, exponent: number, signature: ArrayBuffer): number;
	}
	const FFI: { new (): OtaControl };
	export default FFI;
}

declare function trace(...values: unknown[]): void;
