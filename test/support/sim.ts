// Helpers for tests that drive whole simulated boards.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as assert from "uvu/assert";
import { factoryVersion, runDevice, type DeviceOptions, type DeviceOutcome, type DeviceReport } from "../../host-sim/device";
import { makeAppImage, sha256Hex } from "../../host-sim/image";
import { BoardStorage } from "../../host-sim/board/board-files";
import { PowerSupply } from "../../host-sim/board/power";

export function tempDir(prefix: string): string {
	return fs.mkdtempSync(path.join(os.tmpdir(), `xs-ota-${prefix}-`));
}

export function publish(dir: string, name: string, size: number, version: string, chip?: "esp32" | "esp32s3"): { bytes: Uint8Array; sha256: string } {
	const bytes = makeAppImage({ size, version, chip });
	fs.writeFileSync(path.join(dir, name), bytes);
	return { bytes, sha256: sha256Hex(bytes) };
}

/** The first `length` bytes of a board's flash partition `label` as the chip reads them (the file holds only what was ever written). */
export function partitionBytes(board: string, label: string, length?: number): Uint8Array {
	const partition = BoardStorage.open(board, new PowerSupply()).partition(label);
	return partition.read(0, length ?? partition.byteLength);
}

/** Fast retries on the virtual clock, so failure paths finish in milliseconds of real time. */
export const quickConfig = { backoffBaseMs: 100, stallMs: 2000 };

export async function run(options: DeviceOptions): Promise<DeviceOutcome> {
	return runDevice({ ...options, config: { ...quickConfig, ...options.config } });
}

export type Traced = DeviceOutcome & { events: DeviceReport[]; logs: string[]; bootEvents: DeviceReport[] };

/** run(), keeping the device's log lines, its boot events and every other event but progress. */
export async function traced(options: DeviceOptions): Promise<Traced> {
	const events: DeviceReport[] = [], logs: string[] = [];
	const outcome = await run({
		...options,
		onEvent: (event) => {
			if (event.event === "log") logs.push(String(event.message));
			else if (event.event !== "progress") events.push(event);
			options.onEvent?.(event);
		},
	});
	return { ...outcome, events, logs, bootEvents: events.filter((event) => event.event === "boot") };
}

/** Whether the device logged a line containing `text`. */
export function logged(outcome: Traced, text: string): boolean {
	return outcome.logs.some((line) => line.includes(text));
}

export { seeded } from "../../host-sim/random";

/** Persistent writes the board would still make from its current state, measured on a copy. */
export async function remainingOps(board: string, engine: "node" | "xs"): Promise<number> {
	const copy = tempDir("probe");
	fs.cpSync(board, copy, { recursive: true });
	try {
		return (await run({ dir: copy, engine })).ops;
	}
	finally {
		fs.rmSync(copy, { recursive: true, force: true });
	}
}

/** The run ended in order: idle, or after an orderly shutdown (an LwM2M operator's, a signal's). */
function assertEndedInOrder(outcome: DeviceOutcome, what: string): void {
	assert.ok(outcome.end === "idle" || outcome.end === "shut-down", `${what}: ended ${outcome.end}`);
}

/** A failed update: Idle with `result`, the factory firmware still running from slot 0. */
export function assertOldFirmware(outcome: DeviceOutcome, result: number, what: string): void {
	assertEndedInOrder(outcome, what);
	assert.is(outcome.state, 0, what);
	assert.is(outcome.result, result, what);
	assert.is(outcome.running.version, factoryVersion, what);
	assert.is(outcome.running.slot, 0, what);
}

/** A successful update: Idle with 1, the published image (byte for byte) running from slot 1. */
export function assertNewFirmware(outcome: DeviceOutcome, sha256: string, version: string, what: string): void {
	assertEndedInOrder(outcome, what);
	assert.is(outcome.state, 0, what);
	assert.is(outcome.result, 1, what);
	assert.is(outcome.running.version, version, what);
	assert.is(outcome.running.slot, 1, what);
	assert.is(outcome.running.sha256, sha256, what);
}
