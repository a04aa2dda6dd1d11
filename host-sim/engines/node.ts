// The fast engine: the device bundle in a fresh Node vm context per power-on, calling the board directly.
// Bytes cross into the context as the context's own ArrayBuffers, as they would arrive from XS.

import * as vm from "node:vm";
import type { Board, DeviceEvent } from "../board/board";
import { deviceBundle } from "./bundle";
import { type Engine, type EngineStop, preludeWithTransport, wrapBundle } from "./engine";

const prelude = new vm.Script(preludeWithTransport(`
	const toBuffer = (bytes) => { const buffer = new ArrayBuffer(bytes.length); new Uint8Array(buffer).set(bytes); return buffer; };
	const rawHost = (op, args, data) => {
		const reply = hostRaw(op, args, data);
		if (reply.value && reply.value.constructor && reply.value.constructor.name === "Uint8Array") reply.value = toBuffer(reply.value);
		return reply;
	};
	globalThis.bytesToDevice = toBuffer;
`));

/** The firmware compiled once per process: every power-on runs the same script in its fresh context. */
const compiled = new Map<string | undefined, vm.Script>();

function firmware(entry: string | undefined): vm.Script {
	let script = compiled.get(entry);
	if (!script) compiled.set(entry, script = new vm.Script(wrapBundle(deviceBundle(entry)), { filename: "device.js" }));
	return script;
}

export class NodeEngine implements Engine {
	readonly heapSlots = undefined;
	#context: vm.Context | undefined;
	#board: Board | undefined;
	readonly #entry: string | undefined;

	/** `entry`: the firmware's entry module (deviceBundle's), device-entry.ts by default. */
	constructor(options: { entry?: string } = {}) {
		this.#entry = options.entry;
	}

	async boot(board: Board): Promise<EngineStop> {
		this.#board = board;
		const context = vm.createContext({
			hostRaw: (op: string, args: unknown[], data: ArrayBufferView | ArrayBuffer | undefined) => {
				try {
					const bytes = data === undefined ? undefined : ArrayBuffer.isView(data)
						? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
						: new Uint8Array(data);
					return { value: board.call(op, args, bytes) };
				}
				catch (error) {
					return { error: (error as Error).message, name: (error as Error).name };
				}
			},
		});
		this.#context = context;
		prelude.runInContext(context);
		firmware(this.#entry).runInContext(context);
		return this.#stopReason();
	}

	async deliver({ event, data }: DeviceEvent): Promise<EngineStop> {
		const context = this.#context!;
		const buffer = data ? context.bytesToDevice(data) : undefined;
		context.deliverToDevice(event, buffer);
		return this.#stopReason();
	}

	#stopReason(): EngineStop {
		const board = this.#board!;
		if (!board.power.isOn) return "cut";
		if (board.restartRequested) return "restart";
		return undefined;
	}

	dispose(): void {
		this.#context = undefined;
	}
}
