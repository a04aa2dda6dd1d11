/*
	The fast engine: the device bundle in Node's V8, calling the board directly. Bytes cross into the device
	as its own realm's ArrayBuffers, as they would arrive from XS.

	One realm serves every power-on on a thread. The firmware is compiled once into a function, and each
	power-on calls it: every module body runs afresh, with its own module state, listeners and globals (a
	globalThis, Date and hostCall of the power-on's own, in front of the shared built-ins), so a boot starts
	with nothing of the last one. The built-ins are frozen, so no board can change what another sees. What the
	boots share is V8's compiled and optimised code: a power-on does not begin in the interpreter again.
*/

import * as vm from "node:vm";
import type { Board, DeviceEvent } from "../board/board";
import { deviceBundle } from "./bundle";
import { type Engine, type EngineStop, preludeWithTransport, wrapBundle } from "./engine";

/** The power-on's own bindings, then the shared prelude and the bundle; returns the power-on's globalThis. */
const powerOnSource = (bundle: string) => `(function (realm) {
	"use strict";
	return function powerOn(hostRaw) {
		const globalThis = Object.create(realm);
		// A Date of its own, with a now of its own for the prelude to set to the board's clock.
		const Date = class Date extends realm.Date { static now() { return realm.Date.now(); } };
		const trace = (...values) => globalThis.trace(...values);
		${preludeWithTransport(`
			const toBuffer = (bytes) => { const buffer = new ArrayBuffer(bytes.length); new Uint8Array(buffer).set(bytes); return buffer; };
			const rawHost = (op, args, data) => {
				const reply = hostRaw(op, args, data);
				if (reply.value && reply.value.constructor && reply.value.constructor.name === "Uint8Array") reply.value = toBuffer(reply.value);
				return reply;
			};
			globalThis.bytesToDevice = toBuffer;
		`)}
		const hostCall = globalThis.hostCall;
		${wrapBundle(bundle)}
		return globalThis;
	};
})`;

/**
	Freezes everything reachable from the realm's global bindings (prototypes, constructors, their statics), but
	not by Object.freeze, which makes V8 11 store into every Uint8Array whose prototype chain it froze ten times
	slower: each object is closed to new properties and each property made read-only, which is what freezing is.
	Except for the properties V8 guards with protectors (constructor, then, next, the well-known symbols...):
	redefining one, even to read-only, sends V8 down its slow paths for good. Those stay as they are and are
	watched instead: the returned function puts back any that changed and names the first.
*/
const hardenSource = `(function () {
	const guarded = new Set(["constructor", "next", "then", "resolve", "exec", "flags", "toString", "valueOf"]);
	// The global bindings themselves (Object, Uint8Array...) are watched: a vm context's global cannot be frozen.
	const watched = Object.getOwnPropertyNames(globalThis).map((name) => [globalThis, name, Object.getOwnPropertyDescriptor(globalThis, name)]);
	const seen = new Set([globalThis]), pending = Object.getOwnPropertyNames(globalThis).map((name) => globalThis[name]);
	while (pending.length) {
		const value = pending.pop();
		if ((typeof value !== "object" && typeof value !== "function") || value === null || seen.has(value)) continue;
		seen.add(value);
		for (const key of Reflect.ownKeys(value)) {
			const descriptor = Object.getOwnPropertyDescriptor(value, key);
			if (typeof key === "symbol" || guarded.has(key)) watched.push([value, key, descriptor]);
			else Object.defineProperty(value, key, "value" in descriptor ? { writable: false, configurable: false } : { configurable: false });
			pending.push(descriptor.value, descriptor.get, descriptor.set);
		}
		Object.preventExtensions(value);
		pending.push(Object.getPrototypeOf(value));
	}
	return () => {
		let changed;
		for (const [object, key, was] of watched) {
			const now = Object.getOwnPropertyDescriptor(object, key);
			if (now && Object.is(now.value, was.value) && now.get === was.get && now.set === was.set) continue;
			Object.defineProperty(object, key, was);
			changed ??= object === globalThis ? String(key)
				: (typeof was.value === "function" && key === "constructor" ? was.value.name + ".prototype" : typeof object === "function" ? object.name : "?") + "." + String(key);
		}
		return changed;
	};
})()`;

type PowerOn = (hostRaw: unknown) => DeviceGlobals;
interface DeviceGlobals {
	bytesToDevice(bytes: Uint8Array): ArrayBuffer;
	deliverToDevice(event: DeviceEvent["event"], data: ArrayBuffer | undefined): void;
}

let realm: { context: vm.Context; global: object; changedBuiltIn: () => string | undefined } | undefined;
/** The firmware compiled once per thread, by entry. */
const firmwares = new Map<string | undefined, PowerOn>();

function firmware(entry: string | undefined): PowerOn {
	let powerOn = firmwares.get(entry);
	if (!powerOn) {
		if (!realm) {
			const context = vm.createContext({});
			const changedBuiltIn = new vm.Script(hardenSource).runInContext(context);
			realm = { context, global: new vm.Script("globalThis").runInContext(context), changedBuiltIn };
		}
		const start = new vm.Script(powerOnSource(deviceBundle(entry)), { filename: "device.js" }).runInContext(realm.context);
		firmwares.set(entry, powerOn = start(realm.global));
	}
	return powerOn!;
}

export class NodeEngine implements Engine {
	readonly heapSlots = undefined;
	#device: DeviceGlobals | undefined;
	#board: Board | undefined;
	readonly #entry: string | undefined;

	/** `entry`: the firmware's entry module (deviceBundle's), device-entry.ts by default. */
	constructor(options: { entry?: string } = {}) {
		this.#entry = options.entry;
	}

	async boot(board: Board): Promise<EngineStop> {
		this.#board = board;
		const powerOn = firmware(this.#entry);
		this.#device = powerOn((op: string, args: unknown[], data: ArrayBufferView | ArrayBuffer | undefined) => {
			try {
				const bytes = data === undefined ? undefined : ArrayBuffer.isView(data)
					? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
					: new Uint8Array(data);
				return { value: board.call(op, args, bytes) };
			}
			catch (error) {
				return { error: (error as Error).message, name: (error as Error).name };
			}
		});
		return this.#stopReason();
	}

	async deliver({ event, data }: DeviceEvent): Promise<EngineStop> {
		const device = this.#device!;
		device.deliverToDevice(event, data ? device.bytesToDevice(data) : undefined);
		return this.#stopReason();
	}

	#stopReason(): EngineStop {
		const board = this.#board!;
		if (!board.power.isOn) return "cut";
		if (board.restartRequested) return "restart";
		return undefined;
	}

	dispose(): void {
		this.#device = undefined;
		const changed = realm?.changedBuiltIn();
		if (changed) throw new Error(`the firmware changed ${changed}, a built-in every power-on on this thread shares`);
	}
}
