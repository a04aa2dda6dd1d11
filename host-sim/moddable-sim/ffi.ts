// "mc/ffi" for the Linux simulator (mcsim). On ESP32 mcconfig generates this module from the manifest's
// "ffi" section and it calls src/native/ota_control.c; here the same six functions run over files.
// A small JSON file stands in for otadata, and the bootloader's rollback rules run once per launch.
// This module also plays esp_partition's part for our "flash" module: which file backs which partition,
// and which OTA slot is running, so "nextota" means the same slot to both.

import { Directory, File } from "file";
import config from "mc/config";

// Mirrors boards/esp32/partitions.csv (boards/esp32c3, esp32s3 and esp32c6 have the same table).
const partitions = new Map([
	["nvs", 0x6000],
	["otadata", 0x2000],
	["phy_init", 0x1000],
	["ota_0", 0x1e0000],
	["ota_1", 0x1e0000],
]);
const appSlots = ["ota_0", "ota_1"];

// esp_ota_img_states_t; -1 is our helper's "no otadata entry".
const ImageState = { new: 0, pendingVerify: 1, valid: 2, invalid: 3, aborted: 4, none: -1 } as const;

const espOk = 0;
const espErrInvalidArg = 0x102;
const espErrInvalidSize = 0x104;
const espErrOtaValidateFailed = 0x1503;
const sectorSize = 4096;

// Offsets in an app image (NOTES §5): the app description follows the 24-byte header and the first
// 8-byte segment header.
const imageMagic = 0xe9;
const descriptionOffset = 32;
const descriptionMagic = 0xabcd5432;
const versionOffset = descriptionOffset + 16;
const versionLength = 32;

interface BootState {
	/** Slot of the newest otadata entry, which the bootloader tries first; -1 while otadata is blank. */
	select: number;
	/** State of each slot's otadata entry. */
	states: number[];
	/** Slot this launch booted. */
	running: number;
}

// Module state lives as long as one mcsim launch, which is one boot. Both are set at run time: in a preloaded
// build a module's variables start from the values linking left, and these must not be computed then.
let directory: string | undefined;
let booted: BootState | undefined;

function simDirectory(): string {
	if (!directory) {
		const root = (config.file as { root?: string } | undefined)?.root ?? "/tmp/";
		directory = root + "xs-ota-sim/";
		Directory.create(root);	// a file root of its own (a RAM bench's) may not exist yet
		Directory.create(directory);
	}
	return directory;
}

function statePath(): string {
	return simDirectory() + "boot.json";
}

function load(): BootState {
	const blank = { select: -1, states: [ImageState.none, ImageState.none], running: 0 };
	const path = statePath();
	if (!File.exists(path)) return blank;
	try {
		const file = new File(path);
		const text = file.length ? file.read(String) : "";
		file.close();
		const state = JSON.parse(text) as BootState;
		const slot = (value: unknown) => value === -1 || value === 0 || value === 1;
		if (slot(state.select) && slot(state.running) && state.running >= 0 && Array.isArray(state.states) && state.states.length === 2)
			return state;
	}
	catch {
	}
	trace("xs-ota sim: boot state unreadable, starting blank\n");
	return blank;
}

// Written aside then renamed over, so a kill mid-write leaves the old state (otadata keeps two copies for the same reason).
function save(state: BootState): void {
	const path = statePath();
	const next = path + ".new";
	File.delete(next);
	const file = new File(next, true);
	file.write(JSON.stringify(state));
	file.close();
	File.rename(next, "boot.json");
}

// The ESP-IDF bootloader's choice with rollback enabled: a NEW image boots as PENDING_VERIFY; one still
// PENDING_VERIFY was not confirmed during its first boot, so it is ABORTED and the other slot boots.
function boot(state: BootState): BootState {
	const select = state.select;
	if (select < 0)
		state.running = 0;
	else {
		switch (state.states[select]) {
			case ImageState.new:
				state.states[select] = ImageState.pendingVerify;
				state.running = select;
				break;
			case ImageState.pendingVerify:
				trace(`xs-ota sim: ${appSlots[select]} was not confirmed, rolling back\n`);
				state.states[select] = ImageState.aborted;
				state.running = 1 - select;
				break;
			case ImageState.invalid:
			case ImageState.aborted:
				state.running = 1 - select;
				break;
			default:
				state.running = select;
				break;
		}
	}
	save(state);
	trace(`xs-ota sim: booted ${appSlots[state.running]} (state ${state.states[state.running]})\n`);
	return state;
}

function bootState(): BootState {
	booted ??= boot(load());
	return booted;
}

/** The file and size behind a partition name as Moddable's ESP32 flash module resolves it, or undefined. */
export function partitionFile(name: string): { path: string; byteLength: number } | undefined {
	let label = name;
	if (name === "running")
		label = appSlots[bootState().running];
	else if (name === "nextota")
		label = appSlots[1 - bootState().running];
	else if (appSlots.includes(name))
		return undefined;	// app partitions cannot be opened by label on ESP32 either
	const byteLength = partitions.get(label);
	if (byteLength === undefined) return undefined;
	return { path: simDirectory() + label + ".bin", byteLength };
}

// Reads bytes of an app slot's file; undefined when the slot was never written.
function readSlot(slot: number, offset: number, byteLength: number): Uint8Array | undefined {
	const path = simDirectory() + appSlots[slot] + ".bin";
	if (!File.exists(path)) return undefined;
	const file = new File(path);
	try {
		if (file.length < offset + byteLength) return undefined;
		file.position = offset;
		return new Uint8Array(file.read(ArrayBuffer, byteLength));
	}
	finally {
		file.close();
	}
}

function hasDescription(slot: number): boolean {
	const bytes = readSlot(slot, descriptionOffset, 4);
	return bytes !== undefined && new DataView(bytes.buffer).getUint32(0, true) === descriptionMagic;
}

export default class FFI {
	xs_ota_running_slot(): number {
		return bootState().running;
	}

	xs_ota_running_state(): number {
		const state = bootState();
		return state.states[state.running];
	}

	xs_ota_running_version(into: ArrayBuffer): number {
		const running = bootState().running;
		const bytes = hasDescription(running) ? readSlot(running, versionOffset, versionLength) : undefined;
		if (!bytes) return 0;
		let length = 0;
		while (length < versionLength && length < into.byteLength && bytes[length]) length++;
		new Uint8Array(into).set(bytes.subarray(0, length));
		return length;
	}

	// The device verifies the whole image here (checksum, SHA-256); the agent has done the same just before,
	// so the simulator only checks that the slot holds an app image.
	xs_ota_set_boot_next(): number {
		const state = bootState();
		const next = 1 - state.running;
		const header = readSlot(next, 0, 1);
		if (!header || header[0] !== imageMagic || !hasDescription(next)) return espErrOtaValidateFailed;
		state.select = next;
		state.states[next] = ImageState.new;
		save(state);
		return espOk;
	}

	// esp_partition_erase_range on the inactive slot. A file has no block erase: the range is set to 0xFF
	// sector by sector, as the chip's result would read.
	xs_ota_erase_next(offset: number, byteLength: number): number {
		const found = partitionFile("nextota")!;
		if (!Number.isInteger(offset) || !Number.isInteger(byteLength) || offset < 0 || byteLength < 0 || offset % sectorSize || byteLength % sectorSize)
			return espErrInvalidArg;
		if (offset + byteLength > found.byteLength) return espErrInvalidSize;
		const erased = new Uint8Array(sectorSize).fill(0xff).buffer;
		const file = new File(found.path, true);
		try {
			for (let at = offset; at < offset + byteLength; at += sectorSize) {
				file.position = at;
				file.write(erased);
			}
		}
		finally {
			file.close();
		}
		return espOk;
	}

	xs_ota_mark_valid(): number {
		const state = bootState();
		if (state.states[state.running] === ImageState.pendingVerify) {
			state.states[state.running] = ImageState.valid;
			save(state);
		}
		return espOk;
	}

	// mcsim cannot reset itself. Throwing unwinds the caller as a reset would (nothing after restart() runs):
	// mcsim takes the uncaught exception as an XS abort and unloads the app. Launching mcsim again is the
	// reboot, and it boots whatever set_boot_next selected.
	xs_ota_restart(): void {
		trace("xs-ota sim: restart\n");
		throw new Error("restart");
	}
	// The desktop simulator has no mbedTLS binding: signed jobs are refused there rather than trusted.
	xs_ota_verify_p256(_sha256: ArrayBuffer, _signature: ArrayBuffer, _signatureLength: number, _publicKey: ArrayBuffer): number {
		trace("xs-ota sim: no signature verification on lin\n");
		return 0;
	}
	xs_ota_verify_rsa3072_pss(_sha256: ArrayBuffer, _modulus: ArrayBuffer, _exponent: number, _signature: ArrayBuffer): number {
		trace("xs-ota sim: no signature verification on lin\n");
		return 0;
	}
}
