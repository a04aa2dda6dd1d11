/*
	Board runs on worker threads. The rollout, the AWS IoT emulator and its broker stay on the main thread; each
	power-on (runDevice) goes to the thread with the fewest runs in progress, and the board reaches the broker
	over TCP as it would from the main thread. A run is plain data both ways (its folder, its options, its
	outcome), so a board's result does not depend on the thread it ran on; its events, when asked for, come
	back in order.
*/

import { Worker, parentPort, workerData } from "node:worker_threads";
import { runDevice, type DeviceOptions, type DeviceOutcome, type DeviceReport } from "../device";
import { adoptBundles, builtBundles, deviceBundle } from "../engines/bundle";

/** What crosses to a thread: the options without callbacks. */
export type ThreadRun = Omit<DeviceOptions, "onEvent" | "onHeap" | "onBoard" | "online" | "commands">;

type Request = { id: number; options: ThreadRun; events: boolean };
type Reply = { id: number; event?: DeviceReport; outcome?: DeviceOutcome; error?: string };

interface Thread {
	worker: Worker;
	running: number;
}

interface Pending {
	thread: Thread;
	resolve: (outcome: DeviceOutcome) => void;
	reject: (error: Error) => void;
	onEvent: ((event: DeviceReport) => void) | undefined;
}

export class BoardThreads {
	readonly #threads: Thread[];
	readonly #pending = new Map<number, Pending>();
	#nextId = 1;
	/** Why the last thread was lost, once none is left. */
	#gone: Error | undefined;

	constructor(count: number) {
		// The device bundle, built once here: each thread would spend half a second of CPU building it again.
		deviceBundle();
		const bundles = builtBundles();
		this.#threads = Array.from({ length: count }, () => {
			const thread: Thread = { worker: new Worker(new URL("./board-thread.mjs", import.meta.url), { workerData: { bundles } }), running: 0 };
			thread.worker.on("message", (reply: Reply) => this.#reply(reply));
			thread.worker.on("error", (error) => this.#lost(thread, error));
			thread.worker.on("exit", (code) => this.#lost(thread, new Error(`board thread exited with code ${code}`)));
			return thread;
		});
	}

	/** runDevice on a thread. */
	run(options: ThreadRun, onEvent?: (event: DeviceReport) => void): Promise<DeviceOutcome> {
		if (!this.#threads.length) return Promise.reject(this.#gone);
		const thread = this.#threads.reduce((least, each) => (each.running < least.running ? each : least));
		thread.running++;
		const id = this.#nextId++;
		return new Promise((resolve, reject) => {
			this.#pending.set(id, { thread, resolve, reject, onEvent });
			thread.worker.postMessage({ id, options, events: onEvent !== undefined } satisfies Request);
		});
	}

	async close(): Promise<void> {
		const threads = this.#threads.splice(0);
		this.#gone = new Error("board threads closed");
		await Promise.all(threads.map((thread) => thread.worker.terminate()));
	}

	#reply({ id, event, outcome, error }: Reply): void {
		const pending = this.#pending.get(id);
		if (!pending) return;
		if (event) return pending.onEvent?.(event);
		this.#pending.delete(id);
		pending.thread.running--;
		if (outcome) pending.resolve(outcome);
		else pending.reject(new Error(error));
	}

	/** A thread that died takes its runs with it: each fails with the reason. */
	#lost(thread: Thread, error: Error): void {
		const index = this.#threads.indexOf(thread);
		if (index < 0) return;
		this.#threads.splice(index, 1);
		this.#gone = error;
		for (const [id, pending] of this.#pending) {
			if (pending.thread !== thread) continue;
			this.#pending.delete(id);
			pending.reject(error);
		}
	}
}

/** The thread's side (board-thread.mjs): runs what it is sent, one reply per run. */
export function serveBoardRuns(): void {
	adoptBundles(workerData.bundles);
	const port = parentPort!;
	port.on("message", async ({ id, options, events }: Request) => {
		const reply = (message: Reply) => port.postMessage(message);
		try {
			reply({ id, outcome: await runDevice({ ...options, onEvent: events ? (event) => reply({ id, event }) : undefined }) });
		}
		catch (error) {
			reply({ id, error: (error as Error).message });
		}
	});
}
