/*
	One power-on of a simulated ESP32: the bootloader's choice of slot, then the hardware the device code
	reaches through the emulated Moddable modules (flash, preference, timer, time, http, mqtt, socket, net,
	crypt, mc/config, mc/ffi). call() is that hardware's single entry point; events() yields what it has for the device.
*/

import { createHash, randomBytes, type Hash } from "node:crypto";
import { aes128 } from "./aes";
import type { BlockCipher } from "../../src/platform/ports";
import * as fs from "node:fs";
import { verifyP256 } from "./p256";
import { verifyRsaPss } from "./rsa-pss";
import { BoardStorage } from "./board-files";
import { VirtualClock } from "./clock";
import { blockEraseSize, type FlashPartition } from "./flash-chip";
import { eraseRangeError, sectorSize } from "./flash-range";
import { MqttNetwork, type MqttSpec } from "./mqtt-network";
import { HttpNetwork, type RequestSpec } from "./network";
import { UdpNetwork, type UdpFaults } from "./udp-network";
import { OtaState } from "./otadata";
import { PowerCutError, PowerSupply } from "./power";
import { NetworkSignal } from "./signal";
import { checkImage, verifyImage } from "../../src/agent/image";
import { readAppDescription } from "../image";
import { chipIds } from "../image";

export class RestartError extends Error {
	constructor() {
		super("restart");
		this.name = "RestartError";
	}
}

export interface BoardOptions {
	dir: string;
	cutAfterOps?: number;
	seed?: number;
	/** Wall-clock time at power-on, ms since the epoch. */
	epoch?: number;
	config?: Record<string, unknown>;
	fragmentBytes?: number;
	previousSlot?: number;
	/** Whether the station has an IP address at a wall-clock time (the network check's answer); always by default. */
	online?: (wallTime: number) => boolean;
	/** Faults every UDP datagram may meet (none by default). */
	udpFaults?: UdpFaults;
	/** The link's speed: bytes the device receives move its clock on by their transfer time (default 10 Mbit/s). */
	linkKbps?: number;
	/** The MQTT broker's emulator answers flush requests: MQTT connections settle (mqtt-network.ts). */
	settles?: boolean;
	/** Receives the device's log lines and LwM2M reports. */
	report?: (kind: string, args: unknown[]) => void;
}

export type DeviceEvent = { event: { id: number; [key: string]: unknown }; data: Uint8Array | undefined };
/** A socket event as a network queued it. */
export type Received = { readonly event: { readonly id: number }; readonly data: Uint8Array | undefined };

const espOk = 0;
const digestAlgorithms: { [name: string]: string } = { SHA256: "sha256", MD5: "md5" };

function verifySignature(bytes: Uint8Array, signatureLength: number): boolean {
	return verifyP256(bytes.subarray(0, 32), bytes.subarray(32, 32 + signatureLength), bytes.subarray(32 + signatureLength));
}

const espErrOtaValidateFailed = 0x1503;

/**
	esp_partition_erase_range as ESP-IDF documents it: offset and length whole sectors, inside the partition. Its
	flash driver clears a 64 KiB-aligned 64 KiB stretch with one block erase and the rest sector by sector; the
	partition table keeps every partition 64 KiB-aligned, so partition offsets align as chip addresses do.
*/
function eraseRange(partition: FlashPartition, offset: unknown, byteLength: unknown): number {
	const error = eraseRangeError(offset, byteLength, partition.byteLength);
	if (error) return error;
	const end = (offset as number) + (byteLength as number);
	for (let at = offset as number; at < end;) {
		if (at % blockEraseSize === 0 && end - at >= blockEraseSize) {
			partition.eraseBlock(at / blockEraseSize);
			at += blockEraseSize;
		}
		else {
			partition.erase(at / sectorSize);
			at += sectorSize;
		}
	}
	return espOk;
}

/** The app's resources, as built into the firmware: files in the board folder's resources/ (null: none). */
export const resourcesFolder = "resources";

function readResource(dir: string, name: unknown): Uint8Array | null {
	if (typeof name !== "string" || !/^[\w.-]+$/.test(name)) return null;
	const file = `${dir}/${resourcesFolder}/${name}`;
	return fs.existsSync(file) ? new Uint8Array(fs.readFileSync(file)) : null;
}

export class Board {
	readonly power: PowerSupply;
	readonly storage: BoardStorage;
	readonly clock: VirtualClock;
	readonly network: HttpNetwork;
	readonly mqtt: MqttNetwork;
	readonly udp: UdpNetwork;
	/** Chosen by the bootloader in boot(); until then, the slot that ran before (as the caller says). */
	runningSlot: number;
	rolledBack = false;
	readonly config: Record<string, unknown>;
	restartRequested = false;
	readonly #dir: string;
	readonly #online: (wallTime: number) => boolean;
	#report: (kind: string, args: unknown[]) => void;
	#nextId = 1;
	#flashHandles = new Map<number, FlashPartition>();
	#signal = new NetworkSignal();
	#linkKbps: number;
	/** Transfer time not yet on the clock: under a millisecond. */
	#linkMs = 0;
	/** Timer and socket events the device has been given this power-on. */
	eventsTaken = 0;
	#digests = new Map<number, { algorithm: string; hash: Hash }>();
	#ciphers = new Map<number, BlockCipher>();

	constructor(options: BoardOptions) {
		this.power = new PowerSupply({ cutAfterOps: options.cutAfterOps, seed: options.seed });
		this.storage = BoardStorage.open(options.dir, this.power, "4MB", true);
		this.clock = new VirtualClock(options.epoch ?? Date.now());
		this.network = new HttpNetwork(options.fragmentBytes, this.#signal, () => this.clock.now);
		this.mqtt = new MqttNetwork(this.#signal, undefined, options.settles);
		this.udp = new UdpNetwork(this.#signal, options.udpFaults, () => this.clock.now);
		this.#linkKbps = options.linkKbps ?? 10_000;
		this.config = { chip: "esp32", ...options.config };
		const report = options.report ?? (() => {});
		// What the board reports may be looked at with its files: they are brought up to date first.
		this.#report = (kind, args) => {
			this.storage.flush();
			report(kind, args);
		};
		this.#online = options.online ?? (() => true);
		this.runningSlot = options.previousSlot ?? 0;
		this.#dir = options.dir;
		for (const slot of [0, 1]) {
			const partition = this.storage.appSlot(slot);
			// The op count is the erase's own: it is reported before the power supply counts it.
			partition.onErase = (start, end) => this.#report("flash.erase", [partition.label, start, end, this.power.ops + 1]);
		}
	}

	/** The bootloader: picks the slot (its otadata writes can be cut like any other). */
	boot(): void {
		const decision = this.storage.otadata.bootDecision((slot) => this.#slotHoldsImage(slot));
		this.runningSlot = decision.slot;
		this.rolledBack = decision.rolledBack;
	}

	get inactiveSlot(): number {
		return 1 - this.runningSlot;
	}

	runningVersion(): string {
		return slotVersion(this.storage.appSlot(this.runningSlot));
	}

	/** The hardware behind the emulated modules. Throws PowerCutError once power is off. */
	call(op: string, args: any[], data: Uint8Array | undefined): unknown {
		this.power.assertOn();
		if (this.restartRequested) throw new RestartError();
		switch (op) {
			case "flash.open": {
				const partition = this.#openFlash(args[0]);
				const id = this.#nextId++;
				this.#flashHandles.set(id, partition);
				return { id, byteLength: partition.byteLength, blockSize: partition.blockSize };
			}
			case "flash.erase": return this.#flash(args[0]).erase(args[1]);
			case "flash.read": return this.#flash(args[0]).read(args[1], args[2]);
			case "flash.write": return this.#flash(args[0]).write(args[1], args[2], data!);
			// Sets and deletes answer the bytes the store has free after them; replaceBuffer is a setBuffer the
			// device did not wait for, sure of the room (host-sim/modules/preference.ts).
			case "preference.set":
				this.storage.nvs.set(args[0], args[1], args[2]);
				return this.storage.nvs.freeBytes();
			case "preference.setBuffer":
			case "preference.replaceBuffer":
				this.storage.nvs.set(args[0], args[1], copyBuffer(data!));
				return this.storage.nvs.freeBytes();
			case "preference.get": {
				const value = this.storage.nvs.get(args[0], args[1]);
				return value instanceof ArrayBuffer ? new Uint8Array(value) : value;
			}
			case "preference.delete":
				this.storage.nvs.delete(args[0], args[1]);
				return this.storage.nvs.freeBytes();
			case "preference.keys": return this.storage.nvs.keys(args[0]);
			case "timer.set": {
				const id = this.#nextId++;
				this.clock.set(id, args[0], args[1]);
				return id;
			}
			case "timer.clear": return this.clock.clear(args[0]);
			case "timer.delay": return this.clock.advance(args[0]);
			case "time.ticks": return this.clock.now;
			case "net.ip": return this.#online(this.clock.wallTime) ? "10.0.0.2" : "";
			case "file.exists": return fs.existsSync(args[0]);
			case "file.delete": {
				const existed = fs.existsSync(args[0]);
				fs.rmSync(args[0], { force: true });
				return existed;
			}
			case "time.now": return this.clock.wallTime;
			case "resource.read": return readResource(this.#dir, args[0]);
			case "http.request": {
				const id = this.#nextId++;
				this.network.open(id, args[0] as RequestSpec);
				return id;
			}
			case "http.close": return this.network.close(args[0]);
			case "mqtt.connect": {
				const id = this.#nextId++;
				this.mqtt.open(id, args[0] as MqttSpec);
				return id;
			}
			case "mqtt.publish": {
				const payload = data ?? new Uint8Array(Buffer.from(String(args[2] ?? ""), "utf8"));
				return this.mqtt.publish(args[0], args[1], payload, args[3]?.quality ?? 0, args[3]?.retain === true);
			}
			case "mqtt.subscribe": return this.mqtt.subscribe(args[0], args[1]);
			case "mqtt.unsubscribe": return this.mqtt.unsubscribe(args[0], args[1]);
			case "mqtt.close": return this.mqtt.close(args[0]);
			case "udp.open": {
				const id = this.#nextId++;
				this.udp.open(id, args[0]);
				return id;
			}
			case "udp.send": return this.udp.send(args[0], args[1], args[2], data!);
			case "udp.close": return this.udp.close(args[0]);
			case "net.resolve": {
				const id = this.#nextId++;
				this.udp.resolve(id, args[0]);
				return id;
			}
			case "digest.create": {
				const algorithm = digestAlgorithms[args[0]];
				if (!algorithm) throw new Error("unsupported digest");
				const id = this.#nextId++;
				this.#digests.set(id, { algorithm, hash: createHash(algorithm) });
				return id;
			}
			case "digest.write": return this.#digests.get(args[0])!.hash.update(data!);
			case "digest.reset": {
				const digest = this.#digests.get(args[0])!;
				digest.hash = createHash(digest.algorithm);
				return;
			}
			case "digest.close": {
				const digest = this.#digests.get(args[0])!;
				const result = new Uint8Array(digest.hash.digest());
				digest.hash = createHash(digest.algorithm);
				return result;
			}
			case "cipher.create": {
				if (args[0] !== "AES" || data?.byteLength !== 16) throw new Error("unsupported cipher");
				const id = this.#nextId++;
				this.#ciphers.set(id, aes128(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
				return id;
			}
			case "cipher.encrypt": {
				const into = new Uint8Array(16);
				this.#ciphers.get(args[0])!.encrypt(new Uint8Array(data!.buffer, data!.byteOffset, 16), into);
				return into;
			}
			case "rng.get": return new Uint8Array(randomBytes(args[0]));
			case "signature.verifyP256": return verifySignature(data!, args[0]) ? 1 : 0;
			case "signature.verifyRsaPss": return verifyRsaPss(data!.subarray(0, 32), data!.subarray(32, 416), args[0], data!.subarray(416, 800)) ? 1 : 0;
			case "config.get": return this.config;
			case "ota.runningSlot": return this.runningSlot;
			case "ota.runningState": {
				const state = this.storage.otadata.state(this.runningSlot);
				return state === OtaState.undefined ? -1 : state;
			}
			case "ota.runningVersion": return new TextEncoder().encode(this.runningVersion());
			case "ota.setBootNext": {
				if (!this.#slotHoldsImage(this.inactiveSlot)) return espErrOtaValidateFailed;
				this.storage.otadata.setBoot(this.inactiveSlot);
				return espOk;
			}
			case "ota.nextBytes": return this.storage.appSlot(this.inactiveSlot).byteLength;
			case "ota.eraseNext": return eraseRange(this.storage.appSlot(this.inactiveSlot), args[0], args[1]);
			case "ota.markValid": {
				this.storage.otadata.markValid(this.runningSlot);
				return espOk;
			}
			case "log":
			case "report.status":
			case "report.progress":
			case "report.maintenance":
			case "report.shutdown":
			case "report.unreachable":
				return this.#report(op, args);
			case "report.result":
				this.#report(op, args);
				return true;
			case "ota.restart":
				this.restartRequested = true;
				throw new RestartError();
		}
		throw new Error(`unknown board op ${op}`);
	}

	/** The next thing for the device: a due timer first, then socket events. */
	nextEvent(): DeviceEvent | undefined {
		const timer = this.clock.takeDue();
		if (timer !== undefined) {
			this.eventsTaken++;
			return { event: { id: timer }, data: undefined };
		}
		const received = this.#takeReceived();
		return received && { event: { ...received.event }, data: received.data };
	}

	/**
		What nextEvent() would return next, in order, if the device changed nothing meanwhile: the socket events
		queued now, up to where a timer falls due (their time on the link counted). An engine whose every call costs
		a process switch hands these over with the event before them, and asks again whenever the device calls.
	*/
	upcomingEvents(max: number): readonly Received[] {
		const queued = [...this.network.queued, ...this.mqtt.queued, ...this.udp.queued];
		const untilTimer = this.clock.untilNext();
		const upcoming: Received[] = [];
		let carried = this.#linkMs, elapsed = 0;
		for (const received of queued) {
			if (upcoming.length === max || (untilTimer !== undefined && elapsed >= untilTimer)) break;
			upcoming.push(received);
			const whole = Math.floor((carried += this.#linkMsFor(received)));
			carried -= whole;
			elapsed += whole;
		}
		return upcoming;
	}

	/**
		nextEvent(), for an event upcomingEvents() listed, which the device has begun. It comes from the head of its
		own queue: what another socket queued since then arrived, as far as the device can tell, after it. Not at
		its queue's head, or behind a due timer, is a fault in the simulator.
	*/
	takeUpcoming(expected: Received): void {
		if (this.clock.untilNext() === 0) throw new Error("a timer fell due before an event sent ahead");
		const network = [this.network, this.mqtt, this.udp].find((each) => each.queued[0] === expected);
		if (!network) throw new Error("an event sent ahead is no longer next in its queue");
		this.#arrived(network.take()!);
	}

	#takeReceived(): Received | undefined {
		const received = this.network.take() ?? this.mqtt.take() ?? this.udp.take();
		if (received) this.#arrived(received);
		return received;
	}

	/**
		Counts an event given to the device, and its bytes' time on the link: without it, bytes the host had queued
		would arrive in no time at all, and what the device measures (an AWS job's downloadTime) would depend on how
		busy the host is. Whole milliseconds move the clock; the rest is carried over.
	*/
	#arrived(received: Received): void {
		this.eventsTaken++;
		this.#linkMs += this.#linkMsFor(received);
		const whole = Math.floor(this.#linkMs);
		this.#linkMs -= whole;
		this.clock.advance(whole);
	}

	#linkMsFor(received: Received): number {
		return ((received.data?.byteLength ?? 0) * 8) / this.#linkKbps;
	}

	/**
		Real milliseconds the run loop should wait for the sockets before it moves the virtual clock, or
		undefined when no socket can bring anything. `untilTimer` is the device's next timer.
	*/
	networkWait(untilTimer: number | undefined): number | undefined {
		const waits = [this.network.busy ? untilTimer ?? 1000 : undefined, this.mqtt.waitFor(untilTimer), this.udp.waitFor(untilTimer)]
			.filter((wait) => wait !== undefined);
		return waits.length ? Math.min(...waits) : undefined;
	}

	/** Resolves when a socket queues an event or after `ms` real milliseconds. */
	waitForNetwork(ms: number): Promise<void> {
		return this.#signal.wait(ms);
	}

	/** Power-off: sockets and files closed. */
	shutDown(): void {
		this.network.closeAll();
		this.mqtt.closeAll();
		this.udp.closeAll();
		this.storage.close();
	}

	#openFlash(name: string): FlashPartition {
		if (name === "nextota") return this.storage.appSlot(this.inactiveSlot);
		if (name === "running") return this.storage.appSlot(this.runningSlot);
		const partition = this.storage.config.partitions.find((p) => p.label === name);
		if (!partition || partition.type !== "data") throw new Error("can't find partition");
		return this.storage.partition(name);
	}

	#flash(id: number): FlashPartition {
		const partition = this.#flashHandles.get(id);
		if (!partition) throw new Error("flash closed");
		return partition;
	}

	/** What the bootloader and esp_ota_set_boot_partition verify: a complete, intact app image for this chip. */
	#slotHoldsImage(slot: number): boolean {
		return checkSlot(this.storage.appSlot(slot), this.#chipId, verifyImage).ok;
	}

	get #chipId(): number {
		return chipIds[this.config.chip as keyof typeof chipIds] ?? 0;
	}
}

/** The agent's image check over one app partition (the whole file's SHA-256 included), or the bootloader's (`verifyImage`). */
export function checkSlot(partition: FlashPartition, chipId: number, check = checkImage) {
	const flashSlot = {
		byteLength: partition.byteLength,
		sectorSize: partition.blockSize,
		blockSize: blockEraseSize,
		erase() { throw new Error("read only"); },
		eraseBlock() { throw new Error("read only"); },
		write() { throw new Error("read only"); },
		readInto(offset: number, byteLength: number, into: Uint8Array) { partition.readInto(offset, byteLength, into); },
	};
	let hash = createHash("sha256");
	const digest = {
		reset() { hash = createHash("sha256"); },
		write(bytes: Uint8Array) { hash.update(bytes); },
		finish(into: Uint8Array) { into.set(hash.digest()); },
	};
	return check(flashSlot, digest, chipId, new Uint8Array(4096));
}

export function slotVersion(partition: FlashPartition): string {
	return readAppDescription(partition.read(0, 512))?.version ?? "";
}

function copyBuffer(bytes: Uint8Array): ArrayBuffer {
	return bytes.slice().buffer;
}

export { PowerCutError };
