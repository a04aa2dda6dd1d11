// What a JavaScript engine running the device bundle offers the board's run loop.

import type { Board, DeviceEvent } from "../board/board";

export type EngineStop = "cut" | "restart" | undefined;

export interface Engine {
	/** Evaluates the bundle on a fresh engine: module bodies run, the agent starts. */
	boot(board: Board): Promise<EngineStop>;
	/** Delivers one event; says whether power was cut or a restart was asked for while handling it. */
	deliver(event: DeviceEvent): Promise<EngineStop>;
	/** XS heap slots in use after the last call (xs engine only). */
	readonly heapSlots: number | undefined;
	dispose(): void;
}

/** Shared by both engines: the script run inside the engine before the bundle. */
export const preludeWithTransport = (transport: string) => `
(function () {
	${transport}
	globalThis.hostCall = function (op, args, data) {
		const reply = rawHost(op, args, data);
		if (reply.error) {
			const error = new Error(reply.error);
			// Defined, not assigned: the node engine's built-ins are frozen, and Error.prototype.name with them.
			Object.defineProperty(error, "name", { value: reply.name, writable: true, configurable: true });
			throw error;
		}
		return reply.value;
	};
	Date.now = function () { return hostCall("time.now", []); };
	globalThis.deliverToDevice = function (event, data) {
		try { globalThis.deviceDeliver(event, data); }
		catch (error) {
			if (error && (error.name === "PowerCutError" || error.name === "RestartError")) return;
			hostCall("log", ["exception: " + (error && error.stack || error)]);
		}
	};
})();
`;

/** Runs the bundle so that a cut or restart during start-up ends it quietly, like any other callback. */
export function wrapBundle(bundle: string): string {
	return `(function () { try {\n${bundle}\n} catch (error) {
		if (error && (error.name === "PowerCutError" || error.name === "RestartError")) return;
		hostCall("log", ["exception: " + (error && error.stack || error)]);
	} })();`;
}
