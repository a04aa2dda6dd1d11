// The board's MQTT connections (host-sim/board/mqtt-network.ts) against a real aedes broker, and the
// device-side "mqtt" module (host-sim/modules/mqtt.ts) driven through a Board the way an engine drives it.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { Board } from "../host-sim/board/board";
import { MqttNetwork, type MqttEvent, type MqttSpec } from "../host-sim/board/mqtt-network";
import { startAedes, type AedesBroker } from "../host-sim/server/mqtt-broker";
import { pickFreePort } from "../host-sim/server/peer-process";
import { dispatch } from "../host-sim/modules/host";
import Client from "../host-sim/modules/mqtt";
import { TestClient } from "./support/mqtt-client";
import { tempDir } from "./support/sim";

let broker: AedesBroker;
test.before(async () => { broker = await startAedes(); });
test.after(async () => { await broker.close(); });

function spec(overrides: Partial<MqttSpec> = {}): MqttSpec {
	return { host: "127.0.0.1", port: broker.port, clientId: `board-${Math.random().toString(16).slice(2, 8)}`, keepalive: 0, secure: undefined, ...overrides };
}

/** The next event from the network, waiting for it in real time like the run loop does. */
async function nextEvent(network: MqttNetwork, timeoutMs = 3000): Promise<{ event: MqttEvent; data: Uint8Array | undefined }> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const entry = network.take();
		if (entry) return entry;
		if (Date.now() > deadline) throw new Error("no mqtt event");
		await new Promise((done) => setTimeout(done, 5));
	}
}

test("connect, subscribe, receive and publish, counting payload bytes", async () => {
	const network = new MqttNetwork();
	network.open(1, spec());
	assert.throws(() => network.publish(1, "early", new Uint8Array(1)), /connection closed/, "nothing before CONNACK");
	assert.equal((await nextEvent(network)).event, { id: 1, message: "ready" });
	network.subscribe(1, "board/in/#");
	const peer = await TestClient.connect(broker.url);
	await peer.subscribe("board/out");
	await new Promise((done) => setTimeout(done, 50)); // the board's SUBACK is not awaited, as in Moddable
	peer.publish("board/in/a", Uint8Array.of(1, 2, 3, 250));
	const message = await nextEvent(network);
	assert.equal(message.event, { id: 1, message: "message", topic: "board/in/a" });
	assert.equal([...message.data!], [1, 2, 3, 250]);
	assert.is(network.payloadBytes, 4);
	network.publish(1, "board/out", new TextEncoder().encode("hello"));
	assert.is((await peer.next("board/out")).payload.toString(), "hello");
	network.unsubscribe(1, "board/in/#");
	await new Promise((done) => setTimeout(done, 50));
	peer.publish("board/in/b", "ignored");
	await new Promise((done) => setTimeout(done, 100));
	assert.not.ok(network.hasEvents, "unsubscribed");
	network.close(1);
	assert.throws(() => network.publish(1, "board/out", new Uint8Array(1)), /connection closed/);
	await new Promise((done) => setTimeout(done, 50));
	assert.not.ok(network.hasEvents, "the device's own close reports nothing");
	assert.is(network.openCount, 0);
	await peer.close();
});

test("a broker that drops its clients ends the connection with one closed event", async () => {
	const network = new MqttNetwork();
	network.open(7, spec());
	await nextEvent(network);
	await broker.restart();
	const closed = await nextEvent(network);
	assert.is(closed.event.message, "closed");
	assert.type(closed.event.reason, "string");
	await new Promise((done) => setTimeout(done, 50));
	assert.not.ok(network.hasEvents, "only one");
	assert.throws(() => network.subscribe(7, "x"), /connection closed/);
});

test("a refused connection reports closed", async () => {
	const network = new MqttNetwork();
	network.open(2, spec({ port: await pickFreePort() }));
	const event = (await nextEvent(network)).event;
	assert.is(event.message, "closed");
	assert.match(event.reason!, /ECONNREFUSED/);
	// A device that ships no CA certificate trusts no server: refused before connecting.
	network.open(3, spec({ secure: { serverName: "127.0.0.1" } }));
	const untrusted = (await nextEvent(network)).event;
	assert.is(untrusted.message, "closed");
	assert.is(untrusted.reason, "tls: no trusted ca certificate");
});

test("the run loop waits for a connection only while the device has a timer, or briefly after traffic", async () => {
	const network = new MqttNetwork(undefined, 100);
	assert.is(network.waitFor(undefined), undefined, "nothing open");
	network.open(1, spec());
	assert.is(network.waitFor(undefined), 1000, "connecting: wait in slices");
	assert.is(network.waitFor(300), 300);
	await nextEvent(network);
	assert.is(network.waitFor(5000), 5000, "up, with a timer: wait for it");
	const quiet = network.waitFor(undefined);
	assert.ok(quiet !== undefined && quiet <= 100, "up, no timer: only the quiet window");
	await new Promise((done) => setTimeout(done, 120));
	assert.is(network.waitFor(undefined), undefined, "idle once the line is quiet");
	network.subscribe(1, "anything");
	assert.ok(network.waitFor(undefined) !== undefined, "a request reopens the window");
	network.closeAll();
	assert.is(network.waitFor(5000), undefined);
});

test("keepalive pings keep a quiet connection open past 1.5 intervals", async () => {
	const network = new MqttNetwork();
	network.open(1, spec({ keepalive: 1 }));
	await nextEvent(network);
	await new Promise((done) => setTimeout(done, 2200));
	assert.not.ok(network.hasEvents, "still connected");
	network.close(1);
});

// The device-side module, with the board behind hostCall as the Node engine wires it.
function deviceBoard(): { board: Board; logs: string[]; pump(timeoutMs?: number): Promise<void> } {
	const logs: string[] = [];
	const board = new Board({ dir: tempDir("mqtt-board"), report: (kind, args) => { if (kind === "log") logs.push(String(args[0])); } });
	(globalThis as any).hostCall = (op: string, args: unknown[], data?: ArrayBuffer | ArrayBufferView) => {
		const bytes = data === undefined ? undefined : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
		const value = board.call(op, args, bytes);
		return value instanceof Uint8Array ? value.slice().buffer : value;
	};
	/** Delivers events until one arrives and the line stays quiet. */
	const pump = async (timeoutMs = 3000) => {
		const deadline = Date.now() + timeoutMs;
		let delivered = false;
		for (;;) {
			const next = board.nextEvent();
			if (next) {
				dispatch(next.event, next.data?.slice().buffer);
				delivered = true;
				continue;
			}
			if (delivered || Date.now() > deadline) return;
			await board.waitForNetwork(50);
		}
	};
	return { board, logs, pump };
}

test("the mqtt module: onReady, subscribe, onMessage with an ArrayBuffer, publish, swallowed exceptions", async () => {
	const { board, logs, pump } = deviceBoard();
	const peer = await TestClient.connect(broker.url);
	await peer.subscribe("device/out/#");
	const client = new Client({ host: "127.0.0.1", port: broker.port, id: "device-1", timeout: 60000 });
	const received: [string, number[]][] = [];
	let ready = 0;
	client.onReady = () => { ready++; client.subscribe("device/in"); };
	client.onMessage = (topic, payload) => {
		received.push([topic, [...new Uint8Array(payload)]]);
		if (payload.byteLength === 1) throw new Error("callback trouble");
	};
	assert.throws(() => client.publish("device/out/x", "early"), /connection closed/);
	await pump();
	assert.is(ready, 1);
	await new Promise((done) => setTimeout(done, 50));
	peer.publish("device/in", Uint8Array.of(9, 8, 7));
	peer.publish("device/in", Uint8Array.of(1));
	peer.publish("device/in", "");
	await pump();
	await pump(300);
	assert.equal(received, [["device/in", [9, 8, 7]], ["device/in", [1]], ["device/in", []]]);
	assert.ok(logs.some((line) => /onMessage threw: callback trouble/.test(line)), logs.join("\n"));
	client.publish("device/out/text", "héllo");
	client.publish("device/out/bytes", Uint8Array.of(0, 255).buffer);
	assert.is((await peer.next("device/out/text")).payload.toString("utf8"), "héllo");
	assert.equal([...(await peer.next("device/out/bytes")).payload], [0, 255]);
	assert.is(board.mqtt.payloadBytes, 4);
	client.close();
	assert.throws(() => client.subscribe("device/in"), /connection closed/);
	board.shutDown();
	await peer.close();
	fs.rmSync(board.storage.dir, { recursive: true, force: true });
});

test("the mqtt module: a dropped connection calls onClose once and refuses publishing", async () => {
	const { board, logs, pump } = deviceBoard();
	const client = new Client({ host: "127.0.0.1", port: broker.port, id: "device-2" });
	let closed = 0;
	client.onReady = () => {};
	client.onClose = () => { closed++; };
	await pump();
	await broker.restart();
	await pump();
	assert.is(closed, 1);
	assert.ok(logs.some((line) => line.startsWith("MQTT FAIL")), logs.join("\n"));
	assert.throws(() => client.publish("t", "x"), /connection closed/);
	assert.throws(() => new Client({ host: "" }), /parameter host is required/);
	board.shutDown();
	const refused = new Client({ host: "127.0.0.1", port: await pickFreePort() });
	let refusedClosed = false;
	refused.onClose = () => { refusedClosed = true; };
	await pump();
	assert.ok(refusedClosed, "onClose on refusal");
	fs.rmSync(board.storage.dir, { recursive: true, force: true });
});

test.run();
