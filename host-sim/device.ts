/*
	Runs a simulated board from power-on until it is idle or the power is cut, rebooting whenever the device
	asks. Each power-on starts a fresh engine on the same board folder, exactly as a real boot starts a fresh
	XS machine on the same flash.
*/

import { Board, checkSlot, PowerCutError, slotVersion } from "./board/board";
import * as fs from "node:fs";
import * as path from "node:path";
import { BoardStorage, addWear, boardFile, noWear, type Wear } from "./board/board-files";
import type { UdpFaults } from "./board/udp-network";
import type { BoardLayout } from "./board/partition-table";
import { PowerSupply } from "./board/power";
import type { Engine, EngineStop } from "./engines/engine";
import { NodeEngine } from "./engines/node";
import { XsEngine } from "./engines/xs";
import { makeAppImage, sha256Hex } from "./image";
import { seeded } from "./random";
import { type PolicyName, policyCodes } from "../src/agent/record";
import type { MaintenanceSettings } from "../src/agent/maintenance";
import type { SeverityName } from "../src/agent/job-list";
import { installResources, provision, type Credentials } from "./credentials";

export type EngineName = "node" | "xs";

export { type PolicyName, policyCodes };

export interface DeviceOptions {
	dir: string;
	engine?: EngineName;
	/** Package URI delivered as an LwM2M server's Package URI write plus Update execute. */
	url?: string;
	sha256?: string;
	/** Recovery policy sent with the update request; the agent's default when omitted. */
	policy?: PolicyName;
	/** Severity sent with the update request (LwM2M /5/0/11): a critical one installs whatever the window or opt-out. */
	severity?: SeverityName;
	/** Maximum defer period sent with the update request (LwM2M /5/0/13), in seconds. */
	maxDeferSeconds?: number;
	/** Maintenance settings the app gives at the first power-on, before the update request: they replace stored ones. */
	maintenance?: Partial<MaintenanceSettings>;
	cutAfterOps?: number;
	seed?: number;
	config?: Record<string, unknown>;
	/** Reboots allowed before the run is declared stuck. */
	maxBoots?: number;
	onEvent?: (event: DeviceReport) => void;
	/** Follow AWS IoT jobs as `thing` on this broker (mqtt://host:port). */
	mqtt?: string;
	/**
		The broker is an AWS IoT emulator in this process (aws-iot.ts): the board asks it whether replies are still
		on their way (mqtt-network.ts, Settling), and real time spent waiting for them is not device time. The
		virtual clock then moves only by the device's timers and its link's transfer time, whatever the host's load.
	*/
	settle?: boolean;
	thing?: string;
	/** Flash layout of a board created by this run; the default 4 MB one has 1.875 MiB slots. */
	layout?: BoardLayout;
	/** The image a board created by this run leaves the factory with (a signed one, say); default version 1.0.0. */
	factoryImage?: Uint8Array;
	/** XS heap slots after each delivered event (xs engine), interleaved with onEvent's reports. */
	onHeap?: (slots: number) => void;
	/** Benchmarks only: collect garbage before each heap reading, so it counts live slots. */
	heapAfterGc?: boolean;
	/** Wall-clock time at the first power-on (ms since 1970); later boots carry the virtual wall clock on. */
	startTime?: number;
	/** Virtual milliseconds the board runs for (over all boots); the run then ends with "time-up". */
	runFor?: number;
	/** The reboot warning file the device watches (config.rebootWarningFile); default $XS_OTA_REBOOT_WARNING. */
	rebootWarning?: string;
	/** Whether the board has a network connection at a given wall-clock time (always, by default). */
	online?: (wallTime: number) => boolean;
	/** Commands for the device (as an LwM2M server or the app would give them), delivered between events; push at any time. */
	commands?: DeviceCommand[];
	/** TLS trust anchors and client identity (DER), built into the app as resources or, with provisioned, in its preferences. */
	credentials?: Credentials;
	provisioned?: boolean;
	/** Faults every UDP datagram may meet (host-sim/board/udp-network.ts). */
	udpFaults?: UdpFaults;
	/** Another firmware than device-entry.ts (tests of single modules), relative to the repository root. */
	entry?: string;
	/** Called with each power-on's board, before it boots: tests reach its networks (UDP ports, counters). */
	onBoard?: (board: Board) => void;
}

export type DeviceCommand = { action: string; [key: string]: unknown };

export type DeviceReport = { event: string; [key: string]: unknown };

export interface DeviceOutcome {
	/** "shut-down": the run ended after the agent's orderly shutdown (SIGINT/SIGTERM, a shutdown command, a reboot warning). */
	end: "idle" | "shut-down" | "power-cut" | "time-up";
	boots: number;
	state: number;
	result: number;
	bytesFetched: number;
	/** UDP datagram bytes the device received (CoAP: headers and payloads, LwM2M traffic included). */
	datagramBytesReceived: number;
	/** MQTT message payload bytes the device received (jobs and stream messages, envelopes included). */
	mqttBytesReceived: number;
	/** AWS stream blocks delivered to the device. */
	blocksFetched: number;
	/** Persistent writes (flash erases and writes, preference writes and deletes) over all boots. */
	ops: number;
	wear: Wear;
	running: { slot: number; version: string; sha256: string };
	/** XS heap slots (xs engine) after each delivery from the board: a command, which may carry several events. */
	heapSlots: number[];
	/** The update request was delivered and the agent returned from it (it persisted the request). */
	requestAcknowledged: boolean;
	/** Virtual wall-clock time when the run ended (ms since 1970). */
	wallTime: number;
	/** Events delivered to the device (timers, socket events, commands) over all boots: how often it woke up. */
	wakeups: number;
	/** Virtual milliseconds with a UDP socket open, over all boots: how long the radio listened for CoAP. */
	listeningMs: number;
}

export const factoryVersion = "1.0.0";

/** Commands (a signal's shutdown, a test's) arrive without waking the run loop: it looks at least this often. */
const commandPollMs = 50;

function makeEngine(name: EngineName, heapAfterGc: boolean, entry: string | undefined): Engine {
	return name === "xs" ? new XsEngine({ heapAfterGc, entry }) : new NodeEngine({ entry });
}

export async function runDevice(options: DeviceOptions): Promise<DeviceOutcome> {
	const emit = options.onEvent ?? (() => {});
	let boots = 0, bytesFetched = 0, datagramBytesReceived = 0, mqttBytesReceived = 0, blocksFetched = 0, ops = 0, previousSlot = 0;
	let status = { state: 0, result: 0 };
	const wear: Wear = noWear();
	const heapSlots: number[] = [];
	let url = options.url;
	let requestAcknowledged = false;
	let wakeups = 0, listeningMs = 0;
	/** The agent shut down in order in this power-on: the run then ends with that, not with "idle". */
	let shutDown = false;
	let wallTime = options.startTime ?? Date.now(), timeLeft = options.runFor ?? Infinity;
	const commands = options.commands ?? [];
	const rebootWarning = options.rebootWarning ?? process.env.XS_OTA_REBOOT_WARNING;
	prepareFactoryBoard(options.dir, options.layout, options.factoryImage);
	if (options.credentials) (options.provisioned ? provision : installResources)(options.dir, options.credentials);
	for (;;) {
		const board = new Board({
			dir: options.dir,
			epoch: wallTime,
			online: options.online,
			// The count runs across reboots: a reboot is not a power cycle.
			cutAfterOps: options.cutAfterOps === undefined ? undefined : options.cutAfterOps - ops,
			seed: options.seed,
			previousSlot,
			udpFaults: options.udpFaults,
			settles: options.settle,
			config: {
				checkpointBytes: 16384, ...(options.mqtt ? { mqtt: options.mqtt, thing: options.thing } : {}),
				...(rebootWarning ? { rebootWarningFile: rebootWarning } : {}), ...options.config,
			},
			report: (kind, args) => {
				if (kind === "log") emit({ event: "log", message: String(args[0]) });
				else if (kind === "report.status") {
					status = { state: args[0] as number, result: args[1] as number };
					// op: persistent writes so far, over all boots (a cut at op + 1 lands right after this transition).
					emit({ event: "state", state: status.state, result: status.result, op: ops + board.power.ops });
				}
				else if (kind === "report.result") emit({ event: "result", updateId: args[0], result: args[1], version: args[2], ...(args[3] ? { reason: args[3] } : {}) });
				else if (kind === "report.maintenance")
					emit({ event: "maintenance", status: args[0], kind: args[1], ...(args[2] !== undefined ? { nextStart: args[2] } : {}), at: board.clock.wallTime });
				else if (kind === "report.shutdown") {
					shutDown = true;
					emit({ event: "shutdown", at: board.clock.wallTime });
				}
				else if (kind === "report.unreachable") emit({ event: "unreachable", reason: args[0] });
				else if (kind === "flash.erase") emit({ event: "erase", partition: args[0], start: args[1], end: args[2], op: ops + (args[3] as number) });
				else emit({ event: "progress", received: args[0], total: args[1] });
			},
		});
		boots++;
		shutDown = false;
		options.onBoard?.(board);
		try {
			board.boot();
		}
		catch (error) {
			board.shutDown();
			if (!(error instanceof PowerCutError)) throw error;
			ops += board.power.ops;
			addWear(wear, board.storage.wear());
			emit({ event: "power-cut", op: board.power.cutAt?.op, kind: board.power.cutAt?.kind, bytesFetched });
			return finish("power-cut", board);
		}
		previousSlot = board.runningSlot;
		emit({ event: "boot", slot: board.runningSlot, version: board.runningVersion(), rolledBack: board.rolledBack, at: board.clock.wallTime });
		const engine = makeEngine(options.engine ?? "node", options.heapAfterGc ?? false, options.entry);
		let stop: EngineStop | "time-up";
		try {
			stop = await engine.boot(board);
			if (!stop && options.maintenance && boots === 1)
				stop = await engine.deliver({ event: { id: 0, action: "maintenance", settings: options.maintenance }, data: undefined });
			if (!stop && url) {
				const { sha256, severity, maxDeferSeconds } = options;
				const policy = options.policy === undefined ? undefined : policyCodes[options.policy];
				stop = await engine.deliver({ event: { id: 0, action: "update", uri: url, sha256, policy, severity, maxDeferSeconds }, data: undefined });
				requestAcknowledged = stop !== "cut";
				url = undefined;
			}
			while (!stop) {
				const command = commands.shift();
				if (command) {
					wakeups++;
					stop = await engine.deliver({ event: { id: 0, ...command }, data: undefined });
					continue;
				}
				const next = board.nextEvent();
				if (next) {
					stop = await engine.deliver(next);
					if (engine.heapSlots !== undefined) {
						heapSlots.push(engine.heapSlots);
						options.onHeap?.(engine.heapSlots);
					}
					continue;
				}
				const untilTimer = board.clock.untilNext();
				if (untilTimer !== undefined && board.clock.now + untilTimer > timeLeft) {
					// Before the next timer the run ends, but not before the network work in progress (a request in
					// flight, an MQTT connection being made or talking): and an open UDP socket may still hear from its
					// server (an LwM2M server asks when it likes) until the end.
					const untilEnd = timeLeft - board.clock.now, listen = board.networkWait(undefined) ?? board.udp.waitFor(untilEnd);
					if (listen !== undefined && untilEnd > 0) {
						const started = Date.now();
						await board.waitForNetwork(Math.min(listen, untilEnd, commandPollMs));
						if (!options.settle) board.clock.advance(Math.min(Date.now() - started, untilEnd));
						continue;
					}
					board.clock.advance(untilEnd);
					stop = "time-up";
					break;
				}
				const wait = board.networkWait(untilTimer);
				if (wait !== undefined) {
					const started = Date.now();
					await board.waitForNetwork(Math.min(wait, commandPollMs));
					if (!options.settle) board.clock.advance(Math.min(Date.now() - started, untilTimer ?? Infinity));
				}
				else if (untilTimer !== undefined) board.clock.advance(untilTimer);
				else break;
			}
			if (options.settle) while (!board.mqtt.drained()) await board.waitForNetwork(commandPollMs);
		}
		finally {
			wallTime = board.clock.wallTime;
			timeLeft -= board.clock.now;
			bytesFetched += board.network.bodyBytes;
			datagramBytesReceived += board.udp.bytesReceived;
			mqttBytesReceived += board.mqtt.payloadBytes;
			wakeups += board.eventsTaken;
			blocksFetched += board.mqtt.blocksDelivered;
			ops += board.power.ops;
			addWear(wear, board.storage.wear());
			board.shutDown();
			listeningMs += board.udp.listeningMs;
			engine.dispose();
		}
		if (stop === "cut") {
			emit({ event: "power-cut", op: board.power.cutAt?.op, kind: board.power.cutAt?.kind, bytesFetched: bytesFetched, ...(options.mqtt ? { blocksFetched } : {}) });
			return finish("power-cut", board);
		}
		if (stop === "time-up") return finish("time-up", board);
		if (stop === "restart") {
			if (boots >= (options.maxBoots ?? 20)) throw new Error("device keeps rebooting");
			continue;
		}
		return finish(shutDown ? "shut-down" : "idle", board);
	}

	function finish(end: DeviceOutcome["end"], board: Board): DeviceOutcome {
		// Read back with the power on again: after a cut the board itself answers nothing.
		const storage = BoardStorage.open(options.dir, new PowerSupply());
		const partition = storage.appSlot(board.runningSlot);
		const check = checkSlot(partition, 0);
		const running = { slot: board.runningSlot, version: slotVersion(partition), sha256: check.ok ? Buffer.from(check.sha256).toString("hex") : sha256Hex(new Uint8Array(0)) };
		const outcome = { end, boots, state: status.state, result: status.result, bytesFetched, datagramBytesReceived, mqttBytesReceived, blocksFetched, ops, wear, running, heapSlots, requestAcknowledged, wallTime, wakeups, listeningMs };
		if (end !== "power-cut")
			emit({ event: end, state: status.state, result: status.result, running, bytesFetched, ...(mqttBytesReceived ? { mqttBytesReceived, blocksFetched } : {}) });
		return outcome;
	}
}

/** The image a fresh board runs from slot 0 (the base of test/fixtures/delta's patches). */
export function factoryImage(): Uint8Array {
	return makeAppImage({ size: 256 * 1024, version: factoryVersion });
}

/** The files of a factory-fresh board, by layout: made once per process, copied for every further board. */
const factoryFiles = new Map<BoardLayout, Map<string, Uint8Array>>();

/** A board fresh from the factory runs version 1.0.0 (or `image`) from ota_0 (flashed over serial: no power cuts). */
export function prepareFactoryBoard(dir: string, layout: BoardLayout = "4MB", image?: Uint8Array): void {
	if (fs.existsSync(path.join(dir, boardFile))) return;
	const files = image ? undefined : factoryFiles.get(layout);
	if (files) {
		fs.mkdirSync(dir, { recursive: true });
		// board.json last: it is what makes the folder a board.
		for (const [name, bytes] of files) fs.writeFileSync(path.join(dir, name), bytes);
		return;
	}
	const storage = BoardStorage.open(dir, new PowerSupply(), layout);
	const flashed = image ?? factoryImage();
	const slot = storage.appSlot(0);
	for (let sector = 0; sector * slot.blockSize < flashed.length; sector++) slot.erase(sector);
	slot.write(0, flashed.length, flashed);
	if (image) return;
	const names = [...storage.partitionFiles(), boardFile].filter((name) => fs.existsSync(path.join(dir, name)));
	factoryFiles.set(layout, new Map(names.map((name) => [name, new Uint8Array(fs.readFileSync(path.join(dir, name)))])));
}

/** Fills app slot `slot` with seeded noise: a board that has updated before holds old bytes there, not 0xFF. */
export function fillSlotWithNoise(dir: string, slot: number, seed: number): void {
	const partition = BoardStorage.open(dir, new PowerSupply()).appSlot(slot);
	const next = seeded(seed);
	const bytes = new Uint8Array(partition.byteLength);
	for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
	partition.write(0, bytes.length, bytes);
}
