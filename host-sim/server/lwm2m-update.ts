// The server's side of one device's firmware update over LwM2M, as a management application would run it on
// the local LwM2M server: observe State (/5/0/3) and Update Result (/5/0/5) whenever the device registers
// afresh (a new registration drops the server's observations), start the update once (write Package URI,
// push the Package, …), execute Update whenever State says Downloaded, and call `finished` once a final
// result is heard. Used by the LwM2M demo and tests.

import type { Lwm2mServer, Observation, Registration } from "./lwm2m-server";

export class Lwm2mUpdate {
	/** Every State and Update Result heard, in order (observe answers and notifications). */
	readonly states: number[] = [];
	readonly results: number[] = [];
	/** The device's answers to Execute Update. */
	readonly executed: string[] = [];
	started = false;
	finished = false;
	readonly #server: Lwm2mServer;
	readonly #endpoint: string;
	readonly #start: (update: Lwm2mUpdate) => Promise<unknown>;
	readonly #done: (result: number) => void;
	#observing = 0;
	readonly #onRegister = (registration: Registration) => registration.endpoint === this.#endpoint && void this.#registered(true);
	readonly #onUpdate = (registration: Registration) => registration.endpoint === this.#endpoint && void this.#registered(false);
	readonly #onNotify = (event: { endpoint: string; path: string; value: unknown }) => event.endpoint === this.#endpoint && this.#heard(event.path, event.value);

	constructor(server: Lwm2mServer, endpoint: string, start: (update: Lwm2mUpdate) => Promise<unknown>, finished: (result: number) => void) {
		this.#server = server;
		this.#endpoint = endpoint;
		this.#start = start;
		this.#done = finished;
		server.on("register", this.#onRegister);
		server.on("update", this.#onUpdate);
		server.on("notify", this.#onNotify);
	}

	get endpoint(): string {
		return this.#endpoint;
	}

	/** States heard, repeats (a value notified again after a reboot) folded. */
	get path(): number[] {
		return this.states.filter((state, i) => i === 0 || state !== this.states[i - 1]);
	}

	close(): void {
		this.#server.off("register", this.#onRegister);
		this.#server.off("update", this.#onUpdate);
		this.#server.off("notify", this.#onNotify);
	}

	async #registered(fresh: boolean): Promise<void> {
		if (fresh || !this.#observing) {
			this.#observing = 0;
			for (const resource of ["/5/0/3", "/5/0/5"]) {
				const observation: Observation | undefined = await this.#server.observe(this.#endpoint, resource).catch(() => undefined);
				if (observation?.code !== "2.05") continue;
				this.#observing++;
				this.#heard(resource, observation.value);
			}
		}
		if (this.started) return;
		this.started = true;
		await this.#start(this);
	}

	#heard(resource: string, value: unknown): void {
		const number = Number(value);
		if (resource === "/5/0/3") {
			this.states.push(number);
			if (number === 2) void this.#server.execute(this.#endpoint, "/5/0/2").then((code) => this.executed.push(code), () => this.executed.push("no answer"));
		}
		else if (resource === "/5/0/5") this.results.push(number);
		else return;
		const result = this.results[this.results.length - 1];
		if (this.started && !this.finished && result !== undefined && result !== 0 && this.states[this.states.length - 1] === 0) {
			this.finished = true;
			this.#done(result);
		}
	}
}
