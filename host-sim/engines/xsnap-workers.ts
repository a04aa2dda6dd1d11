/*
	The xs engine's worker processes, started by one launcher process (xsnap-launcher.js) rather than by this one.
	Node starts a child with fork(), which marks every page of this large process copy-on-write until the child has
	exec'd; each page written afterwards then faults once. Forked from here at every boot, that cost some 2,000 page
	faults and a third of the host's CPU in the MiB downloaded after it. The launcher is forked once, at the first
	boot, and is small; it hands back the workers' sockets over its IPC channel.

	The launcher runs in a process group of its own, with the workers it starts: a Ctrl-C at the terminal reaches
	this process alone, which shuts its devices down through their workers. It ends its workers and itself when
	this process goes.
*/

import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";

export interface XsnapWorker {
	/** The worker's descriptor 3 (commands) and 4 (answers). */
	toWorker: Socket;
	fromWorker: Socket;
	/** SIGKILL: the worker stops wherever it is. */
	kill(): void;
}

interface Pending {
	toWorker?: Socket;
	fromWorker?: Socket;
	resolve: (worker: XsnapWorker) => void;
	reject: (error: Error) => void;
}

type LauncherMessage = { id: number; end?: "to" | "from"; error?: string };

class Launcher {
	readonly #process: ChildProcess;
	#nextId = 1;
	readonly #pending = new Map<number, Pending>();

	constructor() {
		const file = fileURLToPath(new URL("./xsnap-launcher.js", import.meta.url));
		this.#process = spawn(process.execPath, [file], { stdio: ["ignore", "inherit", "inherit", "ipc"], detached: true });
		this.#process.on("message", (message: LauncherMessage, handle: Socket | undefined) => this.#answer(message, handle));
		this.#process.on("error", (error) => this.#end(error));
		this.#process.on("exit", () => this.#end(new Error("xsnap launcher exited")));
		this.#idle();
	}

	start(file: string, args: string[]): Promise<XsnapWorker> {
		const id = this.#nextId++;
		// Waiting for the launcher keeps this process alive; it does not otherwise.
		this.#process.ref();
		this.#process.channel?.ref();
		return new Promise((resolve, reject) => {
			this.#pending.set(id, { resolve, reject });
			this.#process.send({ id, file, args });
		});
	}

	#answer(message: LauncherMessage, handle: Socket | undefined): void {
		const pending = this.#pending.get(message.id);
		if (!pending) return;
		if (message.error !== undefined || !handle) return this.#settle(message.id, new Error(`xsnap worker did not start: ${message.error ?? "no socket"}`));
		if (message.end === "to") pending.toWorker = handle;
		else pending.fromWorker = handle;
		if (!pending.toWorker || !pending.fromWorker) return;
		const { toWorker, fromWorker } = pending;
		this.#settle(message.id, {
			toWorker,
			fromWorker,
			// The sockets close when the worker has gone (closed first, they would have it complain of a lost parent).
			kill: () => {
				if (this.#process.connected) this.#process.send({ kill: message.id });
				else for (const socket of [toWorker, fromWorker]) socket.destroy();
			},
		});
	}

	#settle(id: number, outcome: XsnapWorker | Error): void {
		const pending = this.#pending.get(id)!;
		this.#pending.delete(id);
		if (outcome instanceof Error) {
			pending.toWorker?.destroy();
			pending.fromWorker?.destroy();
			pending.reject(outcome);
		}
		else pending.resolve(outcome);
		if (!this.#pending.size) this.#idle();
	}

	#idle(): void {
		this.#process.unref();
		this.#process.channel?.unref();
	}

	#end(error: Error): void {
		if (launcher === this) launcher = undefined;
		for (const id of [...this.#pending.keys()]) this.#settle(id, error);
	}
}

let launcher: Launcher | undefined;

/** Starts `file` with `args` as an xsnap worker: through the launcher, started at the first call. */
export function startXsnapWorker(file: string, args: string[]): Promise<XsnapWorker> {
	launcher ??= new Launcher();
	return launcher.start(file, args);
}
