// The Moddable "mqtt" Client over the board's MQTT connections: QoS 0, no reconnect, callbacks that may
// throw without harm (Moddable swallows their exceptions; here they are also logged, so tests see them).
// With `Socket` (SecureSocket) it is MQTT over TLS; onClose receives the reason a handshake failed, which
// Moddable only traces.
import { call, callWithData, listen, unlisten } from "./host";
import { secureSpec, type SecureDictionary } from "./secure-spec";

interface ClientOptions {
	host: string;
	port?: number;
	id?: string;
	user?: string;
	password?: string;
	/** Keepalive in milliseconds; 0 or absent: none. */
	timeout?: number;
	Socket?: unknown;
	secure?: SecureDictionary;
}

type Event = { message: "ready" | "message" | "closed"; topic?: string; reason?: string };

export default class Client {
	onReady: (() => void) | undefined;
	onMessage: ((topic: string, payload: ArrayBuffer) => void) | undefined;
	onClose: ((reason?: string) => void) | undefined;
	// Moddable's states: 0 connecting, 2 connected (CONNACK), -1 closed.
	#state = 0;
	#id: number;

	constructor(options: ClientOptions) {
		if (!options.host) throw new Error("parameter host is required");
		this.#id = call("mqtt.connect", {
			host: options.host,
			port: options.port || 1883,
			clientId: options.id ?? "",
			user: options.user || undefined,
			password: options.password || undefined,
			keepalive: Math.floor(((options.timeout ?? 0) + 999) / 1000),
			secure: options.Socket ? { serverName: options.host, ...secureSpec(options.secure ?? {}) } : undefined,
		});
		listen(this.#id, (event: Event, data) => this.#event(event, data));
	}

	publish(topic: string, data: string | ArrayBuffer, flags?: { retain?: boolean; quality?: number }): void {
		this.#assertConnected();
		const options = flags ? { retain: flags.retain === true, quality: flags.quality ?? 0 } : undefined;
		if (data instanceof ArrayBuffer) callWithData("mqtt.publish", data, this.#id, topic, undefined, options);
		else call("mqtt.publish", this.#id, topic, String(data), options);
	}

	subscribe(topic: string): void {
		this.#assertConnected();
		call("mqtt.subscribe", this.#id, topic);
	}

	unsubscribe(topic: string): void {
		this.#assertConnected();
		call("mqtt.unsubscribe", this.#id, topic);
	}

	close(): void {
		if (this.#state < 0) return;
		this.#state = -1;
		unlisten(this.#id);
		call("mqtt.close", this.#id);
	}

	#assertConnected(): void {
		if (this.#state < 2) throw new Error("connection closed");
	}

	#event(event: Event, data: ArrayBuffer | undefined): void {
		if (event.message === "ready") {
			this.#state = 2;
			return this.#callback("onReady", () => this.onReady!());
		}
		if (event.message === "message")
			return this.#callback("onMessage", () => this.onMessage?.(event.topic ?? "", data ?? new ArrayBuffer(0)));
		// Moddable traces the failure, calls onClose, then closes itself.
		this.#state = -1;
		unlisten(this.#id);
		call("log", `MQTT FAIL: ${event.reason ?? "closed"}`);
		this.#callback("onClose", () => this.onClose?.(event.reason));
	}

	#callback(name: string, run: () => void): void {
		try {
			run();
		}
		catch (error) {
			// A power cut or restart must still end the device's turn.
			const kind = (error as Error | undefined)?.name;
			if (kind === "PowerCutError" || kind === "RestartError") throw error;
			call("log", `mqtt ${name} threw: ${(error as Error | undefined)?.message ?? error}`);
		}
	}
}
