// A tiny MQTT 3.1.1 client for tests, straight over mqtt-packet: QoS 0, subscriptions acknowledged, and every
// received message kept so a test can wait for the next one on a filter.

import * as net from "node:net";
import { generate, parser, type Packet } from "mqtt-packet";

export type Message = { topic: string; payload: Buffer };

/** MQTT topic filter matching: "+" one level, "#" the rest. */
export function topicMatches(filter: string, topic: string): boolean {
	const want = filter.split("/"), have = topic.split("/");
	for (let i = 0; i < want.length; i++) {
		if (want[i] === "#") return true;
		if (i >= have.length || (want[i] !== "+" && want[i] !== have[i])) return false;
	}
	return want.length === have.length;
}

export class TestClient {
	readonly messages: Message[] = [];
	readonly closed: Promise<void>;
	#socket: net.Socket;
	#taken = new Set<Message>();
	#waiters: (() => void)[] = [];
	#acks = new Map<number, () => void>();
	#packetId = 0;

	private constructor(socket: net.Socket) {
		this.#socket = socket;
		this.closed = new Promise((done) => socket.once("close", () => done()));
	}

	static connect(url: string, clientId = `test-${Math.random().toString(16).slice(2, 10)}`): Promise<TestClient> {
		const { hostname, port } = new URL(url);
		const socket = net.connect({ host: hostname, port: Number(port) });
		const client = new TestClient(socket);
		const packets = parser({ protocolVersion: 4 });
		socket.on("data", (data) => packets.parse(data));
		socket.on("error", () => socket.destroy());
		return new Promise((done, fail) => {
			socket.once("close", () => fail(new Error("connection closed before connack")));
			socket.on("connect", () => socket.write(generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId, keepalive: 0 })));
			packets.on("packet", (packet: Packet) => {
				if (packet.cmd === "connack") packet.returnCode ? fail(new Error(`refused ${packet.returnCode}`)) : done(client);
				else client.#packet(packet);
			});
		});
	}

	async subscribe(...filters: string[]): Promise<void> {
		const messageId = this.#packetId = (this.#packetId % 0xffff) + 1;
		const acknowledged = new Promise<void>((done) => this.#acks.set(messageId, done));
		this.#socket.write(generate({ cmd: "subscribe", messageId, subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })) }));
		await acknowledged;
	}

	publish(topic: string, payload: string | Uint8Array | object): void {
		const bytes = typeof payload === "string" ? Buffer.from(payload)
			: payload instanceof Uint8Array ? Buffer.from(payload) : Buffer.from(JSON.stringify(payload));
		this.#socket.write(generate({ cmd: "publish", topic, payload: bytes, qos: 0, retain: false, dup: false }));
	}

	/** The oldest message on `filter` not yet taken, waiting for it up to `timeoutMs`. */
	async next(filter: string, timeoutMs = 3000): Promise<Message> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const found = this.messages.find((message) => !this.#taken.has(message) && topicMatches(filter, message.topic));
			if (found) {
				this.#taken.add(found);
				return found;
			}
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`no message on ${filter} within ${timeoutMs} ms`);
			await this.#arrival(left);
		}
	}

	async json(filter: string, timeoutMs?: number): Promise<any> {
		return JSON.parse((await this.next(filter, timeoutMs)).payload.toString("utf8"));
	}

	/**
		Takes every message on `filter` that arrives until `quietMs` pass without one; the first may take up to
		`firstMs`, as a loaded machine can hold a broker's answer longer than the quiet period.
	*/
	async drain(filter: string, quietMs = 200, firstMs = 10000): Promise<Message[]> {
		const taken: Message[] = [];
		for (;;) {
			try {
				taken.push(await this.next(filter, taken.length ? quietMs : firstMs));
			}
			catch {
				return taken;
			}
		}
	}

	/** The next `count` messages on `filter`, each waited for up to `timeoutMs`. */
	async take(filter: string, count: number, timeoutMs = 10000): Promise<Message[]> {
		const taken: Message[] = [];
		while (taken.length < count) taken.push(await this.next(filter, timeoutMs));
		return taken;
	}

	close(): Promise<void> {
		if (!this.#socket.destroyed) this.#socket.end(generate({ cmd: "disconnect" }));
		return this.closed;
	}

	#packet(packet: Packet): void {
		if (packet.cmd === "publish") {
			const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
			this.messages.push({ topic: packet.topic, payload });
			for (const waiter of this.#waiters.splice(0)) waiter();
		}
		else if (packet.cmd === "suback" && packet.messageId !== undefined) this.#acks.get(packet.messageId)?.();
	}

	#arrival(ms: number): Promise<void> {
		return new Promise((done) => {
			const timer = setTimeout(done, ms);
			this.#waiters.push(() => { clearTimeout(timer); done(); });
		});
	}
}
